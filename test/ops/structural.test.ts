// Indexing, scans, selections, random numbers and erf (compiler/ops/{indexing,scan,
// random,special}.ts): hand-computed examples on both back ends, identities, shape
// errors, operands read through views (transposed, broadcast, offset), the random
// generator's agreement and statistics, erf's accuracy, and second derivatives.
import { beforeAll, describe, expect, it } from "vitest";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { OpTypeError } from "../../compiler/ops/index.ts";
import { broadcastTo, constant, mT, reduce, transpose } from "../../compiler/ops/build.ts";
import { erf } from "../../compiler/ops/special.ts";
import { normalAt, uniformAt } from "../../compiler/ops/random.ts";
import { vjp } from "../../compiler/autodiff/vjp.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { gradCheck, randomTensor, rng, run } from "../util/graphs.ts";

const f = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });
const i32 = (...shape: number[]): TensorType => ({ shape, dtype: "i32" });
const t = (shape: number[], data: number[]): RefTensor => refTensor(shape, data);
const r = rng(2024);

/** Rounds f32 inputs to float32 and i32 inputs to integers, so both back ends see the same values. */
function forDevice(v: RefTensor, dtype: TensorType["dtype"]): RefTensor {
  if (dtype === "f32") v.data.set(Float32Array.from(v.data));
  else v.data.set(v.data.map(Math.round));
  return v;
}

// ---- one graph for everything that runs on both back ends

const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const src = (name: string, type: TensorType, value: RefTensor): number => {
  feeds[name] = forDevice(value, type.dtype);
  return g.source("input", name, type);
};

interface Expect {
  name: string;
  out: string;
  /** hand-computed result; otherwise the reference interpreter is the oracle */
  want?: number[];
  /** |gpu − ref| ≤ atol + rtol·|ref| (f32 outputs) */
  atol?: number;
  rtol?: number;
}
const expects: Expect[] = [];
let n = 0;
function out(name: string, id: number, opts: Omit<Expect, "name" | "out"> = {}): void {
  const key = `o${n++}`;
  g.output(key, id);
  expects.push({ name, out: key, ...opts });
}

// hand-computed examples (the same numbers must come out of both back ends)
{
  const x = src("x45", f(4, 5), t([4, 5], [...Array(20).keys()]));
  out("slice [4,5] rows 1,3 cols 0,2,4", g.add("slice", [x], { starts: [1, 0], steps: [2, 2], shape: [2, 3] }), { want: [5, 7, 9, 15, 17, 19] });
  const v = src("v2", f(2), t([2], [1, 2]));
  out("pad [1,2] at 1 step 2 into 5", g.add("pad", [v], { starts: [1], steps: [2], shape: [5] }), { want: [0, 1, 0, 2, 0] });
  const table = src("table", f(3, 2), t([3, 2], [0, 1, 10, 11, 20, 21]));
  const idx = src("idx", i32(2, 2), t([2, 2], [2, 0, 1, 5]));
  out("gather rows [[2,0],[1,5→2]]", g.add("gather", [table, idx], { axis: 0 }), { want: [20, 21, 0, 1, 10, 11, 20, 21] });
  const neg = src("idxneg", i32(3), t([3], [-3, 1, 2]));
  out("gather columns with index -3 → 0", g.add("gather", [table, neg], { axis: 1 }), { want: [0, 1, 1, 10, 11, 11, 20, 21, 21] });
  const x23 = src("x23", f(2, 3), t([2, 3], [1, 2, 3, 4, 5, 6]));
  out("take_along [[2],[0]]", g.add("take_along", [x23, src("ta", i32(2, 1), t([2, 1], [2, 0]))], { axis: 1 }), { want: [3, 4] });
  out("take_along clamps [[-1],[7]]", g.add("take_along", [x23, src("tb", i32(2, 1), t([2, 1], [-1, 7]))], { axis: 1 }), { want: [1, 6] });
  out("take_along along axis 0", g.add("take_along", [x23, src("tc", i32(1, 3), t([1, 3], [1, 0, 1]))], { axis: 0 }), { want: [4, 2, 6] });
  const c = src("c4", f(4), t([4], [1, 2, 3, 4]));
  out("cumsum [1,2,3,4]", g.add("cumsum", [c], { axis: 0, reverse: false }), { want: [1, 3, 6, 10] });
  out("cumsum reverse [1,2,3,4]", g.add("cumsum", [c], { axis: 0, reverse: true }), { want: [10, 9, 7, 4] });
  out("cumsum over axis 0 of [2,3]", g.add("cumsum", [x23], { axis: 0, reverse: false }), { want: [1, 2, 3, 5, 7, 9] });
  const m = src("m", f(3, 4), t([3, 4], [1, 3, 3, 2, 5, 5, 5, 5, -1, -4, 0, -0.5]));
  out("argmax: first of the ties", g.add("argmax", [m], { axis: 1 }), { want: [1, 0, 2] });
  out("argmax over axis 0", g.add("argmax", [m], { axis: 0 }), { want: [1, 1, 1, 1] });
  const k = src("k", f(3, 4), t([3, 4], [5, 1, 5, 3, 2, 2, 2, 2, -1, 7, 0, 4]));
  out("kth_largest k=1", g.add("kth_largest", [k], { axis: 1, k: 1 }), { want: [5, 2, 7] });
  out("kth_largest k=2 counts repeats", g.add("kth_largest", [k], { axis: 1, k: 2 }), { want: [5, 2, 4] });
  out("kth_largest k=3", g.add("kth_largest", [k], { axis: 1, k: 3 }), { want: [3, 2, 0] });
  out("kth_largest k=4 (the min)", g.add("kth_largest", [k], { axis: 1, k: 4 }), { want: [1, 2, -1] });
  // keep_topk(x, 2) = where(x >= kth_largest(x, 2), x, 0): the tie at the threshold keeps three in row 0
  const kth = broadcastTo(g, g.add("reshape", [g.add("kth_largest", [k], { axis: 1, k: 2 })], { shape: [3, 1] }), [3, 4]);
  const keep = g.add("where", [g.add("ge", [k, kth]), k, constant(g, 0, [3, 4])]);
  out("keep_topk k=2 through kth_largest (ties kept)", keep, { want: [5, 0, 5, 0, 2, 2, 2, 2, 0, 7, 0, 4] });
  const e = src("erfx", f(5), t([5], [0.5, 1, 2, -1, 0]));
  out("erf at known points", g.add("erf", [e]), { want: [0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.8427007929497149, 0], atol: 2e-7, rtol: 0 });
}

