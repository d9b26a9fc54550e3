// Graph IR → Bundle. Decides which nodes own a buffer and renders their kernels:
// - views (broadcast, transpose, reshape, slice, stop) never copy: readers index through them;
// - constants are inlined;
// - an elementwise node read by one consumer is fused into it (a chain of elementwise
//   ops and views becomes one kernel, and a reduction absorbs its elementwise prologue);
//   a node with several readers is fused into each while its expression is small
//   (recomputing a few ops costs less than a store and a load), else it gets a buffer;
//   outputs always get one;
// - reductions, matmul and the ops with their own kernels get a buffer each;
// - a concat writes each input into its region of one buffer (past the binding limit,
//   runs of inputs are joined first);
// - a sum over the batch of a batched matmul is one matmul over batch × K;
// - a training step's updates are written in place by the kernels computing them, a
//   parameter's updates in one kernel (compiler/codegen/update.ts), no copies after;
// - the launch order is chosen to lower peak memory (compiler/opt/schedule.ts), then
//   temporaries share buffers (compiler/opt/memory.ts);
// - a launch binding more of a buffer than the target's maxStorageBufferBindingSize is
//   split into chunks, each binding a part (runtime/split.ts, from the kernels'
//   footprints); with a known device its limits are checked (runtime/limits.ts).
import type { Bundle, BufferSpec, CopySpec, DType, KernelSpec, TensorRef } from "../../runtime/bundle.ts";
import { BUNDLE_VERSION, storageOf } from "../../runtime/bundle.ts";
import type { Graph, Node } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import { contiguous, type View } from "../kernel/view.ts";
import { getOp, type BufferOperand } from "../ops/registry.ts";
import { InternalError } from "../diagnostics.ts";
import { elementwiseKernel, finishKernel, matmulKernel, reduceKernels, vec4ElementwiseKernel } from "./wgsl.ts";
import type { Target } from "./target.ts";
import { PORTABLE, type DeviceProfile } from "../../runtime/profile.ts";
import { readAligned, updateKernel } from "./update.ts";
import { concatKernel, type ConcatPiece } from "./wgsl.ts";
import { isIdentity, type FusedOperand, type Operand, type PendingMatmul, type RawOperand, type Renderable } from "./render.ts";
import { planMemory } from "../opt/memory.ts";
import { scheduleKernels, topoOrder } from "../opt/schedule.ts";
import { checkDevice, DeviceLimitError } from "../../runtime/limits.ts";
import { fitBundle } from "../../runtime/split.ts";
import { fitsBindingLimit } from "./footprint.ts";

export interface CompileOptions {
  /** source name → node whose value replaces it after every run (training updates) */
  updates?: ReadonlyMap<string, number>;
  /** fuse elementwise chains into their consumers (default true) */
  fuse?: boolean;
  /** share buffers between temporaries whose lifetimes don't overlap (default true) */
  plan?: boolean;
  /**
   * Storage buffers one kernel may bind (WebGPU's maxStorageBuffersPerShaderStage).
   * The default, 8, is what every WebGPU device offers, so bundles run anywhere.
   */
  maxStorageBuffers?: number;
  /** write updates into the sources' own buffers where safe (default true) */
  inPlace?: boolean;
  /** order independent kernels to lower the peak memory (default true) */
  schedule?: boolean;
  /**
   * The device the bundle is for (GpuHandle.profile): kernels use its optional features
   * (subgroups), its measured matmul tiles and its limits. Default: runs on any device.
   */
  device?: DeviceProfile;
  /** force one matmul tile for every matmul, e.g. "8x8:8x4" or "16x16:4x4:k16" (tests, tuning) */
  matmulTile?: string;
  /** matmul kernels read sizes and strides from a uniform and share shaders across shapes (default true): Target.genericMatmul */
  genericMatmul?: boolean;
  /** element kernels of at least this many elements compute four a thread (default 2^20; Infinity: never) */
  vec4MinElements?: number;
}

/**
 * Element kernels of at least this many elements compute four a thread (wgsl.ts
 * vec4ElementwiseKernel). The vec4 kernel renders its expression four times, which lavapipe
 * pays for in JIT time at the first dispatch (about +300 ms over the transformer-block
 * step's 46 element and reduction kernels); from 1M elements a run saves more than a
 * millisecond (2.6 → 10 GB/s), so the cost is repaid within the first steps.
 */
const VEC4_MIN_ELEMENTS = 1 << 20;

/** Largest fused expression (in ops) that is recomputed by each of several readers. */
const MAX_SHARED_TREE = 12;

