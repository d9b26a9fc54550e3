// Training data: JSONL files whose fields become `batch.<field>`. Each field's shape and
// dtype are read off the data (whole numbers everywhere → i32, else f32); every record
// must agree, and errors name the file and line.
//
// Sequences: a string field (with a tokenizer) or a field of integer lists whose lengths
// vary is padded with 0 to one length — `pad` when the job gives it, else the longest in
// the file — and gets a companion field `<name>_mask` (f32: 1 for a real token, 0 for
// padding). A sequence longer than `pad` is an error naming the line.
import { readFileSync } from "node:fs";
import type { DType } from "./bundle.ts";
import { makeTokenizer, TokenizerError, type Tokenizer, type TokenizerKind } from "./tokenize.ts";

export class DataError extends Error {
  override name = "DataError";
}

export interface FieldInfo {
  name: string;
  /** shape of one record's value (no batch dim) */
  shape: number[];
  dtype: DType;
  /** for a tokenized field: the tokenizer's vocabulary size */
  vocab?: number;
  /** for a padded sequence: the name of its mask field */
  mask?: string;
}

export interface Dataset {
  file: string;
  rows: number;
  fields: FieldInfo[];
  /** per field, all records' values concatenated (row-major) */
  columns: Map<string, Float64Array>;
  /** the tokenizer string fields went through, if any */
  tokenizer?: Tokenizer;
}

/** How to read a file: `jsonl("f", tokenizer = "chars", pad = T)`. */
export interface DataOptions {
  tokenizer?: TokenizerKind;
  /** pad sequences to this length (the job's declared dim) */
  pad?: number;
}

export interface ReadOptions extends DataOptions {
  /** the file's text (tests); read from disk when absent */
  text?: string;
  /**
   * The training set, when reading an evaluation set: its tokenizer (a character
   * vocabulary is the training data's) and its sequence lengths are reused.
   */
  like?: Dataset;
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

const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x));

interface Record_ {
  line: number;
  values: Record<string, unknown>;
}

function parseLines(file: string, src: string): Record_[] {
  const out: Record_[] = [];
  src.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) throw new DataError(`${file}:${i + 1}: expected a JSON object with one key per field`);
    out.push({ line: i + 1, values: rec as Record<string, unknown> });
  });
  return out;
}

type Kind = { kind: "tensor"; shape: number[] } | { kind: "text" } | { kind: "seq" };

