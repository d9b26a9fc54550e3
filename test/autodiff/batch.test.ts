// The batching transform (compiler/autodiff/batch.ts) and every op's batching rule, on
// graphs: a one-op graph computed for one example is batched over N examples, with each
// input batched at some axis or not at all; the float64 reference interpreter runs the
// batched graph once and the one-example graph on each example's slices; the rows must
// agree. The one-example run is the independent side: it evaluates the op itself, where
// the batched run evaluates whatever the rule built (folded matmuls, offset gathers,
// moved axes).
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Graph, type Attrs, type TensorType } from "../../compiler/ir/graph.ts";
import { allOps, getOp } from "../../compiler/ops/index.ts";
import { batchGraph, type Batched } from "../../compiler/autodiff/batch.ts";
import { insertAxis } from "../../compiler/ops/batching.ts";
import { normalAt, uniformAt, countedKey, randomKey, randomBits } from "../../compiler/ops/random.ts";
import { refTensor, rowStrides, forEachIndex, type RefTensor } from "../../runtime/reference/tensor.ts";
import { randomTensor, rng, run } from "../util/graphs.ts";
import { runBoth } from "../util/both.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { forwardCases, gradCases, type Case } from "../ops/cases.ts";

/** Ops that need no rule: no inputs, so never batched (the transform copies them). */
const NO_INPUTS = new Set(allOps().filter((d) => d.arity === 0 && !d.random).map((d) => d.name));
/**
 * Ops with inputs but no batching rule, each with the reason; the transform batches them
 * by a per-example loop. Empty: every op has a rule.
 */
const NO_RULE = new Map<string, string>();

/** Element `e` of `t` along `axis`, without that axis. */
function sliceAt(t: RefTensor, axis: number, e: number): RefTensor {
  const shape = t.shape.filter((_, k) => k !== axis);
  const st = rowStrides(t.shape);
  const out = refTensor(shape);
  forEachIndex(shape, (flat, idx) => {
    let o = e * st[axis];
    for (let k = 0, j = 0; k < t.shape.length; k++) if (k !== axis) o += idx[j++] * st[k];
    out.data[flat] = t.data[o];
  });
  return out;
}

function valuesFor(t: TensorType, r: () => number, range?: [number, number]): RefTensor {
  const v = randomTensor(t.shape, r, ...(range ?? [-2, 2]));
  if (t.dtype === "i32") v.data.set(v.data.map(Math.round));
  else if (t.dtype === "bool") v.data.set(v.data.map((x) => +(x > 0)));
  return v;
}

interface Built {
  src: Graph;
  out: number;
  dst: Graph;
  y: number;
}

/** One-example graph `f` over inputs `types`, batched over `n` with input k batched at bdims[k] (null: unbatched). */
function build(types: readonly TensorType[], f: (g: Graph, xs: number[]) => number, bdims: readonly (number | null)[], n: number): Built {
  const src = new Graph();
  const xs = types.map((t, k) => src.source("input", `x${k}`, t));
  const out = f(src, xs);
  src.output("out", out);
  const dst = new Graph();
  const env = new Map<number, Batched>();
  types.forEach((t, k) => {
    const b = bdims[k];
    const shape = b === null ? t.shape : insertAxis(t.shape, b, n);
    env.set(xs[k], { id: dst.source("input", `x${k}`, { shape, dtype: t.dtype }), bdim: b });
  });
  const [y] = batchGraph(src, dst, env, [out], n);
  dst.output("y", y);
  return { src, out, dst, y };
}

