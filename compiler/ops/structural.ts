// Sources, constants, views (broadcast, reshape, transpose, stop), reductions and matmul.
import type { DType } from "../../runtime/bundle.ts";
import { forEachIndex, refTensor, rowStrides, type RefTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, TensorType } from "../ir/graph.ts";
import { fmtType, numel, sameShape } from "../ir/graph.ts";
import { broadcastView, reshapeView, transposeView } from "../kernel/view.ts";
import { broadcastShapes, broadcastTo, cast, div, fill, mT, mul, reduce, reshape, sumTo, transpose } from "./build.ts";
import { defineOp, OpTypeError, type BatchArgs, type Batched } from "./registry.ts";
import { batchElementwise, batchReduce, insertAxis, moveBatch } from "./batching.ts";
import { matmulKernel } from "../codegen/wgsl.ts";
import { isFloat } from "./elementwise.ts";
import { InternalError } from "../diagnostics.ts";

const sourceType = (_: readonly TensorType[], attrs: Attrs): TensorType => ({ shape: attrs.shape as number[], dtype: attrs.dtype as DType });
const fedByHost = (): RefTensor => {
  throw new InternalError("sources are fed by the interpreter, not evaluated");
};
for (const [name, doc] of [
  ["input", "a tensor supplied at run time"],
  ["param", "a model parameter"],
  ["state", "optimizer state carried between steps"],
] as const) {
  defineOp({ name, arity: 0, impure: true, doc, infer: sourceType, evaluate: fedByHost, vjp: () => [], lower: { kind: "source" } });
}

defineOp({
  name: "const",
  arity: 0,
  doc: "a tensor filled with one value",
  infer: sourceType,
  evaluate: (_i, attrs, out) => {
    const t = refTensor(out.shape);
    t.data.fill(attrs.value as number);
    return t;
  },
  vjp: () => [],
  lower: { kind: "const" },
});

// ---- views: no data movement on the device

/** Gather `x` through an index map: out[i] = x[src(i)]. */
function gatherRef(x: RefTensor, shape: readonly number[], src: (idx: number[]) => number): RefTensor {
  const out = refTensor(shape);
  forEachIndex(shape, (flat, idx) => {
    out.data[flat] = x.data[src(idx)];
  });
  return out;
}

defineOp({
  name: "broadcast",
  arity: 1,
  doc: "broadcast to a larger shape (NumPy rules)",
  infer: ([x], attrs) => {
    const shape = attrs.shape as number[];
    const b = broadcastShapes(x.shape, shape);
    if (!b || !sameShape(b, shape)) throw new OpTypeError(`cannot broadcast ${fmtType(x)} to [${shape.join(", ")}]`);
    return { shape, dtype: x.dtype };
  },
  evaluate: ([x], _a, out) => {
    const lead = out.shape.length - x.shape.length;
    const xs = rowStrides(x.shape);
    return gatherRef(x, out.shape, (idx) => {
      let o = 0;
      for (let j = 0; j < x.shape.length; j++) o += (x.shape[j] === 1 ? 0 : idx[j + lead]) * xs[j];
      return o;
    });
  },
  vjp: ({ g, cot, node }) => [sumTo(g, cot, g.type(node.inputs[0]).shape)],
  // Leading 1s pad x to the output's rank (NumPy alignment), then the batch axis rides along.
  batch: ({ g, node, inputs: [x], size }) => {
    const out = node.type.shape;
    const lead = out.length - (g.type(x.id).shape.length - 1);
    const padded = reshape(g, x.id, [...out.slice(0, lead).map(() => 1), ...g.type(x.id).shape]);
    return { id: broadcastTo(g, padded, insertAxis(out, x.bdim! + lead, size)), bdim: x.bdim! + lead };
  },
  lower: { kind: "view", view: (v, _a, out) => broadcastView(v, out.shape) },
});

defineOp({
  name: "reshape",
  arity: 1,
  doc: "the same elements in a new shape (row-major order)",
  infer: ([x], attrs) => {
    const shape = attrs.shape as number[];
    if (numel(shape) !== numel(x.shape)) throw new OpTypeError(`cannot reshape ${fmtType(x)} to [${shape.join(", ")}]`);
    return { shape, dtype: x.dtype };
  },
  evaluate: ([x], _a, out) => ({ shape: [...out.shape], data: x.data.slice() }),
  vjp: ({ g, cot, node }) => [reshape(g, cot, g.type(node.inputs[0]).shape)],
  batch: ({ g, node, inputs: [x], size }) => ({ id: reshape(g, moveBatch(g, x, 0, size), [size, ...node.type.shape]), bdim: 0 }),
  lower: { kind: "view", view: (v, _a, out) => reshapeView(v, out.shape) },
});

