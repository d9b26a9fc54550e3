// Property tests of every VJP in the op registry: for random shapes (size-1 dims, rank 0,
// NumPy broadcasts for the elementwise ops with several operands), random attributes (axes,
// keepdims, permutations, slice lattices, gather indices past both ends…) and random values
// kept away from the points where the op has no derivative, the gradient the graph VJP
// builds must match float64 central finite differences of the reference interpreter:
//   max over elements |analytic − numeric| / max(1, |numeric|) < 1e-6.
// The loss is y = Σ w ⊙ f(x…) with random weights w, so every output element matters.
// A differentiable op (one with a VJP that is not zero almost everywhere) must have a
// generator below or an entry, with its reason, in SKIPPED: the completeness test fails
// otherwise. The built-ins made of primitives with their own gradient story (topk and
// quantile: take_along over argsort) get the same check, and a second-order one.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { vjp } from "../../compiler/autodiff/vjp.ts";
import { Graph, type Shape, type TensorType } from "../../compiler/ir/graph.ts";
import { nary, reshape } from "../../compiler/ops/build.ts";
import { allOps, evaluators } from "../../compiler/ops/index.ts";
import { quantile, topk } from "../../compiler/ops/select.ts";
import { interpret } from "../../runtime/reference/interpret.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { rng } from "../util/graphs.ts";

const table = evaluators();
const SEED = 20240617;
const RUNS = 50;
/** the finite-difference step: a power of two, so x ± h is exact for |x| < 8 */
const H = 2 ** -16;
const TOL = 1e-6;

interface PropCase {
  inputs: TensorType[];
  values: RefTensor[];
  build(g: Graph, xs: number[]): number;
  label: string;
}

type DType = TensorType["dtype"];
const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);
const tt = (shape: Shape, dtype: DType = "f32"): TensorType => ({ shape: [...shape], dtype });
const show = (s: Shape) => `[${s.join(",")}]`;

// ---- values

type Kind = "any" | "pos" | "away0" | "offInt" | "wide";

function draw(r: () => number, n: number, kind: Kind): number[] {
  return Array.from({ length: n }, () => {
    const v = r();
    switch (kind) {
      case "any":
        return -3 + 6 * v;
      case "wide":
        return -6 + 12 * v;
      case "pos":
        return 0.3 + 2.7 * v;
      case "away0":
        return (0.2 + 2.8 * v) * (r() < 0.5 ? -1 : 1);
      case "offInt":
        // at least 0.2 from every integer: cast to i32 or bool is flat around them
        return Math.floor(-3 + 7 * v) + 0.5 + 0.6 * (r() - 0.5);
    }
  });
}

/** n values at least 0.1 apart (so max, min, sorting have no ties), in random order. */
function distinct(r: () => number, n: number): number[] {
  const ks = Array.from({ length: 2 * n }, (_, i) => i - n);
  for (let i = ks.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ks[i], ks[j]] = [ks[j], ks[i]];
  }
  return ks.slice(0, n).map((k) => 0.2 * k + 0.1 * (r() - 0.5));
}

const ints = (r: () => number, n: number, lo: number, hi: number) => Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
const tensor = (shape: Shape, data: number[]): RefTensor => refTensor(shape, data);

// ---- arbitraries

const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const dimArb = (max = 4) => fc.integer({ min: 1, max });
const shapeArb = (minRank: number, maxRank: number, maxDim = 4) => fc.array(dimArb(maxDim), { minLength: minRank, maxLength: maxRank });
/** a shape with an axis of it */
const shapeAxisArb = (minRank: number, maxRank: number, maxDim = 4) =>
  shapeArb(Math.max(1, minRank), maxRank, maxDim).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 })));

/** An operand shape that broadcasts to `out`: leading dims dropped, some dims set to 1. */
const operandArb = (out: number[]) =>
  fc
    .tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }))
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));

const operandsArb = (n: number) => shapeArb(0, 3).chain((out) => fc.tuple(...Array.from({ length: n }, () => operandArb(out))));

function unaryArb(op: string, kind: Kind, attrs: fc.Arbitrary<Record<string, string>> = fc.constant({})): fc.Arbitrary<PropCase> {
  return fc.tuple(shapeArb(0, 3), attrs, seedArb).map(([s, a, seed]) => ({
    inputs: [tt(s)],
    values: [tensor(s, draw(rng(seed), numel(s), kind))],
    build: (g, [x]) => g.add(op, [x], a),
    label: `${op} ${show(s)} ${JSON.stringify(a)}`,
  }));
}

