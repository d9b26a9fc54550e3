// Language-server latency on a 1,000-line file, measured the way an editor sees it: a real
// client speaking JSON-RPC to a spawned `weft lsp` over stdio.
//
//   npx tsx bench/lsp.ts [--edits N] [--requests N] [--debounce MS] [--json FILE]
//
// - edit → diagnostics: a one-character edit (typing a character, then deleting it) until
//   the diagnostics for that version arrive. The server's debounce (`--debounce`, default 15
//   ms, the VS Code extension's default) delays only an edit that comes while another still
//   waits, and then by no more than its last check took: an edit sent after the previous
//   one's diagnostics, as here, is checked at once.
// - a burst: two edits sent back to back (typing two characters), timed from the second to
//   its diagnostics: this one waits out the debounce. Run with `--debounce 0` for the time
//   without it.
// - hover, completion: request → response on an unchanged document.
// - hover / completion / semantic tokens / inlay hints right after an edit: an edit
//   immediately followed by the request (the server must re-analyse first), as when typing
//   `m.` and the list opens, or as an editor refreshes its highlighting and hints.
// It also times, in this process, a whole analysis (parse + check) and the re-analysis after a
// one-character edit: with the incremental parse and a check from scratch, and with the
// incremental parse and the incremental check (the server's work per keystroke).
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LspClient, positionOf, type Doc } from "../test/lsp/client.ts";
import { analyse } from "../lsp/analysis.ts";
import { MODELS_DIR } from "../lsp/server.ts";
import { ModuleLoader } from "../lsp/modules.ts";
import { IncrementalChecker } from "../compiler/check/incremental.ts";
import { parse } from "../grammar/index.ts";
import { fileHost } from "../compiler/index.ts";