defineOp({
  name: "transpose",
  arity: 1,
  doc: "permute axes: out.shape[i] = x.shape[perm[i]]",
  infer: ([x], attrs) => {
    const perm = attrs.perm as number[];
    const ok = perm.length === x.shape.length && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
    if (!ok) throw new OpTypeError(`transpose: [${perm.join(", ")}] is not a permutation of ${x.shape.length} axes`);
    return { shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
  },
  evaluate: ([x], attrs, out) => {
    const perm = attrs.perm as number[];
    const xs = rowStrides(x.shape);
    return gatherRef(x, out.shape, (idx) => perm.reduce((o, p, i) => o + idx[i] * xs[p], 0));
  },
  vjp: ({ g, cot, node }) => {
    const perm = node.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(g, cot, inv)];
  },
  // One transpose that also brings the batch axis to the front.
  batch: ({ g, node, inputs: [x] }) => {
    const b = x.bdim!;
    const perm = (node.attrs.perm as number[]).map((p) => (p < b ? p : p + 1));
    return { id: transpose(g, x.id, [b, ...perm]), bdim: 0 };
  },
  lower: { kind: "view", view: (v, attrs) => transposeView(v, attrs.perm as number[]) },
});

defineOp({
  name: "stop",
  arity: 1,
  doc: "identity whose gradient is zero",
  infer: ([x]) => x,
  evaluate: ([x]) => x,
  vjp: () => [null],
  batch: batchElementwise,
  lower: { kind: "view", view: (v) => v },
});

// ---- reductions

function reduceRule(name: string) {
  return ([x]: readonly TensorType[], attrs: Attrs): TensorType => {
    const axes = attrs.axes as number[];
    for (const a of axes) {
      if (!Number.isInteger(a) || a < 0 || a >= x.shape.length) throw new OpTypeError(`${name}: axis ${a} out of range for ${fmtType(x)}`);
    }
    if (x.dtype === "bool") throw new OpTypeError(`${name}: cannot reduce a bool tensor; cast it first`);
    return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype: x.dtype };
  };
}

function reduceRef(x: RefTensor, axes: readonly number[], out: TensorType, init: number, f: (acc: number, v: number) => number): RefTensor {
  const r = refTensor(out.shape);
  r.data.fill(init);
  const os = rowStrides(out.shape);
  forEachIndex(x.shape, (flat, idx) => {
    let o = 0;
    let k = 0;
    for (let i = 0; i < idx.length; i++) if (!axes.includes(i)) o += idx[i] * os[k++];
    r.data[o] = f(r.data[o], x.data[flat]);
  });
  return r;
}

/** Broadcast a reduced tensor back to the input's shape (re-inserting the reduced axes). */
function unreduce(g: import("../ir/graph.ts").Graph, r: number, inShape: readonly number[], axes: readonly number[]): number {
  const kept = inShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return broadcastTo(g, reshape(g, r, kept), inShape);
}

defineOp({
  name: "sum",
  arity: 1,
  doc: "sum over axes",
  infer: reduceRule("sum"),
  evaluate: ([x], attrs, out) => reduceRef(x, attrs.axes as number[], out, 0, (a, v) => a + v),
  vjp: ({ g, cot, node }) => [unreduce(g, cot, g.type(node.inputs[0]).shape, node.attrs.axes as number[])],
  batch: batchReduce,
  lower: { kind: "reduce", init: (d) => (d === "f32" ? "0.0" : "0i"), combine: (acc, x) => `${acc} + ${x}`, subgroup: "subgroupAdd" },
});

