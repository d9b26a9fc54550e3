// The memory plan: temporaries whose lifetimes do not overlap share one device buffer.
// Lifetimes come from the launch order: a temporary lives from the kernel that writes it
// to the last kernel that reads it (to the end of the run for outputs and for the
// sources of the step's update copies). Assignment is greedy best-fit in launch order.
import type { Bundle, BufferSpec } from "../../runtime/bundle.ts";

export interface MemoryReport {
  /** bytes of temporaries with one buffer each (no plan) */
  unplannedBytes: number;
  /** bytes of the planned temporaries' buffers */
  plannedBytes: number;
  /** the largest set of temporaries alive at once: no plan can use less */
  lowerBoundBytes: number;
  /** bytes of inputs, parameters, optimizer state and constants (not planned) */
  fixedBytes: number;
}

const bytes = (b: BufferSpec) => Math.max(1, b.length) * 4;

export interface MemoryPlan {
  bundle: Bundle;
  report: MemoryReport;
  /** unplanned buffer id → planned buffer id */
  assignment: Map<number, number>;
  /** each temporary's lifetime in launch indices, [first write, last read] */
  lifetimes: Map<number, [number, number]>;
}

export function planMemory(bundle: Bundle): MemoryPlan {
  const temps = bundle.buffers.filter((b) => b.role === "temp");
  const end = bundle.kernels.length;
  const born = new Map<number, number>();
  const dies = new Map<number, number>();
  bundle.kernels.forEach((k, j) => {
    k.bindings.forEach((id, slot) => {
      if (slot >= k.readOnly && !born.has(id)) born.set(id, j);
      dies.set(id, Math.max(dies.get(id) ?? j, j));
    });
  });
  for (const o of bundle.outputs) dies.set(o.buffer, end);
  for (const c of bundle.copies) dies.set(c.src, end);

  // Lower bound: the largest sum of live temporaries at any kernel.
  let lowerBound = 0;
  for (let j = 0; j < end; j++) {
    let live = 0;
    for (const t of temps) if ((born.get(t.id) ?? 0) <= j && (dies.get(t.id) ?? 0) >= j) live += bytes(t);
    lowerBound = Math.max(lowerBound, live);
  }

  // Greedy: at each kernel, its output takes the best-fitting free buffer of its type.
  interface Slot {
    id: number;
    type: BufferSpec["type"];
    length: number;
  }
  const slots: Slot[] = [];
  const free: Slot[] = [];
  const assigned = new Map<number, Slot>();
  const byDeath = new Map<number, number[]>();
  for (const t of temps) {
    const d = dies.get(t.id) ?? born.get(t.id) ?? 0;
    byDeath.set(d, [...(byDeath.get(d) ?? []), t.id]);
  }
  const spec = new Map(bundle.buffers.map((b) => [b.id, b]));
  bundle.kernels.forEach((k, j) => {
    for (const id of k.bindings.slice(k.readOnly)) {
      const b = spec.get(id)!;
      if (b.role !== "temp" || assigned.has(id)) continue;
      const fits = free.filter((s) => s.type === b.type);
      // best fit: the smallest free buffer that holds it, else the largest one (grown)
      const holds = fits.filter((s) => s.length >= b.length).sort((x, y) => x.length - y.length);
      let slot = holds[0] ?? fits.sort((x, y) => y.length - x.length)[0];
      if (slot) free.splice(free.indexOf(slot), 1);
      else {
        slot = { id: -1, type: b.type, length: 0 };
        slots.push(slot);
      }
      slot.length = Math.max(slot.length, b.length);
      assigned.set(id, slot);
    }
    for (const id of byDeath.get(j) ?? []) {
      const s = assigned.get(id);
      if (s && j < end) free.push(s);
    }
  });

  // Renumber: fixed buffers keep their order, then one buffer per slot.
  const buffers: BufferSpec[] = [];
  const remap = new Map<number, number>();
  for (const b of bundle.buffers) {
    if (b.role === "temp") continue;
    remap.set(b.id, buffers.length);
    buffers.push({ ...b, id: buffers.length });
  }
  for (const s of slots) {
    s.id = buffers.length;
    buffers.push({ id: s.id, length: s.length, type: s.type, role: "temp" });
  }
  for (const t of temps) {
    const s = assigned.get(t.id);
    // a temporary no kernel writes (cannot happen for compiled graphs) keeps a buffer of its own
    if (s) remap.set(t.id, s.id);
    else {
      remap.set(t.id, buffers.length);
      buffers.push({ ...t, id: buffers.length });
    }
  }
  const m = (id: number) => remap.get(id)!;
  const planned: Bundle = {
    ...bundle,
    buffers,
    kernels: bundle.kernels.map((k) => ({ ...k, bindings: k.bindings.map(m) })),
    copies: bundle.copies.map((c) => ({ src: m(c.src), dst: m(c.dst) })),
    inputs: bundle.inputs.map((r) => ({ ...r, buffer: m(r.buffer) })),
    outputs: bundle.outputs.map((r) => ({ ...r, buffer: m(r.buffer) })),
    params: bundle.params.map((r) => ({ ...r, buffer: m(r.buffer) })),
    state: bundle.state.map((r) => ({ ...r, buffer: m(r.buffer) })),
  };
  const report: MemoryReport = {
    unplannedBytes: temps.reduce((a, t) => a + bytes(t), 0),
    plannedBytes: buffers.filter((b) => b.role === "temp").reduce((a, b) => a + bytes(b), 0),
    lowerBoundBytes: lowerBound,
    fixedBytes: buffers.filter((b) => b.role !== "temp").reduce((a, b) => a + bytes(b), 0),
  };
  const lifetimes = new Map(temps.map((t) => [t.id, [born.get(t.id) ?? 0, dies.get(t.id) ?? 0] as [number, number]]));
  return { bundle: planned, report, assignment: remap, lifetimes };
}
