// Indexing primitives: strided slicing (a view) and its adjoint `pad`, and the two
// gathers — `gather` (embedding lookup: an index tensor replaces one axis) and
// `take_along` (NumPy take_along_axis). Indices are i32 and are CLAMPED to [0, n-1]
// in both back ends (an out-of-range index reads the first or last element), so a
// bad index never reads outside a buffer and the two back ends agree bit for bit.
// Gradients are scatter-adds built from one-hot masks (iota == index): WGSL has no
// float atomics, and a one-hot contraction needs none.
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import { forEachIndex, refTensor, rowStrides, type RefTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, Graph, Shape, TensorType } from "../ir/graph.ts";
import { fmtType, numel } from "../ir/graph.ts";
import { contiguous, sliceView } from "../kernel/view.ts";
import { affine } from "../codegen/footprint.ts";
import { broadcastTo, cast, constant, reduce, reshape, transpose } from "./build.ts";
import { defineOp, OpTypeError, type BatchArgs, type Batched, type KernelArgs } from "./registry.ts";
import { batchedAxis, insertAxis, moveBatch } from "./batching.ts";
import { Bindings, kernel, offsetExpr, u, unflatten } from "../codegen/wgsl.ts";
import { isFloat } from "./elementwise.ts";

// ---- attribute checks shared by the ops of this file (and scan.ts)

