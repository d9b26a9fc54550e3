// The batching transform (vmap) as a graph → graph transform: a graph computed for ONE
// example becomes nodes of another graph that compute it for N examples at once. Each
// node goes through its op's batching rule (compiler/ops/*.ts, `batch`), which tracks
// where the batch axis of every value is, or that it has none: values that do not
// depend on the example (parameters, constants, closed-over tensors) stay unbatched and
// are computed once. `map` lowers its fn once on one example, then calls this.
//
// The batched nodes are ordinary ops, so they are differentiated (gradients through map),
// fused and compiled like any other node; grad inside the fn (per-example gradients) is
// differentiated first, on the one example, and then batched like the rest.
import type { Graph, Node } from "../ir/graph.ts";
import { fmtType, sameType } from "../ir/graph.ts";
import { getOp, type BatchArgs, type Batched } from "../ops/registry.ts";
import { constant, reshape } from "../ops/build.ts";
import { insertAxis, moveBatch } from "../ops/batching.ts";
import { InternalError } from "../diagnostics.ts";

export type { Batched };

const SOURCES = new Set(["input", "param", "state"]);

/**
 * Batches the nodes of `src` that `outs` depend on into `dst`, over `size` examples.
 * `env` gives each placeholder of `src` (a source standing for a per-example argument or
 * a closed-over value) its value in `dst`; other sources of `src` (say, the training
 * step) are the sources of the same name in `dst`. Returns each of `outs` in `dst`, with
 * the batch axis first (an output that does not depend on the example is broadcast).
 */
export function batchGraph(src: Graph, dst: Graph, env: ReadonlyMap<number, Batched>, outs: readonly number[], size: number): number[] {
  const needed = new Uint8Array(src.nodes.length);
  const stack = [...outs];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed[id]) continue;
    needed[id] = 1;
    stack.push(...src.nodes[id].inputs);
  }
  const val = new Map<number, Batched>(env);
  for (const node of src.nodes) {
    if (!needed[node.id] || val.has(node.id)) continue;
    if (SOURCES.has(node.op)) {
      val.set(node.id, { id: dst.source(node.op as "input" | "param" | "state", String(node.attrs.name), node.type, node.span), bdim: null });
      continue;
    }
    const inputs = node.inputs.map((i) => val.get(i)!);
    const def = getOp(node.op);
    if (!def.random && inputs.every((b) => b.bdim === null)) {
      val.set(node.id, { id: dst.add(node.op, inputs.map((b) => b.id), node.attrs, node.span), bdim: null });
      continue;
    }
    const args: BatchArgs = { g: dst, node, inputs, size };
    const out = def.batch?.(args) ?? perExample(args);
    check(dst, node, out, size);
    val.set(node.id, out);
  }
  return outs.map((o) => moveBatch(dst, val.get(o)!, 0, size));
}

/** A batching rule must give the per-example type with the batch axis inserted. */
function check(g: Graph, node: Node, out: Batched, size: number): void {
  const want = out.bdim === null ? node.type : { shape: insertAxis(node.type.shape, out.bdim, size), dtype: node.type.dtype };
  if (!sameType(g.type(out.id), want)) {
    throw new InternalError(`batching rule of ${node.op} gave ${fmtType(g.type(out.id))} at axis ${out.bdim} for ${fmtType(node.type)} over ${size}`);
  }
}

/**
 * The fallback for an op with no batching rule (or none for these inputs): the op once
 * per example, on slices, the results stacked. Correct for any op, but N nodes.
 */
function perExample({ g, node, inputs, size }: BatchArgs): Batched {
  const shape = node.type.shape;
  const full = [size, ...shape];
  if (size === 0) return { id: constant(g, 0, full, node.type.dtype), bdim: 0 };
  const rows = g.add("iota", [], { shape: full, axis: 0, dtype: "i32" });
  let out: number | undefined;
  for (let e = 0; e < size; e++) {
    const args = inputs.map((b) => (b.bdim === null ? b.id : exampleOf(g, b, e)));
    const r = g.add(node.op, args, node.attrs, node.span);
    const lifted = g.add("broadcast", [reshape(g, r, [1, ...shape])], { shape: full });
    out = out === undefined ? lifted : g.add("where", [g.add("eq", [rows, constant(g, e, full, "i32")]), lifted, out]);
  }
  return { id: out!, bdim: 0 };
}

/** Example `e` of a batched value: its slice along the batch axis, without that axis. */
export function exampleOf(g: Graph, b: Batched, e: number): number {
  const shape = g.type(b.id).shape;
  if (b.bdim === null) return b.id;
  const starts = shape.map((_, k) => (k === b.bdim ? e : 0));
  const sizes = shape.map((d, k) => (k === b.bdim ? 1 : d));
  const s = g.add("slice", [b.id], { starts, steps: shape.map(() => 1), shape: sizes });
  return reshape(g, s, shape.filter((_, k) => k !== b.bdim));
}
