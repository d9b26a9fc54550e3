// The safetensors format, as Hugging Face specifies it:
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   JSON: { name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str} },
//             padded with spaces so that the data starts at a multiple of 8
//   rest      the tensors' bytes, little-endian, contiguous; offsets relative to the data start
// Reading checks what the reference implementation checks (offsets in range, no overlap,
// no gap, sizes match dtype × shape) and reports problems as SafetensorsError. F16 tensors
// (half-precision checkpoints) are read into the numbers they hold, as a Float32Array.

import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fromF16Array } from "./f16.ts";

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

export type WritableTensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array }
  | { dtype: "F64"; shape: number[]; data: Float64Array };

export type DecodedTensor =
  | WritableTensor
  /** half precision, decoded: every half is exact in f32 */
  | { dtype: "F16"; shape: number[]; data: Float32Array }
  | { dtype: "I64"; shape: number[]; data: BigInt64Array }
  | { dtype: "U8" | "BOOL"; shape: number[]; data: Uint8Array };

export type SafetensorsDtype = DecodedTensor["dtype"];

const ELEMENT_SIZE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, I32: 4, F64: 8, I64: 8, U8: 1, BOOL: 1 };
/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER = 100_000_000;
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const WRITE_ARRAY: Record<WritableTensor["dtype"], Float32ArrayConstructor | Int32ArrayConstructor | Float64ArrayConstructor> = { F32: Float32Array, I32: Int32Array, F64: Float64Array };
const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Serialize tensors (largest element size first, then by name, as the reference does). */
export function encodeSafetensors(tensors: Map<string, WritableTensor>, metadata?: Record<string, string>): Uint8Array {
  const order = [...tensors.keys()].sort(
    (a, b) => ELEMENT_SIZE[tensors.get(b)!.dtype] - ELEMENT_SIZE[tensors.get(a)!.dtype] || (a < b ? -1 : a > b ? 1 : 0),
  );
  // no prototype: a tensor named "__proto__" is a key like any other
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new SafetensorsError(`metadata "${k}" must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of order) {
    const t = tensors.get(name)!;
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" cannot name a tensor`);
    const ctor = WRITE_ARRAY[t.dtype];
    if (!ctor) throw new SafetensorsError(`tensor "${name}": cannot write dtype ${String(t.dtype)} (F32, I32, F64)`);
    if (!(t.data instanceof ctor)) throw new SafetensorsError(`tensor "${name}": ${t.dtype} data must be a ${ctor.name}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`tensor "${name}": bad shape [${t.shape}]`);
    if (numel(t.shape) !== t.data.length) {
      throw new SafetensorsError(`tensor "${name}": shape [${t.shape}] needs ${numel(t.shape)} values, data has ${t.data.length}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const name of order) {
    const { data } = tensors.get(name)!;
    out.set(toLittleEndianBytes(data), at);
    at += data.byteLength;
  }
  return out;
}

interface Header {
  entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[];
  metadata: Record<string, string>;
  dataStart: number;
}

/** Parse a safetensors file. Throws SafetensorsError, naming what is wrong, on malformed input. */
export function decodeSafetensors(bytes: Uint8Array): Map<string, DecodedTensor> {
  const { entries, dataStart } = parseHeader(bytes);
  const out = new Map<string, DecodedTensor>();
  for (const e of entries) {
    // Copy into a fresh, aligned buffer the caller owns. (Not bytes.slice: on a Node
    // Buffer, slice() returns a view into a shared pool.)
    const raw = Uint8Array.prototype.slice.call(bytes, dataStart + e.begin, dataStart + e.end);
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data: fromLittleEndianBytes(e.dtype, raw) } as DecodedTensor);
  }
  return out;
}

/** The "__metadata__" map of a safetensors file (empty when it has none). */
export function safetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  return parseHeader(bytes).metadata;
}