export function compileBundle(g: Graph, opts: CompileOptions = {}): Bundle {
  const updates = opts.updates ?? new Map<string, number>();
  const fuse = opts.fuse ?? true;
  const target: Target = { device: opts.device ?? PORTABLE, matmulTile: opts.matmulTile, genericMatmul: opts.genericMatmul };
  const maxBound = (opts.maxStorageBuffers ?? 8) - 1; // one binding is the output
  const vec4Min = opts.vec4MinElements ?? VEC4_MIN_ELEMENTS;
  const roots = [...g.outputs.values(), ...updates.values()];
  const needed = new Uint8Array(g.nodes.length);
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed[id]) continue;
    needed[id] = 1;
    stack.push(...g.nodes[id].inputs);
  }
  // Every source is part of the bundle's interface, needed or not (a param must be loadable).
  for (const id of g.sources.values()) needed[id] = 1;

  // How many kernels would read each node: a view is no kernel, so its readers count
  // as its input's. Outputs always get a buffer; an update counts as one reader (an
  // update read by nothing else stays a fused tree, computed where it is written).
  const readers = new Uint32Array(g.nodes.length);
  for (const r of g.outputs.values()) readers[r] += 2;
  for (const r of updates.values()) readers[r] += 1;
  // Values only the step's updates read (through elementwise ops and views): Adam's new
  // moments, a clipped gradient. They stay fused whatever their size: the updates of a
  // parameter are one kernel (compiler/codegen/update.ts), which computes them once.
  const forUpdates = new Uint8Array(g.nodes.length);
  const outputIds = new Set(g.outputs.values());
  for (const r of updates.values()) forUpdates[r] = outputIds.has(r) ? 0 : 1;
  const consumed = new Uint8Array(g.nodes.length);
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const node = g.nodes[id];
    if (!needed[id]) continue;
    const kind = getOp(node.op).lower.kind;
    const passes = kind === "view";
    for (const i of new Set(node.inputs)) {
      readers[i] += passes ? readers[id] : 1;
      const feeds = forUpdates[id] === 1 && (passes || kind === "elementwise");
      forUpdates[i] = outputIds.has(i) ? 0 : (consumed[i] ? forUpdates[i] : 1) & (feeds ? 1 : 0);
      consumed[i] = 1;
    }
  }

  const storedAs = fuse ? transposedStores(g, needed, outputIds) : new Map<number, View>();

  const buffers: BufferSpec[] = [];
  const kernels: KernelSpec[] = [];
  const operands = new Map<number, Operand>();
  const newBuffer = (spec: Omit<BufferSpec, "id">): number => {
    buffers.push({ id: buffers.length, ...spec });
    return buffers.length - 1;
  };
  /** Appends a kernel, noting the graph nodes it computes (WEFT_DEBUG's fusion report). */
  const writer = new Map<number, number>(); // temporary → the kernel writing it
  const push = (k: KernelSpec, nodes: Iterable<number>): void => {
    for (const b of k.bindings.slice(k.readOnly)) writer.set(b, kernels.length);
    const fused = [...new Set(nodes)].sort((a, b) => a - b).map((id) => {
      const n = g.node(id);
      return n.span ? { node: id, op: n.op, at: `${n.span.file.slice(n.span.file.search(/[^/\\]*$/))}:${n.span.line}:${n.span.col}` } : { node: id, op: n.op };
    });
    kernels.push({ ...k, fused });
  };
  const constBuffers = new Map<string, number>();
  const treeSize = new Map<number, number>();
  const holdsMatmul = new Set<number>();

  /** A pending matmul computed on its own (its reader could not take it as an epilogue). */
  const computed = new Map<number, BufferOperand>();
  const compute = (m: PendingMatmul): BufferOperand => {
    let b = computed.get(m.node.id);
    if (!b) {
      const node = m.node;
      b = newKernel(node, (out) => matmulKernel({ name: `${node.op}_${node.id}`, node, inputs: [m.a, m.b], out, target }));
      computed.set(node.id, b);
    }
    return { ...b, view: m.view };
  };
  /** The tree with every pending matmul computed into a buffer. */
  const resolve = <T extends Renderable>(op: T): T | BufferOperand => {
    if (op.kind === "matmul") return compute(op);
    if (op.kind === "fused") return { ...op, inputs: op.inputs.map(resolve) };
    return op;
  };

  /**
   * The kernel computing `op` (an operand of `node`'s shape) into buffer `out`. With
   * `alias`, every read of that buffer becomes a read of the output element being
   * written (the kernel will run with `alias` as its output, in place); undefined when
   * `op` reads it anywhere else.
   */
  const render = (node: Node, op: Operand, name: string, out: number, alias?: BufferOperand): KernelSpec | undefined => {
    const shape = node.type.shape;
    const m = epilogueMatmul(op, shape);
    if (m) {
      // The whole elementwise tree becomes the matmul's epilogue: one kernel, no round trip.
      if (alias && (m.a.buffer === alias.buffer || m.b.buffer === alias.buffer)) return undefined;
      const tree = resolve(substitute(op, m, "acc"));
      if (alias && !readAligned(tree, new Map([[alias.buffer, "old"]]), shape)) return undefined;
      // (the matmul's value: its f32 sum, rounded to f16 for an f16 product; matmul.ts)
      const acc: RawOperand = { kind: "raw", name: "acc", dtype: m.dtype };
      const spec = matmulKernel(
        { name: `${name}_matmul_${m.node.id}`, node: m.node, inputs: [m.a, m.b], out, target },
        {
          dtype: node.type.dtype,
          render: (r, idx, v, at) => {
            const t = alias ? readAligned(tree, new Map([[alias.buffer, `out[${at}]`]]), shape)! : tree;
            return r.value(substitute(t, acc, v), idx);
          },
          perElement: alias !== undefined || readsPerElement(tree),
        },
      );
      // Past the binding limit the matmul may need K in slices (no epilogue then), or the
      // epilogue reads what a split does not shrink: the tree is computed apart, below.
      if (fitsBindingLimit(spec, target)) return spec;
    }
    const root = alias ? readAligned(resolve(op), new Map([[alias.buffer, "out[i]"]]), shape) : fitted(resolve(op) as Operand);
    if (!root || root.kind === "raw") return undefined;
    if (!alias && numel(shape) >= vec4Min) {
      // four elements a thread where the reads allow (kept only where the launch fits or splits)
      const vec = vec4ElementwiseKernel(name, shape, node.type.dtype, root, out);
      if (vec && fitsBindingLimit(vec, target)) return vec;
    }
    return elementwiseKernel(name, shape, node.type.dtype, root, out);
  };
  /** Fused values computed into buffers of their own to keep kernels within the binding limit, by node. */
  const spilled = new Map<number, BufferOperand>();
  /** The fused node `x` (read through its view) computed into a buffer, once. */
  const spill = (x: FusedOperand): BufferOperand => {
    let b = spilled.get(x.node.id);
    if (!b) {
      b = materialise(x.node, { ...x, view: contiguous(x.node.type.shape) });
      spilled.set(x.node.id, b);
    }
    return { ...b, view: x.view };
  };
  /** `op` reading the buffers of nodes spilled already. */
  const withSpills = (op: Renderable): Renderable => {
    if (op.kind !== "fused") return op;
    const b = spilled.get(op.node.id);
    return b ? { ...b, view: op.view } : { ...op, inputs: op.inputs.map(withSpills) };
  };
  /** One more fused subtree of `ops` (the one binding the most buffers) spilled; false if there is none. */
  /** Of the subtrees, the one whose spilling leaves `ops` binding the fewest buffers (`free` ones not counted). */
  const spillOne = (ops: Renderable[], free: ReadonlySet<number> = new Set()): Renderable[] | undefined => {
    const candidates = new Map<number, FusedOperand>();
    const visit = (x: Renderable, top: boolean) => {
      if (x.kind !== "fused") return;
      if (!top) candidates.set(x.node.id, x);
      for (const i of x.inputs) visit(i, false);
    };
    for (const op of ops) visit(op, true);
    const count = (xs: Renderable[]) => [...bindingsOf(xs)].filter((b) => !free.has(b)).length;
    let best: FusedOperand | undefined;
    let bestScore = [Infinity, 0];
    for (const [id, x] of candidates) {
      const left = count(ops.map((op) => replaceNode(op, id, -1)));
      const own = bindingsOf([x]).size;
      if (left < bestScore[0] || (left === bestScore[0] && own > bestScore[1])) {
        best = x;
        bestScore = [left, own];
      }
    }
    if (!best) return undefined;
    spill(best);
    return ops.map(withSpills);
  };
  /** An elementwise tree within the binding limit: its biggest fused subtrees computed first. */
  const fitted = (op: Operand): Operand => {
    let ops: Renderable[] = [withSpills(op)];
    while (bindingsOf(ops).size > maxBound) {
      const next = spillOne(ops);
      if (!next) break;
      ops = next;
    }
    return ops[0] as Operand;
  };
  /** How to render the kernel that wrote a buffer again, reading `alias` in place. */
  const rerender = new Map<number, (alias: BufferOperand) => KernelSpec | undefined>();

  /** Computes `op` (an operand of `node`'s shape) into a buffer of its own. */
  const materialise = (node: Node, op: Operand, name = `${node.op}_${node.id}`): BufferOperand => {
    const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
    push(render(node, op, name, out)!, [node.id, ...nodesOf(op)]);
    rerender.set(out, (alias) => render(node, op, name, out, alias));
    return { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
  };
  const newKernel = (node: Node, kernel: (out: number) => KernelSpec): BufferOperand => {
    const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
    push(kernel(out), [node.id]);
    return { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
  };

  /** A buffer for ops whose own kernels read buffers (matmul, gathers): fused inputs are computed first. */
  const asBuffer = (id: number): BufferOperand => {
    const o = operands.get(id)!;
    if (o.kind === "buffer") return o;
    if (o.kind === "fused") {
      // Computed once: every later reader of this node reads the buffer.
      const b = materialise(g.node(id), o, `${g.node(id).op}_${id}`);
      operands.set(id, b);
      treeSize.delete(id);
      holdsMatmul.delete(id);
      return b;
    }
    if (o.kind === "matmul") return compute(o);
    const key = `${o.dtype}:${o.value}`;
    let b = constBuffers.get(key);
    if (b === undefined) {
      b = newBuffer({ length: 1, type: storageOf(o.dtype), role: "const", data: [o.value] });
      constBuffers.set(key, b);
    }
    return { kind: "buffer", buffer: b, view: { shape: o.shape, strides: o.shape.map(() => 0), offset: 0 }, dtype: o.dtype };
  };

  for (const node of g.nodes) {
    if (!needed[node.id]) continue;
    const lower = getOp(node.op).lower;
    const name = `${node.op}_${node.id}`;
    let operand: Operand;
    switch (lower.kind) {
      case "source": {
        const role = node.op === "input" ? "input" : node.op === "param" ? "param" : "state";
        const b = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role, name: String(node.attrs.name) });
        operand = { kind: "buffer", buffer: b, view: contiguous(node.type.shape), dtype: node.type.dtype };
        break;
      }
      case "const":
        operand = { kind: "const", value: node.attrs.value as number, shape: node.type.shape, dtype: node.type.dtype };
        break;
      case "view": {
        const src = operands.get(node.inputs[0])!;
        if (src.kind === "fused") treeSize.set(node.id, treeSize.get(node.inputs[0]) ?? 0);
        if (holdsMatmul.has(node.inputs[0])) holdsMatmul.add(node.id);
        if (src.kind === "const") {
          operand = { kind: "const", value: src.value, shape: node.type.shape, dtype: src.dtype };
          break;
        }
        const v = lower.view(src.view, node.attrs, node.type);
        if (v) {
          operand = { ...src, view: v, dtype: node.type.dtype };
          break;
        }
        // The strides don't allow this view: compute the input in row-major order first.
        const input = g.node(node.inputs[0]);
        const copy = materialise(input, src, `copy_${input.id}`);
        const cv = lower.view(copy.view, node.attrs, node.type);
        if (!cv) throw new InternalError(`${node.op} of a contiguous tensor must be a view`);
        operand = { ...copy, view: cv, dtype: node.type.dtype };
        break;
      }
      case "elementwise": {
        // A kernel may bind only so many buffers: past the limit, fused inputs are
        // computed into buffers of their own (each is within the limit, so this ends).
        // (Not for a value only updates read: the update kernel fits itself to the limit.)
        let inputs = node.inputs.map((i) => operands.get(i)!);
        while (!forUpdates[node.id] && bindingsOf(inputs).size > maxBound) {
          const k = largestFused(inputs);
          if (k < 0) break;
          inputs = inputs.map((x, j) => (j === k ? asBuffer(node.inputs[k]) : x));
        }
        const fused: Operand = {
          kind: "fused",
          node,
          inputs,
          expr: lower.expr,
          native: lower.native,
          view: contiguous(node.type.shape),
          dtype: node.type.dtype,
        };
        // Size of the fused expression tree: a value with several readers is recomputed
        // in each (shared within a kernel), which is cheaper than a store and a load
        // while the tree is small.
        const size = 1 + node.inputs.reduce((n, i) => n + (treeSize.get(i) ?? 0), 0);
        // A tree holding a pending matmul is never recomputed: the matmul would run twice.
        const heavy = node.inputs.some((i) => holdsMatmul.has(i) || operands.get(i)?.kind === "matmul");
        const inline = fuse && (readers[node.id] <= 1 || (!heavy && (size <= MAX_SHARED_TREE || forUpdates[node.id] === 1)));
        // (A materialised node holds no pending matmul: its readers may recompute from it.)
        if (heavy && inline) holdsMatmul.add(node.id);
        if (inline) treeSize.set(node.id, size);
        operand = inline ? fused : materialise(node, fused, name);
        break;
      }
      case "reduce": {
        const input = operands.get(node.inputs[0])!;
        // A sum over the batch of a batched matmul (a broadcast weight's gradient) is one
        // matmul whose contraction runs over the batch too: no batched temporary, no sum.
        // (Not in f16: the program rounds each batch's product to f16 before the sum, and
        // one merged f32 sum would skip those roundings; the reference defines them.)
        const merged = node.op === "sum" && input.kind === "matmul" && node.type.dtype !== "f16" ? mergeBatch(input, node) : undefined;
        if (merged) {
          operand = fuse && readers[node.id] <= 1 ? merged : compute(merged);
          break;
        }
        const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
        const prologue = fuse || input.kind !== "fused" ? resolve(input) : asBuffer(node.inputs[0]);
        const scratch = (length: number, dtype: DType) => newBuffer({ length, type: storageOf(dtype), role: "temp" });
        for (const k of reduceKernels(name, node, prologue as Operand, lower, out, { target, scratch })) push(k, [node.id, ...nodesOf(prologue)]);
        operand = { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
        break;
      }
      case "kernel": {
        const inputs = node.inputs.map(asBuffer);
        const order = storedAs.get(node.id);
        if (order) {
          // stored in the order its one reader (a transpose, then reshapes) reads it
          const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
          push(matmulKernel({ name, node, inputs, out, target }, undefined, order), [node.id]);
          operand = { kind: "buffer", buffer: out, view: order, dtype: node.type.dtype };
          break;
        }
        // A matmul read by one consumer waits: that consumer may take it as an epilogue.
        operand =
          node.op === "matmul" && fuse && readers[node.id] <= 1
            ? { kind: "matmul", node, a: inputs[0], b: inputs[1], view: contiguous(node.type.shape), dtype: node.type.dtype }
            : newKernel(node, (out) => lower.emit({ name, node, inputs, out, target }));
        break;
      }
      case "concat": {
        // Each input goes to its own region of one buffer, rendered where it is (through
        // its view, or its fused expression): no padded copies, no sums of them. A kernel
        // takes the inputs whose buffers fit the binding limit; past it, runs of inputs are
        // joined into buffers of their own first, and those joined (each buffer one writer).
        const axis = node.attrs.axis as number;
        let start = 0;
        const pieces: ConcatPiece[] = node.inputs.map((id) => {
          let op = resolve(operands.get(id)!) as Operand;
          if (bindingsOf([op]).size > maxBound) op = asBuffer(id);
          const shape = g.type(id).shape;
          start += shape[axis];
          return { op, shape, start: start - shape[axis] };
        });
        let level = 0;
        const join = (ps: ConcatPiece[], shape: readonly number[], suffix: string): BufferOperand => {
          const out = newBuffer({ length: Math.max(1, numel(shape)), type: storageOf(node.type.dtype), role: "temp" });
          push(concatKernel(`${name}${suffix}`, shape, node.type.dtype, axis, ps, out), [node.id]);
          return { kind: "buffer", buffer: out, view: contiguous(shape), dtype: node.type.dtype };
        };
        let todo = pieces;
        for (;;) {
          const groups: ConcatPiece[][] = [[]];
          for (const p of todo) {
            const group = groups[groups.length - 1];
            if (group.length && bindingsOf([...group.map((q) => q.op), p.op]).size > maxBound) groups.push([p]);
            else group.push(p);
          }
          if (groups.length === 1) {
            operand = join(todo, node.type.shape, level ? "_joined" : "");
            break;
          }
          todo = groups.map((group, k) => {
            const first = group[0].start;
            const size = group.reduce((n, q) => n + q.shape[axis], 0);
            const shape = node.type.shape.map((d, a) => (a === axis ? size : d));
            const part = join(group.map((q) => ({ ...q, start: q.start - first })), shape, `_part${level}_${k}`);
            return { op: part, shape, start: first };
          });
          level++;
        }
        break;
      }
    }
    operands.set(node.id, operand);
  }

  /** Outputs and updates own a contiguous buffer; views, constants and fused values are computed into one. */
  const owned = (id: number, forbid?: number): number => {
    const o = operands.get(id)!;
    const node = g.node(id);
    if (o.kind === "buffer" && buffers[o.buffer].role === "temp" && isOwnContiguous(o.view, node) && o.buffer !== forbid) return o.buffer;
    return materialise(node, o, `copy_${id}`).buffer;
  };

  const ref = (name: string, id: number, buffer: number): TensorRef => ({ name, buffer, shape: [...g.type(id).shape], dtype: g.type(id).dtype });
  const outputs = [...g.outputs].map(([name, id]) => ref(name, id, owned(id)));
  const sourceBuffer = (name: string): number => {
    const src = g.sources.get(name);
    if (src === undefined) throw new InternalError(`update of unknown source ${name}`);
    return (operands.get(src) as BufferOperand).buffer;
  };

  // The step's updates, in place where that is safe (compiler/codegen/update.ts): a
  // source is rewritten by the kernel computing its new value, not copied over from a
  // temporary after the run. Every other kernel that reads the old value must be able
  // to run before that kernel; where they cannot (a cycle), the sources of one in-place
  // kernel on the cycle go back to a temporary and a copy, and the updates are redone.
  const denied = new Set<string>();
  const before = { kernels: kernels.length, buffers: buffers.length, computed: new Map(computed), writer: new Map(writer), rerender: new Map(rerender), spilled: new Map(spilled) };
  let phase: UpdatePhase;
  for (;;) {
    phase = emitUpdates(denied);
    const cycle = findCycle(dependencies(kernels, buffers, phase.renames, phase.writes));
    if (!cycle) break;
    const k = cycle.find((j) => phase.writes.has(j))!;
    for (const name of phase.writes.get(k)!) denied.add(name);
    // undo this attempt
    for (const [j, spec] of phase.replaced) kernels[j] = spec;
    kernels.length = before.kernels;
    buffers.length = before.buffers;
    for (const m of [[computed, before.computed], [writer, before.writer], [rerender, before.rerender], [spilled, before.spilled]] as const) {
      (m[0] as Map<number, unknown>).clear();
      for (const [a, b] of m[1] as Map<number, unknown>) (m[0] as Map<number, unknown>).set(a, b);
    }
  }

  interface UpdatePhase {
    copies: CopySpec[];
    /** temporary → the source buffer it becomes */
    renames: Map<number, number>;
    /** in-place kernel → the sources it rewrites */
    writes: Map<number, string[]>;
    /** kernels replaced by an in-place version: their original specs */
    replaced: Map<number, KernelSpec>;
  }
  function emitUpdates(deny: ReadonlySet<string>): UpdatePhase {
    const out: UpdatePhase = { copies: [], renames: new Map(), writes: new Map(), replaced: new Map() };
    const inPlace = (k: number, pairs: { temp: number; source: number; name: string }[]) => {
      for (const p of pairs) out.renames.set(p.temp, p.source);
      out.writes.set(k, pairs.map((p) => p.name));
    };
    const fusedClass: { name: string; id: number; source: number; op: Operand }[] = [];
    for (const [name, id] of updates) {
      const source = sourceBuffer(name);
      if (id === g.sources.get(name)) continue; // unchanged
      const o = operands.get(id)!;
      if (opts.inPlace === false || deny.has(name)) {
        out.copies.push({ src: owned(id, source), dst: source });
        continue;
      }
      if (o.kind === "buffer" && buffers[o.buffer].role === "temp" && isOwnContiguous(o.view, g.node(id))) {
        // Computed already (it has other readers): its kernel writes the source instead.
        const k = writer.get(o.buffer);
        const spec = k === undefined ? undefined : kernels[k];
        const taken = out.renames.has(o.buffer) || kernels.filter((x) => x.bindings.slice(x.readOnly).includes(o.buffer)).length !== 1;
        if (k !== undefined && spec && !taken && spec.bindings.length - spec.readOnly === 1) {
          const readsOld = spec.bindings.slice(0, spec.readOnly).includes(source);
          const aliased = readsOld ? rerender.get(o.buffer)?.({ kind: "buffer", buffer: source, view: o.view, dtype: o.dtype }) : spec;
          if (aliased) {
            out.replaced.set(k, spec);
            kernels[k] = { ...aliased, fused: spec.fused };
            inPlace(k, [{ temp: o.buffer, source, name }]);
            continue;
          }
        }
        out.copies.push({ src: o.buffer, dst: source });
        continue;
      }
      fusedClass.push({ name, id, source, op: o });
    }

    // Updates of one shape that read each other's sources are computed by one kernel.
    const reads = fusedClass.map((u) => u.op);
    const group = fusedClass.map((_, i) => i);
    const find = (i: number): number => (group[i] === i ? i : (group[i] = find(group[i])));
    const bySource = new Map(fusedClass.map((u, i) => [u.source, i]));
    const epilogue = fusedClass.map((u) => epilogueMatmul(u.op, g.type(u.id).shape) !== undefined);
    fusedClass.forEach((u, i) => {
      if (epilogue[i]) return;
      for (const b of bindingsOf([reads[i]])) {
        const j = bySource.get(b);
        if (j === undefined || j === i || epilogue[j] || !sameShape(g.type(fusedClass[j].id).shape, g.type(u.id).shape)) continue;
        group[find(i)] = find(j);
      }
    });
    const groups = new Map<number, number[]>();
    fusedClass.forEach((_, i) => groups.set(find(i), [...(groups.get(find(i)) ?? []), i]));

    const fallback = (u: (typeof fusedClass)[number]) => out.copies.push({ src: owned(u.id, u.source), dst: u.source });
    const tempFor = (id: number) => newBuffer({ length: Math.max(1, numel(g.type(id).shape)), type: storageOf(g.type(id).dtype), role: "temp" });
    /** One kernel computing `members` in place, if it fits the binding limit. */
    const tryGroup = (members: number[]): boolean => {
      const us = members.map((i) => fusedClass[i]);
      const shape = g.type(us[0].id).shape;
      let roots: Renderable[] = us.map((u) => withSpills(resolve(u.op))); // (computes any matmul the trees hold)
      const name = us.length === 1 ? `update_${us[0].id}` : `update_${us.map((u) => u.id).join("_")}`;
      for (;;) {
        const mark = buffers.length;
        const items = us.map((u, k) => ({ root: roots[k], dtype: g.type(u.id).dtype, out: tempFor(u.id), source: u.source }));
        const spec = updateKernel(name, shape, items, true);
        if (spec && spec.bindings.length <= maxBound + 1) {
          push(spec, us.flatMap((u, k) => [u.id, ...nodesOf(roots[k])]));
          inPlace(kernels.length - 1, items.map((it, k) => ({ temp: it.out, source: it.source, name: us[k].name })));
          return true;
        }
        buffers.length = mark;
        // Over the binding limit: compute a shared subtree (a gradient, a moment) first.
        const next = spec ? spillOne(roots, new Set(us.map((u) => u.source))) : undefined;
        if (!next) return false;
        roots = next;
      }
    };
    for (const members of groups.values()) {
      const first = fusedClass[members[0]];
      if (members.length === 1 && epilogue[members[0]]) {
        // A matmul whose epilogue is the update: one kernel writes the source.
        const node = g.node(first.id);
        const temp = tempFor(first.id);
        const spec = render(node, first.op, `update_${first.id}`, temp, { kind: "buffer", buffer: first.source, view: contiguous(node.type.shape), dtype: node.type.dtype });
        if (!spec) {
          buffers.length = temp;
          fallback(first);
          continue;
        }
        push(spec, [first.id, ...nodesOf(first.op)]);
        inPlace(kernels.length - 1, [{ temp, source: first.source, name: first.name }]);
        continue;
      }
      if (tryGroup(members)) continue;
      // Too many bindings (or a source read off its element): one kernel each.
      for (const i of members) if (members.length === 1 || !tryGroup([i])) fallback(fusedClass[i]);
    }
    return out;
  }

  const rename = (b: number) => phase.renames.get(b) ?? b;
  const preds = dependencies(kernels, buffers, phase.renames, phase.writes);
  const renamed: Bundle = {
    version: BUNDLE_VERSION,
    buffers,
    // (every kernel gets its `enable f16;` and helpers here, whichever stage rendered it)
    kernels: kernels.map((k) => ({ ...k, wgsl: finishKernel(k.wgsl), bindings: k.bindings.map(rename) })),
    copies: phase.copies.map((c) => ({ src: rename(c.src), dst: c.dst })),
    inputs: sourcesOf("input"),
    outputs: outputs.map((r) => ({ ...r, buffer: rename(r.buffer) })),
    params: sourcesOf("param"),
    state: sourcesOf("state"),
  };
  function sourcesOf(op: string): TensorRef[] {
    return [...g.sources].filter(([, id]) => g.node(id).op === op).map(([name, id]) => ref(name, id, (operands.get(id) as BufferOperand).buffer));
  }
  const [live, livePreds] = dropDead(renamed, preds);
  const bundle = compact(opts.schedule === false ? topoOrder(live, livePreds) : scheduleKernels(live, livePreds));
  const planned = opts.plan === false ? bundle : planMemory(bundle).bundle;
  // Launches binding more of a buffer than the target allows are split into chunks.
  const result = fitBundle(planned, target.device.limits.maxStorageBufferBindingSize);
  // Compiled for a known device: what it cannot run is an error now, not at load (nor at
  // dispatch): a launch that cannot be split is refused, saying why.
  if (opts.device) {
    const sub = opts.device.features.includes("subgroups") ? (opts.device.subgroupMinSize ?? 0) : undefined;
    const short = checkDevice(result, opts.device.limits, opts.device.features, sub);
    if (short.length) throw new DeviceLimitError(short, "the target device");
  }
  return result;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Which kernels each kernel must follow: the writer of every temporary it reads, and —
 * for a kernel that rewrites a source in place — every other kernel reading that
 * source's old value. (`kernels` is in single-assignment form: each temporary has one
 * writer, in-place kernels still write temporaries that `renames` maps to sources.)
 */
