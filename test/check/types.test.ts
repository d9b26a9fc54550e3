// What the checker infers: the printed type of specific expressions (what hover shows).
import { describe, expect, it } from "vitest";
import { checkSource } from "./harness.ts";

const prelude = `dim B, T, D, H, F, V, L
block Linear(I, O) {
  param w: f32[I, O] = glorot
  param b: f32[O] = zeros
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b
}
`;

/** Check `body` as the body of `fn probe(<params>) -> _`-less fn and return the checker result. */
function probe(params: string, body: string) {
  const r = checkSource(`${prelude}fn probe(${params}) {\n${body}\n}\n`);
  expect(r.errors.map((d) => d.message)).toEqual([]);
  return r;
}

describe("tensor expressions", () => {
  it.each([
    ["x: f32[B, T, D]", "concat([x, x], D)", "f32[B, T, 2*D]"],
    ["x: f32[B, T, D], y: f32[B, T, F]", "concat([x, y], -1)", "f32[B, T, D+F]"],
    ["x: f32[B, T]", "x[:, 0:T-1]", "f32[B, T-1]"],
    ["x: f32[B, T]", "x[:, 1:]", "f32[B, T-1]"],
    ["x: f32[B, T]", "x[:, None]", "f32[B, 1, T]"],
    ["x: f32[B, T]", "x[0]", "f32[T]"],
    ["x: f32[B, T]", "x[:, -1]", "f32[B]"],
    ["x: f32[T]", "x[::2]", "f32[(T+1)/2]"],
    ["e: f32[V, D], t: i32[B, T]", "e[t]", "f32[B, T, D]"],
    ["x: f32[B, T, D], w: f32[D, F]", "x @ w", "f32[B, T, F]"],
    ["q: f32[B, H, T, D], k: f32[B, H, D, T]", "q @ k", "f32[B, H, T, T]"],
    ["v: f32[D], w: f32[D, F]", "v @ w", "f32[F]"],
    ["v: f32[D], u: f32[D]", "v @ u", "f32"],
    ["x: f32[B, T, D]", "reshape(x, [B, T, H, D/H])", "f32[B, T, H, D/H]"],
    ["x: f32[B, T, H, D/H]", "reshape(x, [B, T, D])", "f32[B, T, D]"],
    ["x: f32[B, T, D]", "reshape(x, [B, -1])", "f32[B, D*T]"],
    ["x: f32[B, T, D]", "transpose(x, [T, B, D])", "f32[T, B, D]"],
    ["x: f32[B, T, D]", "flatten(x)", "f32[B*D*T]"],
    ["x: f32[B, T, D]", "sum(x)", "f32"],
    ["x: f32[B, T, D]", "sum(x, T)", "f32[B, D]"],
    ["x: f32[B, T, D]", "mean(x, -1)", "f32[B, T]"],
    ["x: f32[B, T, D]", "max(x, T)", "f32[B, D]"],
    ["x: f32[B, T, D]", "max(x, 0.0)", "f32[B, T, D]"],
    ["x: f32[B, T, D], y: f32[D]", "min(x, y)", "f32[B, T, D]"],
    ["x: f32[B, T, D]", "argmax(x, D)", "i32[B, T]"],
    ["x: f32[B, T, D]", "softmax(x, D)", "f32[B, T, D]"],
    ["x: f32[B, T]", "x > 0", "bool[B, T]"],
    ["x: f32[B, T]", "cast(x > 0)", "f32[B, T]"],
    ["x: f32[B, T]", "cast(x, i32)", "i32[B, T]"],
    ["x: f32[B, T]", "where(x > 0, x, 0.0)", "f32[B, T]"],
    ["x: f32[B, T]", "x ** 2", "f32[B, T]"],
    ["x: f32[B, T], g = 0.9", "g ** iota(T)", "f32[T]"],
    ["x: f32[B, T]", "positions(T)", "f32[T]"],
    ["x: f32[B, T]", "one_hot(cast(x, i32), V)", "f32[B, T, V]"],
    ["x: f32[B, T, V], t: i32[B, T]", "cross_entropy(x, t)", "f32"],
    ["x: f32[B, T, V]", "topk(x, 2, V)", "(f32[B, T, 2], i32[B, T, 2])"],
    ["x: f32[B, T, D]", "stack([x, x], 0)", "f32[2, B, T, D]"],
    ["x: f32[B, T, D]", "zeros([B, 2*D])", "f32[B, 2*D]"],
  ])("(%s) %s : %s", (params, expr, type) => {
    expect(probe(params, expr).typeOf(expr, -1)).toBe(type);
  });
});

