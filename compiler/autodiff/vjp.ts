// Reverse-mode differentiation as a graph → graph transform: the cotangents are new
// nodes in the same graph, built by each op's VJP rule, so they can be differentiated
// again (grad of grad) and are optimised and compiled like any other node.
import type { Graph } from "../ir/graph.ts";
import { fmtType } from "../ir/graph.ts";
import { getOp } from "../ops/registry.ts";
import { add, constant, fill } from "../ops/build.ts";
import type { Span } from "../../grammar/ast.ts";
import type { DType } from "../../runtime/bundle.ts";

const isFloat = (d: DType) => d === "f32" || d === "f16";

/** Differentiating through an op that has no derivative. */
export class NotDifferentiableError extends Error {
  constructor(readonly op: string, readonly span: Span | undefined, detail = "") {
    super(`cannot differentiate through '${op}'${detail}`);
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
  // `stop` cuts it: nothing past a stop depends on wrt as far as gradients go.
  for (let id = Math.min(...wrt); id <= y; id++) {
    if (!live[id] && g.nodes[id].op !== "stop" && g.nodes[id].inputs.some((i) => live[i])) live[id] = 1;
  }
  // Each node's cotangent contributions, summed when the node is reached (all its readers
  // come after it, so by then every contribution is in).
  const parts = new Map<number, number[]>();
  const total = (id: number): number | undefined => {
    const ps = parts.get(id);
    if (!ps) return undefined;
    if (ps.length > 1) parts.set(id, [sumCotangents(g, ps)]);
    return parts.get(id)![0];
  };
  parts.set(y, [seed ?? fill(g, 1, y)]);
  for (let id = y; id >= 0; id--) {
    if (!live[id]) continue;
    const c = total(id);
    if (c === undefined) continue;
    const node = g.nodes[id];
    if (node.inputs.length === 0) continue;
    const def = getOp(node.op);
    if (!def.vjp) throw new NotDifferentiableError(node.op, node.span);
    // A float made from an integer or boolean that depends on wrt (`cast(argmax(x))`,
    // `cast(x > 0)`, topk's indices): the value moves with wrt in steps, so its derivative is
    // not zero but undefined. That is an error unless the user says so with stop(...).
    // (Integers used as indices — gather, take_along, where's condition — are fine: the
    // gradient flows through the values they select.)
    if (node.op === "cast" && isFloat(g.type(node.id).dtype) && !isFloat(g.type(node.inputs[0]).dtype) && live[node.inputs[0]]) {
      const origin = integerOrigin(g, node.inputs[0], live);
      throw new NotDifferentiableError(origin.op, origin.span ?? node.span, ` (its ${g.type(origin.id).dtype} result reaches the value being differentiated through a cast)`);
    }
    const grads = def.vjp({ g, node, cot: c });
    node.inputs.forEach((input, k) => {
      const gk = grads[k];
      if (gk === null || gk === undefined || !live[input]) return;
      if (fmtType(g.type(gk)) !== fmtType(g.type(input))) {
        throw new Error(`internal: VJP of ${node.op} gave ${fmtType(g.type(gk))} for input ${fmtType(g.type(input))}`);
      }
      const ps = parts.get(input);
      if (ps) ps.push(gk);
      else parts.set(input, [gk]);
    });
  }
  return wrt.map((w) => total(w) ?? fill(g, 0, w));
}

/** The first node on the way up from `id` whose result is an integer or boolean made from a float that depends on wrt. */
function integerOrigin(g: Graph, id: number, live: Uint8Array): { id: number; op: string; span: Span | undefined } {
  let at = id;
  for (;;) {
    const n = g.node(at);
    const next = n.inputs.find((i) => live[i] && !isFloat(g.type(i).dtype));
    if (next === undefined) return { id: at, op: n.op, span: n.span };
    at = next;
  }
}

/**
 * The sum of a node's cotangent contributions, in order. Contributions that are slices'
 * adjoints — `pad`s of disjoint blocks along one axis, as the layers of a `repeat` stack
 * give their stacked parameter — are joined by one `concat` instead: no full-size padded
 * temporary per slice, no chain of sums over them (O(L) work, not O(L²)).
 */
function sumCotangents(g: Graph, ps: readonly number[]): number {
  const joined = joinPads(g, ps);
  let acc = joined[0];
  for (const p of joined.slice(1)) acc = add(g, acc, p);
  return acc;
}

function joinPads(g: Graph, ps: readonly number[]): number[] {
  if (ps.length < 2) return [...ps];
  const out = g.type(ps[0]).shape;
  /** the axis along which pad `p` places a block that spans every other axis whole, if any */
  const blockAxis = (p: number): number | undefined => {
    const n = g.node(p);
    if (n.op !== "pad") return undefined;
    const starts = n.attrs.starts as readonly number[];
    const steps = n.attrs.steps as readonly number[];
    const inner = g.type(n.inputs[0]).shape;
    if (steps.some((s) => s !== 1)) return undefined;
    const off = out.map((_, a) => a).filter((a) => starts[a] !== 0 || inner[a] !== out[a]);
    return off.length === 1 ? off[0] : off.length === 0 ? 0 : undefined;
  };
  const byAxis = new Map<number, number[]>();
  for (const p of ps) {
    const a = blockAxis(p);
    if (a !== undefined) byAxis.set(a, [...(byAxis.get(a) ?? []), p]);
  }
  let axis = -1;
  for (const [a, list] of byAxis) if (list.length >= 2 && (axis < 0 || list.length > byAxis.get(axis)!.length)) axis = a;
  if (axis < 0) return [...ps];
  const start = (p: number) => (g.node(p).attrs.starts as readonly number[])[axis];
  const size = (p: number) => g.type(g.node(p).inputs[0]).shape[axis];
  const taken: number[] = [];
  let at = 0;
  for (const p of [...byAxis.get(axis)!].sort((a, b) => start(a) - start(b))) {
    if (start(p) >= at) {
      taken.push(p);
      at = start(p) + size(p);
    }
  }
  if (taken.length < 2) return [...ps];
  const dtype = g.type(ps[0]).dtype;
  const pieces: number[] = [];
  const gap = (from: number, to: number) => {
    if (to > from) pieces.push(constant(g, 0, out.map((d, a) => (a === axis ? to - from : d)), dtype));
  };
  at = 0;
  for (const p of taken) {
    gap(at, start(p));
    pieces.push(g.node(p).inputs[0]);
    at = start(p) + size(p);
  }
  gap(at, out[axis]);
  const joined = g.add("concat", pieces, { axis });
  const rest = ps.filter((p) => !taken.includes(p));
  return [joined, ...rest];
}
