// The normative examples of LANGUAGE.md, verbatim, each with the minimal blocks and fns it
// needs (the "fixture"): every one must check with no errors and no warnings.
import { describe, expect, it } from "vitest";
import { checkFiles, checkSource } from "./harness.ts";

/** Minimal user blocks and fns the examples refer to. */
const fixture = `
dim B, T = 64, D = 128, H = 4, V, F, N, G, P
block Linear(I, O) {
  param w: f32[I, O] = glorot
  param b: f32[O] = zeros
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b
}
block LayerNorm(D) {
  param g: f32[D] = ones
  param b: f32[D] = zeros
  fn (x: f32[.., D]) -> f32[.., D] = layer_norm(x, D) * g + b
}
block Ffn(D, F) {
  up = Linear(D, F)
  down = Linear(F, D)
  fn (x: f32[.., D]) -> f32[.., D] = down(gelu(up(x)))
}
block Lm(V, D) {
  param emb: f32[V, D] = normal(0.02)
  head = Linear(D, V)
  fn (x: i32[.., T]) -> f32[.., T, V] = head(emb[x])
}
block Proxy(V, D) {
  param emb: f32[V, D] = normal(0.02)
  head = Linear(D, V)
  fn (x: i32[.., T]) -> f32[.., T, V] = head(emb[x])
}
/// log-softmax of the logits gathered at the target tokens
fn token_logp(m: Lm, x: i32[B, T]) -> f32[B, T] = take_along(log_softmax(m(x), V), x[:, :, None], V)[:, :, 0]
fn lm_loss(m: Proxy, x: i32[.., T], y: i32[.., T]) -> f32 = cross_entropy(m(x), y)
`;

const layer = `
block Layer(D, F) {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  fn (x: f32[B, T, D]) -> f32[B, T, D] = ff(ln(x))
}
`;

function expectClean(src: string) {
  const r = checkSource(src);
  expect(r.report()).toBe("");
  return r;
}

