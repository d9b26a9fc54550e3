// Kernels that write a step's updates (new parameters, optimizer state, accumulated
// gradients) straight into the sources' own buffers. A source may be updated in place
// by a kernel that reads it only at the element it writes: every thread first loads
// the old values of its element, then computes, then stores. Updates of one shape that
// read each other's old values (Adam's p, m and v) become one kernel with one output
// per source, so no update can clobber a value another still needs.
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import type { Shape } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import { Bindings, kernel, load, store, unflatten } from "./wgsl.ts";
import { contiguous } from "../kernel/view.ts";
import { isIdentity, Renderer, type Renderable } from "./render.ts";

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Does `op` read `buffer` anywhere (a pending matmul's operands included)? */
export function readsBuffer(op: Renderable, buffer: number): boolean {
  if (op.kind === "buffer") return op.buffer === buffer;
  if (op.kind === "matmul") return op.a.buffer === buffer || op.b.buffer === buffer;
  if (op.kind === "fused") return op.inputs.some((i) => readsBuffer(i, buffer));
  return false;
}

/**
 * `op` (evaluated at the elements of `shape`) with every read of a buffer in `names`
 * replaced by the WGSL value `names.get(buffer)`, which holds that buffer's element at
 * the index being computed. Undefined when one of those buffers is read at any other
 * index (through a broadcast, transpose or slice, or as a matmul operand).
 */
export function readAligned(op: Renderable, names: ReadonlyMap<number, string>, shape: Shape): Renderable | undefined {
  let ok = true;
  const walk = (x: Renderable, aligned: boolean): Renderable => {
    if (x.kind === "buffer") {
      const name = names.get(x.buffer);
      if (name === undefined) return x;
      if (aligned && sameShape(x.view.shape, shape) && isIdentity(x.view, shape)) return { kind: "raw", name: load(name, x.dtype), dtype: x.dtype };
      ok = false;
      return x;
    }
    if (x.kind === "matmul") {
      if (names.has(x.a.buffer) || names.has(x.b.buffer)) ok = false;
      return x;
    }
    if (x.kind === "fused") {
      const here = aligned && sameShape(x.node.type.shape, shape) && isIdentity(x.view, x.node.type.shape);
      return { ...x, inputs: x.inputs.map((i) => walk(i, here)) };
    }
    return x;
  };
  const out = walk(op, true);
  return ok ? out : undefined;
}

export interface UpdateOutput {
  /** the new value, an elementwise tree over `shape` (no pending matmul) */
  root: Renderable;
  dtype: DType;
  /** the buffer the kernel binds as this output */
  out: number;
  /** the source buffer this output replaces */
  source: number;
}

/**
 * One thread per element computes every output's new value, then stores them all.
 * In place, output k is bound to (and renamed to) its source: the old value of every
 * source is loaded from its output binding before anything is stored, and the trees
 * must not read the sources otherwise (undefined if they do). Not in place, the
 * sources are read as ordinary inputs and the outputs are separate buffers.
 */
export function updateKernel(name: string, shape: Shape, outs: readonly UpdateOutput[], inPlace: boolean): KernelSpec | undefined {
  const idx = shape.map((_, k) => `o${k}`);
  const names = new Map(outs.map((o, k) => [o.source, `old${k}`]));
  const roots: Renderable[] = [];
  for (const o of outs) {
    const r = inPlace ? readAligned(o.root, names, shape) : o.root;
    if (!r) return undefined;
    roots.push(r);
  }
  const b = new Bindings();
  const body = unflatten("i", shape, "o");
  if (inPlace) outs.forEach((o, k) => body.push(`  let old${k} = out${k}[i];`));
  const r = new Renderer(b, body, "  ", undefined, { steps: [] });
  const values = roots.map((root) => r.value(root, idx));
  outs.forEach((o, k) => body.push(`  out${k}[i] = ${store(values[k], o.dtype)};`));
  outs.forEach((_, k) => b.touch(`out${k}`, { steps: [contiguous(shape)] }));
  return kernel(name, b, outs.map((o) => o.dtype), outs.map((o) => o.out), Math.max(1, numel(shape)), body, shape, { comment: `${name}${inPlace ? " (in place)" : ""}` });
}
