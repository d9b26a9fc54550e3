// Primitives that walk one axis per row: cumsum (a scan), argmax and kth_largest
// (selections). One GPU thread per row, a sequential loop along the axis; the float64
// reference runs the same loop in the same order, so ties and NaNs resolve alike.
import type { KernelSpec } from "../../runtime/bundle.ts";
import { forEachIndex, refTensor, rowStrides, type RefTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, TensorType } from "../ir/graph.ts";
import { fmtType, numel } from "../ir/graph.ts";
import { contiguous } from "../kernel/view.ts";
import { defineOp, OpTypeError, type BufferOperand, type KernelArgs } from "./registry.ts";
import { Bindings, kernel, offsetExpr, u, unflatten } from "../codegen/wgsl.ts";
import { affine } from "../codegen/footprint.ts";
import { axisAttr, intAttr, storageZero } from "./indexing.ts";
import { batchAlongAxis, batchRemovingAxis } from "./batching.ts";
import { isFloat } from "./elementwise.ts";

export function numericAxisRule(op: string, x: TensorType, attrs: Attrs): number {
  const axis = axisAttr(op, attrs, x);
  if (x.dtype === "bool") throw new OpTypeError(`${op} takes f32, f16 or i32, got ${fmtType(x)}; cast it first`);
  return axis;
}

/** Calls `row(get, flatOf, rowFlat)` for every row of `x` along `axis`: get(k) reads element k of the row, flatOf(k) is its flat index in x, rowFlat the row's index among the rows. */
export function forEachRow(x: RefTensor, axis: number, row: (get: (k: number) => number, flatOf: (k: number) => number, rowFlat: number) => void): void {
  const xs = rowStrides(x.shape);
  const rowShape = x.shape.filter((_, k) => k !== axis);
  forEachIndex(rowShape, (rowFlat, o) => {
    let base = 0;
    for (let k = 0, j = 0; k < x.shape.length; k++) if (k !== axis) base += o[j++] * xs[k];
    const flatOf = (k: number) => base + k * xs[axis];
    row((k) => x.data[flatOf(k)], flatOf, rowFlat);
  });
}

/** WGSL scaffolding for a thread per row: `o…` indices of the row, and the offset of element `k` in x. */
export function rowKernel(x: BufferOperand, axis: number) {
  const inShape = x.view.shape;
  const rowShape = inShape.filter((_, k) => k !== axis);
  const idx = (k: string) => inShape.map((_, j) => (j === axis ? k : `o${j < axis ? j : j - 1}`));
  // for footprints: thread i's row, with every index along the axis, as x's multi-index
  const along = affine([...rowShape, inShape[axis]], inShape.map((_, j) => (j === axis ? { [rowShape.length]: 1 } : { [j < axis ? j : j - 1]: 1 })));
  return { rowShape, n: inShape[axis], lines: unflatten("i", rowShape, "o"), idx, at: (k: string) => offsetExpr(x.view, idx(k)), along };
}

// ---- cumsum

defineOp({
  name: "cumsum",
  arity: 1,
  doc: "cumsum(x; axis, reverse): inclusive prefix sums along axis (reverse: suffix sums, out[k] = Σ_{j ≥ k} x[j]); f16: summed in f32",
  infer: ([x], attrs) => {
    numericAxisRule("cumsum", x, attrs);
    if (attrs.reverse !== undefined && typeof attrs.reverse !== "boolean") throw new OpTypeError(`cumsum: 'reverse' must be true or false, got ${JSON.stringify(attrs.reverse)}`);
    return x;
  },
  evaluate: ([x], attrs) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const reverse = attrs.reverse === true;
    const out = refTensor(x.shape);
    forEachRow(x, axis, (get, flatOf) => {
      let acc = 0;
      for (let t = 0; t < n; t++) {
        const k = reverse ? n - 1 - t : t;
        acc += get(k);
        out.data[flatOf(k)] = acc;
      }
    });
    return out;
  },
  vjp: ({ g, cot, node }) => {
    if (!isFloat(node.type.dtype)) return [null];
    return [g.add("cumsum", [cot], { axis: node.attrs.axis, reverse: node.attrs.reverse !== true })];
  },
  batch: batchAlongAxis,
  lower: { kind: "kernel", emit: cumsumKernel },
});

function cumsumKernel({ name, node, inputs: [x], out }: KernelArgs): KernelSpec {
  const axis = node.attrs.axis as number;
  const reverse = node.attrs.reverse === true;
  const { rowShape, n, lines, idx, at, along } = rowKernel(x, axis);
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  const outView = contiguous(node.type.shape);
  b.touch(X, { steps: [along, x.view] });
  b.touch("out", { steps: [along, outView] });
  const body = [...lines];
  // f16 sums in an f32 accumulator, each prefix rounded to f16 as it is stored
  const half = x.dtype === "f16";
  body.push(`  var acc = ${storageZero(half ? "f32" : x.dtype)};`);
  body.push(`  for (var t = 0u; t < ${u(n)}; t++) {`);
  body.push(`    let k = ${reverse ? `${u(n - 1)} - t` : "t"};`);
  body.push(`    acc = acc + ${half ? `f32(${X}[${at("k")}])` : `${X}[${at("k")}]`};`);
  body.push(`    out[${offsetExpr(outView, idx("k"))}] = ${half ? "f16(acc)" : "acc"};`);
  body.push("  }");
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(rowShape)), body, rowShape);
}