/** Max |batched row − one-example result| over the examples; also checks the batched shape. */
function compare(types: readonly TensorType[], f: (g: Graph, xs: number[]) => number, bdims: readonly (number | null)[], n: number, seed: number, ranges: ([number, number] | undefined)[] = []): number {
  const { src, dst } = build(types, f, bdims, n);
  const r = rng(seed);
  const feeds: Record<string, RefTensor> = {};
  types.forEach((t, k) => {
    const b = bdims[k];
    feeds[`x${k}`] = valuesFor(b === null ? t : { shape: insertAxis(t.shape, b, n), dtype: t.dtype }, r, ranges[k]);
  });
  const y = run(dst, feeds).get("y")!;
  let worst = 0;
  for (let e = 0; e < n; e++) {
    const one: Record<string, RefTensor> = {};
    types.forEach((_, k) => {
      const b = bdims[k];
      one[`x${k}`] = b === null ? feeds[`x${k}`] : sliceAt(feeds[`x${k}`], b, e);
    });
    const want = run(src, one).get("out")!;
    const got = sliceAt(y, 0, e);
    expect(got.shape).toEqual(want.shape);
    for (let i = 0; i < want.data.length; i++) {
      const a = got.data[i];
      const w = want.data[i];
      if (Number.isNaN(w) && Number.isNaN(a)) continue;
      worst = Math.max(worst, Math.abs(a - w) / Math.max(1, Math.abs(w)));
    }
  }
  return worst;
}

/** Batch-axis placements for a case: each input alone, all at the front, all at the back, all in the middle. */
function placements(types: readonly TensorType[]): (number | null)[][] {
  const out: (number | null)[][] = [];
  const k = types.length;
  for (let i = 0; i < k; i++) {
    for (const b of new Set([0, types[i].shape.length])) out.push(types.map((_, j) => (j === i ? b : null)));
  }
  if (k > 1) {
    out.push(types.map(() => 0));
    out.push(types.map((t) => t.shape.length));
    out.push(types.map((t) => Math.floor(t.shape.length / 2)));
    out.push(types.map((t, j) => (j % 2 ? t.shape.length : 0)));
  }
  if (k === 0) out.push([]);
  const seen = new Set<string>();
  return out.filter((p) => !seen.has(JSON.stringify(p)) && !!seen.add(JSON.stringify(p)));
}

const label = (c: Case) => `${c.op} ${c.inputs.map((t) => `${t.dtype}[${t.shape.join(",")}]`).join(" ")} ${JSON.stringify(c.attrs ?? {})}`;
/** Ops the shared case table (test/ops/cases.ts) does not list yet. */
const extraCases: Case[] = [
  { op: "concat", inputs: [{ shape: [2, 3], dtype: "f32" }, { shape: [2, 1], dtype: "f32" }], attrs: { axis: 1 } },
  { op: "concat", inputs: [{ shape: [1, 2], dtype: "i32" }, { shape: [3, 2], dtype: "i32" }, { shape: [2, 2], dtype: "i32" }], attrs: { axis: 0 } },
];
const cases = [...gradCases, ...forwardCases, ...extraCases].filter((c) => !getOp(c.op).random && c.inputs.every((t) => t.shape.reduce((a, b) => a * b, 1) <= 5000));
const one = (c: Case) => (g: Graph, xs: number[]) => g.add(c.op, xs, c.attrs ?? {});

