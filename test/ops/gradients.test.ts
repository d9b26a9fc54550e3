// Every differentiable primitive's VJP against float64 central finite differences of
// the reference interpreter. Adding an op to the registry without a case here fails
// the completeness test at the bottom.
import { describe, expect, it } from "vitest";
import { allOps } from "../../compiler/ops/index.ts";
import type { Attrs, Graph, TensorType } from "../../compiler/ir/graph.ts";
import { gradCheck, randomTensor, rng } from "../util/graphs.ts";

interface Case {
  op: string;
  inputs: TensorType[];
  attrs?: Attrs;
  /** value range per input (default [-2, 2]) */
  range?: [number, number][];
}

const f = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });
const pos: [number, number] = [0.3, 2.5];

export const gradCases: Case[] = [
  ...["neg", "exp", "tanh", "sigmoid", "softplus", "sin", "cos"].map((op) => ({ op, inputs: [f(3, 4)] })),
  { op: "log", inputs: [f(3, 4)], range: [pos] },
  { op: "sqrt", inputs: [f(3, 4)], range: [pos] },
  { op: "rsqrt", inputs: [f(3, 4)], range: [pos] },
  // away from the kink at 0, where the derivative is undefined
  { op: "abs", inputs: [f(3, 4)], range: [[0.2, 2]] },
  { op: "relu", inputs: [f(3, 4)], range: [[0.2, 2]] },
  ...["add", "sub", "mul"].map((op) => ({ op, inputs: [f(2, 5), f(2, 5)] })),
  { op: "div", inputs: [f(2, 5), f(2, 5)], range: [[-2, 2], pos] },
  { op: "pow", inputs: [f(2, 5), f(2, 5)], range: [pos, [-1.5, 1.5]] },
  // distinct ranges so there are no ties
  { op: "max", inputs: [f(2, 5), f(2, 5)], range: [[-2, 0], [0.1, 2]] },
  { op: "min", inputs: [f(2, 5), f(2, 5)], range: [[-2, 0], [0.1, 2]] },
  { op: "broadcast", inputs: [f(3, 1)], attrs: { shape: [2, 3, 4] } },
  { op: "reshape", inputs: [f(3, 4)], attrs: { shape: [2, 6] } },
  { op: "transpose", inputs: [f(2, 3, 4)], attrs: { perm: [2, 0, 1] } },
  { op: "sum", inputs: [f(2, 3, 4)], attrs: { axes: [0, 2] } },
  { op: "reduce_max", inputs: [f(2, 3, 4)], attrs: { axes: [1] } },
  { op: "reduce_min", inputs: [f(2, 3, 4)], attrs: { axes: [0, 1] } },
  { op: "matmul", inputs: [f(2, 3, 4), f(2, 4, 5)] },
  { op: "matmul", inputs: [f(1, 7), f(7, 1)] },
];

const r = rng(42);
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
