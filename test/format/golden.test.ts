// Golden tests for `weft fmt`: tricky inputs and their formatted text, reviewed by hand.
import { describe, expect, it } from "vitest";
import { format } from "../../compiler/format.ts";
import { parse } from "../../grammar/index.ts";

function formatted(source: string): string {
  const r = format(source, "golden.weft");
  expect(r.diagnostics.map((d) => d.message)).toEqual([]);
  expect(format(r.text, "golden.weft").text).toBe(r.text);
  return r.text;
}

const cases: { name: string; input: string; output: string }[] = [
  {
    name: "long lines: lists fill and continue 4 columns in (a fn's parameters under the first), chains break after an operator, a fn body moves to the next line",
    input: `fn d2po_logp(pc: f32[B, T], pr: f32[B, T], rc_ref: f32[B, T], rr_ref: f32[B, T], cm: f32[B, T], rm: f32[B, T],
             beta = 0.1, gamma = 0.98) -> f32 {
  let margin = (decayed(pc, cm, gamma) - decayed(rc_ref, cm, gamma)) - (decayed(pr, rm, gamma) - decayed(rr_ref, rm, gamma))
  return sum(-half_log_2pi - 0.5 * logvar[:, None, :] - d * d / (2 * exp(logvar[:, None, :]) + 1e-4), Z)
}
fn lpo_latent(pm: f32[B, Z], plv: f32[B, Z], wm: f32[B, Z]) -> f32 = lpo_pairs(log_pdf(wm, wlv, z), log_pdf(lm, llv, z), log_pdf(pm, plv, z), log_pdf(zeros_like(pm), zeros_like(pm), z))
fn short(x: f32[B, D]) -> f32[B] =
  sum(x, D)
`,
    output: `fn d2po_logp(pc: f32[B, T], pr: f32[B, T], rc_ref: f32[B, T], rr_ref: f32[B, T], cm: f32[B, T],
             rm: f32[B, T], beta = 0.1, gamma = 0.98) -> f32 {
  let margin = (decayed(pc, cm, gamma) - decayed(rc_ref, cm, gamma)) -
      (decayed(pr, rm, gamma) - decayed(rr_ref, rm, gamma))
  return sum(-half_log_2pi - 0.5 * logvar[:, None, :] -
          d * d / (2 * exp(logvar[:, None, :]) + 1e-4), Z)
}

fn lpo_latent(pm: f32[B, Z], plv: f32[B, Z], wm: f32[B, Z]) -> f32 =
  lpo_pairs(log_pdf(wm, wlv, z), log_pdf(lm, llv, z), log_pdf(pm, plv, z),
      log_pdf(zeros_like(pm), zeros_like(pm), z))

fn short(x: f32[B, D]) -> f32[B] = sum(x, D)
`,
  },
  {
    name: "nested ifs: inline while one fits, every branch broken otherwise",
    input: `fn f(x: f32[B], sign = 0) -> f32[B] {
  let keep = if sign > 0 { cast(x > 0) } else if sign < 0 { cast(x < 0) } else { ones_like(x) }
  let deep = if training { if sign > 0 { x } else { -x } } else { x }
  let long = if sign > 0 { some_long_function_name(x, 1) } else if sign < 0 { another_long_function(x, 2) } else { x }
  let kept = if sign > 0 {
    x
  } else { -x }
  for i in 0..4 { x = x + 1 }
  return if training { dropout(x, 0.1) } else { x }
}
`,
    output: `fn f(x: f32[B], sign = 0) -> f32[B] {
  let keep = if sign > 0 { cast(x > 0) } else if sign < 0 { cast(x < 0) } else { ones_like(x) }
  let deep = if training { if sign > 0 { x } else { -x } } else { x }
  let long = if sign > 0 {
    some_long_function_name(x, 1)
  } else if sign < 0 {
    another_long_function(x, 2)
  } else {
    x
  }
  let kept = if sign > 0 {
    x
  } else {
    -x
  }
  for i in 0..4 { x = x + 1 }
  return if training { dropout(x, 0.1) } else { x }
}
`,
  },
  {
    name: "comments between train fields, separators, blank lines and records",
    input: `train job {
  model = Mlp(D, H, C)   // the model
  // what it minimises
  loss = cross_entropy(model(batch.x), batch.y), data = jsonl("train.jsonl") ; batch = 64


  /// steps: a doc-style comment
  steps = 400 // trailing
  eval = { every = 100, data = jsonl("valid.jsonl") }
  eval2 = { every = 100,
    data = jsonl("valid.jsonl") }
  optimizer = adamw(lr = 3e-4, // learning rate
    weight_decay = 0.01)
  // the end of the job
}
`,
    output: `train job {
  model = Mlp(D, H, C) // the model
  // what it minimises
  loss = cross_entropy(model(batch.x), batch.y)
  data = jsonl("train.jsonl")
  batch = 64

  /// steps: a doc-style comment
  steps = 400 // trailing
  eval = { every = 100, data = jsonl("valid.jsonl") }
  eval2 = { every = 100, data = jsonl("valid.jsonl") }
  optimizer = adamw(lr = 3e-4, // learning rate
      weight_decay = 0.01)
  // the end of the job
}
`,
  },
  {
    name: "comments: doc comments, end-of-line comments aligned, own-line comments, comments in empty places",
    input: `/// The file's doc.

// A plain comment, then an item.
import "std/nn"
dim B, D   // sizes

block Mlp(D) {   // a block
  hidden = Linear(D, D)      // one layer
  out = Linear(D, D) // another

  /// the forward
  fn (x: f32[B, D]) -> f32[B, D] = out(hidden(x))
  // after the last member
}
fn f(x: f32[B, D]) -> f32[B] {
  let y = x /* inline */ * 2
  let z = y +   // an operator, then a comment
    1
  return sum(z,
    // own-line before an argument
    D)
}
fn g(x: f32[B, D]) -> f32[B, D] {
}
// the end
`,
    output: `/// The file's doc.

// A plain comment, then an item.
import "std/nn"
dim B, D // sizes

block Mlp(D) {          // a block
  hidden = Linear(D, D) // one layer
  out = Linear(D, D)    // another

  /// the forward
  fn (x: f32[B, D]) -> f32[B, D] = out(hidden(x))
  // after the last member
}

fn f(x: f32[B, D]) -> f32[B] {
  let y = x /* inline */ * 2
  let z = y + // an operator, then a comment
      1
  return sum(z,
      // own-line before an argument
      D)
}

fn g(x: f32[B, D]) -> f32[B, D] {}
// the end
`,
  },
  {
    name: "statements: semicolons, line-start (, [ and -, block expressions, unary minus, slices",
    input: `fn f(x: f32[B, D], w: f32[D, D]) -> f32[B, D] { let a = x@w; var h = a
  h = h*2+1 ; let (p, q) = (h, -h)
  (p)
  [p, q]
  -q
  let b = { let t = p ** 2; t / 2 }
  let c = - -x
  let s = x[::2, 1:, :, None, 0:D-1]
  let l = (a +
    b)
  return p + q
}
`,
    output: `fn f(x: f32[B, D], w: f32[D, D]) -> f32[B, D] {
  let a = x @ w
  var h = a
  h = h * 2 + 1
  let (p, q) = (h, -h)
  (p)
  [p, q]
  -q
  let b = {
    let t = p ** 2
    t / 2
  }
  let c = - -x
  let s = x[::2, 1:, :, None, 0:D-1]
  let l = (a + b)
  return p + q
}
`,
  },
  {
    name: "a broken parameter list puts the defaulted parameters on a line of their own when the rest fits",
    input: `fn d2po(pi: Lm, ref: Lm, c: i32[B, T], r: i32[B, T], cm: f32[B, T], rm: f32[B, T], beta = 0.1, gamma = 0.98) -> f32 = 0
block M(D) {
  fn (y: f32[B, T, D], mem: f32[B, T, D], self_keep: bool[B, T, T], cross_keep: bool[B, T, T]) -> f32[B, T, D] = y
}
fn short(x: f32[B], k = 2) -> f32[B] = x
`,
    output: `fn d2po(pi: Lm, ref: Lm, c: i32[B, T], r: i32[B, T], cm: f32[B, T], rm: f32[B, T],
        beta = 0.1, gamma = 0.98) -> f32 = 0

block M(D) {
  fn (y: f32[B, T, D], mem: f32[B, T, D], self_keep: bool[B, T, T],
      cross_keep: bool[B, T, T]) -> f32[B, T, D] = y
}

fn short(x: f32[B], k = 2) -> f32[B] = x
`,
  },
  {
    name: "dim arithmetic is tight where dims are written: types, slice and loop bounds, a block's constructor arguments",
    input: `block M(D, L) {
  up = Linear(D, 4 * D)
  layers = frozen repeat(L - 1) Layer(2 * D, D / 2) from "m.safetensors"
  fn (x: f32[.., 2 * D], y: f32[S * S]) -> f32[.., T - 1] {
    for i in 0 .. L - 1 { x = x * 2 + 1 }
    let z = y[1 : T + 1, :: 2] * (2 * D)
    return x[.., 0:T - 1, None]
  }
}
`,
    output: `block M(D, L) {
  up = Linear(D, 4*D)
  layers = frozen repeat(L-1) Layer(2*D, D/2) from "m.safetensors"
  fn (x: f32[.., 2*D], y: f32[S*S]) -> f32[.., T-1] {
    for i in 0..L-1 { x = x * 2 + 1 }
    let z = y[1:T+1, ::2] * (2 * D)
    return x[.., 0:T-1, None]
  }
}
`,
  },
];

