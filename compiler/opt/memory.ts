// The memory plan: temporaries whose lifetimes do not overlap share one device buffer.
// Lifetimes come from the launch order: a temporary lives from the kernel that writes it
// to the last kernel that reads it (to the end of the run for outputs and for the
// sources of the step's update copies). Two assignments are tried and the smaller kept:
// best fit in launch order, and largest first (each temporary, biggest to smallest,
// joins the smallest buffer none of whose temporaries it overlaps, else a new one).
//
// The lower bound is the largest total size of temporaries alive at one launch of this
// launch order: every assignment of buffers for this order needs at least that much.
// (A different order may have a lower bound; compiler/opt/schedule.ts picks the order.)
import { bufferBytes, type Bundle, type BufferSpec } from "../../runtime/bundle.ts";

export interface MemoryReport {
  /** bytes of temporaries with one buffer each (no plan) */
  unplannedBytes: number;
  /** bytes of the planned temporaries' buffers: the step's peak for temporaries */
  plannedBytes: number;
  /** the largest set of temporaries alive at once in this launch order: no plan of it can use less */
  lowerBoundBytes: number;
  /** bytes of inputs, parameters, optimizer state and constants (not planned) */
  fixedBytes: number;
  /** which assignment was kept */
  strategy: "launch order" | "largest first";
}

const bytes = (b: Pick<BufferSpec, "length" | "type">) => bufferBytes(b.length, b.type);

export interface MemoryPlan {
  bundle: Bundle;
  report: MemoryReport;
  /** unplanned buffer id → planned buffer id */
  assignment: Map<number, number>;
  /** each temporary's lifetime in launch indices, [first write, last read] */
  lifetimes: Map<number, [number, number]>;
}

interface Slot {
  id: number;
  type: BufferSpec["type"];
  length: number;
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
  const life = (id: number): [number, number] => [born.get(id) ?? 0, dies.get(id) ?? born.get(id) ?? 0];

  // Lower bound: the largest sum of live temporaries at any kernel.
  const delta = new Float64Array(end + 2);
  for (const t of temps) {
    if (!born.has(t.id)) continue;
    const [a, b] = life(t.id);
    delta[a] += bytes(t);
    delta[Math.min(b, end) + 1] -= bytes(t);
  }
  let lowerBound = 0;
  for (let j = 0, live = 0; j <= end; j++) {
    live += delta[j];
    lowerBound = Math.max(lowerBound, live);
  }

  const written = temps.filter((t) => born.has(t.id));
  const candidates = [
    { strategy: "launch order" as const, ...launchOrderFit(bundle, written, life) },
    { strategy: "largest first" as const, ...largestFirst(written, life) },
  ];
  const total = (slots: Slot[]) => slots.reduce((a, s) => a + bytes(s), 0);
  const best = candidates.reduce((a, b) => (total(b.slots) < total(a.slots) ? b : a));
  const { slots, assigned } = best;

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
    strategy: best.strategy,
  };
  const lifetimes = new Map(temps.map((t) => [t.id, life(t.id)]));
  return { bundle: planned, report, assignment: remap, lifetimes };
}

type Lifetime = (id: number) => [number, number];

/** At each kernel, its outputs take the best-fitting free buffer of their type (growing the largest if none holds them). */
function launchOrderFit(bundle: Bundle, temps: BufferSpec[], life: Lifetime): { slots: Slot[]; assigned: Map<number, Slot> } {
  const end = bundle.kernels.length;
  const slots: Slot[] = [];
  const free: Slot[] = [];
  const assigned = new Map<number, Slot>();
  const byDeath = new Map<number, number[]>();
  for (const t of temps) {
    const d = life(t.id)[1];
    byDeath.set(d, [...(byDeath.get(d) ?? []), t.id]);
  }
  const spec = new Map(temps.map((b) => [b.id, b]));
  bundle.kernels.forEach((k, j) => {
    for (const id of k.bindings.slice(k.readOnly)) {
      const b = spec.get(id);
      if (!b || assigned.has(id)) continue;
      const fits = free.filter((s) => s.type === b.type);
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
  return { slots, assigned };
}

/** Biggest temporaries first, each into the smallest buffer of its type whose temporaries' lifetimes it does not overlap. */
function largestFirst(temps: BufferSpec[], life: Lifetime): { slots: Slot[]; assigned: Map<number, Slot> } {
  const slots: Slot[] = [];
  const uses = new Map<Slot, [number, number][]>();
  const assigned = new Map<number, Slot>();
  const order = [...temps].sort((a, b) => b.length - a.length || a.id - b.id);
  for (const t of order) {
    const [a, b] = life(t.id);
    let best: Slot | undefined;
    for (const s of slots) {
      if (s.type !== t.type || (best && s.length >= best.length)) continue;
      if (uses.get(s)!.some(([x, y]) => x <= b && a <= y)) continue;
      best = s;
    }
    if (!best) {
      best = { id: -1, type: t.type, length: t.length };
      slots.push(best);
      uses.set(best, []);
    }
    uses.get(best)!.push([a, b]);
    assigned.set(t.id, best);
  }
  return { slots, assigned };
}