// operands read through views: transposed, broadcast, offset (slices)
{
  const table = src("vt", f(6, 9), randomTensor([6, 9], r));
  const ids = src("vi", i32(4, 3), randomTensor([4, 3], r, -1, 9));
  // the table is stored [D, V] and read as [V, D]
  out("gather from a transposed table", g.add("gather", [mT(g, table), ids], { axis: 0 }));
  out("gather through a transposed index tensor", g.add("gather", [mT(g, table), mT(g, ids)], { axis: 1 }));
  const x = src("vx", f(5, 4, 3), randomTensor([5, 4, 3], r));
  const tx = transpose(g, x, [2, 0, 1]); // [3, 5, 4]
  out("take_along from a transposed x", g.add("take_along", [tx, src("vti", i32(3, 2, 4), randomTensor([3, 2, 4], r, -0.6, 5.4))], { axis: 1 }));
  out("cumsum over axis 1 of a transposed view", g.add("cumsum", [tx], { axis: 1, reverse: false }));
  out("cumsum reverse over the first axis of a transposed view", g.add("cumsum", [tx], { axis: 0, reverse: true }));
  const b = src("vb", f(4, 1), randomTensor([4, 1], r));
  out("argmax over a broadcast axis (all ties → 0)", g.add("argmax", [broadcastTo(g, b, [4, 6])], { axis: 1 }), { want: [0, 0, 0, 0] });
  out("argmax across a broadcast axis", g.add("argmax", [broadcastTo(g, b, [4, 6])], { axis: 0 }));
  out("kth_largest over a transposed view", g.add("kth_largest", [tx], { axis: 2, k: 2 }));
  const sl = g.add("slice", [x], { starts: [1, 1, 0], steps: [2, 1, 2], shape: [2, 3, 2] });
  out("pad of a slice view (offset, strides)", g.add("pad", [sl], { starts: [0, 2, 1], steps: [3, 1, 1], shape: [4, 5, 3] }));
  out("slice of a slice of a transposed view", g.add("slice", [g.add("slice", [tx], { starts: [0, 1, 0], steps: [2, 1, 3], shape: [2, 4, 2] })], { starts: [1, 1, 1], steps: [1, 2, 1], shape: [1, 2, 1] }));
  out("erf of a slice view", g.add("erf", [sl]));
  out("gather from a slice view", g.add("gather", [sl, src("vsi", i32(5), randomTensor([5], r, 0, 2))], { axis: 1 }));
  out("cumsum of a 1,000-long row", g.add("cumsum", [src("long", f(2, 1000), randomTensor([2, 1000], r))], { axis: 1, reverse: false }), { atol: 1e-4, rtol: 1e-5 });
}