describe("weft fmt golden tests", () => {
  for (const c of cases) {
    it(c.name, () => {
      expect(formatted(c.input)).toBe(c.output);
    });
  }

  it("a file with a syntax error comes back unchanged, with the parser's diagnostics", () => {
    const broken = `dim B, D
fn f(x: f32[B, D]) -> f32[B] = sum(tanh(x) * , D)
block   Ugly{param w:f32[D]=zeros}
`;
    const r = format(broken, "broken.weft");
    expect(r.text).toBe(broken);
    expect(r.diagnostics).toEqual(parse(broken, "broken.weft").diagnostics);
    expect(r.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col}`)).toEqual(["W0001 2:46"]);
    // so does one with only a lexical error (a character the lexer cannot read)
    const lexical = "dim B ?\n";
    expect(format(lexical, "lexical.weft")).toMatchObject({ text: lexical, diagnostics: [{ code: "W0002" }] });
  });

  it("an empty file stays empty; a file of comments keeps them; a missing final newline is added", () => {
    expect(formatted("")).toBe("");
    expect(formatted("\n\n  \n")).toBe("");
    expect(formatted("// only a comment")).toBe("// only a comment\n");
    expect(formatted("dim B")).toBe("dim B\n");
  });

  it("CRLF line ends and a byte-order mark are read; the output uses LF", () => {
    expect(formatted("\uFEFF// bom\r\ndim B,\tD\r\n\r\n\r\nfn f(x: f32[B, D]) -> f32[B] = sum(x, D)  // s\r\n")).toBe(
      "// bom\ndim B, D\n\nfn f(x: f32[B, D]) -> f32[B] = sum(x, D) // s\n",
    );
  });

  it("consecutive one-line items stay together; a multi-line item gets blank lines around it", () => {
    const source = `fn a(x: f32) -> f32 = x
fn b(x: f32) -> f32 = x
fn c(x: f32) -> f32 { return x }
fn d(x: f32) -> f32 {
  return x
}
fn e(x: f32) -> f32 = x
`;
    expect(formatted(source)).toBe(`fn a(x: f32) -> f32 = x
fn b(x: f32) -> f32 = x
fn c(x: f32) -> f32 { return x }

fn d(x: f32) -> f32 {
  return x
}

fn e(x: f32) -> f32 = x
`);
  });
});
