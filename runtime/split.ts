// Split launches: a kernel that binds a buffer larger than the device's
// maxStorageBufferBindingSize runs as several dispatches ("chunks") of one pipeline, each
// over a range of the kernel's workgroups and binding only the part of each buffer those
// workgroups touch. The kernel reads its chunk — the first and last workgroup, and per
// binding the first element bound — from a small uniform: one shader for all chunks.
//
// What a range of workgroups touches comes from the kernel's footprint (bundle.ts), which
// the compiler writes beside the WGSL: index maps from the work items to the elements of
// each binding. Ranges of items are cut into boxes (a prefix of fixed indices, one axis
// ranging, the rest whole) and mapped through the steps; the hull of the images is the
// range bound. Reads whose range does not shrink with fewer workgroups (a broadcast
// row of a transposed tensor, a gather's table) must fit whole, else the kernel cannot
// be split and the device check (limits.ts) says so.
//
// The runtime uses the same functions at load, so that a bundle compiled for a larger
// binding limit than the device's is re-split there (no compiler needed).
import { rowStrides } from "./reference/tensor.ts";
import { bufferBytes, type Access, type Bundle, type BufferSpec, type ChunkSpec, type Footprint, type IndexStep, type KernelSpec } from "./bundle.ts";

/** Binding offsets must be multiples of minStorageBufferOffsetAlignment: 256 is the largest any device may ask. */
export const OFFSET_ALIGN = 256;
/** Bytes of one uniform slot per chunk (minUniformBufferOffsetAlignment is at most 256 too). */
export const CHUNK_UNIFORM_STRIDE = 256;
const MAX_GROUPS = 65535;

/** Bytes per element of each storage type. */

/** A buffer's size on the device (a buffer is never empty). */
/** A buffer's byte size on the device (runtime/bundle.ts bufferBytes). */
export const specBytes = (b: BufferSpec): number => bufferBytes(b.length, b.type);

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---- ranges: what a range of work items touches ------------------------------------

/** A box of multi-indices, bounds inclusive. */
interface Box {
  lo: number[];
  hi: number[];
}

/** Flat indices [a, b] (inclusive) of a row-major shape as boxes: a prefix fixed, one axis ranging, the rest whole (at most 2·rank). */
export function boxesOf(a: number, b: number, shape: readonly number[]): Box[] {
  const n = numel(shape);
  const lo0 = Math.max(0, a);
  const hi0 = Math.min(n - 1, b);
  if (lo0 > hi0) return [];
  const r = shape.length;
  if (r === 0) return [{ lo: [], hi: [] }];
  const e = rowStrides(shape);
  const out: Box[] = [];
  let cur = lo0;
  while (cur <= hi0) {
    const left = hi0 - cur + 1;
    let k = 0;
    while (k < r - 1 && (cur % e[k] !== 0 || e[k] > left)) k++;
    const digits = shape.map((d, j) => Math.floor(cur / e[j]) % d);
    const count = Math.min(shape[k] - digits[k], Math.floor(left / e[k]));
    out.push({
      lo: digits.map((x, j) => (j <= k ? x : 0)),
      hi: digits.map((x, j) => (j < k ? x : j === k ? x + count - 1 : shape[j] - 1)),
    });
    cur += count * e[k];
  }
  return out;
}

const rowsOf = (s: IndexStep) => ("axes" in s ? s.axes : [s]);

function mapBox(box: Box, step: IndexStep): Box {
  const lo: number[] = [];
  const hi: number[] = [];
  for (const row of rowsOf(step)) {
    let a = row.offset;
    let b = row.offset;
    row.strides.forEach((s, i) => {
      a += s * (s >= 0 ? box.lo[i] : box.hi[i]);
      b += s * (s >= 0 ? box.hi[i] : box.lo[i]);
    });
    lo.push(a);
    hi.push(b);
  }
  return { lo, hi };
}