// erf over a dense grid: the WGSL approximation against the float64 reference
const ERF_N = 4001;
{
  const grid = refTensor([ERF_N], Array.from({ length: ERF_N }, (_, i) => -7 + (14 * i) / (ERF_N - 1)));
  out("erf on a grid over [-7, 7]", g.add("erf", [src("erfgrid", f(ERF_N), grid)]), { atol: 2e-7, rtol: 0 });
}

// random numbers: 1e5 of each, and a few streams
const NR = 100_000;
const U = g.add("random_uniform", [], { shape: [NR], seed: 17, stream: 0 });
out("random_uniform: the same numbers on both back ends", U, { atol: 0, rtol: 0 });
const N = g.add("random_normal", [], { shape: [NR], seed: 17, stream: 0 });
out("random_normal: the same numbers up to f32 rounding", N, { atol: 2e-6, rtol: 2e-6 });
out("random_uniform in 3-D (row-major element index)", g.add("random_uniform", [], { shape: [3, 7, 11], seed: 5, stream: 9 }), { atol: 0, rtol: 0 });
out("random_uniform of another stream", g.add("random_uniform", [], { shape: [1000], seed: 17, stream: 1 }), { atol: 0, rtol: 0 });
out("random_uniform of another seed", g.add("random_uniform", [], { shape: [1000], seed: 18, stream: 0 }), { atol: 0, rtol: 0 });

describe("indexing, scans, random numbers and erf on both back ends", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, expects.map((e) => e.out)));
  });

  for (const e of expects) {
    it(e.name, () => {
      const ref = want.get(e.out)!;
      const dev = got.get(e.out)!;
      expect(dev.length).toBe(ref.data.length);
      const dtype = g.type(g.outputs.get(e.out)!).dtype;
      if (e.want) {
        expect(Array.from(ref.data)).toEqual(e.want.map((v) => expect.closeTo(v, 14)));
      }
      const atol = dtype === "f32" ? (e.atol ?? 2e-6) : 0;
      const rtol = dtype === "f32" ? (e.rtol ?? 2e-5) : 0;
      let worst = 0;
      let at = -1;
      for (let i = 0; i < ref.data.length; i++) {
        const err = Math.abs(dev[i] - ref.data[i]) - atol - rtol * Math.abs(ref.data[i]);
        if (err > worst || Number.isNaN(dev[i])) {
          worst = Number.isNaN(dev[i]) ? Infinity : err;
          at = i;
        }
      }
      expect(worst, at >= 0 ? `element ${at}: gpu ${dev[at]} vs reference ${ref.data[at]}` : "").toBeLessThanOrEqual(0);
    });
  }

  it("random_uniform: mean ≈ 1/2, variance ≈ 1/12, all in [0, 1), no repeats to speak of", () => {
    const u = got.get(expects.find((e) => e.name.startsWith("random_uniform: the same"))!.out)!;
    let s = 0;
    let s2 = 0;
    for (const v of u) {
      expect(v >= 0 && v < 1).toBe(true);
      s += v;
      s2 += v * v;
    }
    const mean = s / NR;
    const variance = s2 / NR - mean * mean;
    // standard errors: 0.29/√1e5 ≈ 9e-4 for the mean, ≈ 2.4e-4 for the variance
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
    expect(new Set(u).size).toBeGreaterThan(NR * 0.99);
    // neighbours are uncorrelated
    let c = 0;
    for (let i = 1; i < NR; i++) c += (u[i] - 0.5) * (u[i - 1] - 0.5);
    expect(Math.abs(c / (NR - 1) / (1 / 12))).toBeLessThan(0.02);
  });

  it("random_normal: mean ≈ 0, variance ≈ 1, symmetric tails", () => {
    const z = got.get(expects.find((e) => e.name.startsWith("random_normal"))!.out)!;
    let s = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (const v of z) {
      s += v;
      s2 += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    const mean = s / NR;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(s2 / NR - mean * mean - 1)).toBeLessThan(0.03);
    // P(|z| > 2) = 0.0455
    expect(Math.abs(beyond2 / NR - 0.0455)).toBeLessThan(0.004);
  });

  it("different streams and seeds give different numbers", () => {
    const byName = (p: string) => got.get(expects.find((e) => e.name.startsWith(p))!.out)!;
    const base = byName("random_uniform: the same").slice(0, 1000);
    for (const other of [byName("random_uniform of another stream"), byName("random_uniform of another seed")]) {
      let same = 0;
      for (let i = 0; i < 1000; i++) if (other[i] === base[i]) same++;
      expect(same).toBeLessThan(5);
    }
  });

  it("the host-side generator reproduces the kernels' numbers", () => {
    const u = got.get(expects.find((e) => e.name.startsWith("random_uniform: the same"))!.out)!;
    const z = got.get(expects.find((e) => e.name.startsWith("random_normal"))!.out)!;
    for (const i of [0, 1, 2, 999, 65_536, NR - 1]) {
      expect(u[i]).toBe(uniformAt(i, 17, 0));
      expect(z[i]).toBeCloseTo(normalAt(i, 17, 0), 5);
    }
  });
});

