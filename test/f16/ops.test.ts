// Every primitive on f16 operands, lowered to WGSL and run on the WebGPU device (lavapipe
// in CI), against the reference interpreter's f16 semantics (runtime/reference/interpret.ts:
// each f16 node computed in float64, then rounded to the nearest half). The op cases are
// the f32 suite's (test/ops/cases.ts) with every f32 turned into f16, plus casts between
// the float types, long and split reductions, views and each kind of matmul tile.
//
// Tolerance, per element: |gpu − ref| ≤ 2 f16 ulps of the reference value (an ulp is 2^-24
// below 2^-14). Where it comes from: the GPU computes an f16 node in f32 (+ − × min max
// on the halves themselves, which WGSL rounds correctly) and rounds the f32 result to f16;
// the f32 result is within a few f32 ulps of float64 (lavapipe's exp, log, sin… are far
// better than WGSL's bounds), so after rounding it is the reference's half or a
// neighbour; matmul and reductions sum in f32 (error ~K·2^-24 relative), then round once.
// Integer and bool results (casts, comparisons, argmax, argsort) must be exact. Every run
// is poisoned: temporaries start as NaN, so an element no kernel writes fails.
import { beforeAll, describe, expect, it } from "vitest";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { mT, reshape, transpose } from "../../compiler/ops/build.ts";
import { allOps } from "../../compiler/ops/index.ts";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import type { DeviceProfile } from "../../runtime/profile.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { f16Round } from "../../runtime/f16.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";
import { forwardCases, gradCases, type Case } from "../ops/cases.ts";
import { worstExcess } from "./half.ts";

const r = rng(11);

const toHalf = (t: TensorType): TensorType => ({ shape: t.shape, dtype: t.dtype === "f32" ? "f16" : t.dtype });
const halfAttrs = (c: Case) => (c.attrs?.dtype === "f32" ? { ...c.attrs, dtype: "f16" } : c.attrs ?? {});
/** A case is about f16 when an input or its dtype attribute was f32 (random numbers are f32 only). */
const aboutFloats = (c: Case) => !c.op.startsWith("random_") && (c.inputs.some((t) => t.dtype === "f32") || c.attrs?.dtype === "f32");

/** Inputs as the host writes them: f16 values rounded to halves, i32 whole, bool 0/1. */
function valuesFor(t: TensorType, range: [number, number] | undefined): RefTensor {
  const v = randomTensor(t.shape, r, ...(range ?? [-2, 2]));
  if (t.dtype === "f16") v.data.set(v.data.map(f16Round));
  else if (t.dtype === "f32") v.data.set(Float32Array.from(v.data));
  else if (t.dtype === "i32") v.data.set(v.data.map(Math.round));
  else v.data.set(v.data.map((x) => +(x > 0)));
  return v;
}

interface Built {
  name: string;
  out: string;
}

class Suite {
  readonly g = new Graph();
  readonly feeds: Record<string, RefTensor> = {};
  readonly built: Built[] = [];
  private n = 0;
  add(name: string, inputs: TensorType[], ranges: ([number, number] | undefined)[], f: (g: Graph, xs: number[]) => number): void {
    const k = this.n++;
    const xs = inputs.map((t, j) => {
      const src = `c${k}.x${j}`;
      this.feeds[src] = valuesFor(t, ranges[j]);
      return this.g.source("input", src, t);
    });
    this.g.output(`c${k}`, f(this.g, xs));
    this.built.push({ name, out: `c${k}` });
  }
}

const h16 = (...shape: number[]): TensorType => ({ shape, dtype: "f16" });
const f32 = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });

const ops = new Suite();
const label = (c: Case) => `${c.op} ${c.inputs.map((t) => `${t.dtype}[${t.shape.join(",")}]`).join(" ")} ${JSON.stringify(c.attrs ?? {})}`;
for (const c of [...gradCases, ...forwardCases].filter(aboutFloats)) {
  const half: Case = { ...c, inputs: c.inputs.map(toHalf), attrs: halfAttrs(c) };
  ops.add(label(half), half.inputs, c.range ?? [], (g, xs) => g.add(c.op, xs, half.attrs));
}
// between the float types: rounding (ties, overflow to ±Inf, subnormals) and widening
ops.add("cast f32 → f16 past the f16 range", [f32(4, 64)], [[-9e4, 9e4]], (g, [x]) => g.add("cast", [x], { dtype: "f16" }));
ops.add("cast f32 → f16 of subnormal halves", [f32(5, 9)], [[-1e-4, 1e-4]], (g, [x]) => g.add("cast", [x], { dtype: "f16" }));
ops.add("cast f16 → f32", [h16(3, 7)], [[-100, 100]], (g, [x]) => g.add("cast", [x], { dtype: "f32" }));
ops.add("cast f16 → i32 → f16", [h16(3, 7)], [[-300, 300]], (g, [x]) => g.add("cast", [g.add("cast", [x], { dtype: "i32" })], { dtype: "f16" }));
// a product past 65504 overflows to inf in f16, as the reference's rounding does
ops.add("mul overflowing to ±inf", [h16(2, 9), h16(2, 9)], [[200, 400], [-400, 400]], (g, [a, b]) => g.add("mul", [a, b]));
// long reductions: a workgroup per output, and a split into partial sums (kept in f32)
ops.add("sum of 20,000 halves, split over workgroups", [h16(20000)], [[-2, 2]], (g, [x]) => g.add("sum", [x], { axes: [0] }));
ops.add("sum over 3 × 5000 whose halves' sum exceeds 2048 (f16 could not accumulate it)", [h16(3, 5000)], [[0.5, 1.5]], (g, [x]) => g.add("sum", [x], { axes: [1] }));
ops.add("reduce_max of 12,000 halves", [h16(12000)], [[-50, 50]], (g, [x]) => g.add("reduce_max", [x], { axes: [0] }));
ops.add("cumsum of 600 halves (an f32 running sum)", [h16(2, 600)], [[0, 1]], (g, [x]) => g.add("cumsum", [x], { axis: 1, reverse: false }));
// views: operands read through transposes, broadcasts and reshapes without copies
ops.add("matmul of transposed operands (aᵀ @ bᵀ)", [h16(5, 3), h16(4, 5)], [], (g, [a, b]) => g.add("matmul", [mT(g, a), mT(g, b)]));
ops.add("matmul with a broadcast batch operand", [h16(1, 3, 4), h16(6, 4, 2)], [], (g, [a, b]) => g.add("matmul", [g.add("broadcast", [a], { shape: [6, 3, 4] }), b]));
ops.add("sum over a transposed view", [h16(3, 4, 5)], [], (g, [a]) => g.add("sum", [transpose(g, a, [2, 0, 1])], { axes: [0, 2] }));
ops.add("reshape of a transposed view (needs a copy)", [h16(3, 4)], [], (g, [a]) => g.add("exp", [reshape(g, transpose(g, a, [1, 0]), [2, 6])]));
ops.add("an f16 constant inside exp", [h16(2, 2)], [], (g, [a]) => g.add("mul", [a, g.add("exp", [g.add("const", [], { value: 3.1, shape: [2, 2], dtype: "f16" })])]));
ops.add("f16 constants: subnormal, past the range (inf), and one that rounds", [h16(3, 3)], [], (g, [a]) => {
  const c = (value: number) => g.add("const", [], { value, shape: [3, 3], dtype: "f16" });
  return g.add("add", [g.add("mul", [a, c(3e-6)]), g.add("min", [c(1e5), c(0.1)])]);
});
// (±inf and NaN have no WGSL literal and fail in constant expressions: they come from bits at run time)
ops.add("f16 constants ±inf and NaN", [h16(2, 3)], [], (g, [a]) => {
  const c = (value: number) => g.add("const", [], { value, shape: [2, 3], dtype: "f16" });
  return g.add("add", [g.add("max", [a, c(-Infinity)]), g.add("min", [c(Infinity), g.add("where", [g.add("gt", [a, c(5)]), c(NaN), c(-0)])])]);
});
ops.add("f32 constants ±inf and NaN", [f32(2, 3)], [], (g, [a]) => {
  const c = (value: number) => g.add("const", [], { value, shape: [2, 3], dtype: "f32" });
  return g.add("add", [g.add("max", [a, c(-Infinity)]), g.add("min", [c(Infinity), g.add("where", [g.add("gt", [a, c(5)]), c(NaN), c(1)])])]);
});
ops.add("f16 NaN constant where it is taken", [h16(2, 3)], [[6, 7]], (g, [a]) => {
  const c = (value: number) => g.add("const", [], { value, shape: [2, 3], dtype: "f16" });
  return g.add("where", [g.add("gt", [a, c(5)]), c(NaN), a]);
});
ops.add("an odd number of halves (buffers padded to 4 bytes)", [h16(7), h16(7)], [], (g, [a, b]) => g.add("sub", [a, b]));