function clampBox(box: Box, shape: readonly number[]): Box | undefined {
  const lo = box.lo.map((x) => Math.max(0, x));
  const hi = box.hi.map((x, i) => Math.min(shape[i] - 1, x));
  return lo.every((x, i) => x <= hi[i]) ? { lo, hi } : undefined;
}

/** One-axis boxes merged where they overlap or touch, in order. */
function mergeIntervals(boxes: Box[]): Box[] {
  const s = [...boxes].sort((x, y) => x.lo[0] - y.lo[0]);
  const out: Box[] = [];
  for (const b of s) {
    const last = out[out.length - 1];
    if (last && b.lo[0] <= last.hi[0] + 1) last.hi[0] = Math.max(last.hi[0], b.hi[0]);
    else out.push({ lo: [b.lo[0]], hi: [b.hi[0]] });
  }
  return out;
}

const hullOf = (boxes: Box[]): Box => ({
  lo: boxes[0].lo.map((_, i) => Math.min(...boxes.map((b) => b.lo[i]))),
  hi: boxes[0].hi.map((_, i) => Math.max(...boxes.map((b) => b.hi[i]))),
});

/** Past this many boxes the set is replaced by its hull (a larger range, never a wrong one). */
const MAX_BOXES = 512;

/** The elements [lo, hi] that items [a, b) touch through `access`, or null when they touch none. */
export function accessRange(fp: Footprint, access: Exclude<Access, "whole">, a: number, b: number): [number, number] | null {
  const from = Math.max(a, access.items?.[0] ?? a);
  const to = Math.min(b, access.items?.[1] ?? b);
  if (from >= to || access.steps.length === 0) return null;
  const first = access.steps[0].shape;
  if (first.length < fp.space.length || fp.space.some((d, i) => first[i] !== d)) throw new Error(`invalid footprint: a first step over [${first}] for items of [${fp.space}]`);
  const inner = first.slice(fp.space.length);
  let boxes = boxesOf(from, to - 1, fp.space).map((x) => ({ lo: [...x.lo, ...inner.map(() => 0)], hi: [...x.hi, ...inner.map((d) => d - 1)] }));
  for (let t = 0; t < access.steps.length; t++) {
    const step = access.steps[t];
    boxes = boxes.map((x) => clampBox(x, step.shape)).filter((x): x is Box => x !== undefined);
    if (!boxes.length) return null;
    let next = boxes.map((x) => mapBox(x, step));
    const rank = rowsOf(step).length;
    if (t === access.steps.length - 1) {
      if (rank !== 1) throw new Error("invalid footprint: the last step must give one index");
      const h = hullOf(next);
      return [h.lo[0], h.hi[0]];
    }
    const shape = access.steps[t + 1].shape;
    if (rank === 1) {
      next = mergeIntervals(next);
      if (next.length > MAX_BOXES) next = [hullOf(next)];
      next = next.flatMap((iv) => boxesOf(iv.lo[0], iv.hi[0], shape));
    } else if (rank !== shape.length) {
      throw new Error(`invalid footprint: a step gives ${rank} indices into a shape of rank ${shape.length}`);
    }
    boxes = next.length > MAX_BOXES ? [hullOf(next)] : next;
  }
  return null;
}

// ---- plans ---------------------------------------------------------------------------

/**
 * A kernel's storage arrays as its WGSL declares them: per binding, its name, the bytes
 * of one array element (`unit`: 16 for a vec4<f32>) and of its scalars (footprints count
 * scalars: the buffer's elements).
 */
interface StorageArray {
  name: string;
  unit: number;
  scalar: number;
}

const SCALAR_BYTES: Record<string, number> = { f32: 4, i32: 4, u32: 4, f16: 2 };

/** [bytes of the element, bytes of its scalars] of an array<type>, or undefined. */
function arrayElementBytes(type: string): [number, number] | undefined {
  const t = type.replace(/\s+/g, "");
  if (t in SCALAR_BYTES) return [SCALAR_BYTES[t], SCALAR_BYTES[t]];
  const atomic = /^atomic<(i32|u32)>$/.exec(t);
  if (atomic) return [4, 4];
  const vec = /^vec([234])(?:<(\w+)>|([fiuh]))$/.exec(t);
  if (vec) {
    const s = vec[2] ? SCALAR_BYTES[vec[2]] : vec[3] === "h" ? 2 : 4;
    return s === undefined ? undefined : [Number(vec[1]) * s, s];
  }
  return undefined;
}

