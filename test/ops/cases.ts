// Op cases shared by the gradient and the GPU suites: inputs, attributes, value ranges.
import type { Attrs, TensorType } from "../../compiler/ir/graph.ts";

export interface Case {
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


const i32 = (...shape: number[]): TensorType => ({ shape, dtype: "i32" });
const bool = (...shape: number[]): TensorType => ({ shape, dtype: "bool" });

/** Ops (and dtypes) with no gradient to check, evaluated forward only. */
export const forwardCases: Case[] = [
  ...["sign", "floor", "is_finite"].map((op) => ({ op, inputs: [f(5, 7)], range: [[-3, 3]] as [number, number][] })),
  ...["lt", "le", "gt", "ge", "eq", "ne"].map((op) => ({ op, inputs: [f(4, 6), f(4, 6)] })),
  // integer arithmetic and comparisons
  ...["add", "sub", "mul", "max", "min", "neg", "abs", "eq", "lt"].map((op) => ({ op, inputs: op === "neg" || op === "abs" ? [i32(4, 5)] : [i32(4, 5), i32(4, 5)], range: [[-50, 50], [-50, 50]] as [number, number][] })),
  { op: "div", inputs: [i32(4, 5), i32(4, 5)], range: [[-50, 50], [1, 9]] },
  ...["and", "or"].map((op) => ({ op, inputs: [bool(3, 5), bool(3, 5)] })),
  { op: "not", inputs: [bool(3, 5)] },
  { op: "where", inputs: [bool(4, 3), f(4, 3), f(4, 3)] },
  { op: "cast", inputs: [f(4, 5)], attrs: { dtype: "i32" }, range: [[-9, 9]] },
  { op: "cast", inputs: [i32(4, 5)], attrs: { dtype: "f32" }, range: [[-9, 9]] },
  { op: "cast", inputs: [bool(4, 5)], attrs: { dtype: "f32" } },
  { op: "cast", inputs: [f(4, 5)], attrs: { dtype: "bool" }, range: [[-1, 1]] },
  { op: "iota", inputs: [], attrs: { shape: [3, 4, 5], axis: 1, dtype: "i32" } },
  { op: "iota", inputs: [], attrs: { shape: [7], axis: 0, dtype: "f32" } },
  { op: "const", inputs: [], attrs: { value: 2.5, shape: [2, 3], dtype: "f32" } },
  { op: "sum", inputs: [i32(3, 4)], attrs: { axes: [1] }, range: [[-9, 9]] },
  { op: "reduce_max", inputs: [i32(3, 4)], attrs: { axes: [0] }, range: [[-9, 9]] },
  { op: "stop", inputs: [f(3, 2)] },
  // odd sizes, and a reduction over every axis
  { op: "sum", inputs: [f(7, 13, 3)], attrs: { axes: [0, 1, 2] } },
  { op: "matmul", inputs: [f(3, 1, 17), f(3, 17, 13)] },
  { op: "matmul", inputs: [f(13, 1), f(1, 11)] },
];

// ---- indexing, scans, selections, random numbers, erf (compiler/ops/{indexing,scan,random,special}.ts)
// i32 index inputs reach past both ends of the axis, so the clamp is exercised (the
// gradient suite feeds them unrounded: the ops truncate toward zero, as i32 does).
gradCases.push(
  { op: "slice", inputs: [f(5, 7)], attrs: { starts: [1, 0], steps: [2, 3], shape: [2, 3] } },
  { op: "slice", inputs: [f(2, 3, 4)], attrs: { starts: [0, 1, 1], steps: [1, 1, 1], shape: [2, 2, 3] } },
  { op: "pad", inputs: [f(2, 3)], attrs: { starts: [1, 0], steps: [2, 3], shape: [5, 8] } },
  { op: "pad", inputs: [f(3)], attrs: { starts: [2], steps: [1], shape: [7] } },
  { op: "concat", inputs: [f(1, 3, 2), f(2, 3, 2), f(1, 3, 2)], attrs: { axis: 0 } },
  { op: "concat", inputs: [f(2, 3), f(2, 1), f(2, 4)], attrs: { axis: 1 } },
  { op: "gather", inputs: [f(5, 3), i32(2, 4)], attrs: { axis: 0 }, range: [[-2, 2], [-1.4, 5.4]] },
  { op: "gather", inputs: [f(2, 6, 3), i32(4)], attrs: { axis: 1 }, range: [[-2, 2], [0, 6.4]] },
  { op: "gather", inputs: [f(3, 7), i32(2, 2)], attrs: { axis: 1 }, range: [[-2, 2], [-1, 7]] },
  { op: "gather", inputs: [f(3, 4), i32()], attrs: { axis: 0 }, range: [[-2, 2], [0, 2.9]] },
  { op: "take_along", inputs: [f(3, 5), i32(3, 2)], attrs: { axis: 1 }, range: [[-2, 2], [-1.4, 5.4]] },
  { op: "take_along", inputs: [f(4, 3, 2), i32(4, 5, 2)], attrs: { axis: 1 }, range: [[-2, 2], [0, 2.9]] },
  { op: "take_along", inputs: [f(6, 3), i32(2, 3)], attrs: { axis: 0 }, range: [[-2, 2], [0, 5.9]] },
  { op: "cumsum", inputs: [f(3, 5)], attrs: { axis: 1, reverse: false } },
  { op: "cumsum", inputs: [f(4, 3, 2)], attrs: { axis: 0, reverse: true } },
  { op: "cumsum", inputs: [f(7)], attrs: { axis: 0, reverse: false } },
  { op: "cumsum", inputs: [f(2, 9, 3)], attrs: { axis: 1, reverse: true } },
  { op: "erf", inputs: [f(3, 4)], range: [[-3, 3]] },
  { op: "erf", inputs: [f(17)], range: [[-0.9, 0.9]] },
  { op: "erfc", inputs: [f(3, 4)], range: [[-3, 3]] },
  // the tail (where erfc is tiny and 1 − erf would have cancelled)
  { op: "erfc", inputs: [f(33)], range: [[0, 9]] },
);

forwardCases.push(
  { op: "argmax", inputs: [f(5, 7)], attrs: { axis: 1 } },
  { op: "argmax", inputs: [f(4, 3, 6)], attrs: { axis: 0 } },
  { op: "argmax", inputs: [f(13)], attrs: { axis: 0 } },
  // small integers: many ties, which go to the first
  { op: "argmax", inputs: [i32(6, 9)], attrs: { axis: 1 }, range: [[-2, 2]] },
  { op: "kth_largest", inputs: [f(4, 9)], attrs: { axis: 1, k: 3 } },
  { op: "kth_largest", inputs: [f(6, 3, 5)], attrs: { axis: 0, k: 6 } },
  { op: "kth_largest", inputs: [f(7, 1)], attrs: { axis: 0, k: 1 } },
  { op: "kth_largest", inputs: [i32(5, 8)], attrs: { axis: 1, k: 4 }, range: [[-3, 3]] },
  { op: "random_uniform", inputs: [], attrs: { shape: [7, 13], seed: 1, stream: 0 } },
  { op: "random_uniform", inputs: [], attrs: { shape: [1000], seed: 123456789, stream: 4294967295 } },
  { op: "random_normal", inputs: [], attrs: { shape: [3, 333], seed: 3, stream: 2 } },
  { op: "slice", inputs: [i32(6, 5)], attrs: { starts: [5, 1], steps: [1, 3], shape: [1, 2] }, range: [[-50, 50]] },
  { op: "slice", inputs: [bool(4, 4)], attrs: { starts: [0, 0], steps: [3, 1], shape: [2, 4] } },
  { op: "pad", inputs: [i32(2, 2)], attrs: { starts: [0, 1], steps: [4, 2], shape: [5, 4] }, range: [[-50, 50]] },
  { op: "pad", inputs: [bool(3)], attrs: { starts: [1], steps: [2], shape: [6] } },
  // more inputs than one kernel may bind: several kernels write one buffer
  { op: "concat", inputs: Array.from({ length: 9 }, (_, k) => f(3, 1 + (k % 3), 2)), attrs: { axis: 1 } },
  { op: "concat", inputs: [i32(2, 2), i32(3, 2)], attrs: { axis: 0 }, range: [[-50, 50], [-50, 50]] },
  { op: "concat", inputs: [bool(4, 1), bool(4, 2)], attrs: { axis: 1 } },
  { op: "gather", inputs: [i32(9, 2), i32(3, 5)], attrs: { axis: 0 }, range: [[-50, 50], [-2, 10]] },
  { op: "take_along", inputs: [bool(3, 4), i32(3, 6)], attrs: { axis: 1 }, range: [[-1, 1], [-1, 4]] },
  { op: "cumsum", inputs: [i32(5, 6)], attrs: { axis: 1, reverse: false }, range: [[-50, 50]] },
  { op: "cumsum", inputs: [i32(5, 6)], attrs: { axis: 0, reverse: true }, range: [[-50, 50]] },
  { op: "erf", inputs: [f(64)], range: [[-6, 6]] },
);

// Long reductions (a workgroup per output element), with a fused prologue.
forwardCases.push(
  { op: "sum", inputs: [{ shape: [3, 5000], dtype: "f32" }], attrs: { axes: [1] } },
  { op: "reduce_max", inputs: [{ shape: [2000, 3], dtype: "f32" }], attrs: { axes: [0] } },
  { op: "reduce_min", inputs: [{ shape: [40, 50], dtype: "f32" }], attrs: { axes: [0, 1] } },
  { op: "sum", inputs: [{ shape: [1100], dtype: "i32" }], attrs: { axes: [0] }, range: [[-9, 9]] },
);

// Random numbers keyed by a run-time counter (the training step): the same kernel draws anew each step.
forwardCases.push(
  { op: "random_uniform", inputs: [{ shape: [], dtype: "i32" }], attrs: { shape: [300], seed: 1, stream: 4 }, range: [[0, 1000]] },
  { op: "random_normal", inputs: [{ shape: [], dtype: "i32" }], attrs: { shape: [7, 9], seed: 2, stream: 0 }, range: [[0, 1000]] },
);

// ---- gelu and argsort (compiler/ops/special.ts, compiler/ops/select.ts). argsort's i32
// cases hold small integers, so rows have many ties (which go to the lower index).
gradCases.push(
  { op: "gelu", inputs: [f(3, 4)], attrs: { approximate: "none" }, range: [[-3, 3]] },
  { op: "gelu", inputs: [f(19)], attrs: { approximate: "none" }, range: [[-7, 7]] },
  { op: "gelu", inputs: [f(3, 4)], attrs: { approximate: "tanh" }, range: [[-3, 3]] },
);
forwardCases.push(
  { op: "gelu", inputs: [f(257)], attrs: { approximate: "none" }, range: [[-9, 9]] },
  { op: "gelu", inputs: [f(257)], attrs: { approximate: "tanh" }, range: [[-9, 9]] },
  { op: "argsort", inputs: [f(5, 7)], attrs: { axis: 1, descending: true, start: 0, count: 3 } },
  { op: "argsort", inputs: [f(4, 9, 3)], attrs: { axis: 1, descending: false, start: 4, count: 2 } },
  { op: "argsort", inputs: [f(13)], attrs: { axis: 0, descending: false, start: 0, count: 13 } },
  { op: "argsort", inputs: [f(6, 1)], attrs: { axis: 0, descending: true, start: 5, count: 1 } },
  { op: "argsort", inputs: [i32(5, 11)], attrs: { axis: 1, descending: true, start: 0, count: 11 }, range: [[-2, 2]] },
  { op: "argsort", inputs: [i32(9, 4)], attrs: { axis: 0, descending: false, start: 3, count: 4 }, range: [[-1, 1]] },
);
