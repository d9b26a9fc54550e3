// Every primitive's WGSL lowering against the float64 reference interpreter, on the
// WebGPU device (lavapipe in CI). All cases go into one bundle, so one load creates
// every pipeline. Tolerance: |gpu − ref| ≤ 2e-5·|ref| + 2e-6 for f32 (float32 rounding
// of the inputs and of the transcendental functions); integer and bool results exact.
import { beforeAll, describe, expect, it } from "vitest";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { allOps } from "../../compiler/ops/index.ts";
import { mT, reshape, transpose } from "../../compiler/ops/build.ts";
import type { HostArray } from "../../runtime/backend.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";
import { forwardCases, gradCases, type Case } from "./cases.ts";

const r = rng(7);

interface Built {
  name: string;
  out: string;
}

/** f32 inputs are rounded to float32 first, so both back ends see the same values. */
function valuesFor(t: TensorType, range: [number, number] | undefined): RefTensor {
  const v = randomTensor(t.shape, r, ...(range ?? [-2, 2]));
  if (t.dtype === "f32") v.data.set(Float32Array.from(v.data));
  else if (t.dtype === "i32") v.data.set(v.data.map(Math.round));
  else v.data.set(v.data.map((x) => +(x > 0)));
  return v;
}

const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const built: Built[] = [];
let n = 0;
function add(name: string, inputs: TensorType[], ranges: ([number, number] | undefined)[], f: (xs: number[]) => number): void {
  const k = n++;
  const xs = inputs.map((t, j) => {
    const src = `c${k}.x${j}`;
    feeds[src] = valuesFor(t, ranges[j]);
    return g.source("input", src, t);
  });
  g.output(`c${k}`, f(xs));
  built.push({ name, out: `c${k}` });
}

const label = (c: Case) => `${c.op} ${c.inputs.map((t) => `${t.dtype}[${t.shape.join(",")}]`).join(" ")} ${JSON.stringify(c.attrs ?? {})}`;
for (const c of [...gradCases, ...forwardCases]) add(label(c), c.inputs, c.range ?? [], (xs) => g.add(c.op, xs, c.attrs ?? {}));

// Views: operands read through transposes, broadcasts and reshapes without copies.
const f = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });
add("matmul of transposed operands (aᵀ @ bᵀ)", [f(5, 3), f(4, 5)], [], ([a, b]) => g.add("matmul", [mT(g, a), mT(g, b)]));
add("matmul with a broadcast batch operand", [f(1, 3, 4), f(6, 4, 2)], [], ([a, b]) => g.add("matmul", [g.add("broadcast", [a], { shape: [6, 3, 4] }), b]));
add("sum over a transposed view", [f(3, 4, 5)], [], ([a]) => g.add("sum", [transpose(g, a, [2, 0, 1])], { axes: [0, 2] }));
add("reshape of a transposed view (needs a copy)", [f(3, 4)], [], ([a]) => g.add("exp", [reshape(g, transpose(g, a, [1, 0]), [2, 6])]));
add("reshape merging contiguous axes of a transposed view", [f(2, 3, 4)], [], ([a]) => g.add("neg", [reshape(g, transpose(g, a, [2, 0, 1]), [4, 6])]));
add("broadcast of a scalar const inside exp", [f(2, 2)], [], ([a]) => g.add("mul", [a, g.add("exp", [g.add("const", [], { value: 30, shape: [2, 2], dtype: "f32" })])]));
add("reduce_max over a broadcast (stride-0) axis", [f(3, 1)], [], ([a]) => g.add("reduce_max", [g.add("broadcast", [a], { shape: [3, 5] })], { axes: [1] }));
// More workgroups than one grid dimension allows: 65,535 × 64 < 4.2M elements.
add("add over 4,200,000 elements (2-D dispatch grid)", [f(4_200_000)], [], ([a]) => g.add("add", [a, a]));

describe("WGSL lowering matches the reference interpreter", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, built.map((b) => b.out)));
  });

  for (const b of built) {
    it(b.name, () => {
      const w = want.get(b.out)!;
      const o = got.get(b.out)!;
      expect(o.length).toBe(w.data.length);
      const dtype = g.type(g.outputs.get(b.out)!).dtype;
      let worst = 0;
      let at = -1;
      for (let i = 0; i < w.data.length; i++) {
        const err = Math.abs(o[i] - w.data[i]) - (dtype === "f32" ? 2e-5 * Math.abs(w.data[i]) + 2e-6 : 0);
        if (err > worst || Number.isNaN(o[i])) {
          worst = Number.isNaN(o[i]) ? Infinity : err;
          at = i;
        }
      }
      expect(worst, at >= 0 ? `element ${at}: gpu ${o[at]} vs reference ${w.data[at]}` : "").toBeLessThanOrEqual(0);
    });
  }

  it("every primitive with a lowering is covered", () => {
    const covered = new Set([...gradCases, ...forwardCases].map((c) => c.op));
    const missing = allOps()
      .filter((op) => op.lower.kind !== "source")
      .map((op) => op.name)
      .filter((name) => !covered.has(name));
    expect(missing).toEqual([]);
  });
});
