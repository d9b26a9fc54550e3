// The launch order of a step's kernels. Any order that keeps every kernel after the
// kernels it depends on computes the same values (bit for bit: each kernel computes the
// same thing, only when it runs changes), but not with the same memory: a temporary
// lives from its writer to its last reader, so running a consumer soon after its
// producer, and kernels that free memory before kernels that take it, lowers the peak.
// Memory-aware list scheduling: among the kernels whose dependencies have run, launch
// the one that grows the live set least (bytes it writes first, minus the bytes whose
// last reader it is); ties go to the earlier kernel. The result is kept only if the
// memory plan of that order is smaller than the plan of the given order.
import { bufferBytes, type Bundle } from "../../runtime/bundle.ts";
import { planMemory } from "./memory.ts";
import { InternalError } from "../diagnostics.ts";

/**
 * Dependencies implied by a valid launch list: a kernel follows the last writer of each
 * buffer it binds, and a writer follows every earlier reader since the last write.
 */
export function accessDependencies(bundle: Bundle): number[][] {
  const lastWriter = new Map<number, number>();
  const readers = new Map<number, number[]>();
  return bundle.kernels.map((k, j) => {
    const preds = new Set<number>();
    const ids = new Set(k.bindings);
    for (const id of ids) {
      const w = lastWriter.get(id);
      if (w !== undefined) preds.add(w);
    }
    k.bindings.forEach((id, slot) => {
      if (slot < k.readOnly) return;
      for (const r of readers.get(id) ?? []) preds.add(r);
      readers.set(id, []);
      lastWriter.set(id, j);
    });
    for (const id of ids) if (lastWriter.get(id) !== j) readers.set(id, [...(readers.get(id) ?? []), j]);
    preds.delete(j);
    return [...preds];
  });
}

/** The kernels in `order` (a permutation of their indices). */
export function reorder(bundle: Bundle, order: readonly number[]): Bundle {
  return { ...bundle, kernels: order.map((j) => bundle.kernels[j]) };
}

/** A topological order that keeps the given order wherever the dependencies allow. */
export function topoOrder(bundle: Bundle, preds: readonly (readonly number[])[] = accessDependencies(bundle)): Bundle {
  return reorder(bundle, listSchedule(bundle, preds, () => 0));
}

/** The order of lower planned memory: memory-aware list scheduling, or the given order. */
export function scheduleKernels(bundle: Bundle, preds: readonly (readonly number[])[] = accessDependencies(bundle)): Bundle {
  const given = topoOrder(bundle, preds);
  const temp = new Set(bundle.buffers.filter((b) => b.role === "temp").map((b) => b.id));
  const bytes = new Map(bundle.buffers.map((b) => [b.id, bufferBytes(b.length, b.type)]));
  const pinned = new Set<number>([...bundle.outputs.map((r) => r.buffer), ...bundle.copies.map((c) => c.src)]);
  const uses = new Map<number, number>();
  for (const k of bundle.kernels) for (const id of new Set(k.bindings)) if (temp.has(id)) uses.set(id, (uses.get(id) ?? 0) + 1);
  const live = new Set<number>();
  const cost = (j: number): number => {
    let c = 0;
    for (const id of new Set(bundle.kernels[j].bindings)) {
      if (!temp.has(id)) continue;
      if (!live.has(id)) c += bytes.get(id)!;
      if (uses.get(id) === 1 && !pinned.has(id)) c -= bytes.get(id)!;
    }
    return c;
  };
  const ran = (j: number) => {
    for (const id of new Set(bundle.kernels[j].bindings)) {
      if (!temp.has(id)) continue;
      live.add(id);
      uses.set(id, uses.get(id)! - 1);
    }
  };
  const greedy = reorder(bundle, listSchedule(bundle, preds, cost, ran));
  const size = (b: Bundle) => planMemory(b).report.plannedBytes;
  return size(greedy) < size(given) ? greedy : given;
}

/** Kahn's algorithm: repeatedly run the ready kernel of least cost (then lowest index). */
function listSchedule(bundle: Bundle, preds: readonly (readonly number[])[], cost: (j: number) => number, ran?: (j: number) => void): number[] {
  const n = bundle.kernels.length;
  const waiting = preds.map((p) => new Set(p).size);
  const succs: number[][] = Array.from({ length: n }, () => []);
  preds.forEach((p, j) => new Set(p).forEach((i) => succs[i].push(j)));
  const ready = new Set<number>();
  for (let j = 0; j < n; j++) if (waiting[j] === 0) ready.add(j);
  const order: number[] = [];
  while (ready.size) {
    let best = -1;
    let bestCost = Infinity;
    for (const j of ready) {
      const c = cost(j);
      if (c < bestCost || (c === bestCost && j < best)) {
        best = j;
        bestCost = c;
      }
    }
    ready.delete(best);
    order.push(best);
    ran?.(best);
    for (const s of succs[best]) if (--waiting[s] === 0) ready.add(s);
  }
  if (order.length !== n) throw new InternalError(`the kernels' dependencies have a cycle (${n - order.length} kernels never ready)`);
  return order;
}