function dependencies(kernels: readonly KernelSpec[], buffers: readonly BufferSpec[], renames: ReadonlyMap<number, number>, writes: ReadonlyMap<number, unknown>): number[][] {
  // (a concat's output is written by several kernels, each its own region)
  const writers = new Map<number, number[]>();
  kernels.forEach((k, j) => k.bindings.slice(k.readOnly).forEach((b) => writers.set(b, [...(writers.get(b) ?? []), j])));
  const rewriter = new Map<number, number>(); // source buffer → its in-place kernel
  for (const k of writes.keys()) for (const b of kernels[k].bindings.slice(kernels[k].readOnly)) if (renames.has(b)) rewriter.set(renames.get(b)!, k);
  const preds = kernels.map(() => new Set<number>());
  kernels.forEach((k, j) => {
    for (const b of k.bindings.slice(0, k.readOnly)) {
      if (buffers[b].role === "temp") for (const w of writers.get(b) ?? []) if (w !== j) preds[j].add(w);
      const r = rewriter.get(b);
      if (r !== undefined && r !== j) preds[r].add(j);
    }
  });
  return preds.map((p) => [...p]);
}

/**
 * The bundle without kernels whose results nothing uses (a subtree computed ahead for an
 * update kernel that was then rendered another way), and the dependencies renumbered.
 */