function binaryArb(op: string, kinds: [Kind, Kind] | "distinct"): fc.Arbitrary<PropCase> {
  return fc.tuple(operandsArb(2), seedArb).map(([[sa, sb], seed]) => {
    const r = rng(seed);
    let va: number[];
    let vb: number[];
    if (kinds === "distinct") {
      const v = distinct(r, numel(sa) + numel(sb));
      va = v.slice(0, numel(sa));
      vb = v.slice(numel(sa));
    } else {
      va = draw(r, numel(sa), kinds[0]);
      vb = draw(r, numel(sb), kinds[1]);
    }
    return {
      inputs: [tt(sa), tt(sb)],
      values: [tensor(sa, va), tensor(sb, vb)],
      build: (g, xs) => nary(g, op, xs),
      label: `${op} ${show(sa)} ${show(sb)}`,
    };
  });
}

/** `axes` of x reduced by `op`, keeping them as size-1 dims when `keep`. */
function reduceArb(op: "sum" | "reduce_max" | "reduce_min"): fc.Arbitrary<PropCase> {
  return shapeArb(1, 3)
    .chain((s) => fc.tuple(fc.constant(s), fc.subarray([...s.keys()]), fc.boolean(), seedArb))
    .map(([s, axes, keep, seed]) => {
      const r = rng(seed);
      return {
        inputs: [tt(s)],
        values: [tensor(s, op === "sum" ? draw(r, numel(s), "any") : distinct(r, numel(s)))],
        build: (g, [x]) => {
          const y = g.add(op, [x], { axes });
          return keep ? reshape(g, y, s.map((d, i) => (axes.includes(i) ? 1 : d))) : y;
        },
        label: `${op} ${show(s)} axes ${show(axes)}${keep ? " keepdims" : ""}`,
      };
    });
}

