// Dispatches past 65,535 workgroups (WebGPU's per-dimension limit, which every device
// offers): every kernel kind numbers its workgroups over a 2-D grid. Each case here needs
// more than 65,535 workgroups, runs on the device, and is compared with the float64
// reference interpreter — except the long reduction over 66,000 rows, whose input
// (66,000 × 1024 broadcast products) would take the interpreter 0.5 GB: it is checked
// against its closed form, Σ_j x_i·y_j = x_i·Σ_j y_j.
import { beforeAll, describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";

const LIMIT = 65535;
const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const r = rng(5);
function input(name: string, shape: number[], dtype: "f32" | "i32" = "f32", lo = -2, hi = 2): number {
  const t = randomTensor(shape, r, lo, hi);
  t.data.set(dtype === "i32" ? t.data.map(Math.floor) : Float32Array.from(t.data));
  feeds[name] = t;
  return g.source("input", name, { shape, dtype });
}

const BIG = LIMIT * 64 + 37; // one thread per element, 64 per workgroup: 65,536 workgroups
const cases: { name: string; out: string; tol: number }[] = [];
{
  const x = input("ew", [BIG]);
  g.output("elementwise", g.add("add", [g.add("mul", [x, x]), x]));
  cases.push({ name: `elementwise over ${BIG} elements`, out: "elementwise", tol: 1e-6 });
}
{
  const x = input("rows", [BIG, 2]);
  g.output("short_rows", g.add("sum", [x], { axes: [1] }));
  cases.push({ name: `sum over 2 of ${BIG} rows (a thread per row)`, out: "short_rows", tol: 1e-6 });
  g.output("cumsum", g.add("cumsum", [x], { axis: 1, reverse: false }));
  cases.push({ name: `cumsum along rows of length 2, ${BIG} rows`, out: "cumsum", tol: 1e-6 });
}
{
  const x = input("table", [100, 3]);
  const idx = input("idx", [1_400_000], "i32", 0, 100);
  g.output("gather", g.add("gather", [x, idx], { axis: 0 }));
  cases.push({ name: "gather of 1.4M rows of 3 (4.2M outputs)", out: "gather", tol: 0 });
}
{
  // 70,000 products of [5×3] @ [3×7], the right operand broadcast over the batch: a workgroup each
  const a = input("ma", [70_000, 5, 3]);
  const b = input("mb", [3, 7]);
  g.output("matmul", g.add("matmul", [a, g.add("broadcast", [b], { shape: [70_000, 3, 7] })]));
  cases.push({ name: "matmul over a batch of 70,000 (broadcast right operand)", out: "matmul", tol: 1e-5 * 4 * 3 });
}

describe(`dispatches over ${LIMIT} workgroups`, () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.out)));
  }, 120_000);

  it("need a 2-D grid for every kernel", () => {
    const b = compileBundle(g, { device: PORTABLE });
    for (const k of b.kernels) {
      expect(k.workgroups[0], k.name).toBeLessThanOrEqual(LIMIT);
      expect(k.workgroups[1], k.name).toBeGreaterThan(1);
    }
  });

  for (const c of cases) {
    it(c.name, () => {
      const w = want.get(c.out)!.data;
      const o = got.get(c.out)!;
      expect(o.length).toBe(w.length);
      let worst = 0;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(o[i] - w[i]) / Math.max(1, Math.abs(w[i])));
      expect(worst).toBeLessThanOrEqual(c.tol);
    });
  }

  it("a long reduction over 66,000 rows (a workgroup per row)", async () => {
    const rows = 66_000;
    const R = 1024;
    const h = new Graph();
    const x = h.source("input", "x", { shape: [rows, 1], dtype: "f32" });
    const y = h.source("input", "y", { shape: [1, R], dtype: "f32" });
    const xy = h.add("mul", [h.add("broadcast", [x], { shape: [rows, R] }), h.add("broadcast", [y], { shape: [rows, R] })]);
    h.output("sum", h.add("sum", [xy], { axes: [1] }));
    h.output("max", h.add("reduce_max", [xy], { axes: [1] }));
    const bundle = compileBundle(h, { device: PORTABLE });
    expect(bundle.kernels.every((k) => k.workgroups[1] > 1)).toBe(true);
    const X = Float32Array.from({ length: rows }, () => 4 * r() - 2);
    const Y = Float32Array.from({ length: R }, () => 4 * r() - 2);
    const be = await GpuBackend.load(await gpu(), bundle);
    try {
      be.write("x", X);
      be.write("y", Y);
      const out = await be.run(["sum", "max"]);
      let sy = 0, sabs = 0, ymax = -Infinity, ymin = Infinity;
      for (const v of Y) {
        sy += v;
        sabs += Math.abs(v);
        ymax = Math.max(ymax, v);
        ymin = Math.min(ymin, v);
      }
      const sum = out.get("sum")!;
      const max = out.get("max")!;
      for (let i = 0; i < rows; i++) {
        expect(Math.abs(sum[i] - X[i] * sy)).toBeLessThanOrEqual(1e-6 * Math.abs(X[i]) * sabs + 1e-30);
        const m = X[i] >= 0 ? X[i] * ymax : X[i] * ymin;
        expect(Math.abs(max[i] - m)).toBeLessThanOrEqual(1e-6 * Math.abs(m));
      }
    } finally {
      be.destroy();
    }
  });
});
