// Reverse-mode differentiation as a graph → graph transform: the cotangents are new
// nodes in the same graph, built by each op's VJP rule, so they can be differentiated
// again (grad of grad) and are optimised and compiled like any other node.
import type { Graph } from "../ir/graph.ts";
import { fmtType } from "../ir/graph.ts";
import { getOp } from "../ops/registry.ts";
import { add, fill } from "../ops/build.ts";
import type { Span } from "../../grammar/ast.ts";

/** Differentiating through an op that has no derivative. */
export class NotDifferentiableError extends Error {
  constructor(readonly op: string, readonly span: Span | undefined) {
    super(`cannot differentiate through '${op}'`);
  }
}

/**
 * Gradients of scalar `y` with respect to each node in `wrt`, as node ids.
 * `seed` is the cotangent of y (defaults to 1). Inputs that y does not depend on
 * get zeros.
 */
export function vjp(g: Graph, y: number, wrt: readonly number[], seed?: number): number[] {
  // Forward reachability from wrt: only those nodes carry gradients.
  const live = new Uint8Array(g.nodes.length);
  for (const w of wrt) live[w] = 1;
  for (let id = Math.min(...wrt); id <= y; id++) {
    if (!live[id] && g.nodes[id].inputs.some((i) => live[i])) live[id] = 1;
  }
  const cot = new Map<number, number>();
  cot.set(y, seed ?? fill(g, 1, y));
  for (let id = y; id >= 0; id--) {
    const c = cot.get(id);
    if (c === undefined || !live[id]) continue;
    const node = g.nodes[id];
    if (node.inputs.length === 0) continue;
    const def = getOp(node.op);
    if (!def.vjp) throw new NotDifferentiableError(node.op, node.span);
    const grads = def.vjp({ g, node, cot: c });
    node.inputs.forEach((input, k) => {
      const gk = grads[k];
      if (gk === null || gk === undefined || !live[input]) return;
      if (fmtType(g.type(gk)) !== fmtType(g.type(input))) {
        throw new Error(`internal: VJP of ${node.op} gave ${fmtType(g.type(gk))} for input ${fmtType(g.type(input))}`);
      }
      const prev = cot.get(input);
      cot.set(input, prev === undefined ? gk : add(g, prev, gk));
    });
  }
  return wrt.map((w) => cot.get(w) ?? fill(g, 0, w));
}