const GENERATORS: Record<string, fc.Arbitrary<PropCase>> = {
  neg: unaryArb("neg", "any"),
  exp: unaryArb("exp", "any"),
  log: unaryArb("log", "pos"),
  sqrt: unaryArb("sqrt", "pos"),
  rsqrt: unaryArb("rsqrt", "pos"),
  abs: unaryArb("abs", "away0"),
  tanh: unaryArb("tanh", "any"),
  sigmoid: unaryArb("sigmoid", "wide"),
  relu: unaryArb("relu", "away0"),
  softplus: unaryArb("softplus", "wide"),
  sin: unaryArb("sin", "any"),
  cos: unaryArb("cos", "any"),
  erf: unaryArb("erf", "any"),
  erfc: unaryArb("erfc", "any"),
  gelu: unaryArb("gelu", "wide", fc.record({ approximate: fc.constantFrom("none", "tanh") })),
  add: binaryArb("add", ["any", "any"]),
  sub: binaryArb("sub", ["any", "any"]),
  mul: binaryArb("mul", ["any", "any"]),
  div: binaryArb("div", ["any", "away0"]),
  pow: binaryArb("pow", ["pos", "any"]),
  max: binaryArb("max", "distinct"),
  min: binaryArb("min", "distinct"),
  where: fc.tuple(operandsArb(3), seedArb).map(([[sc, sa, sb], seed]) => {
    const r = rng(seed);
    return {
      inputs: [tt(sc, "bool"), tt(sa), tt(sb)],
      values: [tensor(sc, ints(r, numel(sc), 0, 1)), tensor(sa, draw(r, numel(sa), "any")), tensor(sb, draw(r, numel(sb), "any"))],
      build: (g, xs) => nary(g, "where", xs),
      label: `where ${show(sc)} ${show(sa)} ${show(sb)}`,
    };
  }),
  // f32 → f32 passes the gradient; through i32 or bool (stopped: without stop that is an
  // error, tested in select.test.ts) it is zero (values away from integers)
  cast: fc.tuple(shapeArb(0, 3), fc.constantFrom<DType>("f32", "i32", "bool"), seedArb).map(([s, dtype, seed]) => ({
    inputs: [tt(s)],
    values: [tensor(s, draw(rng(seed), numel(s), "offInt"))],
    build: (g, [x]) => {
      const c = g.add("cast", [x], { dtype });
      return dtype === "f32" ? c : g.add("cast", [g.add("stop", [c])], { dtype: "f32" });
    },
    label: `cast ${show(s)} via ${dtype}`,
  })),
  broadcast: fc
    .tuple(shapeArb(0, 3), fc.array(dimArb(3), { maxLength: 2 }), fc.array(dimArb(3), { minLength: 3, maxLength: 3 }), seedArb)
    .map(([s, lead, grow, seed]) => {
      const target = [...lead, ...s.map((d, i) => (d === 1 ? grow[i] : d))];
      return {
        inputs: [tt(s)],
        values: [tensor(s, draw(rng(seed), numel(s), "any"))],
        build: (g, [x]) => g.add("broadcast", [x], { shape: target }),
        label: `broadcast ${show(s)} → ${show(target)}`,
      };
    }),
  reshape: fc.tuple(shapeArb(0, 3), seedArb).map(([s, seed]) => {
    // a random factorisation of the element count, with size-1 dims sprinkled in
    const r = rng(seed);
    const primes: number[] = [];
    let n = numel(s);
    for (let p = 2; n > 1; p++) while (n % p === 0) (primes.push(p), (n /= p));
    const target = Array.from({ length: 1 + Math.floor(r() * 3) }, () => 1);
    for (const p of primes) target[Math.floor(r() * target.length)] *= p;
    return {
      inputs: [tt(s)],
      values: [tensor(s, draw(r, numel(s), "any"))],
      build: (g, [x]) => g.add("reshape", [x], { shape: target }),
      label: `reshape ${show(s)} → ${show(target)}`,
    };
  }),
  transpose: shapeArb(1, 4, 3)
    .chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray([...s.keys()], { minLength: s.length, maxLength: s.length }), seedArb))
    .map(([s, perm, seed]) => ({
      inputs: [tt(s)],
      values: [tensor(s, draw(rng(seed), numel(s), "any"))],
      build: (g, [x]) => g.add("transpose", [x], { perm }),
      label: `transpose ${show(s)} ${show(perm)}`,
    })),
  sum: reduceArb("sum"),
  reduce_max: reduceArb("reduce_max"),
  reduce_min: reduceArb("reduce_min"),
  matmul: fc.tuple(shapeArb(0, 2, 3), dimArb(), dimArb(), dimArb(), seedArb).map(([batch, m, k, n, seed]) => {
    const r = rng(seed);
    const sa = [...batch, m, k];
    const sb = [...batch, k, n];
    return {
      inputs: [tt(sa), tt(sb)],
      values: [tensor(sa, draw(r, numel(sa), "any")), tensor(sb, draw(r, numel(sb), "any"))],
      build: (g, xs) => g.add("matmul", xs),
      label: `matmul ${show(sa)} @ ${show(sb)}`,
    };
  }),
  slice: fc.tuple(shapeArb(1, 3, 6), seedArb).map(([s, seed]) => {
    const r = rng(seed);
    const starts = s.map((d) => Math.floor(r() * d));
    const steps = s.map(() => 1 + Math.floor(r() * 3));
    const shape = s.map((d, i) => 1 + Math.floor(r() * (Math.floor((d - 1 - starts[i]) / steps[i]) + 1)));
    return {
      inputs: [tt(s)],
      values: [tensor(s, draw(r, numel(s), "any"))],
      build: (g, [x]) => g.add("slice", [x], { starts, steps, shape }),
      label: `slice ${show(s)} starts ${show(starts)} steps ${show(steps)} → ${show(shape)}`,
    };
  }),
  pad: fc.tuple(shapeArb(1, 3, 3), seedArb).map(([s, seed]) => {
    const r = rng(seed);
    const starts = s.map(() => Math.floor(r() * 3));
    const steps = s.map(() => 1 + Math.floor(r() * 3));
    const shape = s.map((d, i) => starts[i] + (d - 1) * steps[i] + 1 + Math.floor(r() * 3));
    return {
      inputs: [tt(s)],
      values: [tensor(s, draw(r, numel(s), "any"))],
      build: (g, [x]) => g.add("pad", [x], { starts, steps, shape }),
      label: `pad ${show(s)} starts ${show(starts)} steps ${show(steps)} → ${show(shape)}`,
    };
  }),
  // indices reach one past both ends: the clamp is part of what is differentiated
  gather: fc.tuple(shapeAxisArb(1, 3), shapeArb(0, 2, 3), seedArb).map(([[s, axis], si, seed]) => {
    const r = rng(seed);
    return {
      inputs: [tt(s), tt(si, "i32")],
      values: [tensor(s, draw(r, numel(s), "any")), tensor(si, ints(r, numel(si), -1, s[axis]))],
      build: (g, xs) => g.add("gather", xs, { axis }),
      label: `gather ${show(s)} idx ${show(si)} axis ${axis}`,
    };
  }),
  take_along: fc.tuple(shapeAxisArb(1, 3), dimArb(), seedArb).map(([[s, axis], m, seed]) => {
    const r = rng(seed);
    const si = s.map((d, i) => (i === axis ? m : d));
    return {
      inputs: [tt(s), tt(si, "i32")],
      values: [tensor(s, draw(r, numel(s), "any")), tensor(si, ints(r, numel(si), -1, s[axis]))],
      build: (g, xs) => g.add("take_along", xs, { axis }),
      label: `take_along ${show(s)} idx ${show(si)} axis ${axis}`,
    };
  }),
  concat: fc.tuple(shapeAxisArb(1, 3), fc.array(dimArb(3), { minLength: 1, maxLength: 4 }), seedArb).map(([[s, axis], lens, seed]) => {
    const r = rng(seed);
    const shapes = lens.map((d) => s.map((e, i) => (i === axis ? d : e)));
    return {
      inputs: shapes.map((sh) => tt(sh)),
      values: shapes.map((sh) => tensor(sh, draw(r, numel(sh), "any"))),
      build: (g, xs) => g.add("concat", xs, { axis }),
      label: `concat ${shapes.map(show).join(" ")} axis ${axis}`,
    };
  }),
  cumsum: fc.tuple(shapeAxisArb(1, 3, 5), fc.boolean(), seedArb).map(([[s, axis], reverse, seed]) => ({
    inputs: [tt(s)],
    values: [tensor(s, draw(rng(seed), numel(s), "any"))],
    build: (g, [x]) => g.add("cumsum", [x], { axis, reverse }),
    label: `cumsum ${show(s)} axis ${axis}${reverse ? " reverse" : ""}`,
  })),
};