describe("identities, shape rules and the reference's precision", () => {
  it("slice ∘ pad is the identity; pad ∘ slice masks", () => {
    const h = new Graph();
    const x = h.source("input", "x", f(4, 7));
    const attrs = { starts: [1, 2], steps: [2, 2], shape: [2, 3] };
    const big = { starts: [1, 2], steps: [2, 2], shape: [5, 9] };
    const small = h.source("input", "s", f(2, 3));
    h.output("sp", h.add("slice", [h.add("pad", [small], big)], { ...big, shape: [2, 3] }));
    const ps = h.add("pad", [h.add("slice", [x], attrs)], { ...attrs, shape: [4, 7] });
    const mask = h.add("pad", [constant(h, 1, [2, 3])], { ...attrs, shape: [4, 7] });
    h.output("ps", ps);
    h.output("xm", h.add("mul", [x, mask]));
    const xs = randomTensor([4, 7], r);
    const ss = randomTensor([2, 3], r);
    const o = run(h, { x: xs, s: ss });
    expect(Array.from(o.get("sp")!.data)).toEqual(Array.from(ss.data));
    // (+ 0 turns the mask's −0 = negative·0 into 0)
    expect(Array.from(o.get("ps")!.data)).toEqual(Array.from(o.get("xm")!.data, (v) => v + 0));
    // the six values sit on the lattice, zeros elsewhere
    expect(Array.from(o.get("ps")!.data).filter((v) => v !== 0).length).toBe(6);
  });

  it("gather of a one-row index equals take_along with a broadcast index", () => {
    const h = new Graph();
    const x = h.source("input", "x", f(4, 6));
    const idx = h.source("input", "i", i32(3));
    const viaGather = h.add("gather", [x, idx], { axis: 1 });
    const viaTake = h.add("take_along", [x, broadcastTo(h, h.add("reshape", [idx], { shape: [1, 3] }), [4, 3])], { axis: 1 });
    h.output("a", viaGather);
    h.output("b", viaTake);
    const o = run(h, { x: randomTensor([4, 6], r), i: t([3], [5, 0, 3]) });
    expect(Array.from(o.get("a")!.data)).toEqual(Array.from(o.get("b")!.data));
  });

  it("erf: float64 reference against tabulated values", () => {
    const table: [number, number][] = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [0.1, 0.1124629160182849],
      [3, 0.9999779095030014],
      [-1.5, -0.9661051464753108],
      [1e-8, 1.1283791670955126e-8],
    ];
    for (const [x, v] of table) expect(Math.abs(erf(x) - v)).toBeLessThan(4e-16 * Math.max(1, Math.abs(v)));
    expect(erf(0)).toBe(0);
    expect(erf(7)).toBe(1);
    expect(erf(-30)).toBe(-1);
    expect(Number.isNaN(erf(NaN))).toBe(true);
  });

  it("equal random attributes are one node (CSE-safe: the numbers are a function of the attributes)", () => {
    const h = new Graph();
    const a = h.add("random_uniform", [], { shape: [4], seed: 1, stream: 3 });
    const b = h.add("random_uniform", [], { shape: [4], seed: 1, stream: 3 });
    const c = h.add("random_uniform", [], { shape: [4], seed: 1, stream: 4 });
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it("shape rules reject bad attributes and operands with clear messages", () => {
    const h = new Graph();
    const x = h.source("input", "x", f(4, 5));
    const fi = h.source("input", "fi", f(2));
    const ii = h.source("input", "ii", i32(2));
    const bad: [() => unknown, RegExp][] = [
      [() => h.add("slice", [x], { starts: [0, 3], steps: [1, 2], shape: [4, 2] }), /axis 1.*end at 5, past the size 5/],
      [() => h.add("slice", [x], { starts: [0, 0], steps: [1, 0], shape: [4, 2] }), /step 0 on axis 1 must be ≥ 1/],
      [() => h.add("slice", [x], { starts: [0], steps: [1], shape: [4] }), /'starts' has 1 entries for 2 axes/],
      [() => h.add("pad", [x], { starts: [0, 0], steps: [1, 2], shape: [4, 8] }), /end at 8, past the size 8/],
      [() => h.add("gather", [x, fi], { axis: 0 }), /indices must be i32, got f32\[2\]/],
      [() => h.add("gather", [x, ii], { axis: 2 }), /axis 2 out of range for f32\[4, 5\]/],
      [() => h.add("take_along", [x, h.source("input", "t3", i32(3, 2))], { axis: 1 }), /differ on axis 0/],
      [() => h.add("take_along", [x, ii], { axis: 0 }), /must have the rank of/],
      [() => h.add("cumsum", [h.add("gt", [x, x])], { axis: 0, reverse: false }), /cumsum takes f32, f16 or i32, got bool/],
      [() => h.add("cumsum", [x], { axis: 0, reverse: 1 }), /'reverse' must be true or false/],
      [() => h.add("kth_largest", [x], { axis: 1, k: 6 }), /k = 6 must be in \[1, 5\]/],
      [() => h.add("kth_largest", [x], { axis: 1, k: 0 }), /k = 0 must be in \[1, 5\]/],
      [() => h.add("argmax", [x], { axis: -1 }), /axis -1 out of range/],
      [() => h.add("random_uniform", [], { shape: [3], seed: -1, stream: 0 }), /'seed' must be an integer in \[0, 2\^32\)/],
      [() => h.add("random_normal", [], { shape: [2.5], seed: 0, stream: 0 }), /'shape' must be a list of sizes/],
      [() => h.add("erf", [ii]), /erf takes a float operand, got i32\[2\]/],
    ];
    for (const [thunk, msg] of bad) {
      expect(thunk).toThrow(OpTypeError);
      expect(thunk).toThrow(msg);
    }
  });
});

describe("second derivatives through the new VJPs", () => {
  /** f(x) = ∂/∂x Σ w·op(x): its own VJP is then checked against finite differences. */
  function gradOf(op: (g: Graph, x: number) => number) {
    return (h: Graph, [x]: number[]) => {
      const y = op(h, x);
      const w = constant(h, 0.7, h.type(y).shape);
      const s = reduce(h, "sum", h.add("mul", [h.add("mul", [y, y]), w]), [...h.type(y).shape.keys()]);
      return vjp(h, s, [x])[0];
    };
  }

  it("erf'' (the gradient of a gradient)", () => {
    const res = gradCheck([f(3, 4)], gradOf((h, x) => h.add("erf", [x])), [randomTensor([3, 4], r, -2, 2)]);
    expect(res.maxRelError).toBeLessThan(1e-6);
  });

  /** i32 indices [0, 0, 1, 2, …] built in the graph (repeats exercise the scatter-add's sums) */
  const repeating = (h: Graph, shape: number[], axis: number) => {
    const iota = h.add("iota", [], { shape, axis, dtype: "i32" });
    return h.add("max", [h.add("sub", [iota, constant(h, 1, shape, "i32")]), constant(h, 0, shape, "i32")]);
  };

  it("gather: the scatter-add VJP is differentiable again", () => {
    const res = gradCheck([f(5, 3)], gradOf((h, x) => h.add("gather", [x, repeating(h, [2, 4], 1)], { axis: 0 })), [randomTensor([5, 3], r)]);
    expect(res.maxRelError).toBeLessThan(1e-6);
  });

  it("cumsum and take_along of a gradient", () => {
    const c = gradCheck([f(3, 5)], gradOf((h, x) => h.add("cumsum", [x], { axis: 1, reverse: true })), [randomTensor([3, 5], r)]);
    expect(c.maxRelError).toBeLessThan(1e-6);
    const tk = gradCheck([f(3, 5)], gradOf((h, x) => h.add("take_along", [x, repeating(h, [3, 4], 1)], { axis: 1 })), [randomTensor([3, 5], r)]);
    expect(tk.maxRelError).toBeLessThan(1e-6);
  });
});