describe("compile-time values", () => {
  it.each([
    ["x: f32[B]", "2*D", "int = 2*D"],
    ["x: f32[B]", "D/H", "int = D/H"],
    ["x: f32[B]", "(2*D)/2", "int = D"],
    ["x: f32[B]", "1/2", "number = 0.5"],
    ["x: f32[B], k = 4", "k + 1", "int = k+1"],
    ["x: f32[B]", "training", "flag"],
    ["x: f32[B]", "3 > 2", "flag = true"],
  ])("(%s) %s : %s", (params, expr, type) => {
    expect(probe(params, expr).typeOf(expr, -1)).toBe(type);
  });
});

describe("blocks, instances and calls", () => {
  it("an instance's forward substitutes the constructor's dims, keeping leading dims", () => {
    const r = checkSource(`${prelude}
block Mlp(D) {
  up = Linear(D, 4*D)
  fn (x: f32[B, T, D]) -> f32[B, T, 4*D] = up(x)
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("up")).toBe("Linear(D, 4*D)");
    expect(r.typeOf("up(x)")).toBe("f32[B, T, 4*D]");
  });

  it("a repeat is indexed to an instance; its members stack along the count", () => {
    const r = checkSource(`${prelude}
block Stack(L, D) {
  layers = repeat(L) Linear(D, D)
  fn (x: f32[B, D]) -> f32[L, D, D] {
    var h = x
    for i in 0..len(layers) { h = layers[i](h) }
    return layers.w + h[0, 0]
  }
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("layers", 1)).toBe("repeat(L) Linear(D, D)");
    expect(r.typeOf("layers[i]")).toBe("Linear(D, D)");
    expect(r.typeOf("len(layers)")).toBe("int = L");
    expect(r.typeOf("layers.w")).toBe("f32[L, D, D]");
  });

  it("grad with respect to a param path has the param's type; sizeof counts params", () => {
    const r = checkSource(`${prelude}
block Head(D, V) {
  proj = Linear(D, V)
  fn (x: f32[B, D]) -> f32[B, V] = proj(x)
}
fn g(m: Head, x: f32[B, D]) -> f32[m.D, m.V] = grad(sum(m(x)), m.proj.w)
fn n(m: Head) -> f32[sizeof(m)] = zeros([sizeof(m)])`);
    expect(r.report()).toBe("");
    // calling m with x: f32[B, D] tells the checker that m.D is D
    expect(r.typeOf("grad(sum(m(x)), m.proj.w)")).toBe("f32[D, m.V]");
    expect(r.typeOf("zeros([sizeof(m)])")).toBe("f32[m.D*m.V+m.V]");
  });

  it("a template fn's result follows the instance it is called with", () => {
    const r = checkSource(`${prelude}
fn apply(l: Linear, x: f32[.., D]) = l(x)
block Top {
  wide = Linear(D, 4*D)
  fn (x: f32[B, T, D]) -> f32[B, T, 4*D] = apply(wide, x)
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("apply(wide, x)")).toBe("f32[B, T, 4*D]");
    // checked on its own, the template's result is in terms of its instance's dims
    expect(r.typeOf("l(x)")).toBe("f32[.., l.O]");
  });

  it("a fn's compile-time int parameter is a dim of its result", () => {
    const r = checkSource(`${prelude}
fn first(x: f32[T, D], K = 4) -> f32[K, D] = x[0:K]
fn use(x: f32[T, D]) -> f32[8, D] = first(x, K = 8)`);
    expect(r.report()).toBe("");
    expect(r.typeOf("first(x, K = 8)")).toBe("f32[8, D]");
  });

  it("batch fields are data, accepted where a tensor is expected", () => {
    const r = checkSource(`${prelude}
block Clf(D, V) {
  head = Linear(D, V)
  fn (x: f32[.., D]) -> f32[.., V] = head(x)
}
fn loss(m: Clf, x: f32[B, D], y: i32[B]) -> f32 = cross_entropy(m(x), y)
train clf {
  model = Clf(D, V)
  loss = loss(model, batch.x, batch.y)
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("batch.x")).toBe("data (batch.x)");
    expect(r.typeOf("loss(model, batch.x, batch.y)")).toBe("f32");
  });
});

describe("more forms", () => {
  it("a block's named fn is called through the instance", () => {
    const r = checkSource(`${prelude}
block Attn(D) {
  param wq: f32[D, D] = glorot
  fn score(x: f32[B, D]) -> f32[B, B] = (x @ wq) @ transpose(x, [D, B])
  fn (x: f32[B, D]) -> f32[B, D] = softmax(score(x), -1) @ x
}
block M(D) {
  a = Attn(D)
  fn (x: f32[B, D]) -> f32[B, B] = a.score(x)
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("a.score(x)")).toBe("f32[B, B]");
  });

  it("tuples are returned and destructured; `_` in a let annotation is inferred", () => {
    const r = checkSource(`${prelude}
fn split(x: f32[B, D]) -> (f32[B], f32[B]) = (sum(x, D), mean(x, D))
fn g(x: f32[B, D]) -> f32[B] {
  let (a, b) = split(x)
  let c: f32[_] = a * b
  return c
}`);
    expect(r.report()).toBe("");
    expect(r.typeOf("split(x)")).toBe("(f32[B], f32[B])");
    expect(r.typeOf("c")).toBe("f32[B]");
  });

  it("records what each call calls and where each name is defined", () => {
    const src = `${prelude}
block Top {
  lin = Linear(D, D)
  fn (x: f32[B, D]) -> f32[B, D] = relu(lin(x))
}`;
    const r = checkSource(src);
    expect(r.report()).toBe("");
    const targets = [...r.calls.entries()].map(([c, t]) => `${src.slice(c.span.start, c.span.end)} -> ${t.kind}${"name" in t ? ` ${t.name}` : "block" in t ? ` ${t.block.name}` : ""}`);
    expect(targets).toContain("Linear(D, D) -> construct Linear");
    expect(targets).toContain("lin(x) -> forward Linear");
    expect(targets).toContain("relu(lin(x)) -> builtin relu");
    const use = [...r.definitions.keys()].find((i) => i.name === "lin" && i.span.line === 10)!;
    expect(r.definitions.get(use)!.line).toBe(9);
  });
});

describe("dims and their values", () => {
  it("defaults may be dim expressions; --dim overrides a default", () => {
    const r = checkSource("dim T = 64, D = 2*T, H = 4, K\n", { dims: { T: 32 } });
    expect(r.report()).toBe("");
    expect(r.dims.get("T")!.value).toBe(32);
    expect(r.dims.get("D")!.value).toBe(64);
    expect(r.dims.get("H")!.value).toBe(4);
    expect(r.dims.get("K")!.value).toBeUndefined();
  });

  it("circular defaults are reported", () => {
    const r = checkSource("dim A = B, B = A\n");
    expect(r.errors.map((d) => d.code)).toContain("W0106");
  });
});

describe("leading dims `..`", () => {
  // `..` in an index stands for the axes the other items do not address (NumPy's `...`):
  // on a tensor with unknown leading dims, the items after it address its known trailing dims.
  it.each([
    ["x: f32[.., T, D]", "x[.., 0]", "f32[.., T]"],
    ["x: f32[.., T, D]", "x[.., 1:, None, 0]", "f32[.., T-1, 1]"],
    ["x: f32[.., T, D]", "x[.., 0:T-1, :]", "f32[.., T-1, D]"],
    ["x: f32[.., T, D]", "x[.., None]", "f32[.., T, D, 1]"],
    ["x: f32[.., T, D]", "x[..]", "f32[.., T, D]"],
    ["x: f32[.., T, V], i: i32[B]", "x[.., i]", "f32[.., T, B]"],
    ["x: f32[B, T, D]", "x[.., 0]", "f32[B, T]"],
    ["x: f32[B, T, D]", "x[0, .., 1:]", "f32[T, D-1]"],
    ["x: f32[B, T, D]", "x[.., None, :]", "f32[B, T, 1, D]"],
    ["x: f32[B, T, D]", "x[0, 0, .., 0]", "f32"],
    // reductions over named (or negative) trailing axes keep the leading dims
    ["x: f32[.., T, D]", "sum(x, T)", "f32[.., D]"],
    ["x: f32[.., T, D]", "mean(x[.., 0], -1)", "f32[..]"],
    ["x: f32[.., T, D]", "softmax(x, D)", "f32[.., T, D]"],
    ["x: f32[.., T, D]", "sum(x)", "f32"],
  ])("(%s) %s : %s", (params, expr, type) => {
    expect(probe(params, expr).typeOf(expr, -1)).toBe(type);
  });

  // Leading dims that cannot be aligned where they meet broadcast symbolically; the result
  // is decided where the fn is called (NumPy: [B, T] with [T] is [B, T]; [] with [T] is [T]).
  it("a `..` against known leading dims broadcasts symbolically, decided at the call", () => {
    const r = checkSource(`${prelude}
fn addpe(x: f32[.., D], pe: f32[T, D]) = x + pe
fn a(x: f32[B, T, D], pe: f32[T, D]) -> f32[B, T, D] = addpe(x, pe)
fn b(x: f32[D], pe: f32[T, D]) -> f32[T, D] = addpe(x, pe)
fn c(x: f32[B, 1, D], pe: f32[T, D]) -> f32[B, T, D] = addpe(x, pe)`);
    expect(r.report()).toBe("");
    expect(r.typeOf("x + pe")).toBe("f32[..broadcast(.., [T]), D]");
    expect(r.typeOf("addpe(x, pe)", 0)).toBe("f32[B, T, D]");
    expect(r.typeOf("addpe(x, pe)", 1)).toBe("f32[T, D]");
    expect(r.typeOf("addpe(x, pe)", 2)).toBe("f32[B, T, D]");
  });

  it("the arguments of one `..` share it up to broadcasting", () => {
    const r = checkSource(`${prelude}
fn add(a: f32[.., D], b: f32[.., D]) -> f32[.., D] = a + b
fn same(x: f32[B, T, D]) -> f32[B, T, D] = add(x, x)
fn wider(x: f32[B, T, D], y: f32[T, D]) -> f32[B, T, D] = add(x, y)
fn ones(x: f32[B, 1, D], y: f32[T, D]) -> f32[B, T, D] = add(y, x)
fn rest(x: f32[.., T, D], y: f32[T, D]) = add(x, y)`);
    expect(r.report()).toBe("");
    expect(r.typeOf("add(x, x)")).toBe("f32[B, T, D]");
    expect(r.typeOf("add(x, y)", 0)).toBe("f32[B, T, D]");
    expect(r.typeOf("add(y, x)")).toBe("f32[B, T, D]");
    // the caller's own `..` meets [T]: T aligns with the last of x's leading dims
    expect(r.typeOf("add(x, y)", 1)).toBe("f32[.., T, D]");
  });

  it("two different `..` broadcast to a broadcast rest; equal ones stay one", () => {
    const r = checkSource(`${prelude}
fn g(x: f32[.., D]) {
  let y: f32[.., D] = zeros_like(x)
  return x + y
}
fn h(x: f32[.., D], y: f32[B, T, D]) = x * y`);
    expect(r.report()).toBe("");
    expect(r.typeOf("x + y")).toBe("f32[.., D]");
    expect(r.typeOf("x * y")).toBe("f32[..broadcast(.., [B, T]), D]");
  });
});