/** Differentiable ops without a property here, and why. */
const SKIPPED: Record<string, string> = {
  input: "a source: nothing to differentiate through",
  param: "a source: nothing to differentiate through",
  state: "a source: nothing to differentiate through",
  const: "no inputs",
  iota: "no inputs",
  stop: "its gradient is zero by definition, while finite differences see the identity",
  random_uniform: "its only input is the i32 step counter, which has no gradient",
  random_normal: "its only input is the i32 step counter, which has no gradient",
};

// Built-ins made of primitives: topk's values (take_along at argsort's indices) and quantile.
const COMPOSITES: Record<string, fc.Arbitrary<PropCase>> = {
  topk: shapeAxisArb(1, 3, 5)
    .chain(([s, axis]) => fc.tuple(fc.constant(s), fc.constant(axis), fc.integer({ min: 1, max: s[axis] }), seedArb))
    .map(([s, axis, k, seed]) => ({
      inputs: [tt(s)],
      values: [tensor(s, distinct(rng(seed), numel(s)))],
      build: (g, [x]) => topk(g, x, axis, k).values,
      label: `topk ${show(s)} k ${k} axis ${axis}`,
    })),
  quantile: fc
    .tuple(shapeAxisArb(1, 3, 6), fc.oneof(fc.constantFrom(0, 0.25, 0.5, 0.75, 1), fc.double({ min: 0, max: 1, noNaN: true })), seedArb)
    .map(([[s, axis], q, seed]) => ({
      inputs: [tt(s)],
      values: [tensor(s, distinct(rng(seed), numel(s)))],
      build: (g, [x]) => quantile(g, x, axis, q),
      label: `quantile ${show(s)} q ${q} axis ${axis}`,
    })),
};

// ---- the checks

const feedsOf = (names: string[], vals: readonly RefTensor[]) => new Map(names.map((n, k) => [n, vals[k]]));

/**
 * Builds the case, then `extra(g, y, diff)` returns the scalar to differentiate and the
 * node ids of its analytic gradients; compares those with central differences of it.
 */