const STORAGE_DECL = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*storage\s*(?:,\s*(?:read|read_write)\s*)?>\s*([A-Za-z_]\w*)\s*:\s*array\s*<\s*([^;]+?)\s*>\s*;/g;

function storageArrays(wgsl: string, n: number): StorageArray[] | string {
  const found = new Array<StorageArray | undefined>(n).fill(undefined);
  for (const m of wgsl.matchAll(STORAGE_DECL)) {
    const k = Number(m[1]);
    const bytes = arrayElementBytes(m[3]);
    if (k >= n) return `@binding(${k}) is past its ${n} bindings`;
    if (bytes === undefined) return `binding ${k} is an array of ${m[3]}, which the splitter does not know`;
    found[k] = { name: m[2], unit: bytes[0], scalar: bytes[1] };
  }
  const missing = found.findIndex((x) => x === undefined);
  if (missing >= 0) return `binding ${missing} is not a storage array`;
  return found as StorageArray[];
}

/** Why a kernel's launch cannot be split: the binding that does not fit (-1: none in particular), what it needs, and why. */
export interface SplitFailure {
  binding: number;
  need: number;
  why: string;
}

export type SplitPlan = { chunks: ChunkSpec[] } | { failure: SplitFailure };

/** A grid of `n` workgroups: 1-D up to 65,535, else 2-D (the kernel skips numbers past its chunk). */
export function chunkGrid(n: number): [number, number, number] {
  if (n <= MAX_GROUPS) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / MAX_GROUPS);
  return [Math.ceil(n / y), y, 1];
}

/**
 * The chunks of `k`'s launch such that no binding of any chunk is over `limit` bytes:
 * each as many workgroups as fit (at most one round of an accumulating kernel).
 * `bytes[i]`: the size of binding i's buffer (undefined: not known, then a buffer bound
 * whole is taken to fit).
 */
