// The incremental checker (compiler/check/incremental.ts) re-checks only the items an edit
// can have affected; what it returns must be exactly what a from-scratch `check` returns:
// the same diagnostics in the same order, the same type for every node, the same definitions,
// call targets and summaries. Checked along random sequences of edits (typing, moving and
// duplicating lines, renaming names, adding items that shadow others) to the seed models,
// models/std/nn.weft (edited as an import too) and bench/check.ts's generated program, each
// version loaded by the language server's incremental loader as the server does.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check, type CheckResult } from "../../compiler/check/index.ts";
import { IncrementalChecker } from "../../compiler/check/incremental.ts";
import { printType } from "../../compiler/check/types.ts";
import { printDim } from "../../compiler/check/dims.ts";
import type { Span } from "../../grammar/ast.ts";
import { ModuleLoader } from "../../lsp/modules.ts";
import { program } from "../../bench/check.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const MODELS = join(ROOT, "models");
const NN = join(MODELS, "std/nn.weft");
const read = (p: string) => readFileSync(p, "utf8");
const GENERATED = join(ROOT, "bench/generated.weft");

const programs = [
  ...readdirSync(join(MODELS, "seeds")).map((f) => ({ file: join(MODELS, "seeds", f), text: read(join(MODELS, "seeds", f)) })),
  { file: NN, text: read(NN) },
  { file: GENERATED, text: program(300).text },
];

const at = (s: Span) => `${s.file.slice(ROOT.length + 1)}:${s.line}:${s.col}-${s.endLine}:${s.endCol}[${s.start},${s.end}]`;

/** Where two results differ (empty when they do not). */
function differences(want: CheckResult, got: CheckResult): string[] {
  const out: string[] = [];
  const ds = (r: CheckResult) => r.diagnostics.map((d) => JSON.stringify({ ...d, span: at(d.span), related: d.related?.map((x) => [at(x.span), x.message]) }));
  if (ds(want).join("\n") !== ds(got).join("\n")) out.push(`diagnostics:\n  from scratch:\n    ${ds(want).join("\n    ")}\n  incremental:\n    ${ds(got).join("\n    ")}`);
  const same = <K, V>(what: string, a: Map<K, V>, b: Map<K, V>, show: (v: V) => string, where: (k: K) => string) => {
    if (a.size !== b.size) out.push(`${what}: ${a.size} entries from scratch, ${b.size} incremental`);
    for (const [k, v] of a) {
      const w = b.get(k);
      if (w === undefined || show(w) !== show(v)) return void out.push(`${what} of ${where(k)}: ${show(v)} from scratch, ${w === undefined ? "none" : show(w)} incremental`);
    }
    for (const k of b.keys()) if (!a.has(k)) return void out.push(`${what} of ${where(k)} only incremental`);
  };
  const node = (k: object) => ("span" in k ? `${"kind" in k ? k.kind : ""} ${at(k.span as Span)}` : JSON.stringify(k).slice(0, 80));
  same("type", want.types, got.types, printType, node);
  same("definition", want.definitions, got.definitions, at, node);
  same("call", want.calls, got.calls, (c) => (c.kind === "builtin" ? c.name : c.kind === "fn" ? c.fn.id : c.block.id), node);
  same("fn", want.fns, got.fns, (f) => {
    const sig = f.sig && `${f.sig.params.map((p) => `${p.name}: ${printType(p.type)}`).join(", ")} -> ${f.sig.ret ? printType(f.sig.ret) : "?"}`;
    return `${f.id} ${f.state} ${f.bodyErrors} (${sig}) ${f.inferredRet ? printType(f.inferredRet) : ""}`;
  }, node);
  same("block", want.blocks, got.blocks, (b) => `${b.id} ${b.state} ${[...b.params, ...b.subs].map(([n, p]) => `${n}: ${printType(p.type)}`).join(", ")} ${[...b.fns.keys()]}`, node);
  same("train", want.trains, got.trains, (t) => `${t.name} ${t.loss ? printType(t.loss) : ""} ${[...t.instances].map(([n, x]) => `${n}: ${printType(x)}`).join(", ")}`, node);
  same("dim", want.dims, got.dims, (d) => `${d.name} ${d.default ? printDim(d.default) : ""} ${d.value} ${at(d.span)}`, (k) => k);
  return out;
}