describe("f16 primitives on the GPU match the reference's f16 rounding", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(ops.g, ops.feeds, ops.built.map((b) => b.out)));
  }, 300_000);

  it("every primitive that takes or makes floats has an f16 case", () => {
    const covered = new Set(ops.g.nodes.map((n) => n.op));
    // sources are fed, random numbers are f32 only, and not/and/or take bools
    const none = new Set(["input", "param", "state", "random_uniform", "random_normal", "not", "and", "or"]);
    expect(allOps().map((op) => op.name).filter((name) => !none.has(name) && !covered.has(name))).toEqual([]);
  });

  for (const b of ops.built) {
    it(b.name, () => {
      const w = want.get(b.out)!;
      const o = got.get(b.out)!;
      expect(o.length).toBe(w.data.length);
      const { excess, at } = worstExcess(o, w.data, ops.g.type(ops.g.outputs.get(b.out)!).dtype);
      expect(excess, at >= 0 ? `element ${at}: gpu ${o[at]} vs reference ${w.data[at]}` : "").toBeLessThanOrEqual(0);
    });
  }
});

// Each matmul kernel shape on f16 operands: register-blocked (with and without vec4
// loads, which read vec4<f16>) and shared-memory tiles, at odd sizes, batched, transposed.
const TILES = ["8x8:8x4", "8x8:4x4", "16x16:4x4:k16"];
const mm = new Suite();
for (const [m, k, n] of [[37, 64, 29], [33, 19, 65], [4, 8, 12], [1, 129, 3]]) {
  mm.add(`[${m}×${k}] @ [${k}×${n}]`, [h16(m, k), h16(k, n)], [[-1, 1], [-1, 1]], (g, [a, b]) => g.add("matmul", [a, b]));
}
mm.add("batched, b transposed: [3, 20×16] @ [3, 24×16]ᵀ", [h16(3, 20, 16), h16(3, 24, 16)], [[-1, 1], [-1, 1]], (g, [a, b]) => g.add("matmul", [a, mT(g, b)]));
mm.add("with a fused epilogue: tanh(a @ b + c) in f16", [h16(21, 32), h16(32, 17), h16(17)], [[-1, 1], [-1, 1], [-1, 1]], (g, [a, b, c]) =>
  g.add("tanh", [g.add("add", [g.add("matmul", [a, b]), g.add("broadcast", [c], { shape: [21, 17] })])]),
);

describe.each(TILES)("f16 matmul with tile %s", (tile) => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(mm.g, mm.feeds, mm.built.map((b) => b.out), () => ({ matmulTile: tile })));
  }, 300_000);
  for (const b of mm.built) {
    it(b.name, () => {
      const w = want.get(b.out)!;
      const o = got.get(b.out)!;
      const { excess, at } = worstExcess(o, w.data, "f16");
      expect(excess, at >= 0 ? `element ${at}: gpu ${o[at]} vs reference ${w.data[at]}` : "").toBeLessThanOrEqual(0);
    });
  }
});

// Long f16 reductions compiled for this device: with `subgroups` (lavapipe has them) the
// workgroup folds its f32 accumulators with subgroupAdd / subgroupMax.
const red = new Suite();
red.add("sum over 3 × 5000", [h16(3, 5000)], [[-2, 2]], (g, [x]) => g.add("sum", [x], { axes: [1] }));
red.add("sum of 20,000, split", [h16(20000)], [[-2, 2]], (g, [x]) => g.add("sum", [x], { axes: [0] }));
red.add("reduce_max over 2000 × 3", [h16(2000, 3)], [[-50, 50]], (g, [x]) => g.add("reduce_max", [x], { axes: [0] }));
red.add("reduce_min of exp over 40 × 50", [h16(40, 50)], [[-3, 3]], (g, [x]) => g.add("reduce_min", [g.add("exp", [x])], { axes: [0, 1] }));

describe("f16 reductions compiled for this device", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  let profile: DeviceProfile;
  beforeAll(async () => {
    ({ got, want } = await runBoth(red.g, red.feeds, red.built.map((b) => b.out), (h) => {
      profile = h.profile;
      return { device: h.profile };
    }));
  }, 300_000);
  it("folds with subgroup operations where the device has them", () => {
    const wgsl = compileBundle(red.g, { device: profile }).kernels.map((k) => k.wgsl).join("\n");
    expect(/subgroupAdd\(acc\)/.test(wgsl)).toBe(profile.features.includes("subgroups"));
  });
  for (const b of red.built) {
    it(b.name, () => {
      const w = want.get(b.out)!;
      const o = got.get(b.out)!;
      const { excess, at } = worstExcess(o, w.data, "f16");
      expect(excess, at >= 0 ? `element ${at}: gpu ${o[at]} vs reference ${w.data[at]}` : "").toBeLessThanOrEqual(0);
    });
  }
});