export function planChunks(k: KernelSpec, bytes: readonly (number | undefined)[], limit: number): SplitPlan {
  const fp = k.footprint;
  const fail = (binding: number, need: number, why: string): SplitPlan => ({ failure: { binding, need, why } });
  if (!fp) return fail(-1, 0, "the kernel has no footprint (its WGSL was not written by the compiler, which describes what its kernels touch)");
  const arrays = storageArrays(k.wgsl, k.bindings.length);
  if (typeof arrays === "string") return fail(-1, 0, `its WGSL cannot be split: ${arrays}`);
  if (fp.access.length !== k.bindings.length) return fail(-1, 0, `its footprint describes ${fp.access.length} bindings of ${k.bindings.length}`);
  const [gx, gy, gz] = k.workgroups;
  if (gz !== 1) return fail(-1, 0, "its grid is 3-D");
  const items = numel(fp.space);
  const groups = Math.min(gx * gy, Math.ceil(items / fp.per));
  const round = fp.round ?? Infinity;

  /** Per binding: the byte range [offset, size] that workgroups [w0, w1) need bound. */
  const ranges = (w0: number, w1: number): [number, number][] =>
    fp.access.map((accesses, i) => {
      const size = bytes[i];
      const { unit, scalar } = arrays[i];
      if (accesses.some((a) => a === "whole")) return [0, size ?? unit];
      let lo = Infinity;
      let hi = -Infinity;
      for (const a of accesses) {
        const r = accessRange(fp, a as Exclude<Access, "whole">, w0 * fp.per, Math.min(items, w1 * fp.per));
        if (!r) continue;
        lo = Math.min(lo, r[0]);
        hi = Math.max(hi, r[1]);
      }
      if (lo > hi) return [0, Math.min(size ?? unit, unit)];
      const start = Math.floor((Math.max(0, lo) * scalar) / OFFSET_ALIGN) * OFFSET_ALIGN;
      let end = Math.ceil(((hi + 1) * scalar) / unit) * unit;
      if (size !== undefined) end = Math.min(end, size);
      return [start, Math.max(unit, end - start)];
    });
  const fits = (rs: [number, number][]) => rs.every(([, size]) => size <= limit);

  const chunk = (w0: number, w1: number, rs: [number, number][]): ChunkSpec => ({ first: w0, end: w1, workgroups: chunkGrid(w1 - w0), ranges: rs, bases: rs.map(([offset], i) => offset / arrays[i].unit) });
  if (groups > 0 && groups <= round) {
    // most launches: all of it fits at once
    const all = ranges(0, groups);
    if (fits(all)) return { chunks: [chunk(0, groups, all)] };
  }
  const chunks: ChunkSpec[] = [];
  for (let w0 = 0; w0 < groups; ) {
    const one = ranges(w0, w0 + 1);
    if (!fits(one)) {
      const i = one.findIndex(([, size]) => size > limit);
      const why = fp.access[i].some((a) => a === "whole")
        ? "it is read at places the kernel does not describe, so it is bound whole"
        : fp.access[i].some((a) => a !== "whole" && a.gathered)
          ? `it is read at indices that come from data (a gather's table): one workgroup may touch ${one[i][1]} bytes of it`
          : `one workgroup alone touches ${one[i][1]} bytes of it (it is read through a broadcast, transpose or stride that a split does not shrink)`;
      return fail(i, bytes[i] ?? one[i][1], why);
    }
    // as many workgroups as fit: double, then bisect
    const most = Math.min(groups, w0 + round);
    let good = w0 + 1;
    let bad = most + 1;
    for (let step = 1; good < most; step *= 2) {
      const t = Math.min(most, w0 + 2 * step);
      if (fits(ranges(w0, t))) good = t;
      else {
        bad = t;
        break;
      }
    }
    while (bad - good > 1) {
      const mid = Math.floor((good + bad) / 2);
      if (fits(ranges(w0, mid))) good = mid;
      else bad = mid;
    }
    chunks.push(chunk(w0, good, ranges(w0, good)));
    w0 = good;
  }
  return { chunks };
}

/** The largest byte range the launch binds of each binding: whole buffers, or its chunks' ranges. */
export function boundBytes(k: KernelSpec, bytes: readonly number[]): number[] {
  if (!k.chunks) return k.bindings.map((_, i) => bytes[i]);
  return k.bindings.map((_, i) => Math.max(0, ...k.chunks!.map((c) => c.ranges[i][1])));
}

/**
 * `k` with its launch split so that no binding is over `limit` bytes, if it must be
 * (a binding over the limit, or an accumulating kernel not yet in chunks) and can be;
 * else `k` itself (and a failure the device check reports).
 */
export function splitKernel(k: KernelSpec, bytes: readonly number[], limit: number): { kernel: KernelSpec; failure?: SplitFailure } {
  const unchunked = k.footprint?.round !== undefined && !k.chunks;
  if (!unchunked && boundBytes(k, bytes).every((b) => b <= limit)) return { kernel: k };
  let plan: SplitPlan;
  try {
    plan = planChunks(k, bytes, limit);
  } catch (e) {
    return { kernel: k, failure: { binding: -1, need: 0, why: (e as Error).message } };
  }
  if ("failure" in plan) return { kernel: k, failure: plan.failure };
  let wgsl = k.wgsl;
  if (!k.chunks) {
    const w = chunkedWgsl(k.wgsl, k.bindings.length, k.workgroups, chunkBinding(k));
    if (typeof w !== "string") return { kernel: k, failure: { binding: -1, need: 0, why: `its WGSL cannot be split: ${w.error}` } };
    wgsl = w;
  }
  return { kernel: { ...k, wgsl, chunks: plan.chunks } };
}