export function intAttr(op: string, attrs: Attrs, key: string): number {
  const v = attrs[key];
  if (typeof v !== "number" || !Number.isInteger(v)) throw new OpTypeError(`${op}: attribute '${key}' must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

export function intListAttr(op: string, attrs: Attrs, key: string, rank: number): number[] {
  const v = attrs[key];
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) {
    throw new OpTypeError(`${op}: attribute '${key}' must be a list of integers, got ${JSON.stringify(v)}`);
  }
  if (v.length !== rank) throw new OpTypeError(`${op}: '${key}' has ${v.length} entries for ${rank} axes`);
  return v as number[];
}

export function axisAttr(op: string, attrs: Attrs, x: TensorType): number {
  const axis = intAttr(op, attrs, "axis");
  if (axis < 0 || axis >= x.shape.length) throw new OpTypeError(`${op}: axis ${axis} out of range for ${fmtType(x)}`);
  return axis;
}

/** A zero of a storage type, as WGSL. */
export const storageZero = (d: DType): string => (d === "f32" ? "0.0" : d === "f16" ? "0.0h" : d === "i32" ? "0i" : "0u");

/** The index read from an i32 tensor, clamped to [0, n-1] (the reference side). */
export const clampIndex = (v: number, n: number): number => Math.min(Math.max(Math.trunc(v), 0), n - 1);

/** The same clamp in WGSL, giving a u32. */
const clampWgsl = (v: string, n: number): string => `u32(clamp(${v}, 0i, ${n - 1}i))`;

/** The clamp as graph nodes (i32 min/max), for one-hot masks in the VJPs. */
function clampNode(g: Graph, idx: number, n: number): number {
  const shape = g.type(idx).shape;
  const hi = g.add("min", [idx, constant(g, n - 1, shape, "i32")]);
  return g.add("max", [hi, constant(g, 0, shape, "i32")]);
}

// ---- slice / pad

interface Lattice {
  starts: number[];
  steps: number[];
  shape: number[];
}

/**
 * Checks that `small` fits the lattice start + step·k (k < small[i]) inside `big`.
 * `shape` is the attribute's shape (the result's): small for slice, big for pad.
 */
function latticeRule(op: string, attrs: Attrs, rank: number, small: (shape: number[]) => Shape, big: (shape: number[]) => Shape): Lattice {
  const starts = intListAttr(op, attrs, "starts", rank);
  const steps = intListAttr(op, attrs, "steps", rank);
  const shape = intListAttr(op, attrs, "shape", rank);
  const s = small(shape);
  const b = big(shape);
  for (let i = 0; i < rank; i++) {
    if (steps[i] < 1) throw new OpTypeError(`${op}: step ${steps[i]} on axis ${i} must be ≥ 1`);
    if (shape[i] < 0) throw new OpTypeError(`${op}: negative size ${shape[i]} on axis ${i}`);
    if (starts[i] < 0 || starts[i] > b[i]) throw new OpTypeError(`${op}: start ${starts[i]} on axis ${i} is outside [0, ${b[i]}]`);
    const last = starts[i] + (s[i] - 1) * steps[i];
    if (s[i] > 0 && last >= b[i]) {
      throw new OpTypeError(`${op}: on axis ${i}, ${s[i]} elements from ${starts[i]} in steps of ${steps[i]} end at ${last}, past the size ${b[i]}`);
    }
  }
  return { starts, steps, shape };
}

defineOp({
  name: "slice",
  arity: 1,
  doc: "slice(x; starts, steps, shape): out[i] = x[starts + steps·i] per axis (steps ≥ 1), a view",
  infer: ([x], attrs) => {
    const { shape } = latticeRule("slice", attrs, x.shape.length, (s) => s, () => x.shape);
    return { shape, dtype: x.dtype };
  },
  evaluate: ([x], attrs, out) => {
    const starts = attrs.starts as number[];
    const steps = attrs.steps as number[];
    const xs = rowStrides(x.shape);
    const r = refTensor(out.shape);
    forEachIndex(out.shape, (flat, idx) => {
      let o = 0;
      for (let k = 0; k < idx.length; k++) o += (starts[k] + steps[k] * idx[k]) * xs[k];
      r.data[flat] = x.data[o];
    });
    return r;
  },
  vjp: ({ g, cot, node }) => {
    const { starts, steps } = node.attrs;
    return [g.add("pad", [cot], { starts, steps, shape: [...g.type(node.inputs[0]).shape] })];
  },
  batch: batchLattice,
  lower: { kind: "view", view: (v, attrs, out) => sliceView(v, attrs.starts as number[], attrs.steps as number[], out.shape) },
});

defineOp({
  name: "pad",
  arity: 1,
  doc: "pad(x; starts, steps, shape): the adjoint of slice — x placed at starts + steps·i in zeros of `shape`",
  infer: ([x], attrs) => {
    const { shape } = latticeRule("pad", attrs, x.shape.length, () => x.shape, (s) => s);
    return { shape, dtype: x.dtype };
  },
  evaluate: ([x], attrs, out) => {
    const starts = attrs.starts as number[];
    const steps = attrs.steps as number[];
    const os = rowStrides(out.shape);
    const r = refTensor(out.shape);
    forEachIndex(x.shape, (flat, idx) => {
      let o = 0;
      for (let k = 0; k < idx.length; k++) o += (starts[k] + steps[k] * idx[k]) * os[k];
      r.data[o] = x.data[flat];
    });
    return r;
  },
  vjp: ({ g, cot, node }) => {
    const { starts, steps } = node.attrs;
    return [g.add("slice", [cot], { starts, steps, shape: [...g.type(node.inputs[0]).shape] })];
  },
  batch: batchLattice,
  lower: { kind: "kernel", emit: padKernel },
});

function padKernel({ name, node, inputs: [x], out }: KernelArgs): KernelSpec {
  const shape = node.type.shape;
  const starts = node.attrs.starts as number[];
  const steps = node.attrs.steps as number[];
  const b = new Bindings();
  const src = b.bind(x.buffer, x.dtype);
  // (its reads are not a view of the output's index (a division by the step): bound whole when split)
  b.touch(src, "whole");
  b.touch("out", { steps: [contiguous(shape)] });
  const body = unflatten("i", shape, "o");
  const conds: string[] = [];
  const q = shape.map((d, k) => {
    const n = x.view.shape[k];
    if (starts[k] === 0 && steps[k] === 1 && n === d) return `o${k}`;
    const rel = starts[k] === 0 ? `o${k}` : `(o${k} - ${u(starts[k])})`;
    body.push(`  let q${k} = ${steps[k] === 1 ? rel : `${rel} / ${u(steps[k])}`};`);
    if (starts[k] > 0) conds.push(`o${k} >= ${u(starts[k])}`);
    if (steps[k] > 1) conds.push(`${rel} % ${u(steps[k])} == 0u`);
    conds.push(`q${k} < ${u(n)}`);
    return `q${k}`;
  });
  body.push(`  var v = ${storageZero(x.dtype)};`);
  body.push(`  if (${conds.length ? conds.join(" && ") : "true"}) { v = ${src}[${offsetExpr(x.view, q)}]; }`);
  body.push("  out[i] = v;");
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(shape)), body, shape);
}

/** slice and pad: the batch axis is taken whole (start 0, step 1, all of it). */
function batchLattice({ g, node, inputs: [x], size }: BatchArgs): Batched {
  const b = x.bdim!;
  const { starts, steps, shape } = node.attrs as { starts: number[]; steps: number[]; shape: number[] };
  const attrs = { starts: insertAxis(starts, b, 0), steps: insertAxis(steps, b, 1), shape: insertAxis(shape, b, size) };
  return { id: g.add(node.op, [x.id], attrs), bdim: b };
}

// ---- concat: the inputs joined along `axis`; the adjoint of slicing the output into them

defineOp({
  name: "concat",
  arity: -1,
  doc: "concat(x0, x1, …; axis): the inputs joined along `axis` (same dtype and dims off the axis); its VJP slices",
  infer: (xs, attrs) => {
    if (!xs.length) throw new OpTypeError("concat needs at least one input");
    const axis = axisAttr("concat", attrs, xs[0]);
    const shape = [...xs[0].shape];
    shape[axis] = 0;
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype || x.shape.length !== shape.length || x.shape.some((d, i) => i !== axis && d !== xs[0].shape[i])) {
        throw new OpTypeError(`concat: ${fmtType(x)} does not match ${fmtType(xs[0])} off axis ${axis}`);
      }
      shape[axis] += x.shape[axis];
    }
    return { shape, dtype: xs[0].dtype };
  },
  evaluate: (xs, attrs, out) => {
    const axis = attrs.axis as number;
    const inner = numel(out.shape.slice(axis + 1));
    const outer = numel(out.shape.slice(0, axis));
    const row = out.shape[axis] * inner;
    const r = refTensor(out.shape);
    let at = 0;
    for (const x of xs) {
      const n = x.shape[axis] * inner;
      for (let o = 0; o < outer; o++) r.data.set(x.data.subarray(o * n, (o + 1) * n), o * row + at);
      at += n;
    }
    return r;
  },
  vjp: ({ g, cot, node }) => {
    const axis = node.attrs.axis as number;
    const shape = g.type(node.id).shape;
    let at = 0;
    return node.inputs.map((x) => {
      const s = g.type(x).shape;
      const starts = shape.map((_, i) => (i === axis ? at : 0));
      at += s[axis];
      return g.add("slice", [cot], { starts, steps: shape.map(() => 1), shape: [...s] });
    });
  },
  batch: ({ g, node, inputs, size }) => {
    const axis = node.attrs.axis as number;
    return { id: g.add("concat", inputs.map((x) => moveBatch(g, x, 0, size)), { axis: axis + 1 }), bdim: 0 };
  },
  lower: { kind: "concat" },
});

// ---- gather: out = x.shape[:axis] + idx.shape + x.shape[axis+1:]

defineOp({
  name: "gather",
  arity: 2,
  doc: "gather(x, idx; axis): x with `axis` replaced by the i32 index tensor (indices clamped to [0, n-1])",
  infer: ([x, idx], attrs) => {
    const axis = axisAttr("gather", attrs, x);
    if (idx.dtype !== "i32") throw new OpTypeError(`gather: indices must be i32, got ${fmtType(idx)}`);
    if (x.shape[axis] < 1) throw new OpTypeError(`gather: cannot index the empty axis ${axis} of ${fmtType(x)}`);
    return { shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], dtype: x.dtype };
  },
  evaluate: ([x, idx], attrs, out) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const ri = idx.shape.length;
    const xs = rowStrides(x.shape);
    const is = rowStrides(idx.shape);
    const r = refTensor(out.shape);
    forEachIndex(out.shape, (flat, o) => {
      let io = 0;
      for (let k = 0; k < ri; k++) io += o[axis + k] * is[k];
      let xo = clampIndex(idx.data[io], n) * xs[axis];
      for (let k = 0; k < axis; k++) xo += o[k] * xs[k];
      for (let k = axis + 1; k < x.shape.length; k++) xo += o[k + ri - 1] * xs[k];
      r.data[flat] = x.data[xo];
    });
    return r;
  },
  vjp: ({ g, cot, node }) => {
    const [x, idx] = node.inputs;
    if (!isFloat(g.type(x).dtype)) return [null, null];
    const xShape = g.type(x).shape;
    const axis = node.attrs.axis as number;
    const n = xShape[axis];
    const J = numel(g.type(idx).shape);
    const P = numel(xShape.slice(0, axis));
    const Q = numel(xShape.slice(axis + 1));
    // oneHotT[v, j] = (clamp(idx[j]) == v), then dx[p, v, q] = Σ_j oneHotT[v, j]·cot[p, j, q]
    const c = reshape(g, clampNode(g, idx, n), [1, J]);
    const iota = g.add("iota", [], { shape: [n, J], axis: 0, dtype: "i32" });
    const oneHotT = cast(g, g.add("stop", [g.add("eq", [iota, broadcastTo(g, c, [n, J])])]), g.type(x).dtype); // a mask: no derivative
    const dx =
      P === 1
        ? g.add("matmul", [oneHotT, reshape(g, cot, [J, Q])])
        : g.add("matmul", [broadcastTo(g, reshape(g, oneHotT, [1, n, J]), [P, n, J]), reshape(g, cot, [P, J, Q])]);
    return [reshape(g, dx, xShape), null];
  },
  batch: batchGather,
  lower: { kind: "kernel", emit: gatherKernel },
});

function gatherKernel({ name, node, inputs: [x, idx], out }: KernelArgs): KernelSpec {
  const shape = node.type.shape;
  const axis = node.attrs.axis as number;
  const ri = idx.view.shape.length;
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  const I = b.bind(idx.buffer, "i32");
  const body = unflatten("i", shape, "o");
  const o = shape.map((_, k) => `o${k}`);
  body.push(`  let j = ${clampWgsl(`${I}[${offsetExpr(idx.view, o.slice(axis, axis + ri))}]`, x.view.shape[axis])};`);
  body.push(`  out[i] = ${X}[${offsetExpr(x.view, [...o.slice(0, axis), "j", ...o.slice(axis + ri)])}];`);
  // The footprint: x at every index along the axis (a row of an embedding table is any
  // row), the other axes following the output's; the indices at the output's.
  const xRows = x.view.shape.map((_, k) => (k < axis ? { [k]: 1 } : k === axis ? { [shape.length]: 1 } : { [k + ri - 1]: 1 }));
  b.touch(X, { steps: [affine([...shape, x.view.shape[axis]], xRows), x.view], gathered: true });
  b.touch(I, { steps: [affine(shape, idx.view.shape.map((_, k) => ({ [axis + k]: 1 }))), idx.view] });
  b.touch("out", { steps: [contiguous(shape)] });
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(shape)), body, shape);
}

// ---- take_along: NumPy take_along_axis with equal shapes off the axis

defineOp({
  name: "take_along",
  arity: 2,
  doc: "take_along(x, idx; axis): out[..k..] = x[..idx[..k..]..] along `axis` (NumPy take_along_axis; indices clamped)",
  infer: ([x, idx], attrs) => {
    const axis = axisAttr("take_along", attrs, x);
    if (idx.dtype !== "i32") throw new OpTypeError(`take_along: indices must be i32, got ${fmtType(idx)}`);
    if (idx.shape.length !== x.shape.length) throw new OpTypeError(`take_along: indices ${fmtType(idx)} must have the rank of ${fmtType(x)}`);
    idx.shape.forEach((d, k) => {
      if (k !== axis && d !== x.shape[k]) {
        throw new OpTypeError(`take_along: indices ${fmtType(idx)} and ${fmtType(x)} differ on axis ${k} (only axis ${axis} may differ)`);
      }
    });
    if (x.shape[axis] < 1) throw new OpTypeError(`take_along: cannot index the empty axis ${axis} of ${fmtType(x)}`);
    return { shape: idx.shape, dtype: x.dtype };
  },
  evaluate: ([x, idx], attrs, out) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const xs = rowStrides(x.shape);
    const r = refTensor(out.shape);
    forEachIndex(out.shape, (flat, o) => {
      let xo = 0;
      for (let k = 0; k < o.length; k++) xo += (k === axis ? clampIndex(idx.data[flat], n) : o[k]) * xs[k];
      r.data[flat] = x.data[xo];
    });
    return r;
  },
  vjp: ({ g, cot, node }) => {
    const [x, idx] = node.inputs;
    if (!isFloat(g.type(x).dtype)) return [null, null];
    const axis = node.attrs.axis as number;
    const n = g.type(x).shape[axis];
    const I = g.type(idx).shape;
    // A new axis of size n after `axis`: E[.., k, v, ..] = (clamp(idx[.., k, ..]) == v);
    // dx[.., v, ..] = Σ_k E·cot.
    const E = [...I.slice(0, axis + 1), n, ...I.slice(axis + 1)];
    const spread = (t: number) => broadcastTo(g, reshape(g, t, [...I.slice(0, axis + 1), 1, ...I.slice(axis + 1)]), E);
    const iota = g.add("iota", [], { shape: E, axis: axis + 1, dtype: "i32" });
    const oneHot = cast(g, g.add("stop", [g.add("eq", [iota, spread(clampNode(g, idx, n))])]), g.type(x).dtype); // a mask: no derivative
    return [reduce(g, "sum", g.add("mul", [oneHot, spread(cot)]), [axis]), null];
  },
  // Both operands batched at one axis (an unbatched one broadcast: a view).
  batch: ({ g, node, inputs, size }) => {
    const bdim = inputs.find((b) => b.bdim !== null)!.bdim!;
    const [x, idx] = inputs.map((b) => moveBatch(g, b, bdim, size));
    return { id: g.add("take_along", [x, idx], { axis: batchedAxis(node.attrs.axis as number, bdim) }), bdim };
  },
  lower: { kind: "kernel", emit: takeAlongKernel },
});

function takeAlongKernel({ name, node, inputs: [x, idx], out }: KernelArgs): KernelSpec {
  const shape = node.type.shape;
  const axis = node.attrs.axis as number;
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  const I = b.bind(idx.buffer, "i32");
  const body = unflatten("i", shape, "o");
  const o = shape.map((_, k) => `o${k}`);
  body.push(`  let j = ${clampWgsl(`${I}[${offsetExpr(idx.view, o)}]`, x.view.shape[axis])};`);
  body.push(`  out[i] = ${X}[${offsetExpr(x.view, o.map((e, k) => (k === axis ? "j" : e)))}];`);
  // x at every index along the axis, the output's index on the others
  b.touch(X, { steps: [affine([...shape, x.view.shape[axis]], shape.map((_, k) => ({ [k === axis ? shape.length : k]: 1 }))), x.view], gathered: true });
  b.touch(I, { steps: [idx.view] });
  b.touch("out", { steps: [contiguous(shape)] });
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(shape)), body, shape);
}

/**
 * gather over a batch. With one operand batched it is one gather of the batched operand.
 * With both, each example indexes its own table: the tables are stacked into one
 * ([N·n, …], the indexed axis first) and example e's indices, clamped, are offset by e·n.
 */
function batchGather({ g, node, inputs: [x, idx], size }: BatchArgs): Batched {
  const axis = node.attrs.axis as number;
  if (x.bdim === null) return { id: g.add("gather", [x.id, idx.id], { axis }), bdim: axis + idx.bdim! };
  if (idx.bdim === null) {
    const b = x.bdim;
    if (b <= axis) return { id: g.add("gather", [x.id, idx.id], { axis: axis + 1 }), bdim: b };
    return { id: g.add("gather", [x.id, idx.id], { axis }), bdim: b - 1 + g.type(idx.id).shape.length };
  }
  const xs = g.type(x.id).shape; // [.., N at x.bdim, ..]
  const a = batchedAxis(axis, x.bdim);
  const rest = [...xs.keys()].filter((k) => k !== x.bdim && k !== a);
  const n = xs[a];
  const table = reshape(g, transpose(g, x.id, [x.bdim, a, ...rest]), [size * n, ...rest.map((k) => xs[k])]);
  const i = moveBatch(g, idx, 0, size);
  const is = g.type(i).shape;
  const offset = g.add("mul", [g.add("iota", [], { shape: [...is], axis: 0, dtype: "i32" }), constant(g, n, is, "i32")]);
  const rows = g.add("gather", [table, g.add("add", [clampNode(g, i, n), offset])], { axis: 0 });
  // rows: [N, ..idx, ..before axis, ..after axis] → [N, ..before, ..idx, ..after]
  const ri = is.length - 1;
  const before = rest.filter((k) => k < a).length;
  const perm = [0, ...Array.from({ length: before }, (_, k) => is.length + k), ...Array.from({ length: ri }, (_, k) => 1 + k), ...Array.from({ length: rest.length - before }, (_, k) => is.length + before + k)];
  return { id: transpose(g, rows, perm), bdim: 0 };
}
