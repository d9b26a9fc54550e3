// Graph IR → Bundle: decides which nodes own a buffer, reads everything else through
// views, and renders one WGSL kernel per materialised node. (Fusion and a memory plan
// replace the one-kernel-per-node rule in compiler/opt; the bundle format stays.)
import type { Bundle, BufferSpec, CopySpec, KernelSpec, TensorRef } from "../../runtime/bundle.ts";
import { BUNDLE_VERSION, storageOf } from "../../runtime/bundle.ts";
import type { Graph, Node } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import { contiguous, type View } from "../kernel/view.ts";
import { getOp } from "../ops/registry.ts";
import { InternalError } from "../diagnostics.ts";
import { elementwiseKernel, matmulKernel, reduceKernel, type Operand } from "./wgsl.ts";

export interface CompileOptions {
  /** source name → node whose value replaces it after every run (training updates) */
  updates?: ReadonlyMap<string, number>;
}

export function compileBundle(g: Graph, opts: CompileOptions = {}): Bundle {
  const updates = opts.updates ?? new Map<string, number>();
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

  const buffers: BufferSpec[] = [];
  const kernels: KernelSpec[] = [];
  const operands = new Map<number, Operand>();
  const newBuffer = (spec: Omit<BufferSpec, "id">): number => {
    buffers.push({ id: buffers.length, ...spec });
    return buffers.length - 1;
  };
  const constBuffers = new Map<string, number>();

  const materialise = (node: Node, kernel: (out: number) => KernelSpec): Operand => {
    const out = newBuffer({ length: Math.max(1, numel(node.type.shape)), type: storageOf(node.type.dtype), role: "temp" });
    kernels.push(kernel(out));
    return { kind: "buffer", buffer: out, view: contiguous(node.type.shape), dtype: node.type.dtype };
  };

  /** A buffer-backed operand for kernels that cannot inline a constant (reductions, matmul). */
  const asBuffer = (id: number): Operand & { kind: "buffer" } => {
    const o = operands.get(id)!;
    if (o.kind === "buffer") return o;
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
    const def = getOp(node.op);
    const lower = def.lower;
    const name = `${node.op}_${node.id}`;
    const ins = () => node.inputs.map((i) => operands.get(i)!);
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
        if (src.kind === "const") {
          operand = { kind: "const", value: src.value, shape: node.type.shape, dtype: src.dtype };
          break;
        }
        const v = lower.view(src.view, node.attrs, node.type);
        operand = v
          ? { kind: "buffer", buffer: src.buffer, view: v, dtype: node.type.dtype }
          : materialise(node, (out) => elementwiseKernel(name, node, [src], (a) => a[0], out));
        break;
      }
      case "elementwise":
        operand = materialise(node, (out) => elementwiseKernel(name, node, ins(), (a, ctx) => lower.expr(a, ctx), out));
        break;
      case "reduce":
        operand = materialise(node, (out) => reduceKernel(name, node, asBuffer(node.inputs[0]), lower, out));
        break;
      case "template":
        if (lower.template !== "matmul") throw new InternalError(`no kernel template '${lower.template}'`);
        operand = materialise(node, (out) => matmulKernel(name, node, asBuffer(node.inputs[0]), asBuffer(node.inputs[1]), out));
        break;
    }
    operands.set(node.id, operand);
  }

  /** Outputs and updates must own a contiguous buffer of their own: copy views and constants. */
  const owned = (id: number, forbid?: number): number => {
    const o = operands.get(id)!;
    const node = g.node(id);
    if (o.kind === "buffer" && buffers[o.buffer].role === "temp" && isOwnContiguous(o.view, node) && o.buffer !== forbid) return o.buffer;
    const copy = materialise(node, (out) => elementwiseKernel(`copy_${id}`, node, [o], (a) => a[0], out));
    if (copy.kind !== "buffer") throw new InternalError("copy must be a buffer");
    return copy.buffer;
  };

  const ref = (name: string, id: number, buffer: number): TensorRef => ({ name, buffer, shape: [...g.type(id).shape], dtype: g.type(id).dtype });
  const outputs = [...g.outputs].map(([name, id]) => ref(name, id, owned(id)));
  const copies: CopySpec[] = [];
  for (const [source, id] of updates) {
    const src = g.sources.get(source);
    if (src === undefined) throw new InternalError(`update of unknown source ${source}`);
    const dst = (operands.get(src) as Operand & { kind: "buffer" }).buffer;
    copies.push({ src: owned(id, dst), dst });
  }
  const sourcesOf = (op: string) =>
    [...g.sources].filter(([, id]) => g.node(id).op === op).map(([name, id]) => ref(name, id, (operands.get(id) as Operand & { kind: "buffer" }).buffer));
  return {
    version: BUNDLE_VERSION,
    buffers,
    kernels,
    copies,
    inputs: sourcesOf("input"),
    outputs,
    params: sourcesOf("param"),
    state: sourcesOf("state"),
  };
}

function isOwnContiguous(v: View, node: Node): boolean {
  const c = contiguous(node.type.shape);
  return v.offset === 0 && v.strides.every((s, i) => s === c.strides[i] || node.type.shape[i] === 1);
}