/** The bundle with every launch that binds more than `limit` bytes of a buffer split where it can be. */
export function fitBundle(bundle: Bundle, limit: number): Bundle {
  const sizes = new Map(bundle.buffers.map((b) => [b.id, specBytes(b)]));
  let changed = false;
  const kernels = bundle.kernels.map((k) => {
    const { kernel } = splitKernel(k, k.bindings.map((id) => sizes.get(id) ?? 4), limit);
    if (kernel !== k) changed = true;
    return kernel;
  });
  return changed ? { ...bundle, kernels } : bundle;
}

/** Why `k` binds more than `limit` bytes of a buffer: that it cannot be split, and why. */
export function whyUnsplit(k: KernelSpec, bytes: readonly number[], limit: number, binding: number): string {
  let plan: SplitPlan;
  try {
    plan = planChunks(k, bytes, limit);
  } catch (e) {
    return `cannot be split: ${(e as Error).message}`;
  }
  if (!("failure" in plan)) return k.chunks ? "its chunks were planned for a larger limit" : "";
  const f = plan.failure;
  if (f.binding === binding || f.binding < 0) return `cannot be split: ${f.why}`;
  return `cannot be split: of binding ${f.binding} (${f.need} bytes), ${f.why}`;
}

/** The u32 values of chunk `c`'s uniform: first and end workgroup, then each binding's base. */
export function chunkUniform(c: ChunkSpec): Uint32Array {
  return Uint32Array.from([c.first, c.end, ...c.bases]);
}

// ---- WGSL: one shader for every chunk ---------------------------------------------

/** The binding of a split kernel's chunk uniform: after its storage buffers and its sizes (KernelSpec.params). */
export const chunkBinding = (k: Pick<KernelSpec, "bindings" | "params">): number => k.bindings.length + (k.params?.length ? 1 : 0);

const uniformSlot = (e: number) => `weft_chunk[${e >> 2}].${"xyzw"[e & 3]}`;

/**
 * The kernel's WGSL made to run as chunks: it reads `weft_chunk` (a uniform after its
 * storage bindings): [first workgroup, end workgroup, base of binding 0, 1, …]. Its entry
 * point sees the workgroup ids, global ids and grid size of the whole launch, so its body
 * is unchanged; workgroups past the chunk return; every storage index is rebased by its
 * binding's base. An error when the WGSL does something this cannot follow.
 */
