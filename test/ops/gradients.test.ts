// Every differentiable primitive's VJP against float64 central finite differences of
// the reference interpreter. Adding an op to the registry without a case here fails
// the completeness test at the bottom.
import { describe, expect, it } from "vitest";
import { allOps } from "../../compiler/ops/index.ts";
import type { Graph, TensorType } from "../../compiler/ir/graph.ts";
import { gradCheck, randomTensor, rng } from "../util/graphs.ts";
import { gradCases } from "./cases.ts";

const r = rng(42);
const f = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });
describe("VJP of every primitive matches float64 central differences", () => {
  for (const c of gradCases) {
    it(`${c.op} ${c.inputs.map((t) => `[${t.shape.join(",")}]`).join(" ")} ${JSON.stringify(c.attrs ?? {})}`, () => {
      const values = c.inputs.map((t, k) => randomTensor(t.shape, r, ...(c.range?.[k] ?? [-2, 2])));
      const res = gradCheck(c.inputs, (g: Graph, xs) => g.add(c.op, xs, c.attrs ?? {}), values);
      expect(res.maxRelError).toBeLessThan(1e-6);
    });
  }

  it("where: gradient flows to the chosen branch only", () => {
    const values = [randomTensor([3, 4], r), randomTensor([3, 4], r), randomTensor([3, 4], r)];
    const res = gradCheck([f(3, 4), f(3, 4), f(3, 4)], (g, [c, a, b]) => g.add("where", [g.add("gt", [c, g.add("const", [], { value: 0, shape: [3, 4], dtype: "f32" })]), a, b]), values);
    expect(res.maxRelError).toBeLessThan(1e-6);
  });

  it("every differentiable primitive has a case", () => {
    const covered = new Set([...gradCases.map((c) => c.op), "where", "cast"]);
    const missing = allOps()
      .filter((op) => op.vjp && !op.zeroGrad && op.arity > 0 && !["stop", "input", "param", "state"].includes(op.name))
      .map((op) => op.name)
      .filter((n) => !covered.has(n));
    expect(missing).toEqual([]);
  });
});
