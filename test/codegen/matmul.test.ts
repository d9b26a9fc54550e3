// The register-blocked matmul over a grid of shapes (1×N, N×1, primes, sizes that are
// not multiples of the 4×4 block), batched, with transposed operands read through views.
// Reference: the float64 interpreter; tolerance 1e-5·Σ|a||b| per element (f32 accumulation).
import { beforeAll, describe, expect, it } from "vitest";
import { Graph } from "../../compiler/ir/graph.ts";
import { mT } from "../../compiler/ops/build.ts";
import type { HostArray } from "../../runtime/backend.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";

const sizes = [1, 3, 4, 5, 17, 64];
const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const cases: { name: string; out: string; k: number }[] = [];
const r = rng(3);
let n = 0;
function input(shape: number[]): number {
  const name = `x${n++}`;
  const t = randomTensor(shape, r);
  t.data.set(Float32Array.from(t.data));
  feeds[name] = t;
  return g.source("input", name, { shape, dtype: "f32" });
}
for (const M of sizes) {
  for (const N of sizes) {
    for (const K of [1, 7, 64]) {
      const out = `m${M}n${N}k${K}`;
      g.output(out, g.add("matmul", [input([M, K]), input([K, N])]));
      cases.push({ name: `[${M}, ${K}] @ [${K}, ${N}]`, out, k: K });
    }
  }
}
const batched = g.add("matmul", [input([3, 5, 9]), input([3, 9, 6])]);
g.output("batched", batched);
cases.push({ name: "batched [3, 5, 9] @ [3, 9, 6]", out: "batched", k: 9 });
g.output("transposed", g.add("matmul", [mT(g, input([2, 13, 7])), mT(g, input([2, 11, 13]))]));
cases.push({ name: "transposed operands [2, 7, 13]ᵀ-views", out: "transposed", k: 13 });
g.output("broadcast", g.add("matmul", [g.add("broadcast", [input([1, 6, 5])], { shape: [4, 6, 5] }), input([4, 5, 3])]));
cases.push({ name: "broadcast batch operand", out: "broadcast", k: 5 });

describe("matmul on the GPU", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.out)));
  });
  for (const c of cases) {
    it(c.name, () => {
      const w = want.get(c.out)!.data;
      const o = got.get(c.out)!;
      expect(o.length).toBe(w.length);
      // inputs are in [-2, 2]: |Σ a·b| ≤ 4K, f32 accumulation error ≲ K·2^-24·4K
      for (let i = 0; i < w.length; i++) expect(Math.abs(o[i] - w[i])).toBeLessThanOrEqual(1e-5 * 4 * c.k + 1e-6);
    });
  }
});