function dropDead(b: Bundle, preds: number[][]): [Bundle, number[][]] {
  const temp = new Set(b.buffers.filter((x) => x.role === "temp").map((x) => x.id));
  const needed = new Set<number>([...b.outputs.map((r) => r.buffer), ...b.copies.map((c) => c.src)]);
  const live = new Array<boolean>(b.kernels.length).fill(false);
  for (let changed = true; changed; ) {
    changed = false;
    b.kernels.forEach((k, j) => {
      if (live[j] || !k.bindings.slice(k.readOnly).some((id) => !temp.has(id) || needed.has(id))) return;
      live[j] = changed = true;
      for (const id of k.bindings.slice(0, k.readOnly)) needed.add(id);
    });
  }
  if (live.every(Boolean)) return [b, preds];
  const index = new Map<number, number>();
  live.forEach((l, j) => l && index.set(j, index.size));
  const kept = preds.filter((_, j) => live[j]).map((p) => p.filter((i) => live[i]).map((i) => index.get(i)!));
  return [{ ...b, kernels: b.kernels.filter((_, j) => live[j]) }, kept];
}

/** A cycle in the dependency graph (kernel indices), or undefined. */
function findCycle(preds: readonly number[][]): number[] | undefined {
  const state = new Uint8Array(preds.length); // 0 new, 1 on the path, 2 done
  const path: number[] = [];
  const visit = (j: number): number[] | undefined => {
    state[j] = 1;
    path.push(j);
    for (const p of preds[j]) {
      if (state[p] === 1) return path.slice(path.indexOf(p));
      if (state[p] === 0) {
        const c = visit(p);
        if (c) return c;
      }
    }
    path.pop();
    state[j] = 2;
    return undefined;
  };
  for (let j = 0; j < preds.length; j++) {
    if (state[j] !== 0) continue;
    const c = visit(j);
    if (c) return c;
  }
  return undefined;
}