describe("batching rules: map of one op equals the op on each example (reference interpreter, float64)", () => {
  it("every op with inputs has a batching rule (or is listed, with its reason, as looping per example)", () => {
    const missing = allOps().filter((d) => !NO_INPUTS.has(d.name) && !d.batch && !NO_RULE.has(d.name)).map((d) => d.name);
    expect(missing).toEqual([]);
  });

  it("every op with a rule is exercised below", () => {
    const covered = new Set([...cases.map((c) => c.op), "random_uniform", "random_normal"]);
    const untested = allOps().filter((d) => d.batch && !covered.has(d.name)).map((d) => d.name);
    expect(untested).toEqual([]);
  });

  for (const c of cases) {
    it(label(c), () => {
      for (const [i, bdims] of placements(c.inputs).entries()) {
        const err = compare(c.inputs, one(c), bdims, 3, 100 + i, c.range ?? []);
        expect(err, `batch axes ${JSON.stringify(bdims)}`).toBeLessThan(1e-12);
      }
    });
  }

  it("a batched op is one node whatever N: no per-example copies (node count for N = 2 and 9)", () => {
    for (const c of cases) {
      for (const bdims of placements(c.inputs)) {
        const a = build(c.inputs, one(c), bdims, 2).dst.nodes.length;
        const b = build(c.inputs, one(c), bdims, 9).dst.nodes.length;
        expect(b, `${label(c)} at ${JSON.stringify(bdims)}`).toBe(a);
      }
    }
  });

  it("matmul of a batched activation with an unbatched weight is one matmul with the examples folded into its rows (the weight is not broadcast)", () => {
    const { dst } = build([{ shape: [3, 4], dtype: "f32" }, { shape: [4, 5], dtype: "f32" }], one({ op: "matmul", inputs: [] }), [0, null], 7);
    const mms = dst.nodes.filter((n) => n.op === "matmul");
    expect(mms.map((n) => [dst.type(n.inputs[0]).shape, dst.type(n.inputs[1]).shape])).toEqual([[[21, 4], [4, 5]]]);
    expect(dst.nodes.some((n) => n.op === "broadcast")).toBe(false);
  });
});

// ---- random shapes (fast-check): families of ops with their attributes drawn too
const f32 = (shape: number[]): TensorType => ({ shape, dtype: "f32" });
const i32 = (shape: number[]): TensorType => ({ shape, dtype: "i32" });
const dims = (min: number, max: number) => fc.array(fc.integer({ min: 1, max: 4 }), { minLength: min, maxLength: max });
/** a batch axis for a per-example rank r, or null */
const bdimFor = (r: number) => fc.option(fc.integer({ min: 0, max: r }), { nil: null, freq: 3 });
const N = fc.integer({ min: 1, max: 4 });
const PROPS = { numRuns: 60, seed: 4 };