function parseHeader(bytes: Uint8Array): Header {
  const bad = (msg: string): never => {
    throw new SafetensorsError(`malformed safetensors: ${msg}`);
  };
  if (bytes.length < 8) bad(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) bad(`header length ${n64} is over the ${MAX_HEADER}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) bad(`header length ${n} runs past the end of the file (${bytes.length} bytes): truncated?`);
  if (bytes[8] !== 0x7b) bad(`header does not start with "{"`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) bad("header is not a JSON object");
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  let metadata: Record<string, string> = {};
  const entries: Header["entries"] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      const ok = typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
      if (!ok) bad(`"__metadata__" must map strings to strings`);
      metadata = v as Record<string, string>;
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof v !== "object" || v === null) bad(`${where} is not an object`);
    const { dtype, shape, data_offsets: off } = v as Record<string, unknown>;
    if (typeof dtype !== "string") bad(`${where} has no dtype`);
    if (!Object.hasOwn(ELEMENT_SIZE, dtype as string)) bad(`${where} has dtype ${String(dtype)}, which Weft does not read (F32, F16, F64, I32, I64, U8, BOOL)`);
    const isDim = (d: unknown): d is number => Number.isSafeInteger(d) && (d as number) >= 0;
    if (!Array.isArray(shape) || !shape.every(isDim)) bad(`${where} has shape ${JSON.stringify(shape)}, not a list of sizes`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isDim)) bad(`${where} has data_offsets ${JSON.stringify(off)}, not [begin, end]`);
    const [begin, end] = off as number[];
    if (begin > end || end > dataLen) bad(`${where} has data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes`);
    const want = numel(shape as number[]) * ELEMENT_SIZE[dtype as SafetensorsDtype];
    if (end - begin !== want) bad(`${where} is ${end - begin} bytes but ${dtype} [${shape}] needs ${want}`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  // Tensors must tile the data exactly: no overlap, no gap, nothing after the last one.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at) bad(`tensor "${e.name}" [${e.begin}, ${e.end}] overlaps the tensor before it (which ends at ${at})`);
    if (e.begin > at) bad(`gap in the data before tensor "${e.name}" (bytes ${at}..${e.begin} belong to no tensor)`);
    at = e.end;
  }
  if (at !== dataLen) bad(`${dataLen - at} bytes after the last tensor belong to no tensor`);
  return { entries, metadata, dataStart };
}

function toLittleEndianBytes(data: Float32Array | Int32Array | Float64Array): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return littleEndian ? bytes : swapped(bytes, data.BYTES_PER_ELEMENT);
}

function fromLittleEndianBytes(dtype: SafetensorsDtype, raw: Uint8Array): DecodedTensor["data"] {
  const size = ELEMENT_SIZE[dtype];
  const b = (littleEndian || size === 1 ? raw : swapped(raw, size)).buffer;
  switch (dtype) {
    case "F32": return new Float32Array(b);
    case "F16": return fromF16Array(new Uint16Array(b));
    case "I32": return new Int32Array(b);
    case "F64": return new Float64Array(b);
    case "I64": return new BigInt64Array(b);
    case "U8": case "BOOL": return new Uint8Array(b);
  }
}

/** Byte-swap each element (only on big-endian hosts). */
function swapped(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j];
  return out;
}

/**
 * Replace `path` with `bytes` so that a crash at any moment leaves either the old file
 * or the new one, never a mix: write a temp file in the same folder, fsync it, rename
 * it over the target, fsync the folder. A crash can leave a stray `.NAME.*.tmp`.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await writeSynced(tmp, bytes, "wx");
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Make the rename itself durable.
  await syncDir(dir);
}

/** Write `bytes` to `path` and fsync the file before returning. */
export async function writeSynced(path: string, bytes: Uint8Array, flags = "w"): Promise<void> {
  const fh = await open(path, flags, 0o644);
  try {
    const CHUNK = 1 << 24;
    for (let at = 0; at < bytes.length; ) at += (await fh.write(bytes, at, Math.min(CHUNK, bytes.length - at))).bytesWritten;
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a folder, so renames inside it are durable. Some platforms cannot: not fatal. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* e.g. Windows: EISDIR/EPERM */
  }
}

export async function saveSafetensors(path: string, tensors: Map<string, WritableTensor>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export async function loadSafetensors(path: string): Promise<Map<string, DecodedTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SafetensorsError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
}