// ---- argmax

defineOp({
  name: "argmax",
  arity: 1,
  doc: "argmax(x; axis): i32 index of the largest element along axis (the first one on ties), axis removed",
  infer: ([x], attrs) => {
    const axis = numericAxisRule("argmax", x, attrs);
    if (x.shape[axis] < 1) throw new OpTypeError(`argmax: axis ${axis} of ${fmtType(x)} is empty`);
    return { shape: x.shape.filter((_, k) => k !== axis), dtype: "i32" };
  },
  evaluate: ([x], attrs, out) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const r = refTensor(out.shape);
    forEachRow(x, axis, (get, _flatOf, rowFlat) => {
      let best = get(0);
      let arg = 0;
      for (let k = 1; k < n; k++) {
        const v = get(k);
        if (v > best) {
          best = v;
          arg = k;
        }
      }
      r.data[rowFlat] = arg;
    });
    return r;
  },
  zeroGrad: true,
  vjp: () => [null],
  batch: batchRemovingAxis,
  lower: { kind: "kernel", emit: argmaxKernel },
});

function argmaxKernel({ name, node, inputs: [x], out }: KernelArgs): KernelSpec {
  const { rowShape, n, lines, at, along } = rowKernel(x, node.attrs.axis as number);
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  b.touch(X, { steps: [along, x.view] });
  b.touch("out", { steps: [contiguous(rowShape)] });
  const body = [...lines];
  body.push(`  var best = ${X}[${at("0u")}];`);
  body.push("  var arg = 0u;");
  body.push(`  for (var k = 1u; k < ${u(n)}; k++) {`);
  body.push(`    let v = ${X}[${at("k")}];`);
  body.push("    if (v > best) { best = v; arg = k; }");
  body.push("  }");
  body.push("  out[i] = i32(arg);");
  return kernel(name, b, "i32", out, Math.max(1, numel(rowShape)), body, rowShape);
}

// ---- kth_largest

defineOp({
  name: "kth_largest",
  arity: 1,
  doc: "kth_largest(x; axis, k): the k-th largest element along axis counting repeats (k = 1 is the max), axis removed",
  infer: ([x], attrs) => {
    const axis = numericAxisRule("kth_largest", x, attrs);
    const k = intAttr("kth_largest", attrs, "k");
    if (k < 1 || k > x.shape[axis]) throw new OpTypeError(`kth_largest: k = ${k} must be in [1, ${x.shape[axis]}] (the size of axis ${axis} of ${fmtType(x)})`);
    return { shape: x.shape.filter((_, j) => j !== axis), dtype: x.dtype };
  },
  // Distinct values from the top down, each with its count, until k are covered: O(n·k).
  // NaNs never compare, so they are skipped (a row of only NaNs gives the first element).
  evaluate: ([x], attrs, out) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const k = attrs.k as number;
    const r = refTensor(out.shape);
    forEachRow(x, axis, (get, _flatOf, rowFlat) => {
      let bound = 0;
      let bounded = false;
      let rem = k;
      let result = get(0);
      for (let it = 0; it < k; it++) {
        let m = 0;
        let found = false;
        let c = 0;
        for (let j = 0; j < n; j++) {
          const v = get(j);
          if (bounded && !(v < bound)) continue;
          if (!found || v > m) {
            m = v;
            c = 1;
            found = v === v;
          } else if (v === m) c++;
        }
        if (!found) break;
        result = m;
        if (c >= rem) break;
        rem -= c;
        bound = m;
        bounded = true;
      }
      r.data[rowFlat] = result;
    });
    return r;
  },
  zeroGrad: true,
  vjp: () => [null],
  batch: batchRemovingAxis,
  lower: { kind: "kernel", emit: kthKernel },
});

function kthKernel({ name, node, inputs: [x], out }: KernelArgs): KernelSpec {
  const k = node.attrs.k as number;
  const { rowShape, n, lines, at, along } = rowKernel(x, node.attrs.axis as number);
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  b.touch(X, { steps: [along, x.view] });
  b.touch("out", { steps: [contiguous(rowShape)] });
  const zero = storageZero(x.dtype);
  const body = [...lines];
  body.push(`  var result = ${X}[${at("0u")}];`);
  body.push(`  var bound = ${zero};`);
  body.push("  var bounded = false;");
  body.push(`  var rem = ${u(k)};`);
  body.push(`  for (var it = 0u; it < ${u(k)}; it++) {`);
  body.push(`    var m = ${zero};`);
  body.push("    var found = false;");
  body.push("    var c = 0u;");
  body.push(`    for (var j = 0u; j < ${u(n)}; j++) {`);
  body.push(`      let v = ${X}[${at("j")}];`);
  body.push("      if (bounded && !(v < bound)) { continue; }");
  body.push("      if (!found || v > m) { m = v; c = 1u; found = v == v; } else if (v == m) { c++; }");
  body.push("    }");
  body.push("    if (!found) { break; }");
  body.push("    result = m;");
  body.push("    if (c >= rem) { break; }");
  body.push("    rem -= c;");
  body.push("    bound = m;");
  body.push("    bounded = true;");
  body.push("  }");
  body.push("  out[i] = result;");
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(rowShape)), body, rowShape);
}
