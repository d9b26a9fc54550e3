// Graph-building helpers over the primitives: NumPy broadcasting, scalars, reductions
// that keep dims. VJP rules and the lowering both build graphs through these.
import type { DType } from "../../runtime/bundle.ts";
import type { Graph, Shape, TensorType } from "../ir/graph.ts";
import { sameShape } from "../ir/graph.ts";
import type { Span } from "../../grammar/ast.ts";
import { OpTypeError } from "./registry.ts";

/** NumPy broadcast of two shapes, or undefined when they don't broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function shapeOf(g: Graph, x: number): Shape {
  return g.type(x).shape;
}

export function constant(g: Graph, value: number, shape: Shape, dtype: DType = "f32"): number {
  return g.add("const", [], { value, shape: [...shape], dtype });
}

/** A constant with the shape and dtype of `like`. */
export function fill(g: Graph, value: number, like: number | TensorType): number {
  const t = typeof like === "number" ? g.type(like) : like;
  return constant(g, value, t.shape, t.dtype);
}

export function broadcastTo(g: Graph, x: number, shape: Shape, span?: Span): number {
  if (sameShape(shapeOf(g, x), shape)) return x;
  return g.add("broadcast", [x], { shape: [...shape] }, span);
}

/** Apply a same-shape primitive after broadcasting its operands (NumPy rules). */
export function nary(g: Graph, op: string, xs: readonly number[], span?: Span): number {
  let shape: number[] = [];
  for (const x of xs) {
    const s = broadcastShapes(shape, shapeOf(g, x));
    if (!s) {
      throw new OpTypeError(`cannot broadcast ${xs.map((y) => `[${shapeOf(g, y).join(", ")}]`).join(" with ")}`);
    }
    shape = s;
  }
  return g.add(op, xs.map((x) => broadcastTo(g, x, shape, span)), {}, span);
}

export const add = (g: Graph, a: number, b: number, span?: Span) => nary(g, "add", [a, b], span);
export const sub = (g: Graph, a: number, b: number, span?: Span) => nary(g, "sub", [a, b], span);
export const mul = (g: Graph, a: number, b: number, span?: Span) => nary(g, "mul", [a, b], span);
export const div = (g: Graph, a: number, b: number, span?: Span) => nary(g, "div", [a, b], span);
export const unary = (g: Graph, op: string, x: number, span?: Span) => g.add(op, [x], {}, span);

/** `x * c` for a number c, without materialising c. */
export function scale(g: Graph, x: number, c: number): number {
  if (c === 1) return x;
  return g.add("mul", [x, fill(g, c, x)]);
}

export function reshape(g: Graph, x: number, shape: Shape): number {
  if (sameShape(shapeOf(g, x), shape)) return x;
  return g.add("reshape", [x], { shape: [...shape] });
}

export function transpose(g: Graph, x: number, perm: readonly number[]): number {
  if (perm.every((p, i) => p === i)) return x;
  return g.add("transpose", [x], { perm: [...perm] });
}

/** Swap the last two axes. */
export function mT(g: Graph, x: number): number {
  const r = shapeOf(g, x).length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transpose(g, x, perm);
}

export function reduce(g: Graph, op: "sum" | "max" | "min", x: number, axes: readonly number[], keepDims = false, span?: Span): number {
  if (axes.length === 0) return x;
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  // the reductions are the primitives sum / reduce_max / reduce_min (max and min are elementwise)
  const r = g.add(op === "sum" ? "sum" : `reduce_${op}`, [x], { axes: sorted }, span);
  if (!keepDims) return r;
  return reshape(g, r, shapeOf(g, x).map((d, i) => (sorted.includes(i) ? 1 : d)));
}

/** Sum `x` down to `shape` — the adjoint of broadcasting `shape` up to x's shape. */
export function sumTo(g: Graph, x: number, shape: Shape): number {
  const xs = shapeOf(g, x);
  if (sameShape(xs, shape)) return x;
  const lead = xs.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && xs[i] !== 1)) axes.push(i);
  }
  return reshape(g, reduce(g, "sum", x, axes), shape);
}

export function cast(g: Graph, x: number, dtype: DType): number {
  if (g.type(x).dtype === dtype) return x;
  return g.add("cast", [x], { dtype });
}
