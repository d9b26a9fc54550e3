// What the training loop and the CLI need from a back end: write named tensors, run the
// program, read named tensors back. The WebGPU executor and the reference interpreter
// both provide it.
import type { DType } from "./bundle.ts";
import { f16Round } from "./f16.ts";

/**
 * Host data. An f16 tensor is written and read as a Float32Array (or, on the reference
 * back end, a Float64Array) of numbers; writing rounds each to the nearest half.
 */
export type HostArray = Float32Array | Int32Array | Uint32Array | Float64Array;

export interface Backend {
  readonly name: string;
  /** write an input, parameter or state tensor by name */
  write(name: string, data: HostArray): void;
  /** run the whole program once; return the named outputs / params asked for */
  run(read?: readonly string[]): Promise<Map<string, HostArray>>;
  /** read params or state by name */
  read(names: readonly string[]): Promise<Map<string, HostArray>>;
  destroy(): void;
}

/**
 * Converts host values to the array a tensor of `dtype` is written from: f16 values are
 * rounded to the nearest half here (straight from float64, one rounding), so that the
 * device's conversion of the Float32Array to f16 bits is exact.
 */
export function toStorage(data: ArrayLike<number>, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === "f32") return Float32Array.from(data);
  if (dtype === "f16") return Float32Array.from(data, f16Round);
  if (dtype === "i32") return Int32Array.from(data);
  return Uint32Array.from(data, (v) => (v ? 1 : 0));
}