function fdCheck(c: PropCase, seed: number, order: 1 | 2, mustUse?: string): number {
  const g = new Graph();
  const xs = c.inputs.map((t, k) => g.source("input", `x${k}`, t));
  const fx = c.build(g, xs);
  if (mustUse && !g.nodes.some((n) => n.op === mustUse)) throw new Error(`${c.label}: the graph has no '${mustUse}' node`);
  const shape = g.type(fx).shape;
  const r = rng(seed);
  const names = [...c.inputs.map((_, k) => `x${k}`), "w"];
  const vals = [...c.values, tensor(shape, draw(r, numel(shape), "pos").map((v) => 0.5 + v / 3))];
  const w = g.source("input", "w", tt(shape));
  let y = g.add("sum", [g.add("mul", [fx, w])], { axes: [...shape.keys()] });
  const diff = c.inputs.flatMap((t, k) => (t.dtype === "f32" ? [k] : []));
  if (order === 2) {
    // y ← ⟨∇y, v⟩: its gradient is a Hessian-vector product
    const grads = vjp(g, y, diff.map((k) => xs[k]));
    let z: number | undefined;
    diff.forEach((k, j) => {
      const s = c.inputs[k].shape;
      const v = g.source("input", `v${k}`, tt(s));
      names.push(`v${k}`);
      vals.push(tensor(s, draw(r, numel(s), "any")));
      const term = g.add("sum", [g.add("mul", [grads[j], v])], { axes: [...s.keys()] });
      z = z === undefined ? term : g.add("add", [z, term]);
    });
    y = z!;
  }
  const analyticIds = vjp(g, y, diff.map((k) => xs[k]));
  const outs = new Map([["y", y], ...analyticIds.map((id, j) => [`g${j}`, id] as [string, number])]);
  const all = interpret({ nodes: g.nodes, outputs: outs }, feedsOf(names, vals), table);
  const forward = { nodes: g.nodes, outputs: new Map([["y", y]]) };
  const yAt = (vs: RefTensor[]) => interpret(forward, feedsOf(names, vs), table).get("y")!.data[0];
  let worst = 0;
  diff.forEach((k, j) => {
    const a = all.get(`g${j}`)!.data;
    for (let i = 0; i < a.length; i++) {
      const at = (d: number) => vals.map((v, m) => (m === k ? tensor(v.shape, Array.from(v.data, (x, e) => (e === i ? x + d : x))) : v));
      const num = (yAt(at(H)) - yAt(at(-H))) / (2 * H);
      worst = Math.max(worst, Math.abs(a[i] - num) / Math.max(1, Math.abs(num)));
    }
  });
  return worst;
}

function property(arb: fc.Arbitrary<PropCase>, order: 1 | 2, mustUse?: string, runs = RUNS): void {
  fc.assert(
    fc.property(arb, seedArb, (c, seed) => {
      const err = fdCheck(c, seed, order, mustUse);
      if (!(err < TOL)) throw new Error(`${c.label}: relative error ${err.toExponential(2)}`);
    }),
    { seed: SEED, numRuns: runs },
  );
}

describe("every VJP matches float64 central differences on random shapes, attributes and values", () => {
  for (const [op, arb] of Object.entries(GENERATORS)) it(op, () => property(arb, 1, op));
  for (const [name, arb] of Object.entries(COMPOSITES)) it(`${name} (built-in)`, () => property(arb, 1, "argsort"));

  it("every differentiable op has a property or a reason to skip it", () => {
    const names = allOps().map((op) => op.name);
    const differentiable = allOps()
      .filter((op) => op.vjp && !op.zeroGrad)
      .map((op) => op.name);
    expect(differentiable.filter((n) => !(n in GENERATORS) && !(n in SKIPPED))).toEqual([]);
    // no stale or doubled entries
    expect(Object.keys(GENERATORS).filter((n) => !differentiable.includes(n))).toEqual([]);
    expect(Object.keys(SKIPPED).filter((n) => !names.includes(n) || n in GENERATORS)).toEqual([]);
  });
});

describe("second order (grad of grad) of the new ops against central differences of the gradient", () => {
  it("gelu", () => property(GENERATORS.gelu, 2, "gelu", 20));
  // piecewise linear: the Hessian is zero away from ties, and grad of grad must build
  it("topk", () => property(COMPOSITES.topk, 2, "argsort", 15));
  it("quantile", () => property(COMPOSITES.quantile, 2, "argsort", 15));
});