export function chunkedWgsl(wgsl: string, n: number, grid: readonly number[], binding = n): string | { error: string } {
  const arrays = storageArrays(wgsl, n);
  if (typeof arrays === "string") return { error: arrays };
  if (grid[2] !== 1) return { error: "its grid is 3-D" };
  for (const a of arrays) if (new RegExp(`&\\s*${a.name}\\b(?!\\s*\\[)`).test(stripComments(wgsl))) return { error: `it takes the address of the whole array ${a.name}` };
  const entry = /@compute\b[^{]*?\bfn\s+([A-Za-z_]\w*)\s*\(/.exec(wgsl);
  if (!entry) return { error: "no @compute entry point" };
  const open = entry.index + entry[0].length;
  let depth = 1;
  let close = open;
  for (; close < wgsl.length && depth > 0; close++) {
    if (wgsl[close] === "(") depth++;
    if (wgsl[close] === ")") depth--;
  }
  close--; // at the parameter list's ')'
  const body = wgsl.indexOf("{", close);
  if (body < 0) return { error: "no body" };
  const builtins = new Map<string, string>();
  const keep: string[] = [];
  for (const p of splitParams(wgsl.slice(open, close))) {
    const m = /^@builtin\(\s*(\w+)\s*\)\s*([A-Za-z_]\w*)\s*:/.exec(p);
    if (!m) return { error: `parameter "${p}" is not a builtin` };
    builtins.set(m[1], m[2]);
    if (!["workgroup_id", "num_workgroups", "global_invocation_id"].includes(m[1])) keep.push(p);
  }
  const lines = [
    "  let weft_w = weft_chunk[0].x + weft_wid.x + weft_wid.y * weft_groups.x;",
    "  if (weft_w >= weft_chunk[0].y) { return; }",
  ];
  const wid = builtins.get("workgroup_id") ?? "weft_whole_wid";
  lines.push(`  let ${wid} = vec3<u32>(weft_w % ${grid[0]}u, weft_w / ${grid[0]}u, 0u);`);
  const groups = builtins.get("num_workgroups");
  if (groups) lines.push(`  let ${groups} = vec3<u32>(${grid[0]}u, ${grid[1]}u, 1u);`);
  const gid = builtins.get("global_invocation_id");
  if (gid) {
    const size = workgroupSize(wgsl);
    if (!size) return { error: "its @workgroup_size is not made of literals" };
    let lid = builtins.get("local_invocation_id");
    if (!lid) {
      lid = "weft_lid";
      keep.push("@builtin(local_invocation_id) weft_lid: vec3<u32>");
    }
    lines.push(`  let ${gid} = vec3<u32>(${wid}.x * ${size[0]}u + ${lid}.x, ${wid}.y * ${size[1]}u + ${lid}.y, ${lid}.z);`);
  }
  const params = ["@builtin(workgroup_id) weft_wid: vec3<u32>", "@builtin(num_workgroups) weft_groups: vec3<u32>", ...keep];
  const head = wgsl.slice(0, entry.index);
  const decl = `// split launch: each chunk reads [first workgroup, end workgroup, base of each binding] from weft_chunk\n@group(0) @binding(${binding}) var<uniform> weft_chunk: array<vec4<u32>, ${Math.ceil((n + 2) / 4)}>;\n\n`;
  const bases = new Map(arrays.map((a, i) => [a.name, uniformSlot(2 + i)]));
  const main = `${wgsl.slice(entry.index, open)}${params.join(", ")}${wgsl.slice(close, body + 1)}\n${lines.join("\n")}${rebase(wgsl.slice(body + 1), bases)}`;
  return `${rebase(head, bases)}${decl}${main}`;
}

function stripComments(s: string): string {
  return s.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
}

function splitParams(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of s) {
    if (c === "(" || c === "<") depth++;
    if (c === ")" || c === ">") depth--;
    if (c === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function workgroupSize(wgsl: string): [number, number, number] | undefined {
  const m = /@workgroup_size\s*\(([^)]*)\)/.exec(wgsl);
  if (!m) return undefined;
  const parts = m[1].split(",").map((s) => s.trim()).filter(Boolean);
  const v = [0, 1, 2].map((i) => (parts[i] === undefined ? 1 : /^\d+[iu]?$/.test(parts[i]) ? parseInt(parts[i], 10) : NaN));
  return v.some(Number.isNaN) ? undefined : [v[0], v[1], v[2]];
}

/** `src` with every `NAME[index]` of a storage array read as `NAME[(index) - base]` (nested ones too; comments kept). */
function rebase(src: string, bases: ReadonlyMap<string, string>): string {
  let i = 0;
  const ident = /[A-Za-z_]\w*/y;
  const scan = (inBracket: boolean): string => {
    let out = "";
    while (i < src.length) {
      const c = src[i];
      if (c === "/" && src[i + 1] === "/") {
        const end = src.indexOf("\n", i);
        const stop = end < 0 ? src.length : end;
        out += src.slice(i, stop);
        i = stop;
        continue;
      }
      if (c === "]" && inBracket) return out;
      if (c === "[") {
        i++;
        const inner = scan(true);
        i++;
        out += `[${inner}]`;
        continue;
      }
      if (/[A-Za-z_]/.test(c) && !/[\w.]/.test(src[i - 1] ?? " ")) {
        ident.lastIndex = i;
        const name = ident.exec(src)![0];
        i += name.length;
        const base = bases.get(name);
        let j = i;
        while (src[j] === " ") j++;
        if (base !== undefined && src[j] === "[") {
          i = j + 1;
          const inner = scan(true);
          i++;
          out += `${name}[(${inner}) - ${base}]`;
        } else out += name;
        continue;
      }
      out += c;
      i++;
    }
    return out;
  };
  return scan(false);
}