export function readJsonl(file: string, opts: ReadOptions = {}): Dataset {
  let src: string;
  try {
    src = opts.text ?? readFileSync(file, "utf8");
  } catch (e) {
    throw new DataError(`cannot read data file ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  const records = parseLines(file, src);
  if (records.length === 0) throw new DataError(`${file}: no records`);
  const at = (r: Record_) => () => `${file}:${r.line}`;

  // Which fields there are (the first record's), and of what kind.
  const first = records[0];
  const names = Object.keys(first.values);
  for (const r of records.slice(1)) {
    const missing = names.filter((k) => !(k in r.values));
    const extra = Object.keys(r.values).filter((k) => !names.includes(k));
    if (missing.length) throw new DataError(`${file}:${r.line}: missing field${missing.length > 1 ? "s" : ""} ${missing.join(", ")} (present on line ${first.line})`);
    if (extra.length) throw new DataError(`${file}:${r.line}: field${extra.length > 1 ? "s" : ""} ${extra.join(", ")} not present on the first line`);
  }
  const likeField = (n: string) => opts.like?.fields.find((f) => f.name === n);
  const kinds = new Map<string, Kind>();
  for (const n of names) {
    const v0 = first.values[n];
    if (typeof v0 === "string") {
      kinds.set(n, { kind: "text" });
      continue;
    }
    const lens = new Set<number>();
    let ints = true;
    for (const r of records) {
      const v = r.values[n];
      if (isIntList(v)) lens.add(v.length);
      else ints = false;
    }
    if (ints && (lens.size > 1 || likeField(n)?.mask)) kinds.set(n, { kind: "seq" });
    else kinds.set(n, { kind: "tensor", shape: shapeOfValue(v0, at(first)) });
  }

  // The tokenizer: the training set's, or a new one (a character vocabulary comes from here).
  let tokenizer = opts.like?.tokenizer;
  const textFields = names.filter((n) => kinds.get(n)!.kind === "text");
  if (textFields.length && !tokenizer) {
    if (!opts.tokenizer) {
      throw new DataError(`${file}:${first.line}: field ${textFields[0]} holds text; give the job a tokenizer: jsonl("...", tokenizer = "chars") (or "bytes", "bpe")`);
    }
    tokenizer = makeTokenizer(opts.tokenizer, function* () {
      for (const r of records) for (const n of textFields) if (typeof r.values[n] === "string") yield r.values[n] as string;
    });
  }

  const fields: FieldInfo[] = [];
  const columns = new Map<string, Float64Array>();
  for (const n of names) {
    const k = kinds.get(n)!;
    if (k.kind === "tensor") {
      const values: number[] = [];
      let allInt = true;
      for (const r of records) {
        const s = shapeOfValue(r.values[n], at(r));
        if (s.length !== k.shape.length || s.some((d, j) => d !== k.shape[j])) {
          throw new DataError(`${file}:${r.line}: field ${n} has shape [${s.join(", ")}], but [${k.shape.join(", ")}] on line ${first.line}`);
        }
        const before = values.length;
        try {
          flattenInto(r.values[n], values);
        } catch (e) {
          throw new DataError(`${file}:${r.line}: field ${n}: ${(e as Error).message}`);
        }
        for (let j = before; j < values.length; j++) if (!Number.isInteger(values[j])) allInt = false;
      }
      fields.push({ name: n, shape: k.shape, dtype: allInt ? "i32" : "f32" });
      columns.set(n, Float64Array.from(values));
      continue;
    }
    // A sequence: token ids (tokenized text, or integer lists), padded, with a mask.
    const seqs = records.map((r) => {
      const v = r.values[n];
      if (k.kind === "text") {
        if (typeof v !== "string") throw new DataError(`${file}:${r.line}: field ${n} is text on line ${first.line} but ${JSON.stringify(v)?.slice(0, 30)} here`);
        try {
          return tokenizer!.encode(v);
        } catch (e) {
          if (e instanceof TokenizerError) throw new DataError(`${file}:${r.line}: field ${n}: ${e.message}`);
          throw e;
        }
      }
      if (!isIntList(v)) throw new DataError(`${file}:${r.line}: field ${n} must be a list of integers (token ids), found ${JSON.stringify(v)?.slice(0, 30)}`);
      return v;
    });
    const longest = seqs.reduce((m, s) => Math.max(m, s.length), 0);
    const declared = opts.pad ?? likeField(n)?.shape[0];
    const len = declared ?? longest;
    if (longest > len) {
      const i = seqs.findIndex((s) => s.length > len);
      const why = opts.pad !== undefined ? `the declared length ${len} (pad = ${len})` : `${len}, the longest in the training data`;
      throw new DataError(`${file}:${records[i].line}: field ${n} has ${seqs[i].length} tokens, more than ${why}`);
    }
    const vocab = k.kind === "text" ? tokenizer!.vocabSize : undefined;
    const ids = new Float64Array(records.length * len);
    const mask = new Float64Array(records.length * len);
    seqs.forEach((s, i) => {
      s.forEach((t, j) => {
        if (vocab !== undefined && (t < 0 || t >= vocab)) throw new DataError(`${file}:${records[i].line}: field ${n}: token ${t} outside the vocabulary (0..${vocab - 1})`);
        ids[i * len + j] = t;
        mask[i * len + j] = 1;
      });
    });
    const maskName = `${n}_mask`;
    if (names.includes(maskName)) throw new DataError(`${file}: field ${maskName} clashes with the mask of sequence field ${n}`);
    fields.push({ name: n, shape: [len], dtype: "i32", mask: maskName, ...(vocab !== undefined ? { vocab } : {}) });
    fields.push({ name: maskName, shape: [len], dtype: "f32" });
    columns.set(n, ids);
    columns.set(maskName, mask);
  }
  return { file, rows: records.length, fields, columns, ...(tokenizer ? { tokenizer } : {}) };
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

/** The records at `idx`, as one batch per field. */
export function gatherRows(data: Dataset, idx: ArrayLike<number>): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const f of data.fields) {
    const col = data.columns.get(f.name)!;
    const per = f.shape.reduce((a, b) => a * b, 1);
    const batch = new Float64Array(per * idx.length);
    for (let k = 0; k < idx.length; k++) batch.set(col.subarray(idx[k] * per, (idx[k] + 1) * per), k * per);
    out.set(f.name, batch);
  }
  return out;
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
    return gatherRows(this.data, idx);
  }
}

/**
 * The evaluation batches: the records in file order, `size` at a time; the last batch
 * wraps around to the start. `count` caps how many (default: enough to see every record).
 */
export function evalBatches(data: Dataset, size: number, count?: number): Map<string, Float64Array>[] {
  const n = count ?? Math.max(1, Math.ceil(data.rows / size));
  const out: Map<string, Float64Array>[] = [];
  for (let b = 0; b < n; b++) out.push(gatherRows(data, Array.from({ length: size }, (_, k) => (b * size + k) % data.rows)));
  return out;
}