describe("batching rules on random shapes (fast-check)", () => {
  it("elementwise ops with NumPy broadcasting, batched anywhere or not at all", () => {
    fc.assert(
      fc.property(dims(0, 3), fc.integer({ min: 0, max: 3 }), fc.constantFrom("add", "mul", "max", "sub"), bdimFor(3), bdimFor(3), N, (shape, drop, op, ba, bb, n) => {
        // b has a suffix of a's shape with some dims set to 1: the builder broadcasts it
        const bs = shape.slice(Math.min(drop, shape.length)).map((d, i) => (i % 2 ? 1 : d));
        const types = [f32(shape), f32(bs)];
        const bd: (number | null)[] = [ba === null ? null : Math.min(ba, shape.length), bb === null ? null : Math.min(bb, bs.length)];
        if (!bd.some((b) => b !== null)) bd[0] = 0;
        const f = (g: Graph, [a, b]: number[]) => g.add(op, [a, g.add("broadcast", [b], { shape })]);
        expect(compare(types, f, bd, n, 1)).toBeLessThan(1e-12);
      }),
      PROPS,
    );
  });

  it("reductions over random axes, transposes by random permutations, reshapes", () => {
    fc.assert(
      fc.property(dims(1, 4), fc.integer({ min: 0, max: 15 }), fc.constantFrom("sum", "reduce_max", "reduce_min"), fc.nat(), bdimFor(4), N, (shape, mask, op, seed, b, n) => {
        const r = shape.length;
        const axes = [...shape.keys()].filter((k) => mask & (1 << k));
        const perm = [...shape.keys()].sort((x, y) => ((x * 7 + seed) % 5) - ((y * 7 + seed) % 5) || x - y);
        const bd: (number | null)[] = [b === null ? 0 : Math.min(b, r)];
        const f = (g: Graph, [x]: number[]) => {
          const t = g.add("transpose", [x], { perm });
          const red = axes.length ? g.add(op, [t], { axes }) : t;
          const rs = g.type(red).shape;
          return g.add("reshape", [red], { shape: [rs.reduce((a, c) => a * c, 1)] });
        };
        expect(compare([f32(shape)], f, bd, n, 2)).toBeLessThan(1e-12);
      }),
      PROPS,
    );
  });

  it("matmul with batch dims, either or both operands batched at any axis", () => {
    fc.assert(
      fc.property(dims(0, 2), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), bdimFor(4), bdimFor(4), N, (lead, m, k, p, ba, bb, n) => {
        const types = [f32([...lead, m, k]), f32([...lead, k, p])];
        const r = lead.length + 2;
        const bd: (number | null)[] = [ba === null ? null : Math.min(ba, r), bb === null ? null : Math.min(bb, r)];
        if (!bd.some((b) => b !== null)) bd[1] = r - 1;
        expect(compare(types, one({ op: "matmul", inputs: [] }), bd, n, 3)).toBeLessThan(1e-12);
      }),
      PROPS,
    );
  });

  it("gather and take_along: table, indices or both batched (indices past both ends are clamped per example)", () => {
    fc.assert(
      fc.property(dims(1, 3), dims(0, 2), fc.nat(), bdimFor(3), bdimFor(2), N, (xs, is, ax, bx, bi, n) => {
        const axis = ax % xs.length;
        const bd: (number | null)[] = [bx === null ? null : Math.min(bx, xs.length), bi === null ? null : Math.min(bi, is.length)];
        if (!bd.some((b) => b !== null)) bd[0] = 0;
        const range: [number, number][] = [[-2, 2], [-2, xs[axis] + 1]];
        expect(compare([f32(xs), i32(is)], one({ op: "gather", inputs: [], attrs: { axis } }), bd, n, 5, range)).toBeLessThan(1e-12);
        const ts = xs.map((d, k) => (k === axis ? is[0] ?? 2 : d));
        const bt = [bd[0], bi === null ? null : Math.min(bi, ts.length)];
        expect(compare([f32(xs), i32(ts)], one({ op: "take_along", inputs: [], attrs: { axis } }), bt, n, 6, range)).toBeLessThan(1e-12);
      }),
      PROPS,
    );
  });

  it("slice and pad with random lattices, cumsum / argmax / kth_largest along random axes", () => {
    fc.assert(
      fc.property(dims(1, 3), fc.nat(), bdimFor(3), N, (shape, seed, b, n) => {
        const r = rng(seed);
        const steps = shape.map(() => 1 + Math.floor(r() * 2));
        const sizes = shape.map((d, k) => Math.max(1, Math.floor((d - 1) / steps[k]) + 1 - Math.floor(r() * 2)));
        const starts = shape.map((d, k) => Math.floor(r() * (d - (sizes[k] - 1) * steps[k])));
        const axis = seed % shape.length;
        const bd: (number | null)[] = [b === null ? 0 : Math.min(b, shape.length)];
        const f = (g: Graph, [x]: number[]) => {
          const s = g.add("slice", [x], { starts, steps, shape: sizes });
          const p = g.add("pad", [s], { starts, steps, shape });
          const c = g.add("cumsum", [p], { axis, reverse: seed % 2 === 0 });
          const k = g.add("kth_largest", [c], { axis, k: 1 + (seed % shape[axis]) });
          const a = g.add("cast", [g.add("argmax", [c], { axis })], { dtype: "f32" });
          return g.add("add", [k, a]);
        };
        expect(compare([f32(shape)], f, bd, n, 7)).toBeLessThan(1e-12);
      }),
      PROPS,
    );
  });
});

