// What the training loop and the CLI need from a back end: write named tensors, run the
// program, read named tensors back. The WebGPU executor and the reference interpreter
// both provide it.
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

/** Converts host values to the storage array a tensor of `dtype` uses. */
export function toStorage(data: ArrayLike<number>, dtype: "f32" | "i32" | "bool"): Float32Array | Int32Array | Uint32Array {
  if (dtype === "f32") return Float32Array.from(data);
  if (dtype === "i32") return Int32Array.from(data);
  return Uint32Array.from(data, (v) => (v ? 1 : 0));
}
