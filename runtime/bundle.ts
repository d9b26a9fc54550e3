// A Bundle is what the compiler hands the runtime: buffers, WGSL kernels and the
// launch list of one program (a forward pass, or a whole training step). It is plain
// JSON (plus WGSL text) so it can be written to disk and loaded without the compiler.

// 2: kernels may read sizes from a uniform (KernelSpec.params); f16 buffers
export const BUNDLE_VERSION = 2;

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