describe("normative examples of LANGUAGE.md check cleanly", () => {
  it("Items: imports, dims, Linear, gelu_mlp", () => {
    const r = checkFiles({
      "main.weft": `
import "std/nn"                      // resolved against the models/ folder, then relative
import "./layers.weft" as L

dim B, T = 64, D = 128, H = 4, V     // global sizes; defaults are overridable (CLI --dim D=256)

block Linear(I, O) {                 // dims as constructor parameters
  param w: f32[I, O] = glorot
  param b: f32[O] = zeros
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b     // the unnamed fn is the forward
}

fn gelu_mlp(x: f32[.., D], a: Linear, b: Linear) -> f32[.., D] = b(gelu(a(x)))
`,
      "models/std/nn.weft": "block Dropout(D) { fn (x: f32[.., D]) -> f32[.., D] = dropout(x, 0.1) }\n",
      "layers.weft": "block Norm(D) { fn (x: f32[.., D]) -> f32[.., D] = rms_norm(x, D) }\n",
    });
    expect(r.report()).toBe("");
    expect(r.typeOf("a(x)")).toMatch(/^f32\[\.\., /);
    // `..` is carried through both instances
    expect(r.typeOf("b(gelu(a(x)))")).toBe("f32[.., D]");
    expect(r.typeOf("x @ w + b")).toBe("f32[.., O]");
  });

  it("Statements and expressions: fn f", () => {
    const r = expectClean(`dim B, T, D
fn f(x: f32[B, T, D]) -> f32[B, T, D] {
  let y = layer_norm(x, D)           // immutable binding
  var h = y                          // compile-time variable, may be reassigned
  for i in 0..4 { h = h + 0.25 * tanh(h) }     // unrolled at compile time
  return if training { dropout(h, 0.1) } else { h }
}`);
    expect(r.typeOf("layer_norm(x, D)")).toBe("f32[B, T, D]");
    expect(r.typeOf("h + 0.25 * tanh(h)")).toBe("f32[B, T, D]");
    expect(r.typeOf("training")).toBe("flag");
    expect(r.typeOf("if training { dropout(h, 0.1) } else { h }")).toBe("f32[B, T, D]");
  });

  it("Blocks, instances, stacking: Layer and Stack", () => {
    const r = expectClean(`${fixture}
block Layer(D, F) {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  fn (x: f32[B, T, D]) -> f32[B, T, D] = ff(ln(x))
}
block Stack(L, D, F) {
  layers = repeat(L) Layer(D, F)     // L instances; params stacked with a leading L dim
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    var h = x
    for i in 0..L { h = h + layers[i](h) }
    return h
  }
}`);
    expect(r.typeOf("repeat(L) Layer(D, F)")).toBe("repeat(L) Layer(D, F)");
    expect(r.typeOf("layers[i]")).toBe("Layer(D, F)");
    expect(r.typeOf("layers[i](h)")).toBe("f32[B, T, D]");
  });

  it("Training jobs: copy_task and dpo", () => {
    expectClean(`${fixture}
block Seq2Seq(V, D) {
  encoder = Lm(V, D)
  decoder = Lm(V, D)
  fn (x: i32[.., T]) -> f32[.., T, V] = decoder(x)
}
fn seq_loss(m: Seq2Seq, x: i32[.., T], y: i32[.., T]) -> f32 = cross_entropy(m(x), y)
fn d2po(pi: Lm, ref: Lm, c: i32[B, T], r: i32[B, T], cm: f32[B, T], rm: f32[B, T],
        beta = 0.1, gamma = 0.98) -> f32 {
  let w = gamma ** positions(T)
  let rc = sum(w * cm * (token_logp(pi, c) - stop(token_logp(ref, c))), T)
  let rr = sum(w * rm * (token_logp(pi, r) - stop(token_logp(ref, r))), T)
  return mean(-log_sigmoid(beta * (rc - rr)), B)
}
train copy_task {
  model     = Seq2Seq(V, D)
  loss      = seq_loss(model, batch.src, batch.tgt)
  data      = jsonl("train.jsonl")     // relative to this file; fields become batch.<name>
  batch     = 32
  steps     = 500
  optimizer = adamw(lr = 3e-4, weight_decay = 0.01)
  schedule  = cosine(warmup = 50)
  trainable = [model.decoder]                      // default: every non-frozen param
  eval      = { every = 100, data = jsonl("valid.jsonl") }
}
train dpo {
  policy    = Lm(V, D) from "sft.safetensors"        // an instance initialised from a checkpoint
  ref       = frozen Lm(V, D) from "sft.safetensors" // any other instance a loss needs
  loss      = d2po(policy, ref, batch.c, batch.r, batch.cm, batch.rm)
  data      = jsonl("pairs.jsonl")
  optimizer = adamw(lr = 5e-6)
}`);
  });

  it("ODE step with a learned gate (RK2): Rk2Gated", () => {
    const r = expectClean(`${fixture}${layer}
block Rk2Gated(D, F) {
  f = Layer(D, F)
  gate = Linear(2*D, 1)
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    let k1 = f(x)
    let k2 = f(x + k1)
    let g = sigmoid(gate(concat([k1, k2], D)))
    return x + g * k1 + (1 - g) * k2
  }
}`);
    expect(r.typeOf("concat([k1, k2], D)")).toBe("f32[B, T, 2*D]");
    expect(r.typeOf("gate(concat([k1, k2], D))")).toBe("f32[B, T, 1]");
    expect(r.typeOf("g * k1")).toBe("f32[B, T, D]");
  });

  it("Predictor–corrector across layers: forward_pc", () => {
    const r = expectClean(`${fixture}${layer}
fn forward_pc(x: f32[B, T, D], layers: repeat Layer) -> f32[B, T, D] {
  var h = x
  var prev = zeros_like(x)                  // F(h_{i-1})
  for i in 0..len(layers) {
    let k = layers[i](h)
    let pred = h + 1.5 * k - 0.5 * prev     // Adams–Bashforth 2 predictor
    h = h + 0.5 * (layers[i](pred) + k)     // trapezoid corrector
    prev = k
  }
  return h
}`);
    expect(r.typeOf("len(layers)")).toBe("int = len(layers)");
    expect(r.typeOf("pred")).toBe("f32[B, T, D]");
    expect(r.typeOf("h + 0.5 * (layers[i](pred) + k)")).toBe("f32[B, T, D]");
    expect(r.typeOf("layers[i]")).toBe("Layer(D, layers.F)");
  });

  it("Gating: fuse and moe", () => {
    const r = expectClean(`${fixture}
fn fuse(a: f32[B, T, D], b: f32[B, T, D], g: Linear) -> f32[B, T, D] {
  let z = sigmoid(g(concat([a, b], D)))
  return z * a + (1 - z) * b
}
fn moe(x: f32[N, D], router: Linear, experts: repeat Ffn) -> f32[N, D] {
  let gates = keep_topk(softmax(router(x), -1), 2, -1)  // f32[N, E]: top-2 probs, zeros elsewhere
  var y = zeros_like(x)
  for e in 0..len(experts) { y = y + gates[:, e, None] * experts[e](x) }
  return y
}`);
    // LANGUAGE.md's f32[N, E]: E, the number of experts, is the router's output width here
    expect(r.typeOf("gates")).toBe("f32[N, router.O]");
    expect(r.typeOf("z * a + (1 - z) * b")).toBe("f32[B, T, D]");
    expect(r.typeOf("gates[:, e, None]")).toBe("f32[N, 1]");
    expect(r.typeOf("experts[e](x)")).toBe("f32[N, D]");
  });

  it("Temporal decay (D2PO): d2po", () => {
    const r = expectClean(`${fixture}
fn d2po(pi: Lm, ref: Lm, c: i32[B, T], r: i32[B, T], cm: f32[B, T], rm: f32[B, T],
        beta = 0.1, gamma = 0.98) -> f32 {
  let w = gamma ** positions(T)                           // f32[T]
  let rc = sum(w * cm * (token_logp(pi, c) - stop(token_logp(ref, c))), T)
  let rr = sum(w * rm * (token_logp(pi, r) - stop(token_logp(ref, r))), T)
  return mean(-log_sigmoid(beta * (rc - rr)), B)
}`);
    expect(r.typeOf("w", -1)).toBe("f32[T]");
    expect(r.typeOf("gamma ** positions(T)")).toBe("f32[T]");
    expect(r.typeOf("token_logp(pi, c)")).toBe("f32[B, T]");
    expect(r.typeOf("rc - rr")).toBe("f32[B]");
    expect(r.typeOf("mean(-log_sigmoid(beta * (rc - rr)), B)")).toBe("f32");
  });

  it("Group-relative advantages (GRPO): grpo", () => {
    const r = expectClean(`dim G, T
fn grpo(logp: f32[G, T], old: f32[G, T], m: f32[G, T], reward: f32[G],
        eps = 0.2, sign = 0) -> f32 {
  let a = (reward - mean(reward, G)) / (std(reward, G, unbiased=true) + 1e-6)  // f32[G]
  let keep = if sign > 0 { cast(a > 0) } else if sign < 0 { cast(a < 0) } else { ones_like(a) }
  let ratio = exp(logp - stop(old))
  let obj = min(ratio * a[:, None], clamp(ratio, 1 - eps, 1 + eps) * a[:, None])
  return -sum(obj * m * keep[:, None]) / sum(m)
}`);
    expect(r.typeOf("a")).toBe("f32[G]");
    expect(r.typeOf("ratio")).toBe("f32[G, T]");
    expect(r.typeOf("-sum(obj * m * keep[:, None]) / sum(m)")).toBe("f32");
    expect(r.typeOf("std(reward, G, unbiased=true)")).toBe("f32");
    expect(r.typeOf("keep")).toBe("f32[G]");
    expect(r.typeOf("a > 0")).toBe("bool[G]");
    expect(r.typeOf("obj")).toBe("f32[G, T]");
    expect(r.typeOf("sign > 0")).toBe("flag");
  });

  it("Gradient matching: example_grad, grad_features, grad_match", () => {
    const r = expectClean(`${fixture}
fn example_grad(m: Proxy, x: i32[T], y: i32[T]) -> f32[_] =    // _ = sizeof(m.head)
  flatten(grad(lm_loss(m, x, y), m.head))
fn grad_features(m: Proxy, xs: i32[N, T], ys: i32[N, T]) -> f32[N, sizeof(m.head)] =
  map(example_grad, m, xs, ys, over=N)
// Greedy selection: pick K rows of g whose mean is closest (L2) to the mean of all rows; then swap search.
fn grad_match(g: f32[N, P], K = 16) -> i32[K]            // written in Weft itself (models/)
`);
    expect(r.typeOf("grad(lm_loss(m, x, y), m.head)")).toBe("{ w: f32[m.D, m.V], b: f32[m.V] }");
    // hover on `_` shows what it became: the number of parameters of m.head
    expect(r.typeOf("f32[_]")).toBe("f32[m.D*m.V+m.V]");
    expect(r.typeOf("map(example_grad, m, xs, ys, over=N)")).toBe("f32[N, m.D*m.V+m.V]");
    // a fn declared without a body (written in Weft in models/): its signature is its type
    expect(r.typeOf("i32[K]")).toBe("i32[K]");
  });
});
