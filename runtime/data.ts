// Training data: JSONL files whose fields become `batch.<field>`. Each field's shape and
// dtype are read off the data (whole numbers everywhere → i32, else f32); every record
// must agree, and errors name the file and line.
import { readFileSync } from "node:fs";
import type { DType } from "./bundle.ts";

export class DataError extends Error {
  override name = "DataError";
}

export interface FieldInfo {
  name: string;
  /** shape of one record's value (no batch dim) */
  shape: number[];
  dtype: DType;
}

export interface Dataset {
  file: string;
  rows: number;
  fields: FieldInfo[];
  /** per field, all records' values concatenated (row-major) */
  columns: Map<string, Float64Array>;
}

function shapeOfValue(v: unknown, where: () => string): number[] {
  if (typeof v === "number") return [];
  if (typeof v === "boolean") return [];
  if (!Array.isArray(v)) throw new DataError(`${where()}: expected a number or a (nested) array of numbers, found ${JSON.stringify(v)?.slice(0, 40)}`);
  if (v.length === 0) return [0];
  const inner = shapeOfValue(v[0], where);
  for (const x of v) {
    const s = shapeOfValue(x, where);
    if (s.length !== inner.length || s.some((d, i) => d !== inner[i])) throw new DataError(`${where()}: ragged array (rows of different lengths)`);
  }
  return [v.length, ...inner];
}

function flattenInto(v: unknown, out: number[]): void {
  if (Array.isArray(v)) for (const x of v) flattenInto(x, out);
  else if (typeof v === "boolean") out.push(+v);
  else if (typeof v === "number" && Number.isFinite(v)) out.push(v);
  else throw new DataError(`not a finite number: ${JSON.stringify(v)}`);
}

export function readJsonl(file: string, text?: string): Dataset {
  let src: string;
  try {
    src = text ?? readFileSync(file, "utf8");
  } catch (e) {
    throw new DataError(`cannot read data file ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  const lines = src.split("\n");
  const fields = new Map<string, { shape: number[]; allInt: boolean; values: number[] }>();
  let rows = 0;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = () => `${file}:${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${where()}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) throw new DataError(`${where()}: expected a JSON object with one key per field`);
    const r = rec as Record<string, unknown>;
    if (rows === 0) {
      for (const [k, v] of Object.entries(r)) fields.set(k, { shape: shapeOfValue(v, where), allInt: true, values: [] });
    } else {
      const missing = [...fields.keys()].filter((k) => !(k in r));
      const extra = Object.keys(r).filter((k) => !fields.has(k));
      if (missing.length) throw new DataError(`${where()}: missing field${missing.length > 1 ? "s" : ""} ${missing.join(", ")} (present on line 1)`);
      if (extra.length) throw new DataError(`${where()}: field${extra.length > 1 ? "s" : ""} ${extra.join(", ")} not present on the first line`);
    }
    for (const [k, f] of fields) {
      const s = shapeOfValue(r[k], where);
      if (s.length !== f.shape.length || s.some((d, j) => d !== f.shape[j])) {
        throw new DataError(`${where()}: field ${k} has shape [${s.join(", ")}], but [${f.shape.join(", ")}] on the first line`);
      }
      const before = f.values.length;
      try {
        flattenInto(r[k], f.values);
      } catch (e) {
        throw new DataError(`${where()}: field ${k}: ${(e as Error).message}`);
      }
      for (let j = before; j < f.values.length; j++) if (!Number.isInteger(f.values[j])) f.allInt = false;
    }
    rows++;
  });
  if (rows === 0) throw new DataError(`${file}: no records`);
  return {
    file,
    rows,
    fields: [...fields].map(([name, f]) => ({ name, shape: f.shape, dtype: f.allInt ? "i32" : "f32" })),
    columns: new Map([...fields].map(([name, f]) => [name, Float64Array.from(f.values)])),
  };
}

/** Seeded Fisher–Yates permutation of 0..n-1 (mulberry32), one per epoch. */
export function permutation(n: number, seed: number): Uint32Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Yields batches of `size` records: each epoch visits every record once in a seeded
 * order; a batch that runs past the end of an epoch continues into the next one.
 */
export class Batcher {
  private epoch = 0;
  private pos = 0;
  private order: Uint32Array;

  constructor(readonly data: Dataset, readonly size: number, readonly seed: number) {
    this.order = permutation(data.rows, seed);
  }

  /** Where the batcher is, so a resumed run continues with the same batches. */
  position(): { epoch: number; pos: number } {
    return { epoch: this.epoch, pos: this.pos };
  }

  seek(epoch: number, pos: number): void {
    this.epoch = epoch;
    this.pos = pos;
    this.order = permutation(this.data.rows, this.seed + epoch * 7919);
  }

  next(): Map<string, Float64Array> {
    const idx: number[] = [];
    while (idx.length < this.size) {
      if (this.pos >= this.data.rows) this.seek(this.epoch + 1, 0);
      idx.push(this.order[this.pos++]);
    }
    const out = new Map<string, Float64Array>();
    for (const f of this.data.fields) {
      const col = this.data.columns.get(f.name)!;
      const per = f.shape.reduce((a, b) => a * b, 1);
      const batch = new Float64Array(per * this.size);
      idx.forEach((r, k) => batch.set(col.subarray(r * per, (r + 1) * per), k * per));
      out.set(f.name, batch);
    }
    return out;
  }
}
