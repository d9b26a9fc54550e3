// Helpers for the batching rules of the ops (the `batch` entry of an OpDef): moving a
// batch axis, and the rules shared by families of ops. The transform that calls the
// rules is compiler/autodiff/batch.ts.
import type { Graph, Shape } from "../ir/graph.ts";
import { reshape, transpose } from "./build.ts";
import type { BatchArgs, Batched } from "./registry.ts";

/** `shape` with `d` inserted at `at`. */
export function insertAxis(shape: Shape, at: number, d: number): number[] {
  const s = [...shape];
  s.splice(at, 0, d);
  return s;
}

/** Where per-example axis `axis` sits in a tensor batched at `bdim`. */
export function batchedAxis(axis: number, bdim: number): number {
  return axis < bdim ? axis : axis + 1;
}

/**
 * `v` with its batch axis at `to`. An unbatched value is broadcast (a view: no copy);
 * a batched one is transposed (also a view).
 */
export function moveBatch(g: Graph, v: Batched, to: number, size: number): number {
  const shape = g.type(v.id).shape;
  if (v.bdim === null) {
    const lifted = reshape(g, v.id, insertAxis(shape, to, 1));
    return g.add("broadcast", [lifted], { shape: insertAxis(shape, to, size) });
  }
  if (v.bdim === to) return v.id;
  const perm = [...shape.keys()].filter((i) => i !== v.bdim);
  perm.splice(to, 0, v.bdim);
  return transpose(g, v.id, perm);
}

/** Ops applied element by element to same-shape inputs: batch them all at one axis. */
export function batchElementwise({ g, node, inputs, size }: BatchArgs): Batched {
  const bdim = inputs.find((b) => b.bdim !== null)?.bdim ?? 0;
  return { id: g.add(node.op, inputs.map((b) => moveBatch(g, b, bdim, size)), node.attrs), bdim };
}

/** Ops with an `axis` attribute that keep the shape (cumsum): the axis moves past the batch axis. */
export function batchAlongAxis({ g, node, inputs: [x] }: BatchArgs): Batched {
  const bdim = x.bdim!;
  return { id: g.add(node.op, [x.id], { ...node.attrs, axis: batchedAxis(node.attrs.axis as number, bdim) }), bdim };
}

/** Ops that remove their `axis` (argmax, kth_largest). */
export function batchRemovingAxis({ g, node, inputs: [x] }: BatchArgs): Batched {
  const bdim = x.bdim!;
  const axis = node.attrs.axis as number;
  return { id: g.add(node.op, [x.id], { ...node.attrs, axis: batchedAxis(axis, bdim) }), bdim: axis < bdim ? bdim - 1 : bdim };
}

/** Reductions over `axes`. */
export function batchReduce({ g, node, inputs: [x] }: BatchArgs): Batched {
  const bdim = x.bdim!;
  const axes = node.attrs.axes as number[];
  return { id: g.add(node.op, [x.id], { ...node.attrs, axes: axes.map((a) => batchedAxis(a, bdim)) }), bdim: bdim - axes.filter((a) => a < bdim).length };
}