/** One edit of a program's text: what a person might type, move or rename. */
type Edit =
  | { kind: "type"; at: number; del: number; ins: string }
  | { kind: "move" | "copy"; from: number; to: number }
  | { kind: "rename"; nth: number; to: string }
  | { kind: "item"; at: number; text: string };

const TOKENS = ["a", "x", " ", "\n", "{", "}", "(", ")", "[", "]", ",", "=", "+", "*", "1", "D", "T", "relu(", "2.0 * ", "let ", "// c\n", "\n\n"];
const NAMES = ["x", "h", "D", "T", "B", "F", "Linear", "LayerNorm", "gelu", "mean", "relu", "y2", "scale"];
const ITEMS = [
  "fn relu(x: f32[D]) -> f32[D] = x\n",
  "block Linear(I, O) {\n  param w: f32[I, O] = zeros\n  fn (x: f32[.., I]) -> f32[.., O] = x @ w\n}\n",
  "fn helper(x: f32[B, T, D]) -> f32[B, T, D] = gelu(x)\n",
  "block Tiny(D) {\n  param g: f32[D] = ones\n  fn (x: f32[.., D]) -> f32[.., D] = x * g\n}\n",
  "dim Q = 3\n",
];

const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("type" as const), at: fc.nat(), del: fc.nat({ max: 3 }), ins: fc.constantFrom(...TOKENS) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom("move" as const, "copy" as const), from: fc.nat(), to: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("rename" as const), nth: fc.nat(), to: fc.constantFrom(...NAMES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("item" as const), at: fc.nat(), text: fc.constantFrom(...ITEMS) }) },
);

function apply(text: string, e: Edit): string {
  const lines = text.split("\n");
  switch (e.kind) {
    case "type": {
      const k = e.at % (text.length + 1);
      return text.slice(0, k) + e.ins + text.slice(k + e.del);
    }
    case "move":
    case "copy": {
      const line = lines[e.from % lines.length];
      if (e.kind === "move") lines.splice(e.from % lines.length, 1);
      lines.splice(e.to % (lines.length + 1), 0, line);
      return lines.join("\n");
    }
    case "rename": {
      const names = [...text.matchAll(/\b[A-Za-z_]\w*\b/g)];
      if (!names.length) return text;
      const m = names[e.nth % names.length];
      return text.slice(0, m.index) + e.to + text.slice(m.index + m[0].length);
    }
    case "item": {
      lines.splice(e.at % (lines.length + 1), 0, e.text);
      return lines.join("\n");
    }
  }
}

/** Check each version incrementally and from scratch; count the checks that re-checked only part. */
function follow(entry: string, start: Map<string, string>, steps: { file: string; edit: Edit }[], seen: { rounds: number; partial: number }): void {
  const files = new Map(start);
  const host = { modelsDir: MODELS, readFile: (p: string) => files.get(p) ?? (p.endsWith(".weft") ? safeRead(p) : undefined) };
  const loader = new ModuleLoader();
  const inc = new IncrementalChecker();
  inc.check(loader.load(entry, host));
  for (const step of steps) {
    files.set(step.file, apply(files.get(step.file) ?? "", step.edit));
    const mods = loader.load(entry, host);
    const got = inc.check(mods);
    seen.rounds++;
    if (!inc.stats.full && inc.stats.checked < inc.stats.items) seen.partial++;
    const diff = differences(check(mods), got);
    if (diff.length) throw new Error(`${entry} after ${JSON.stringify(step)}:\n${diff.join("\n")}\n--- text ---\n${files.get(step.file)}`);
  }
}

function safeRead(p: string): string | undefined {
  try {
    return read(p);
  } catch {
    return undefined;
  }
}

