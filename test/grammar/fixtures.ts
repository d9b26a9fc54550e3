// The code blocks of LANGUAGE.md (/work/shared/LANGUAGE.md), copied verbatim except where noted.
// Blocks 4-9 are the normative examples; all of them must parse with no diagnostics.

export const languageExamples: Record<string, string> = {
  items: `import "std/nn"                      // resolved against the models/ folder, then relative
import "./layers.weft" as L

dim B, T = 64, D = 128, H = 4, V     // global sizes; defaults are overridable (CLI --dim D=256)

block Linear(I, O) {                 // dims as constructor parameters
  param w: f32[I, O] = glorot
  param b: f32[O] = zeros
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b     // the unnamed fn is the forward
}

fn gelu_mlp(x: f32[.., D], a: Linear, b: Linear) -> f32[.., D] = b(gelu(a(x)))

train demo { steps = 1 }             // LANGUAGE.md writes \`{ ... }\` here: an elision, not syntax
`,
  statements: `fn f(x: f32[B, T, D]) -> f32[B, T, D] {
  let y = layer_norm(x, D)           // immutable binding
  var h = y                          // compile-time variable, may be reassigned
  for i in 0..4 { h = h + 0.25 * tanh(h) }     // unrolled at compile time
  return if training { dropout(h, 0.1) } else { h }
}
`,
  blocks: `block Layer(D, F) {
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
}
`,
  training: `train copy_task {
  model     = Seq2Seq(V, D)
  loss      = lm_loss(model, batch.src, batch.tgt)
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
}
`,
  rk2_gated: `block Rk2Gated(D, F) {
  f = Layer(D, F)
  gate = Linear(2*D, 1)
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    let k1 = f(x)
    let k2 = f(x + k1)
    let g = sigmoid(gate(concat([k1, k2], D)))
    return x + g * k1 + (1 - g) * k2
  }
}
`,
  predictor_corrector: `fn forward_pc(x: f32[B, T, D], layers: repeat Layer) -> f32[B, T, D] {
  var h = x
  var prev = zeros_like(x)                  // F(h_{i-1})
  for i in 0..len(layers) {
    let k = layers[i](h)
    let pred = h + 1.5 * k - 0.5 * prev     // Adams–Bashforth 2 predictor
    h = h + 0.5 * (layers[i](pred) + k)     // trapezoid corrector
    prev = k
  }
  return h
}
`,
  gating: `fn fuse(a: f32[B, T, D], b: f32[B, T, D], g: Linear) -> f32[B, T, D] {
  let z = sigmoid(g(concat([a, b], D)))
  return z * a + (1 - z) * b
}
fn moe(x: f32[N, D], router: Linear, experts: repeat Ffn) -> f32[N, D] {
  let gates = keep_topk(softmax(router(x), -1), 2, -1)  // f32[N, E]: top-2 probs, zeros elsewhere
  var y = zeros_like(x)
  for e in 0..len(experts) { y = y + gates[:, e, None] * experts[e](x) }
  return y
}
`,
  d2po: `fn d2po(pi: Lm, ref: Lm, c: i32[B, T], r: i32[B, T], cm: f32[B, T], rm: f32[B, T],
        beta = 0.1, gamma = 0.98) -> f32 {
  let w = gamma ** positions(T)                           // f32[T]
  let rc = sum(w * cm * (token_logp(pi, c) - stop(token_logp(ref, c))), T)
  let rr = sum(w * rm * (token_logp(pi, r) - stop(token_logp(ref, r))), T)
  return mean(-log_sigmoid(beta * (rc - rr)), B)
}
`,
  grpo: `fn grpo(logp: f32[G, T], old: f32[G, T], m: f32[G, T], reward: f32[G],
        eps = 0.2, sign = 0) -> f32 {
  let a = (reward - mean(reward, G)) / (std(reward, G, unbiased=true) + 1e-6)  // f32[G]
  let keep = if sign > 0 { cast(a > 0) } else if sign < 0 { cast(a < 0) } else { ones_like(a) }
  let ratio = exp(logp - stop(old))
  let obj = min(ratio * a[:, None], clamp(ratio, 1 - eps, 1 + eps) * a[:, None])
  return -sum(obj * m * keep[:, None]) / sum(m)
}
`,
  gradient_matching: `fn example_grad(m: Proxy, x: i32[T], y: i32[T]) -> f32[_] =    // _ = sizeof(m.head)
  flatten(grad(lm_loss(m, x, y), m.head))
fn grad_features(m: Proxy, xs: i32[N, T], ys: i32[N, T]) -> f32[N, sizeof(m.head)] =
  map(example_grad, m, xs, ys, over=N)
// Greedy selection: pick K rows of g whose mean is closest (L2) to the mean of all rows; then swap search.
fn grad_match(g: f32[N, P], K = 16) -> i32[K]            // written in Weft itself (models/)
`,
};