/** The bundle without buffers nothing refers to (temporaries renamed to sources), renumbered. */
function compact(b: Bundle): Bundle {
  const used = new Set<number>();
  for (const k of b.kernels) for (const id of k.bindings) used.add(id);
  for (const c of b.copies) used.add(c.src).add(c.dst);
  for (const r of [...b.inputs, ...b.outputs, ...b.params, ...b.state]) used.add(r.buffer);
  const remap = new Map<number, number>();
  const buffers: BufferSpec[] = [];
  for (const x of b.buffers) {
    if (x.role === "temp" && !used.has(x.id)) continue;
    remap.set(x.id, buffers.length);
    buffers.push({ ...x, id: buffers.length });
  }
  const m = (id: number) => remap.get(id)!;
  return {
    ...b,
    buffers,
    kernels: b.kernels.map((k) => ({ ...k, bindings: k.bindings.map(m) })),
    copies: b.copies.map((c) => ({ src: m(c.src), dst: m(c.dst) })),
    inputs: b.inputs.map((r) => ({ ...r, buffer: m(r.buffer) })),
    outputs: b.outputs.map((r) => ({ ...r, buffer: m(r.buffer) })),
    params: b.params.map((r) => ({ ...r, buffer: m(r.buffer) })),
    state: b.state.map((r) => ({ ...r, buffer: m(r.buffer) })),
  };
}

