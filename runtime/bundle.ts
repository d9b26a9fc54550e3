// A Bundle is what the compiler hands the runtime: buffers, WGSL kernels and the
// launch list of one program (a forward pass, or a whole training step). It is plain
// JSON (plus WGSL text) so it can be written to disk and loaded without the compiler.

// 2: kernels may read sizes from a uniform (KernelSpec.params), f16 buffers, split launches
// 3: kernels may share values across the lanes of a subgroup (KernelSpec.lanes)
export const BUNDLE_VERSION = 3;
/** The oldest format this runtime reads (version 1: no params, f16, split launches or lanes; otherwise the same). */
export const MIN_BUNDLE_VERSION = 1;

/**
 * How a tensor is stored on the device. Weft `bool` is stored as u32 (WGSL has no storage
 * bool); f16 as WGSL `array<f16>`, 2 bytes an element (the device needs `shader-f16`).
 */
export type StorageType = "f32" | "f16" | "i32" | "u32";

/** The dtype a user sees. */
export type DType = "f32" | "f16" | "i32" | "bool";

export function storageOf(dtype: DType): StorageType {
  return dtype === "bool" ? "u32" : dtype;
}

/** Bytes per element of a storage type. */
export function elementBytes(type: StorageType): number {
  return type === "f16" ? 2 : 4;
}

/**
 * The byte size of a device buffer of `length` elements: at least 4, and a multiple of 4
 * (WebGPU binds storage buffers in 4-byte units, so an odd number of f16 is rounded up).
 */
export function bufferBytes(length: number, type: StorageType): number {
  return Math.max(4, Math.ceil((length * elementBytes(type)) / 4) * 4);
}

export type BufferRole =
  | "input" // written by the host before each run
  | "param" // a trainable or frozen parameter; persists across runs
  | "state" // optimizer state; persists across runs
  | "const" // written once at load from `data`
  | "temp"; // intermediate, owned by the plan

export interface BufferSpec {
  id: number;
  /** number of elements (bufferBytes gives the byte size) */
  length: number;
  type: StorageType;
  role: BufferRole;
  /** for input / param / state: the name or parameter path */
  name?: string;
  /** for const buffers: the values */
  data?: number[];
}

export interface KernelSpec {
  name: string;
  wgsl: string;
  /** buffer ids, in binding order: `@binding(i)` is buffers[bindings[i]] */
  bindings: number[];
  /** how many of the leading bindings are read-only (the rest are read_write) */
  readOnly: number;
  workgroups: [number, number, number];
  /**
   * Sizes and strides the WGSL reads from a uniform (`P`, bound after the storage
   * buffers) instead of literals, so that kernels of one structure over different shapes
   * share one shader (and one driver compile). u32 values, in the shader's slot order.
   */
  params?: number[];
  /** the graph ops this kernel computes (fused into it), for WEFT_DEBUG=2 */
  fused?: FusedOp[];
  /** where its workgroups touch each binding, so that its launch can be split (runtime/split.ts) */
  footprint?: Footprint;
  /**
   * The kernel's workgroup is one subgroup of this many lanes (it broadcasts values
   * between them): the device's subgroups must never be smaller (runtime/limits.ts).
   */
  lanes?: number;
  /**
   * The launch split into chunks (runtime/split.ts): one dispatch each, binding a part of
   * each buffer. The WGSL then reads its chunk from a uniform at `@binding(bindings.length)`.
   */
  chunks?: ChunkSpec[];
}

/**
 * One step of an index map: from a multi-index of the row-major `shape`, each axis of the
 * result is `offset + Σ strides[i]·x[i]` — one axis (a view: shape, strides and offset,
 * the result a flat index) or several (`axes`). A one-axis result is unflattened into the
 * next step's shape; a result of several axes must have the next step's rank.
 */
export type IndexStep =
  | { readonly shape: readonly number[]; readonly strides: readonly number[]; readonly offset: number }
  | { readonly shape: readonly number[]; readonly axes: readonly { readonly strides: readonly number[]; readonly offset: number }[] };

/**
 * Where a kernel's work items touch one binding: its steps map the item's multi-index
 * (in the footprint's space, followed by the dims each item iterates over) to the
 * elements it reads or writes; `items` restricts it to a range of items; `gathered`:
 * an index comes from data (a gather's table), and the steps take all of its axis.
 * "whole": at places that are not described; the whole buffer is bound.
 */
export type Access = { readonly steps: readonly IndexStep[]; readonly items?: readonly [number, number]; readonly gathered?: boolean } | "whole";

/** How a kernel's workgroups divide its work, and what each touches of each binding. */
export interface Footprint {
  /** the work items, a row-major space: workgroup w runs items [w·per, (w+1)·per) */
  space: number[];
  per: number;
  /** per binding (in binding order), every way its items touch it */
  access: Access[][];
  /**
   * The kernel adds into its outputs in rounds of this many workgroups (a matmul over a
   * slice of K, a reduction over a slice of its axis), each round after the last: it
   * runs only as chunks of at most one round, never as one launch.
   */
  round?: number;
}

/** One dispatch of a split launch: workgroups [first, end) of the kernel's grid. */
export interface ChunkSpec {
  first: number;
  end: number;
  workgroups: [number, number, number];
  /** per binding: the byte range bound, [offset, size] */
  ranges: [number, number][];
  /** per binding: the first element bound, in units of the WGSL array's element (what the kernel subtracts) */
  bases: number[];
}

/** One graph op computed by a kernel: its node id, op name and place in the Weft source. */
export interface FusedOp {
  node: number;
  op: string;
  /** file:line:col of the expression it came from */
  at?: string;
}

/** After all kernels, copy `src` into `dst` (how a step writes new params and state back). */
export interface CopySpec {
  src: number;
  dst: number;
}

export interface TensorRef {
  name: string;
  buffer: number;
  shape: number[];
  dtype: DType;
}

export interface Bundle {
  version: number;
  buffers: BufferSpec[];
  kernels: KernelSpec[];
  copies: CopySpec[];
  inputs: TensorRef[];
  outputs: TensorRef[];
  /** parameters and optimizer state, by path; persist across runs */
  params: TensorRef[];
  state: TensorRef[];
}

/**
 * What makes two kernels' pipelines interchangeable: the WGSL without its comment lines
 * (which name the kernel) and the binding layout (count and read-only split).
 */
export function shaderKey(k: KernelSpec): string {
  const code = k.wgsl
    .split("\n")
    .filter((l) => !l.trimStart().startsWith("//"))
    .join("\n");
  return `${k.bindings.length}/${k.readOnly}\n${code}`;
}
