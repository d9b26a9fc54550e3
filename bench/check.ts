// `npx tsx bench/check.ts [--lines N] [--reps N]`: the front end's speed on a generated
// 2,000-line program (blocks, fns with lets, loops and ifs, losses, a train job):
// parse, check, parse + check, and the re-check after a one-line edit that the language
// server needs in single-digit milliseconds. Everything runs in memory (a ModuleHost over a
// Map, std/nn included); it prints one table and writes nothing.
//
// The re-check is measured three ways: with compiler/modules.ts's loadModules and `check`
// (every file parsed and checked again), with the language server's loader (lsp/modules.ts:
// only the edited top-level item parsed again) and `check`, and with that loader and the
// incremental checker (compiler/check/incremental.ts: only the edited item and the items that
// depend on it checked again) — what the server does per keystroke.
//
// Times are wall clock (median and fastest) and, beside them, the process's CPU time
// (median): on a shared, loaded machine the CPU time is the steadier of the two.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { check } from "../compiler/check/index.ts";
import { IncrementalChecker } from "../compiler/check/incremental.ts";
import { loadModules, type ModuleHost } from "../compiler/modules.ts";
import { parse } from "../grammar/index.ts";
import { ModuleLoader } from "../lsp/modules.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** One section of the program: a block, a fn with a loop and an if, a loss (29 lines). */
function section(k: number): string {
  return `/// Section ${k}: a gated residual block.
block Block${k}(D, F) {
  ln = LayerNorm(D)
  up = Linear(D, F)
  down = Linear(F, D)
  param scale: f32[D] = ones
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    let h = ln(x)
    let u = gelu(up(h))
    let v = down(u) * scale
    let g = sigmoid(mean(v, D))
    return x + v * g[:, :, None]
  }
}

/// Section ${k}: the block applied twice, with a residual mix.
fn mix${k}(x: f32[B, T, D], a: Block${k}, rate = 0.5) -> f32[B, T, D] {
  var h = x
  for i in 0..2 {
    let y = a(h)
    h = h + rate * y
  }
  let out = if rate > 0.25 { tanh(h) } else { h }
  return out
}

fn loss${k}(m: Block${k}, x: f32[B, T, D]) -> f32 = mean(mix${k}(x, m) ** 2)

`;
}

export function program(lines: number): { text: string; sections: number } {
  const head = `/// A generated program for bench/check.ts.
import "std/nn"

dim B = 8, T = 32, D = 64, F = 256

`;
  const tail = (last: number) => `train job {
  model = Block${last}(D, F)
  loss = loss${last}(model, batch.x)
  data = jsonl("data.jsonl")
  batch = 8
  steps = 10
  optimizer = adamw(lr = 3e-4)
}
`;
  const per = section(0).split("\n").length - 1;
  const sections = Math.max(1, Math.round((lines - 12) / per));
  let text = head;
  for (let k = 0; k < sections; k++) text += section(k);
  return { text: text + tail(sections - 1), sections };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function time<T>(f: () => T): { ms: number; cpu: number; value: T } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = f();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1000, value };
}

