// Selection by rank along one axis: the primitive `argsort` (a window of the indices of a
// stable sort) and the built-ins made from it, topk and quantile. Values are read with
// take_along, so the gradient of a selected value is take_along's scatter back to where
// it came from; the indices are i32 and carry no gradient (as argmax's).
//
// The order is a stable sort: equal values keep their index order (the lower index first,
// ascending or descending, as torch.sort(stable=True)); NaN sorts above +inf and NaNs tie
// with each other; −0 and +0 tie. The GPU kernel ranks by the same order on u32 keys made
// from the bits, so both back ends pick the same indices, ties included.
import type { Span } from "../../grammar/ast.ts";
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import { refTensor } from "../../runtime/reference/tensor.ts";
import type { Graph } from "../ir/graph.ts";
import { fmtType, numel } from "../ir/graph.ts";
import { contiguous } from "../kernel/view.ts";
import { Bindings, kernel, offsetExpr, u, unflatten } from "../codegen/wgsl.ts";
import { affine } from "../codegen/footprint.ts";
import { add, fill, mul, reshape, sub } from "./build.ts";
import { batchAlongAxis } from "./batching.ts";
import { intAttr } from "./indexing.ts";
import { defineOp, OpTypeError, type KernelArgs } from "./registry.ts";
import { forEachRow, numericAxisRule } from "./scan.ts";