/**
 * `sum(a @ b, axes = batch axes)` as one matmul: [M, K] per batch element becomes
 * [M, batch·K] when a's and b's batch strides continue their K strides (true of
 * contiguous operands and their transposes). Undefined when they do not.
 */
function mergeBatch(m: PendingMatmul, sum: Node): PendingMatmul | undefined {
  const shape = m.node.type.shape;
  const r = shape.length;
  const axes = [...(sum.attrs.axes as number[])].sort((x, y) => x - y);
  if (r < 3 || axes.length !== r - 2 || axes.some((a, i) => a !== i) || !isIdentity(m.view, shape)) return undefined;
  const K = m.a.view.shape[r - 1];
  const batch = shape.slice(0, r - 2).reduce((x, y) => x * y, 1);
  /** Does `v` (batch dims, then two) step through the batch at `inner` × K per element? */
  const merges = (v: View, inner: number): boolean => {
    let expected = inner * K;
    for (let i = r - 3; i >= 0; i--) {
      if (v.shape[i] !== 1 && v.strides[i] !== expected) return false;
      expected *= v.shape[i];
    }
    return true;
  };
  const a = m.a.view;
  const b = m.b.view;
  if (!merges(a, a.strides[r - 1]) || !merges(b, b.strides[r - 2])) return undefined;
  const M = shape[r - 2];
  const N = shape[r - 1];
  return {
    kind: "matmul",
    node: { ...m.node, id: sum.id, type: sum.type },
    a: { ...m.a, view: { shape: [M, batch * K], strides: [a.strides[r - 2], a.strides[r - 1]], offset: a.offset } },
    b: { ...m.b, view: { shape: [batch * K, N], strides: [b.strides[r - 2], b.strides[r - 1]], offset: b.offset } },
    view: contiguous(sum.type.shape),
    dtype: m.dtype,
  };
}