for (const [name, init, pick] of [
  ["max", -Infinity, Math.max],
  ["min", Infinity, Math.min],
] as const) {
  defineOp({
    name: `reduce_${name}`,
    arity: 1,
    doc: `${name} over axes (the gradient is shared equally between tied elements)`,
    infer: reduceRule(name),
    evaluate: ([x], attrs, out) => reduceRef(x, attrs.axes as number[], out, init, pick),
    vjp: ({ g, cot, node }) => {
      const x = node.inputs[0];
      const shape = g.type(x).shape;
      const axes = node.attrs.axes as number[];
      const hit = cast(g, g.add("stop", [g.add("eq", [x, unreduce(g, node.id, shape, axes)])]), g.type(x).dtype); // where the max is: no derivative
      const count = unreduce(g, reduce(g, "sum", hit, axes), shape, axes);
      return [mul(g, div(g, hit, count), unreduce(g, cot, shape, axes))];
    },
    batch: batchReduce,
    lower: {
      kind: "reduce",
      // only for empty reductions; WGSL has no infinite constants, so ±FLT_MAX stands in
      init: (d) => (d === "f32" ? (name === "max" ? "-3.4028234e+38" : "3.4028234e+38") : name === "max" ? "(-2147483647i - 1i)" : "2147483647i"),
      combine: (acc, x) => `${name}(${acc}, ${x})`,
      subgroup: name === "max" ? "subgroupMax" : "subgroupMin",
    },
  });
}

// ---- matmul: [..., M, K] @ [..., K, N] with equal batch dims (the builder broadcasts them)

defineOp({
  name: "matmul",
  arity: 2,
  doc: "batched matrix product over the last two axes (f16 operands: products accumulated in f32, the result rounded to f16)",
  infer: ([a, b]) => {
    const ra = a.shape.length;
    const rb = b.shape.length;
    if (ra < 2 || rb < 2 || ra !== rb) throw new OpTypeError(`matmul needs operands of equal rank ≥ 2, got ${fmtType(a)} and ${fmtType(b)}`);
    if (!sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2))) throw new OpTypeError(`matmul batch dims differ: ${fmtType(a)} and ${fmtType(b)}`);
    if (a.shape[ra - 1] !== b.shape[rb - 2]) throw new OpTypeError(`matmul inner dims differ: ${fmtType(a)} @ ${fmtType(b)}`);
    if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw new OpTypeError(`matmul takes two f32 or two f16 operands, got ${fmtType(a)} and ${fmtType(b)}`);
    return { shape: [...a.shape.slice(0, -1), b.shape[rb - 1]], dtype: a.dtype };
  },
  evaluate: ([a, b], _attrs, out) => {
    const r = out.shape.length;
    const M = out.shape[r - 2];
    const N = out.shape[r - 1];
    const K = a.shape[r - 1];
    const batch = numel(out.shape.slice(0, -2));
    const o = refTensor(out.shape);
    for (let p = 0; p < batch; p++) {
      const ao = p * M * K;
      const bo = p * K * N;
      const oo = p * M * N;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a.data[ao + i * K + k] * b.data[bo + k * N + j];
          o.data[oo + i * N + j] = s;
        }
      }
    }
    return o;
  },
  vjp: ({ g, cot, node }) => {
    const [a, b] = node.inputs;
    return [g.add("matmul", [cot, mT(g, b)]), g.add("matmul", [mT(g, a), cot])];
  },
  batch: batchMatmul,
  lower: { kind: "kernel", emit: matmulKernel },
});

export { fill };

/**
 * matmul over a batch. With one operand batched, the examples fold into its free dim
 * when the batch axis sits next to it ([N, M, K] @ [K, P] is one [N·M, K] @ [K, P]: the
 * unbatched operand is not broadcast); otherwise the batch becomes one more batch dim of
 * the product, the unbatched operand broadcast to it (a view, no copy).
 */
function batchMatmul({ g, node, inputs: [a, b], size }: BatchArgs): Batched {
  const nb = node.type.shape.length - 2; // batch dims per example
  const mm = (x: number, y: number) => g.add("matmul", [x, y]);
  if (b.bdim === null && a.bdim === nb) {
    const [M, K] = g.type(a.id).shape.slice(nb + 1);
    const lead = g.type(a.id).shape.slice(0, nb);
    const y = mm(reshape(g, a.id, [...lead, size * M, K]), b.id);
    return { id: reshape(g, y, [...lead, size, M, g.type(b.id).shape[nb + 1]]), bdim: nb };
  }
  if (a.bdim === null && b.bdim === nb + 1) {
    const [K, , P] = g.type(b.id).shape.slice(nb);
    const lead = g.type(b.id).shape.slice(0, nb);
    const y = mm(a.id, reshape(g, b.id, [...lead, K, size * P]));
    return { id: reshape(g, y, [...lead, g.type(a.id).shape[nb], size, P]), bdim: nb + 1 };
  }
  // a batch position both can use: one of theirs if it is among the batch dims, else the last batch dim
  const d = [a.bdim, b.bdim].find((x): x is number => x !== null && x <= nb) ?? nb;
  return { id: mm(moveBatch(g, a, d, size), moveBatch(g, b, d, size)), bdim: d };
}