/** Ascending order with NaN above everything (NaNs equal to each other); −0 equals +0. */
export function compareValues(a: number, b: number): number {
  const an = a !== a;
  const bn = b !== b;
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

defineOp({
  name: "argsort",
  arity: 1,
  doc: "argsort(x; axis, descending, start, count): i32 indices of the sorted positions start … start+count−1 along axis (stable: ties in index order; NaN above +inf); the axis becomes count long",
  infer: ([x], attrs) => {
    const axis = numericAxisRule("argsort", x, attrs);
    if (typeof attrs.descending !== "boolean") throw new OpTypeError(`argsort: 'descending' must be true or false, got ${JSON.stringify(attrs.descending)}`);
    const start = intAttr("argsort", attrs, "start");
    const count = intAttr("argsort", attrs, "count");
    const n = x.shape[axis];
    if (count < 1 || start < 0 || start + count > n) {
      throw new OpTypeError(`argsort: sorted positions ${start} to ${start + count - 1} are not within the ${n} elements of axis ${axis} of ${fmtType(x)}`);
    }
    return { shape: x.shape.map((d, k) => (k === axis ? count : d)), dtype: "i32" };
  },
  evaluate: ([x], attrs, out) => {
    const axis = attrs.axis as number;
    const n = x.shape[axis];
    const start = attrs.start as number;
    const count = attrs.count as number;
    const desc = attrs.descending === true;
    const inner = numel(x.shape.slice(axis + 1));
    const r = refTensor(out.shape);
    forEachRow(x, axis, (get, _flatOf, rowFlat) => {
      const order = Array.from({ length: n }, (_, k) => k);
      // Array.prototype.sort is stable: ties keep index order in both directions.
      order.sort((i, j) => (desc ? compareValues(get(j), get(i)) : compareValues(get(i), get(j))));
      const base = Math.floor(rowFlat / inner) * count * inner + (rowFlat % inner);
      for (let p = 0; p < count; p++) r.data[base + p * inner] = order[start + p];
    });
    return r;
  },
  zeroGrad: true,
  vjp: () => [null],
  batch: batchAlongAxis,
  lower: { kind: "kernel", emit: argsortKernel },
});

/**
 * WGSL lines binding `${name}` to a u32 key whose unsigned order is the value order of
 * compareValues: −0 becomes +0, every NaN the largest key; otherwise the sign bit is
 * flipped for positives and all bits for negatives (the usual radix-sort key). Integer
 * bit tests, so no fast-math assumption about NaN can change them.
 */
function keyLines(name: string, v: string, dtype: DType): string[] {
  if (dtype === "i32") return [`    let ${name} = bitcast<u32>(${v}) ^ 0x80000000u;`];
  const b = `${name}b`;
  // an f16 is widened to f32 first: exact, and it keeps the order (NaN stays NaN)
  const f = dtype === "f16" ? `f32(${v})` : v;
  return [
    `    let ${b} = bitcast<u32>(select(${f}, 0.0, ${f} == 0.0));`,
    `    let ${name} = select(select(${b} ^ 0x80000000u, ~${b}, (${b} & 0x80000000u) != 0u), 0xffffffffu, (${b} & 0x7fffffffu) > 0x7f800000u);`,
  ];
}

/**
 * One thread per element of x: its rank in its row is the number of elements ordered
 * before it (O(n) per thread, stopping once the rank is past the window); an element whose
 * rank falls in [start, start+count) writes its index there. Ranks in a strict total
 * order are a permutation, so every output slot is written exactly once.
 */
function argsortKernel({ name, node, inputs: [x], out }: KernelArgs): KernelSpec {
  const axis = node.attrs.axis as number;
  const start = node.attrs.start as number;
  const count = node.attrs.count as number;
  const desc = node.attrs.descending === true;
  const shape = x.view.shape;
  const n = shape[axis];
  const b = new Bindings();
  const X = b.bind(x.buffer, x.dtype);
  const at = (k: string) => offsetExpr(x.view, shape.map((_, d) => (d === axis ? k : `o${d}`)));
  // footprint: thread (element) reads its whole row, and writes one of the row's `count` slots
  const row = (len: number) => affine([...shape, len], shape.map((_, d) => ({ [d === axis ? shape.length : d]: 1 })));
  b.touch(X, { steps: [row(n), x.view] });
  b.touch("out", { steps: [row(count), contiguous(node.type.shape)], gathered: true });
  const j = `o${axis}`;
  const body = unflatten("i", shape, "o");
  body.push(`  let vj = ${X}[${at(j)}];`);
  body.push(...keyLines("kj", "vj", x.dtype).map((l) => l.slice(2)));
  body.push("  var rank = 0u;");
  body.push(`  for (var t = 0u; t < ${u(n)}; t++) {`);
  body.push(`    let vt = ${X}[${at("t")}];`);
  body.push(...keyLines("kt", "vt", x.dtype));
  body.push(`    if (kt ${desc ? ">" : "<"} kj || (kt == kj && t < ${j})) {`);
  body.push("      rank++;");
  body.push(`      if (rank >= ${u(start + count)}) { break; }`);
  body.push("    }");
  body.push("  }");
  const slot = offsetExpr(contiguous(node.type.shape), shape.map((_, d) => (d === axis ? `rank - ${u(start)}` : `o${d}`)));
  body.push(`  if (rank >= ${u(start)} && rank < ${u(start + count)}) { out[${slot}] = i32(${j}); }`);
  return kernel(name, b, "i32", out, Math.max(1, numel(shape)), body, shape);
}

// ---- the built-ins, as graphs (the lowering and the tests build them the same way)

/** topk(x, k, axis): the k largest along `axis`, largest first, and their i32 indices. */
export function topk(g: Graph, x: number, axis: number, k: number, span?: Span): { values: number; indices: number } {
  const indices = g.add("argsort", [x], { axis, descending: true, start: 0, count: k }, span);
  return { values: g.add("take_along", [x, indices], { axis }, span), indices };
}

/**
 * quantile(x, q, axis) with linear interpolation, numpy's and torch's default: on the
 * ascending order v_0 ≤ … ≤ v_{n−1}, p = q·(n−1) and the result is
 * v_⌊p⌋ + (p − ⌊p⌋)·(v_⌊p⌋+1 − v_⌊p⌋). The axis is removed. The gradient goes to the two
 * order statistics, weighted 1 − frac and frac (on ties, to the lower indices).
 */
export function quantile(g: Graph, x: number, axis: number, q: number, span?: Span): number {
  const shape = g.type(x).shape;
  const n = shape[axis];
  if (!(q >= 0 && q <= 1)) throw new OpTypeError(`quantile: q = ${q} is not in [0, 1]`);
  const pos = q * (n - 1);
  const lo = Math.min(Math.floor(pos), n - 1);
  const frac = pos - lo;
  const outShape = shape.filter((_, k) => k !== axis);
  const pick = (count: number) => g.add("take_along", [x, g.add("argsort", [x], { axis, descending: false, start: lo, count }, span)], { axis }, span);
  if (frac === 0) return reshape(g, pick(1), outShape);
  const both = pick(2);
  const at = (p: number) => {
    const starts = shape.map((_, k) => (k === axis ? p : 0));
    const sizes = shape.map((d, k) => (k === axis ? 1 : d));
    return reshape(g, g.add("slice", [both], { starts, steps: shape.map(() => 1), shape: sizes }, span), outShape);
  };
  const a = at(0);
  return add(g, a, mul(g, fill(g, frac, a), sub(g, at(1), a)), span);
}