/**
 * Matmuls whose one reader is a transpose read only by reshapes (attention's heads merged
 * back, and the same in its gradient): the reshape of the transposed product needs it in
 * the transpose's row-major order — a copy, or strided reads by every reader. Such a
 * matmul stores its product in that order instead (the view over its own shape, by node).
 */
function transposedStores(g: Graph, needed: Uint8Array, outputs: ReadonlySet<number>): Map<number, View> {
  const readers = new Map<number, Node[]>();
  for (const n of g.nodes) {
    if (!needed[n.id]) continue;
    for (const i of new Set(n.inputs)) {
      const list = readers.get(i);
      if (list) list.push(n);
      else readers.set(i, [n]);
    }
  }
  const found = new Map<number, View>();
  for (const n of g.nodes) {
    if (!needed[n.id] || n.op !== "matmul" || outputs.has(n.id)) continue;
    const rs = readers.get(n.id) ?? [];
    if (rs.length !== 1 || rs[0].op !== "transpose" || outputs.has(rs[0].id)) continue;
    const t = rs[0];
    const after = readers.get(t.id) ?? [];
    if (after.length === 0 || after.some((x) => x.op !== "reshape")) continue;
    const perm = t.attrs.perm as number[];
    const ts = contiguous(t.type.shape).strides;
    const strides = new Array<number>(perm.length).fill(0);
    perm.forEach((p, a) => (strides[p] = ts[a]));
    const v: View = { shape: n.type.shape, strides, offset: 0 };
    if (!isOwnContiguous(v, n)) found.set(n.id, v);
  }
  return found;
}

