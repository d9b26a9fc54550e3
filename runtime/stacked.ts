// Parameters of a `repeat` stack. In the program, on the device and in the optimizer,
// a param of a repeated block is ONE tensor whose leading dims are the repeat counts:
// `stack.layers.ff.w1` is f32[L, D, F], and layer i reads its slice as a view. In files
// (checkpoints, params.safetensors, `--init`, `from "ckpt"`) each slice keeps the name of
// the layer's own param, `stack.layers[3].ff.w1` (f32[D, F]) — the tensor names of a
// per-layer PyTorch state dict — so a stacked tensor is split when saved and joined
// again when loaded.
import type { HostArray } from "./backend.ts";

export interface Stacked {
  /** how many leading dims are repeat counts (1, or more for nested repeats) */
  lead: number;
  /** each slice's own name, row-major over the leading dims */
  names: string[];
}

/** A named tensor that may be stacked: a param, or an optimizer state of one. */
export interface MaybeStacked {
  path: string;
  shape: readonly number[];
  stacked?: Stacked;
}

/** One tensor as files hold it: a whole unstacked tensor, or one slice of a stacked one. */
export interface FileTensor {
  name: string;
  shape: number[];
  /** where its values start in the whole tensor, and how many there are */
  offset: number;
  length: number;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The tensors `p` is saved as: itself, or one per slice (in the order of `stacked.names`). */
export function fileTensors(p: MaybeStacked): FileTensor[] {
  if (!p.stacked) return [{ name: p.path, shape: [...p.shape], offset: 0, length: numel(p.shape) }];
  const inner = p.shape.slice(p.stacked.lead);
  const n = numel(inner);
  const count = numel(p.shape.slice(0, p.stacked.lead));
  if (p.stacked.names.length !== count) throw new Error(`internal: ${p.path} has ${count} slices but ${p.stacked.names.length} slice names`);
  return p.stacked.names.map((name, k) => ({ name, shape: [...inner], offset: k * n, length: n }));
}

/** The values of `p` split into its file tensors (copies, of the same array type). */
export function splitValues<T extends HostArray>(p: MaybeStacked, data: T): { name: string; shape: number[]; data: T }[] {
  return fileTensors(p).map((f) => ({ name: f.name, shape: f.shape, data: data.slice(f.offset, f.offset + f.length) as T }));
}

/**
 * The whole tensor from its file tensors' values, found by `get` (name → values); a slice
 * that `get` does not find comes from `fallback` (given the file tensor). The result is a
 * Float64Array when any piece is one (the float64 reference keeps its precision), else f32.
 */
export function joinValues(
  p: MaybeStacked,
  get: (f: FileTensor) => ArrayLike<number> | undefined,
  fallback: (f: FileTensor) => ArrayLike<number>,
): Float32Array | Float64Array {
  const parts = fileTensors(p).map((f) => ({ f, data: get(f) ?? fallback(f) }));
  const wide = parts.some((x) => x.data instanceof Float64Array);
  const out = wide ? new Float64Array(numel(p.shape)) : new Float32Array(numel(p.shape));
  for (const { f, data } of parts) {
    if (data.length !== f.length) throw new Error(`internal: ${f.name} has ${data.length} values, expected ${f.length}`);
    out.set(data, f.offset);
  }
  return out;
}