/** A realistic file of `lines` lines: blocks, fns with lets, loops and shape arithmetic. */
export function program(lines: number): string {
  const parts = ['import "std/nn"', "", "dim B, T = 64, D = 128, F = 512, H = 4, V = 1000", ""];
  for (let i = 0; parts.join("\n").split("\n").length < lines; i++) {
    parts.push(`/// Layer ${i}: a pre-norm residual block with attention-like mixing.
block Layer${i}(D, F) {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  proj = Linear(D, D)
  param gain: f32[D] = ones
  fn (x: f32[B, T, D]) -> f32[B, T, D] = x + ff(ln(x)) * gain
}

/// Two residual steps and a softmax mixing over time.
fn step${i}(x: f32[B, T, D], m: Layer${i}) -> f32[B, T, D] {
  let k1 = m(x)
  let k2 = m(x + 0.5 * k1)
  var h = x
  for j in 0..3 { h = h + 0.25 * tanh(h) }
  let scores = softmax(h @ transpose(k2, [B, D, T]) / 8.0, -1)
  let heads = reshape(k1, [B, T, H, D / H])
  return h + scores @ k1 + m.proj(reshape(heads, [B, T, D]))
}

fn loss${i}(m: Layer${i}, x: f32[B, T, D]) -> f32 = mean(step${i}(x, m) ** 2)
`);
  }
  return parts.join("\n");
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface Row {
  what: string;
  n: number;
  p50: number;
  p95: number;
  max: number;
}

function row(what: string, xs: number[]): Row {
  return { what, n: xs.length, p50: percentile(xs, 50), p95: percentile(xs, 95), max: Math.max(...xs) };
}

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

export async function main(argv: string[]): Promise<number> {
  const edits = arg(argv, "edits", 100);
  const requests = arg(argv, "requests", 200);
  const debounceMs = arg(argv, "debounce", 15);
  const jsonAt = argv.indexOf("--json");
  const src = program(1000);
  const lineCount = src.split("\n").length;
  const file = join(tmpdir(), "weft-lsp-bench.weft");

  // one analysis in this process, for reference
  const host = fileHost(MODELS_DIR);
  const stage: { parse: number[]; analyse: number[] } = { parse: [], analyse: [] };
  for (let i = 0; i < 12; i++) {
    let t = performance.now();
    parse(src, file);
    stage.parse.push(performance.now() - t);
    t = performance.now();
    analyse(file, i, src, { modelsDir: host.modelsDir, readFile: (p) => (p === file ? src : host.readFile(p)) }, {});
    stage.analyse.push(performance.now() - t);
  }

  // what the server computes per keystroke: incremental parse, and a check from scratch or an
  // incremental one (what the server does), in this process
  const reanalyse = async (checker?: IncrementalChecker): Promise<number[]> => {
    const loader = new ModuleLoader();
    const editAt0 = src.indexOf("0.5 * k1", src.length / 2) + 2;
    let edited = src;
    const out: number[] = [];
    for (let i = 0; i < 40; i++) {
      edited = i % 2 ? edited.slice(0, editAt0) + edited.slice(editAt0 + 1) : edited.slice(0, editAt0) + "7" + edited.slice(editAt0);
      const text = edited;
      const t = performance.now();
      analyse(file, i, text, { modelsDir: host.modelsDir, readFile: (p) => (p === file ? text : host.readFile(p)) }, {}, loader, checker);
      out.push(performance.now() - t);
    }
    return out;
  };
  const reanalyseFull = await reanalyse();
  const reanalyseInc = await reanalyse(new IncrementalChecker());

  const lsp = await LspClient.start({ init: { debounceMs } });
  try {
    const doc: Doc = await lsp.open(file, src);
    const first = await lsp.diagnostics(doc, 120_000);
    if (first.some((d) => d.severity === 1)) throw new Error(`the bench file has errors: ${first.map((d) => d.message).join("; ")}`);

    // positions: a number to edit, names to hover, places to complete
    const editAt = positionOf(doc.text, doc.text.indexOf("0.5 * k1", doc.text.length / 2) + 2);
    const hoverAt: ReturnType<typeof positionOf>[] = [];
    const completeAt: ReturnType<typeof positionOf>[] = [];
    for (let k = doc.text.indexOf("let scores"); k >= 0 && hoverAt.length < 40; k = doc.text.indexOf("let scores", k + 1)) {
      hoverAt.push(positionOf(doc.text, k + 5), positionOf(doc.text, doc.text.indexOf("softmax", k) + 2));
      completeAt.push(positionOf(doc.text, doc.text.indexOf("m.proj", k) + 2), positionOf(doc.text, doc.text.indexOf("tanh", k - 120) + 2));
    }

    const timeEdit = async (text: string, range: { start: typeof editAt; end: typeof editAt }) => {
      const t = performance.now();
      await lsp.edit(doc, range, text);
      await lsp.diagnostics(doc);
      return performance.now() - t;
    };
    const typeAndDelete = async (): Promise<number[]> => [
      await timeEdit("7", { start: editAt, end: editAt }),
      await timeEdit("", { start: editAt, end: { line: editAt.line, character: editAt.character + 1 } }),
    ];
    for (let i = 0; i < 5; i++) await typeAndDelete(); // warm-up
    const editTimes: number[] = [];
    for (let i = 0; i < edits / 2; i++) editTimes.push(...(await typeAndDelete()));

    const timed = async (f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      return performance.now() - t;
    };
    for (let i = 0; i < 20; i++) await lsp.hover(doc, hoverAt[i % hoverAt.length]);
    const hoverTimes: number[] = [];
    for (let i = 0; i < requests; i++) hoverTimes.push(await timed(() => lsp.hover(doc, hoverAt[i % hoverAt.length])));
    const completeTimes: number[] = [];
    for (let i = 0; i < requests; i++) completeTimes.push(await timed(() => lsp.completion(doc, completeAt[i % completeAt.length])));

    // typing then asking: the request waits for the new version's analysis
    const afterEdit = async (ask: (i: number) => Promise<unknown>): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < edits / 2; i++) {
        for (const [text, end] of [["7", editAt], ["", { line: editAt.line, character: editAt.character + 1 }]] as const) {
          await lsp.edit(doc, { start: editAt, end }, text);
          out.push(await timed(() => ask(i)));
          await lsp.diagnostics(doc);
        }
      }
      return out;
    };
    const completeAfterEdit = await afterEdit((i) => lsp.completion(doc, completeAt[i % completeAt.length]));
    const hoverAfterEdit = await afterEdit((i) => lsp.hover(doc, hoverAt[i % hoverAt.length]));
    const tokensAfterEdit = await afterEdit(() => lsp.semanticTokens(doc));
    const hintsAfterEdit = await afterEdit(() => lsp.inlayHints(doc));

    // a burst: two characters typed back to back; from the second to its diagnostics (then
    // both deleted, untimed)
    const burst: number[] = [];
    for (let i = 0; i < edits / 2; i++) {
      await lsp.edit(doc, { start: editAt, end: editAt }, "7");
      const t = performance.now();
      await lsp.edit(doc, { start: { line: editAt.line, character: editAt.character + 1 }, end: { line: editAt.line, character: editAt.character + 1 } }, "8");
      await lsp.diagnostics(doc);
      burst.push(performance.now() - t);
      await lsp.edit(doc, { start: editAt, end: { line: editAt.line, character: editAt.character + 2 } }, "");
      await lsp.diagnostics(doc);
    }

    const rows = [
      row("edit → diagnostics", editTimes),
      row("edit → diagnostics, the second of two characters typed together", burst),
      row("hover", hoverTimes),
      row("completion", completeTimes),
      row("hover right after an edit", hoverAfterEdit),
      row("completion right after an edit", completeAfterEdit),
      row("semantic tokens (whole file) right after an edit", tokensAfterEdit),
      row("inlay hints (whole file) right after an edit", hintsAfterEdit),
      row("(in-process) parse", stage.parse.slice(2)),
      row("(in-process) parse + check", stage.analyse.slice(2)),
      row("(in-process) re-analysis after a 1-char edit: incremental parse + check", reanalyseFull.slice(4)),
      row("(in-process) re-analysis after a 1-char edit: incremental parse + incremental check", reanalyseInc.slice(4)),
    ];
    const fmt = (x: number) => x.toFixed(1).padStart(7);
    process.stdout.write(`weft lsp on a ${lineCount}-line file (debounce ${debounceMs} ms), times in ms\n\n`);
    process.stdout.write(`| what | n | p50 | p95 | max |\n|---|---:|---:|---:|---:|\n`);
    for (const r of rows) process.stdout.write(`| ${r.what} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.max)} |\n`);
    if (jsonAt >= 0) writeFileSync(argv[jsonAt + 1], JSON.stringify({ lines: lineCount, debounceMs, rows }, null, 2) + "\n");
    return 0;
  } finally {
    await lsp.stop();
  }
}

if (process.argv[1] && /bench[\\/]lsp\.ts$/.test(process.argv[1])) process.exitCode = await main(process.argv.slice(2));
