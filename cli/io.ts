// Tensors in and out of the CLI: JSON (nested arrays, or {shape, data}) and safetensors.
import { readFileSync } from "node:fs";
import type { DType } from "../runtime/bundle.ts";
import type { HostArray } from "../runtime/backend.ts";
import { decodeSafetensors, encodeSafetensors, writeFileAtomic, type WritableTensor } from "../runtime/safetensors.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

/** A user-facing input problem (exit 1), with where it came from. */
export class InputError extends Error {
  override name = "InputError";
}

export interface HostTensor {
  shape: number[];
  data: number[];
}

function nestedShape(v: unknown, where: string): number[] {
  if (typeof v === "number" || typeof v === "boolean") return [];
  if (!Array.isArray(v)) throw new InputError(`${where}: expected numbers or nested arrays, found ${JSON.stringify(v)?.slice(0, 40)}`);
  if (v.length === 0) return [0];
  const inner = nestedShape(v[0], where);
  for (const x of v) {
    const s = nestedShape(x, where);
    if (s.length !== inner.length || s.some((d, i) => d !== inner[i])) throw new InputError(`${where}: ragged nested array`);
  }
  return [v.length, ...inner];
}

function flat(v: unknown, out: number[]): void {
  if (Array.isArray(v)) for (const x of v) flat(x, out);
  else out.push(typeof v === "boolean" ? +v : (v as number));
}

export function tensorFromJson(v: unknown, where: string): HostTensor {
  if (v && typeof v === "object" && !Array.isArray(v) && "shape" in v && "data" in v) {
    const o = v as { shape: unknown; data: unknown };
    if (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new InputError(`${where}: "shape" must be a list of sizes`);
    if (!Array.isArray(o.data) || !o.data.every((d) => typeof d === "number")) throw new InputError(`${where}: "data" must be a flat list of numbers`);
    const shape = o.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    if (o.data.length !== n) throw new InputError(`${where}: shape [${shape.join(", ")}] needs ${n} values, "data" has ${o.data.length}`);
    return { shape, data: o.data as number[] };
  }
  const shape = nestedShape(v, where);
  const data: number[] = [];
  flat(v, data);
  if (!data.every((x) => Number.isFinite(x))) throw new InputError(`${where}: values must be finite numbers`);
  return { shape, data };
}

/** `--inputs`: inline JSON text, a .json file, or a .safetensors file. */
export function readInputs(spec: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  if (spec.endsWith(".safetensors")) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(spec);
    } catch {
      throw new InputError(`cannot read ${spec}`);
    }
    for (const [name, t] of decodeSafetensors(bytes)) out.set(name, { shape: [...t.shape], data: Array.from(t.data as ArrayLike<number | bigint>, Number) });
    return out;
  }
  let text = spec;
  let where = "--inputs";
  if (!spec.trimStart().startsWith("{")) {
    try {
      text = readFileSync(spec, "utf8");
      where = spec;
    } catch {
      throw new InputError(`--inputs ${spec}: not JSON text and no such file`);
    }
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${where}: invalid JSON (${(e as Error).message})`);
  }
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) throw new InputError(`${where}: expected an object mapping input names to tensors`);
  for (const [k, v] of Object.entries(obj)) out.set(k, tensorFromJson(v, `${where}: "${k}"`));
  return out;
}

/** Nested arrays in the shape's layout (a scalar is a number). */
export function nested(shape: readonly number[], data: ArrayLike<number>, dtype: DType): unknown {
  const conv = (x: number) => (dtype === "bool" ? x !== 0 : dtype === "i32" ? Math.trunc(x) : x);
  const rec = (axis: number, offset: number): unknown => {
    if (axis === shape.length) return conv(data[offset]);
    const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: shape[axis] }, (_, i) => rec(axis + 1, offset + i * stride));
  };
  return rec(0, 0);
}

export interface NamedResult {
  shape: number[];
  dtype: DType;
  data: HostArray;
}

/** Writes results as .safetensors or .json (by extension); atomically. */
export async function writeResults(path: string, results: Map<string, NamedResult>): Promise<void> {
  if (path.endsWith(".safetensors")) {
    const m = new Map<string, WritableTensor>();
    for (const [k, r] of results) {
      // (f16 values are saved as F32: every half is exact in f32)
      m.set(k, r.dtype === "f32" || r.dtype === "f16" ? { dtype: "F32", shape: r.shape, data: Float32Array.from(r.data) } : { dtype: "I32", shape: r.shape, data: Int32Array.from(r.data) });
    }
    await writeFileAtomic(path, encodeSafetensors(m));
    return;
  }
  await writeFileAtomic(path, new TextEncoder().encode(resultsJson(results) + "\n"));
}

export function resultsJson(results: Map<string, NamedResult>): string {
  const obj: Record<string, unknown> = {};
  for (const [k, r] of results) obj[k] = nested(r.shape, r.data, r.dtype);
  return JSON.stringify(obj);
}
