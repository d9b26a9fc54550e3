// Long reductions on the GPU: a workgroup per output, folding in shared memory (any
// device) or with subgroup operations (where the device has the `subgroups` feature);
// long reductions over few outputs split over several workgroups and a second pass.
// Both bundles run here when the adapter has subgroups (lavapipe does).
// Reference: the float64 interpreter. Tolerance for sums: 1e-6·Σ|x| (f32 accumulation
// over at most a few thousand terms per thread, tree and second pass included); max
// and min of f32 inputs are exact, through exp() 1e-6 relative.
import { beforeAll, describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { reduce } from "../../compiler/ops/build.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";

const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const r = rng(11);
let n = 0;
function input(shape: number[], dtype: "f32" | "i32" = "f32"): number {
  const name = `x${n++}`;
  const t = randomTensor(shape, r, dtype === "i32" ? -1000 : -2, dtype === "i32" ? 1000 : 2);
  t.data.set(dtype === "i32" ? t.data.map(Math.round) : Float32Array.from(t.data));
  feeds[name] = t;
  return g.source("input", name, { shape, dtype });
}

interface Case {
  name: string;
  out: string;
  /** Σ|x| per output, for sums; undefined: max or min */
  abs?: (i: number) => number;
  exact?: boolean;
}
const cases: Case[] = [];
/** Σ|x| over the rows of a row-major [rows, R] input, per row. */
const absRows = (x: number, R: number) => (i: number) => {
  const d = feeds[`x${x}`].data;
  let s = 0;
  for (let k = 0; k < R; k++) s += Math.abs(d[i * R + k]);
  return s;
};

{
  const x = input([3, 5000]);
  g.output("sum_rows", reduce(g, "sum", x, [1]));
  cases.push({ name: "sum over 5000, 3 rows (one workgroup each)", out: "sum_rows", abs: absRows(0, 5000) });
}
{
  const x = input([4, 70000]);
  g.output("sum_split", reduce(g, "sum", x, [1]));
  cases.push({ name: "sum over 70000, 4 rows (split, two passes)", out: "sum_split", abs: absRows(1, 70000) });
}
{
  const x = input([2, 3000, 7]);
  g.output("max_mid", g.add("reduce_max", [g.add("exp", [x])], { axes: [1] }));
  cases.push({ name: "max of exp(x) over a middle axis (a fused prologue, strided reads)", out: "max_mid" });
}
{
  const x = input([40, 3, 50]);
  g.output("min_outer", g.add("reduce_min", [x], { axes: [0, 2] }));
  cases.push({ name: "min over two axes (2000 elements)", out: "min_outer", exact: true });
}
{
  const x = input([3, 2000], "i32");
  g.output("isum", reduce(g, "sum", x, [1]));
  g.output("imax", g.add("reduce_max", [x], { axes: [1] }));
  cases.push({ name: "i32 sum over 2000", out: "isum", exact: true }, { name: "i32 max over 2000", out: "imax", exact: true });
}
{
  // 16M elements to one scalar: 2048 workgroups (256 on a CPU adapter), then one more pass over their partials.
  const x = input([4096, 4096]);
  g.output("sum_16m", reduce(g, "sum", x, [0, 1]));
  g.output("max_16m", g.add("reduce_max", [x], { axes: [0, 1] }));
  cases.push({ name: "sum of 16M elements to a scalar (two passes)", out: "sum_16m", abs: absRows(5, 4096 * 4096) });
  cases.push({ name: "max of 16M elements to a scalar (two passes)", out: "max_16m", exact: true });
}

function check(got: Map<string, HostArray>, want: Map<string, RefTensor>, c: Case) {
  const w = want.get(c.out)!.data;
  const o = got.get(c.out)!;
  expect(o.length).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    const tol = c.exact ? 0 : c.abs ? 1e-6 * c.abs(i) : 1e-6 * Math.abs(w[i]);
    expect(Math.abs(o[i] - w[i]), `${c.out}[${i}]: ${o[i]} vs ${w[i]}`).toBeLessThanOrEqual(tol);
  }
}

const paths: [string, (h: GpuHandle) => { device: typeof PORTABLE }][] = [
  ["shared memory (portable bundle)", () => ({ device: PORTABLE })],
  ["for the device (subgroups where it has them)", (h) => ({ device: h.profile })],
];

describe.each(paths)("long reductions, %s", (_label, options) => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.out), options));
  }, 120_000);
  for (const c of cases) it(c.name, () => check(got, want, c));
});

describe("reduction kernels", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });

  it("use subgroup operations only where the device has them", () => {
    const portable = compileBundle(g, { device: PORTABLE });
    expect(portable.kernels.some((k) => k.wgsl.includes("subgroup"))).toBe(false);
    const sub = compileBundle(g, { device: { ...PORTABLE, features: ["subgroups"] } });
    const wgsl = sub.kernels.map((k) => k.wgsl).join("\n");
    for (const op of ["subgroupAdd", "subgroupMax", "subgroupMin"]) expect(wgsl).toContain(op);
    expect(wgsl).toContain("enable subgroups;");
    // lavapipe has subgroups: the second suite above ran them (else it ran shared memory again)
    expect(compileBundle(g, { device: h.profile }).kernels.some((k) => k.wgsl.includes("subgroupAdd"))).toBe(h.features.includes("subgroups"));
  });

  it("split long reductions over few outputs into two passes", () => {
    const b = compileBundle(g, { device: PORTABLE });
    const names = b.kernels.map((k) => k.name);
    // sum_split, sum_16m and max_16m each get a second pass over their partial results
    expect(names.filter((k) => k.endsWith("_partials"))).toHaveLength(3);
    const first = b.kernels.find((k) => k.wgsl.includes("2048 workgroups per output"));
    expect(first?.workgroups).toEqual([2048, 1, 1]);
  });
});
