// Graph IR → Bundle. Decides which nodes own a buffer and renders their kernels:
// - views (broadcast, transpose, reshape, slice, stop) never copy: readers index through them;
// - constants are inlined;
// - an elementwise node read by one consumer is fused into it (a chain of elementwise
//   ops and views becomes one kernel, and a reduction absorbs its elementwise prologue);
//   a node with several readers is fused into each while its expression is small
//   (recomputing a few ops costs less than a store and a load), else it gets a buffer;
//   outputs always get one;
// - reductions, matmul and the ops with their own kernels get a buffer each.
import type { Bundle, BufferSpec, CopySpec, KernelSpec, TensorRef } from "../../runtime/bundle.ts";
import { BUNDLE_VERSION, storageOf } from "../../runtime/bundle.ts";
import type { Graph, Node } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import { contiguous, type View } from "../kernel/view.ts";
import { getOp, type BufferOperand } from "../ops/registry.ts";
import { InternalError } from "../diagnostics.ts";
import { elementwiseKernel, matmulKernel, reduceKernel } from "./wgsl.ts";
import { isIdentity, type Operand, type PendingMatmul, type RawOperand, type Renderable } from "./render.ts";
import { planMemory } from "../opt/memory.ts";

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
}

/** Largest fused expression (in ops) that is recomputed by each of several readers. */
const MAX_SHARED_TREE = 12;

export function compileBundle(g: Graph, opts: CompileOptions = {}): Bundle {
  const updates = opts.updates ?? new Map<string, number>();
  const fuse = opts.fuse ?? true;
  const maxBound = (opts.maxStorageBuffers ?? 8) - 1; // one binding is the output
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
  // as its input's. Outputs and updates always get a buffer.
  const readers = new Uint32Array(g.nodes.length);
  for (const r of roots) readers[r] += 2;
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const node = g.nodes[id];
    if (!needed[id]) continue;
    const passes = getOp(node.op).lower.kind === "view";
    for (const i of new Set(node.inputs)) readers[i] += passes ? readers[id] : 1;
  }

  const buffers: BufferSpec[] = [];
  const kernels: KernelSpec[] = [];
  const operands = new Map<number, Operand>();
  const newBuffer = (spec: Omit<BufferSpec, "id">): number => {
    buffers.push({ id: buffers.length, ...spec });
    return buffers.length - 1;
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
      b = newKernel(node, (out) => matmulKernel({ name: `${node.op}_${node.id}`, node, inputs: [m.a, m.b], out }));
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

  /** Computes `op` (an operand of `node`'s shape) into a buffer of its own. */
  const materialise = (node: Node, op: Operand, name = `${node.op}_${node.id}`): BufferOperand => {
    const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
    const m = epilogueMatmul(op, node.type.shape);
    if (m) {
      // The whole elementwise tree becomes the matmul's epilogue: one kernel, no round trip.
      const tree = substitute(op, m, "acc");
      kernels.push(
        matmulKernel(
          { name: `${name}_matmul_${m.node.id}`, node: m.node, inputs: [m.a, m.b], out },
          { dtype: node.type.dtype, render: (r, idx, acc) => r.value(substitute(resolve(tree), { kind: "raw", name: "acc", dtype: "f32" }, acc), idx) },
        ),
      );
    } else {
      kernels.push(elementwiseKernel(name, node.type.shape, node.type.dtype, resolve(op), out));
    }
    return { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
  };
  const newKernel = (node: Node, kernel: (out: number) => KernelSpec): BufferOperand => {
    const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
    kernels.push(kernel(out));
    return { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
  };

  /** A buffer for ops whose own kernels read buffers (matmul, gathers): fused inputs are computed first. */
  const asBuffer = (id: number): BufferOperand => {
    const o = operands.get(id)!;
    if (o.kind === "buffer") return o;
    if (o.kind === "fused") return materialise(g.node(id), o, `${g.node(id).op}_${id}`);
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
        let inputs = node.inputs.map((i) => operands.get(i)!);
        while (bindingsOf(inputs).size > maxBound) {
          const k = largestFused(inputs);
          if (k < 0) break;
          inputs = inputs.map((x, j) => (j === k ? asBuffer(node.inputs[k]) : x));
        }
        const fused: Operand = {
          kind: "fused",
          node,
          inputs,
          expr: lower.expr,
          view: contiguous(node.type.shape),
          dtype: node.type.dtype,
        };
        // Size of the fused expression tree: a value with several readers is recomputed
        // in each (shared within a kernel), which is cheaper than a store and a load
        // while the tree is small.
        const size = 1 + node.inputs.reduce((n, i) => n + (treeSize.get(i) ?? 0), 0);
        // A tree holding a pending matmul is never recomputed: the matmul would run twice.
        const heavy = node.inputs.some((i) => holdsMatmul.has(i) || operands.get(i)?.kind === "matmul");
        if (heavy) holdsMatmul.add(node.id);
        const inline = fuse && (readers[node.id] <= 1 || (size <= MAX_SHARED_TREE && !heavy));
        if (inline) treeSize.set(node.id, size);
        operand = inline ? fused : materialise(node, fused, name);
        break;
      }
      case "reduce": {
        const input = operands.get(node.inputs[0])!;
        const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
        const prologue = fuse || input.kind !== "fused" ? resolve(input) : asBuffer(node.inputs[0]);
        kernels.push(reduceKernel(name, node, prologue as Operand, lower, out));
        operand = { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
        break;
      }
      case "kernel": {
        const inputs = node.inputs.map(asBuffer);
        // A matmul read by one consumer waits: that consumer may take it as an epilogue.
        operand =
          node.op === "matmul" && fuse && readers[node.id] <= 1
            ? { kind: "matmul", node, a: inputs[0], b: inputs[1], view: contiguous(node.type.shape), dtype: "f32" }
            : newKernel(node, (out) => lower.emit({ name, node, inputs, out }));
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
  const copies: CopySpec[] = [];
  for (const [source, id] of updates) {
    const src = g.sources.get(source);
    if (src === undefined) throw new InternalError(`update of unknown source ${source}`);
    const dst = (operands.get(src) as BufferOperand).buffer;
    copies.push({ src: owned(id, dst), dst });
  }
  const sourcesOf = (op: string) =>
    [...g.sources].filter(([, id]) => g.node(id).op === op).map(([name, id]) => ref(name, id, (operands.get(id) as BufferOperand).buffer));
  const bundle: Bundle = {
    version: BUNDLE_VERSION,
    buffers,
    kernels,
    copies,
    inputs: sourcesOf("input"),
    outputs,
    params: sourcesOf("param"),
    state: sourcesOf("state"),
  };
  return opts.plan === false ? bundle : planMemory(bundle).bundle;
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
  if (op === target || (op.kind === "raw" && target.kind === "raw" && op.name === target.name)) return { kind: "raw", name, dtype: "f32" };
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