export function main(argv: string[]): number {
  const arg = (name: string, dflt: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const lines = arg("--lines", 2000);
  const reps = arg("--reps", 30);
  const warmup = 5;

  const { text, sections } = program(lines);
  const entry = "/bench/generated.weft";
  const modelsDir = "/models";
  const files = new Map<string, string>([[join(modelsDir, "std/nn.weft"), readFileSync(join(ROOT, "models/std/nn.weft"), "utf8")]]);
  const host: ModuleHost = { modelsDir, readFile: (p) => files.get(p) };

  // the one-line edit: a constant in the middle section's block
  const mid = Math.floor(sections / 2);
  const line = "    let v = down(u) * scale";
  const lineAt = text.indexOf(line, text.indexOf(`block Block${mid}(`));
  const edited = [text, text.slice(0, lineAt) + line + " * 0.5" + text.slice(lineAt + line.length)];

  // sanity: the program and its edit check cleanly
  for (const t of edited) {
    files.set(entry, t);
    const r = check(loadModules(entry, host));
    if (r.diagnostics.length) {
      process.stderr.write(`bench/check: the generated program does not check:\n${r.diagnostics.slice(0, 5).map((d) => `${d.span.line}:${d.span.col} ${d.message}`).join("\n")}\n`);
      return 1;
    }
  }

  type Sample = { ms: number; cpu: number };
  const samples: Record<string, Sample[]> = { parse: [], load: [], check: [], full: [], edit: [], editLspLoad: [], editLsp: [], incCheck: [], editInc: [] };
  const loader = new ModuleLoader();
  const incLoader = new ModuleLoader();
  const inc = new IncrementalChecker();
  files.set(entry, text);
  loader.load(entry, host);
  inc.check(incLoader.load(entry, host));
  const rechecked: number[] = [];
  for (let r = 0; r < warmup + reps; r++) {
    const keep = r >= warmup;
    const add = (k: string, ...parts: Sample[]) => keep && samples[k].push({ ms: parts.reduce((a, p) => a + p.ms, 0), cpu: parts.reduce((a, p) => a + p.cpu, 0) });
    files.set(entry, text);
    add("parse", time(() => parse(text, entry)));
    const loaded = time(() => loadModules(entry, host));
    add("load", loaded);
    add("check", time(() => check(loaded.value)));
    add("full", time(() => check(loadModules(entry, host))));
    // a one-line edit, alternating between two versions so that nothing is reused by accident
    files.set(entry, edited[(r + 1) % 2]);
    add("edit", time(() => check(loadModules(entry, host))));
    files.set(entry, edited[r % 2]);
    const relo = time(() => loader.load(entry, host));
    add("editLspLoad", relo);
    add("editLsp", relo, time(() => check(relo.value)));
    // the server's path: the same edit, re-parsed and re-checked incrementally
    files.set(entry, edited[(r + 1) % 2]);
    const incLoad = time(() => incLoader.load(entry, host));
    const incCheck = time(() => inc.check(incLoad.value));
    add("incCheck", incCheck);
    add("editInc", incLoad, incCheck);
    if (keep) rechecked.push(inc.stats.checked);
  }

  const n = text.split("\n").length;
  const W = 70;
  const row = (what: string, k: string) => {
    const ms = samples[k].map((x) => x.ms);
    const cpu = samples[k].map((x) => x.cpu);
    return `| ${what.padEnd(W)} | ${median(ms).toFixed(1).padStart(8)} | ${Math.min(...ms).toFixed(1).padStart(7)} | ${median(cpu).toFixed(1).padStart(8)} |`;
  };
  const out = [
    `Front end on a generated ${n}-line program (${sections} blocks, ${2 * sections} fns, a train job; std/nn imported)`,
    `median and fastest wall-clock time, and median CPU time, of ${reps} runs after ${warmup} warm-up runs, in ms; node ${process.version}`,
    "",
    `| ${"step".padEnd(W)} | ${"median".padStart(8)} | ${"min".padStart(7)} | ${"cpu".padStart(8)} |`,
    `| ${"-".repeat(W)} | ${"-".repeat(7)}: | ${"-".repeat(6)}: | ${"-".repeat(7)}: |`,
    row("parse (the entry file)", "parse"),
    row("load (parse the entry file and std/nn)", "load"),
    row("check (the loaded modules, from scratch)", "check"),
    row("parse + check (load + check)", "full"),
    row("re-check after a one-line edit: load + check", "edit"),
    row("re-check after a one-line edit: LSP incremental load", "editLspLoad"),
    row("re-check after a one-line edit: LSP incremental load + check", "editLsp"),
    row(`re-check after a one-line edit: incremental check (${median(rechecked)} of ${inc.stats.items} items)`, "incCheck"),
    row("re-check after a one-line edit: incremental load + incremental check", "editInc"),
  ];
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