/** Whether `op` reads a tensor varying along both of its last two axes: a load per output element of a matmul's epilogue. */
function readsPerElement(op: Renderable): boolean {
  if (op.kind === "fused") return op.inputs.some(readsPerElement);
  if (op.kind !== "buffer") return false;
  const { shape, strides } = op.view;
  const r = shape.length;
  return r >= 2 && [r - 2, r - 1].every((a) => shape[a] > 1 && strides[a] !== 0);
}

/** `op` with node `id` read from buffer `buffer` instead of computed. */
function replaceNode(op: Renderable, id: number, buffer: number): Renderable {
  if (op.kind !== "fused") return op;
  if (op.node.id === id) return { kind: "buffer", buffer, view: op.view, dtype: op.dtype };
  return { ...op, inputs: op.inputs.map((i) => replaceNode(i, id, buffer)) };
}

/** The graph nodes computed by a kernel rendering `op`. */
function nodesOf(op: Renderable, into: number[] = []): number[] {
  if (op.kind === "fused") {
    into.push(op.node.id);
    for (const i of op.inputs) nodesOf(i, into);
  } else if (op.kind === "matmul") into.push(op.node.id);
  return into;
}

function isOwnContiguous(v: View, node: Node): boolean {
  const c = contiguous(node.type.shape);
  return v.offset === 0 && v.strides.every((s, i) => s === c.strides[i] || node.type.shape[i] === 1);
}

/**
 * The one pending matmul of an elementwise tree that every path reaches at the tree's own
 * index (no broadcast, transpose or reshape on the way) — it can run the tree as its
 * epilogue. Undefined when there is none or more than one.
 */
function epilogueMatmul(op: Operand, shape: readonly number[]): PendingMatmul | undefined {
  const found: { m: PendingMatmul; aligned: boolean }[] = [];
  const same = (s: readonly number[]) => s.length === shape.length && s.every((d, i) => d === shape[i]);
  const walk = (x: Renderable, aligned: boolean) => {
    if (x.kind === "matmul") found.push({ m: x, aligned: aligned && same(x.node.type.shape) && isIdentity(x.view, x.node.type.shape) });
    else if (x.kind === "fused") {
      const here = aligned && same(x.node.type.shape) && isIdentity(x.view, x.node.type.shape);
      for (const i of x.inputs) walk(i, here);
    }
  };
  walk(op, true);
  return found.length === 1 && found[0].aligned ? found[0].m : undefined;
}

/** `op` with `target` replaced by a value held in the variable `name`. */
function substitute<T extends Renderable>(op: T, target: Renderable, name: string): T | RawOperand {
  if (op === target || (op.kind === "raw" && target.kind === "raw" && op.name === target.name)) return { kind: "raw", name, dtype: target.dtype };
  if (op.kind === "fused") return { ...op, inputs: op.inputs.map((i) => substitute(i, target, name)) };
  return op;
}

/** The buffers a kernel reading these operands would bind. */
function bindingsOf(ops: readonly Renderable[], into = new Set<number>()): Set<number> {
  for (const op of ops) {
    if (op.kind === "buffer") into.add(op.buffer);
    else if (op.kind === "matmul") into.add(op.a.buffer).add(op.b.buffer);
    else if (op.kind === "fused") bindingsOf(op.inputs, into);
  }
  return into;
}

/** The fused (or pending matmul) operand binding the most buffers, or -1. */
function largestFused(ops: readonly Operand[]): number {
  let best = -1;
  let most = 0;
  ops.forEach((op, k) => {
    if (op.kind !== "fused" && op.kind !== "matmul") return;
    const n = bindingsOf([op]).size;
    if (n > most) {
      most = n;
      best = k;
    }
  });
  return best;
}