describe("random numbers inside map", () => {
  // The chosen semantics (compiler/ops/random.ts, batchRandom): a random op in a mapped fn
  // draws once, shape [N, ..shape], from its (seed, stream); example e gets elements
  // e·S … (e+1)·S − 1. Checked here against the counter-based generator written out.
  for (const op of ["random_uniform", "random_normal"] as const) {
    it(`${op}: example e gets its own slice of one [N, ..] draw, so the examples differ`, () => {
      const attrs: Attrs = { shape: [2, 3], seed: 5, stream: 9 };
      const n = 4;
      const { dst } = build([], (g) => g.add(op, [], attrs), [], n);
      const y = run(dst, {}).get("y")!;
      expect(y.shape).toEqual([n, 2, 3]);
      const at = op === "random_uniform" ? uniformAt : normalAt;
      for (let i = 0; i < y.data.length; i++) expect(Math.abs(y.data[i] - at(i, 5, 9))).toBeLessThan(1e-12);
      const rows = Array.from({ length: n }, (_, e) => [...sliceAt(y, 0, e).data].join());
      expect(new Set(rows).size).toBe(n);
    });
  }

  it("with a counter that differs per example, each example draws with its own counter (the per-example fallback)", () => {
    const n = 3;
    const { dst } = build([i32([])], (g, [c]) => g.add("random_uniform", [c], { shape: [5], seed: 2, stream: 1 }), [0], n);
    const counters = [7, 100, 7];
    const y = run(dst, { x0: refTensor([n], counters) }).get("y")!;
    for (let e = 0; e < n; e++) {
      const key = countedKey(randomKey(2, 1, 0), counters[e]);
      for (let i = 0; i < 5; i++) expect(y.data[e * 5 + i]).toBe((randomBits(i, key) >>> 8) * 2 ** -24);
    }
  });
});

describe("batched op graphs on the GPU agree with the reference (one bundle)", () => {
  // Each case batched twice: every input at its last axis or the front, alternating (the
  // rules then build transposed and broadcast views for the kernels to read), and the
  // first input alone in its middle axis.
  const g = new Graph();
  const feeds: Record<string, RefTensor> = {};
  const outs: { name: string; out: string }[] = [];
  const r = rng(11);
  cases.forEach((c, k) => {
    const both = c.inputs.map((t, j) => (j % 2 ? 0 : t.shape.length));
    const first = c.inputs.map((t, j) => (j === 0 ? Math.floor(t.shape.length / 2) : null));
    for (const [p, bdims] of [both, first].entries()) {
      if (p === 1 && c.inputs.length === 0) continue;
      const src = new Graph();
      const xs = c.inputs.map((t, j) => src.source("input", `x${j}`, t));
      const out = src.add(c.op, xs, c.attrs ?? {});
      const env = new Map<number, Batched>();
      c.inputs.forEach((t, j) => {
        const b = bdims[j];
        const type = b === null ? t : { shape: insertAxis(t.shape, b, 3), dtype: t.dtype };
        const name = `c${k}.${p}.x${j}`;
        const v = valuesFor(type, r, c.range?.[j]);
        if (t.dtype === "f32") v.data.set(Float32Array.from(v.data));
        feeds[name] = v;
        env.set(xs[j], { id: g.source("input", name, type), bdim: b });
      });
      const [y] = batchGraph(src, g, env, [out], 3);
      g.output(`c${k}.${p}`, y);
      outs.push({ name: `${label(c)} at ${JSON.stringify(bdims)}`, out: `c${k}.${p}` });
    }
  });
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, outs.map((o) => o.out)));
  });
  it(`${outs.length} batched graphs`, () => {
    for (const o of outs) {
      const w = want.get(o.out)!;
      const v = got.get(o.out)!;
      const f32 = g.type(g.outputs.get(o.out)!).dtype === "f32";
      expect(v.length).toBe(w.data.length);
      for (let i = 0; i < w.data.length; i++) {
        const tol = f32 ? 2e-5 * Math.abs(w.data[i]) + 2e-6 : 0;
        expect(Math.abs(v[i] - w.data[i]), `${o.name}, element ${i}: gpu ${v[i]} vs reference ${w.data[i]}`).toBeLessThanOrEqual(tol);
      }
    }
  });
});