describe("incremental checking", () => {
  it("re-checks only the edited item and the items that depend on it", () => {
    // bench/check.ts's program, with an unused `let` (a warning) in each of its 71 `mix` fns
    const text = program(2000).text.replaceAll("let out = if", "let unused = 1.0\n  let out = if");
    const files = new Map([[GENERATED, text]]);
    const host = { modelsDir: MODELS, readFile: (p: string) => files.get(p) ?? safeRead(p) };
    const loader = new ModuleLoader();
    const inc = new IncrementalChecker();
    expect(inc.check(loader.load(GENERATED, host)).diagnostics.filter((d) => d.code === "W0401")).toHaveLength(71);
    expect(inc.stats).toEqual({ items: 219, checked: 219, full: true });

    // a constant in Block35's forward: Block35, mix35 (its parameter is a Block35) and loss35 (which calls mix35)
    const line = "    let v = down(u) * scale";
    const k = text.indexOf(line, text.indexOf("block Block35("));
    files.set(GENERATED, text.slice(0, k) + line + " * 0.5" + text.slice(k + line.length));
    const mods = loader.load(GENERATED, host);
    const got = inc.check(mods);
    expect(inc.stats).toEqual({ items: 219, checked: 3, full: false });
    expect(differences(check(mods), got)).toEqual([]);

    // a line at the top moves every item, and mix0 changes: mix0 and loss0 are checked again,
    // the other 70 warnings move down a line with their fns
    const moved = "// a comment\n" + files.get(GENERATED)!.replace("h = h + rate * y", "h = h + rate * y * 2.0");
    files.set(GENERATED, moved);
    const mods2 = loader.load(GENERATED, host);
    const again = inc.check(mods2);
    expect(inc.stats).toEqual({ items: 219, checked: 2, full: false });
    const lines = moved.split("\n").flatMap((l, i) => (l.includes("let unused") ? [i + 1] : []));
    expect(again.diagnostics.filter((d) => d.code === "W0401").map((d) => d.span.line)).toEqual(lines);
    expect(differences(check(mods2), again)).toEqual([]);
  });

  it("reports recursion an edit introduces, and forgets it when the edit is undone", () => {
    const files = new Map([["main.weft", "dim N\nfn a(x: f32[N]) -> f32[N] = b(x)\nfn b(x: f32[N]) -> f32[N] = c(x)\nfn c(x: f32[N]) -> f32[N] = x\n"]]);
    const host = { modelsDir: MODELS, readFile: (p: string) => files.get(p) };
    const loader = new ModuleLoader();
    const inc = new IncrementalChecker();
    expect(inc.check(loader.load("main.weft", host)).diagnostics).toEqual([]);
    for (const body of ["a(x)", "x"]) {
      files.set("main.weft", files.get("main.weft")!.replace(/(fn c\(x: f32\[N\]\) -> f32\[N\] = ).*/, `$1${body}`));
      const mods = loader.load("main.weft", host);
      const got = inc.check(mods);
      expect(got.diagnostics.map((d) => d.message)).toEqual(body === "x" ? [] : ["recursion is not allowed: a → b → c → a"]);
      expect(differences(check(mods), got)).toEqual([]);
    }
  });

  // one test per program, so that no single test holds the worker for long
  it.each(programs.map((p) => [p.file.slice(ROOT.length + 1), p] as const))("equals a check from scratch along random edits of %s", (_, p) => {
    const seen = { rounds: 0, partial: 0 };
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 8 }), (edits) => {
        follow(p.file, new Map([[p.file, p.text]]), edits.map((e) => ({ file: p.file, edit: e })), seen);
      }),
      { numRuns: p.file === GENERATED ? 8 : 20, seed: 11 },
    );
    // most edits leave most items alone
    expect(seen.partial).toBeGreaterThan(seen.rounds / 4);
  });

  it("equals a check from scratch when an imported module is edited", () => {
    const seen = { rounds: 0, partial: 0 };
    const seeds = programs.filter((p) => p.text.includes('import "std/nn"'));
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.boolean(), edit), { minLength: 1, maxLength: 6 }), (p, edits) => {
        const start = new Map([[p.file, p.text], [NN, read(NN)]]);
        follow(p.file, start, edits.map(([inNn, e]) => ({ file: inNn ? NN : p.file, edit: e })), seen);
      }),
      { numRuns: 30, seed: 5 },
    );
    expect(seen.partial).toBeGreaterThan(seen.rounds / 4);
  });
});
