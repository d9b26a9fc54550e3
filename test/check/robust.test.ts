// The checker never throws on user input, never hangs and never reports an internal error
// (W0999), whatever the input: random token streams, and mutations of valid programs
// (deleted, duplicated and inserted pieces) that exercise the paths where the parser
// recovered and the types are half known. A failure names the input.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { languageExamples } from "../grammar/fixtures.ts";
import { checkSource } from "./harness.ts";

const BUDGET_MS = 2000;

/** Parses and checks `src`; throws, naming the input, on a crash, an internal error or a hang. */
function survives(src: string): void {
  let problem: string | undefined;
  try {
    const t0 = performance.now();
    const r = checkSource(src);
    const ms = performance.now() - t0;
    const internal = r.diagnostics.filter((d) => d.code === "W0999" || d.code === "W0004");
    if (internal.length > 0) problem = internal[0].message;
    else if (ms > BUDGET_MS) problem = `took ${Math.round(ms)} ms`;
  } catch (e) {
    problem = `threw ${e instanceof Error ? e.stack ?? e.message : String(e)}`;
  }
  if (problem) throw new Error(`${problem}\n--- input ---\n${src}`);
}

const program = `dim B, T = 64, D = 128, H = 4, V, F, G, N
block Linear(I, O) {
  param w: f32[I, O] = glorot
  param b: f32[O] = zeros
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b
}
block Layer(D, F) {
  up = Linear(D, F)
  down = Linear(F, D)
  fn (x: f32[B, T, D]) -> f32[B, T, D] = x + down(gelu(up(layer_norm(x, D))))
}
block Stack(L, D, F) {
  layers = repeat(L) Layer(D, F)
  gate = Linear(2*D, 1)
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    var h = x
    for i in 0..L { h = h + layers[i](h) }
    let g = sigmoid(gate(concat([h, x], D)))
    return g * h + (1 - g) * x
  }
}
fn grpo(logp: f32[G, T], m: f32[G, T], reward: f32[G], eps = 0.2, sign = 0) -> f32 {
  let a = (reward - mean(reward, G)) / (std(reward, G, unbiased=true) + 1e-6)
  let keep = if sign > 0 { cast(a > 0) } else { ones_like(a) }
  let ratio = exp(logp - stop(logp))
  let obj = min(ratio * a[:, None], clamp(ratio, 1 - eps, 1 + eps) * a[:, None])
  return -sum(obj * m * keep[:, None]) / sum(m)
}
fn feats(m: Linear, xs: f32[N, D]) -> f32[N, sizeof(m)] = map(g1, m, xs, over=N)
fn g1(m: Linear, x: f32[D]) -> f32[_] = flatten(grad(sum(m(x)), m))
train t {
  model = Stack(4, D, F)
  loss = mean(model(batch.x) * 2)
  optimizer = adamw(lr = 3e-4)
  trainable = [model.layers]
}
`;

describe("robustness", () => {
  it("the base program checks cleanly", () => {
    expect(checkSource(program).report()).toBe("");
  });

  it("no mutation of it makes the checker throw or report an internal error", () => {
    const mutation = fc.oneof(
      fc.tuple(fc.constant("delete"), fc.nat(program.length), fc.integer({ min: 1, max: 30 })),
      fc.tuple(fc.constant("copy"), fc.nat(program.length), fc.integer({ min: 1, max: 60 })),
      fc.tuple(fc.constant("insert"), fc.nat(program.length), fc.integer({ min: 0, max: 20 })),
    );
    const tokens = ["(", ")", "[", "]", "{", "}", ",", "..", "_", "@", "None", "x", "D", "2*D", "repeat", "frozen", "fn", "let", "=", "-", "1e-3", ":", "batch.", "grad(", "if", "[.., 0]", "[:, None]"];
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        let src = program;
        for (const [kind, at, n] of ms) {
          const i = at % (src.length + 1);
          if (kind === "delete") src = src.slice(0, i) + src.slice(i + n);
          else if (kind === "copy") src = src.slice(0, i) + src.slice(Math.max(0, i - n), i) + src.slice(i);
          else src = src.slice(0, i) + ` ${tokens[n % tokens.length]} ` + src.slice(i);
        }
        survives(src);
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it("mutated LANGUAGE.md examples, with the base program's blocks, check without failing", () => {
    const examples = Object.values(languageExamples);
    const edit = fc.tuple(fc.constantFrom("delete", "copy", "swap"), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.integer({ min: 1, max: 24 }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: examples.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 5 }), (k, edits) => {
        let src = examples[k];
        for (const [kind, at, n] of edits) {
          const i = Math.floor(at * (src.length + 1));
          if (kind === "delete") src = src.slice(0, i) + src.slice(i + n);
          else if (kind === "copy") src = src.slice(0, i) + src.slice(Math.max(0, i - n), i) + src.slice(i);
          else src = src.slice(0, i) + src.slice(i + n, i + 2 * n) + src.slice(i, i + n) + src.slice(i + 2 * n);
        }
        survives(`${program}\n${src}`);
      }),
      { numRuns: 200, seed: 7 },
    );
  });

  it("random token streams check without failing", () => {
    // tokens and fragments that reach past the parser into the checker
    const vocabulary = [
      "dim", "block", "fn", "param", "let", "var", "return", "for", "in", "if", "else", "train", "repeat", "frozen", "from", "import",
      "B", "T", "D", "x", "y", "m", "Linear", "Layer", "f32", "i32", "bool", "_", "..", "None", "training", "0", "1", "2", "0.5", '"a.weft"',
      "(", ")", "[", "]", "{", "}", ",", ":", "=", "->", ".", "+", "-", "*", "/", "@", "**", "<", "==", "&&", "!",
      "sum(x, D)", "x[.., 0]", "x[:, None]", "f32[.., D]", "f32[B, T, D]", "Linear(D, D)", "grad(", "map(", "concat([x, x], D)", "layers[i]", "batch.x",
      "fn f(x: f32[.., D]) =", "fn g(a: f32[.., D], b: f32[.., D]) = a + b", "block M(D) {", "}\n",
    ];
    const stream = fc
      .array(fc.tuple(fc.constantFrom(...vocabulary), fc.constantFrom(" ", "\n", "")), { maxLength: 60 })
      .map((parts) => parts.map(([t, sep]) => t + sep).join(""));
    fc.assert(
      fc.property(stream, (src) => survives(`dim B, T, D\n${program.slice(program.indexOf("block Linear"), program.indexOf("block Layer"))}${src}`)),
      { numRuns: 500, seed: 3 },
    );
  });
});
