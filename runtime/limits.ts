// What a bundle needs of a device, read from the bundle itself (its buffers, its launch
// list and its WGSL), and whether a device offers it. The runtime checks this at load,
// and the compiler at compile time when it knows the device, so that a bundle never
// meets a validation error at dispatch: it runs, or it is refused naming the limit (or
// feature), what the bundle needs and what the device has. A launch binding more of a
// buffer than maxStorageBufferBindingSize is split before this check (runtime/split.ts);
// one that cannot be is refused here, saying why.
import { bufferBytes, type Bundle, type BufferSpec } from "./bundle.ts";
import { boundBytes, whyUnsplit } from "./split.ts";

/** The limits a bundle can exceed (names as in WebGPU's GPUSupportedLimits). */
export const CHECKED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
] as const;
export type LimitName = (typeof CHECKED_LIMITS)[number];
export type Limits = Partial<Record<LimitName, number>>;

/** One thing the device lacks. */
export interface Shortfall {
  /** the limit's name, or `feature "<name>"` */
  limit: string;
  /** what the bundle needs (for a feature: 1) */
  need: number;
  /** what the device offers (for a feature: 0) */
  have: number;
  /** e.g. `kernel "matmul_12" binding 2 (buffer 7)` */
  where: string;
  /** what it needs, e.g. `is 268435456 bytes` */
  what: string;
  /** why the bundle cannot do with less, e.g. `cannot be split: …` */
  why?: string;
}

export class DeviceLimitError extends Error {
  override name = "DeviceLimitError";
  constructor(readonly shortfalls: Shortfall[], device = "the device") {
    super(`${device} cannot run this bundle:\n${shortfalls.map((s) => `  ${describeShortfall(s)}`).join("\n")}`);
  }
}

/** Why a bundle needs a feature, where that helps the reader decide what to change. */
const FEATURE_REASONS: Record<string, string> = {
  "shader-f16": "it computes on f16 tensors; declare them f32 to run on this device",
  subgroups: "it was compiled for a device with subgroups; compile the program for this one",
};

export function describeShortfall(s: Shortfall): string {
  if (s.limit === "subgroupMinSize") {
    return `${s.where} ${s.what}, but the device's subgroups may have as few as ${s.have} (compile the program for this device: it then picks another matmul tile)`;
  }
  if (s.limit.startsWith("feature ")) {
    const why = FEATURE_REASONS[s.limit.slice(9, -1)];
    return `${s.where} ${s.what}, which the device does not have${why ? ` (${why})` : ""}`;
  }
  return `${s.where} ${s.what}, over the device's ${s.limit} ${s.have}${s.why ? `, and ${s.why}` : ""}`;
}

/** A buffer as a message names it: its id and, for a source, its role and name. */
export function describeBuffer(b: BufferSpec | undefined, id: number): string {
  if (!b) return `buffer ${id}`;
  return b.name !== undefined ? `buffer ${id}, ${b.role} "${b.name}"` : `buffer ${id}, ${b.role === "temp" ? "a temporary" : b.role}`;
}

/** What one kernel's WGSL asks of the device. */
export interface KernelNeeds {
  /** @workgroup_size of each entry point (undefined where it is not a literal or a constant) */
  workgroupSizes: ([number, number, number] | undefined)[];
  /** bytes of var<workgroup> storage, each variable rounded up to 16 (WebGPU's rule); undefined if a type is not understood */
  workgroupBytes: number | undefined;
  /** device features its `enable` directives need */
  features: string[];
}

const ENABLE_FEATURES: Record<string, string> = { f16: "shader-f16", subgroups: "subgroups", subgroups_f16: "subgroups-f16" };

export function kernelNeeds(wgsl: string): KernelNeeds {
  const src = wgsl.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const features = new Set<string>();
  for (const m of src.matchAll(/\benable\s+([^;]+);/g)) {
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) features.add(ENABLE_FEATURES[name] ?? name);
  }
  // module-scope integer constants (and overrides' defaults), for sizes spelled by name
  const consts = new Map<string, number>();
  for (const m of src.matchAll(/\b(?:const|override)\s+([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?=\s*([0-9]+)[iu]?\s*;/g)) consts.set(m[1], Number(m[2]));
  const int = (s: string | undefined): number | undefined => {
    if (s === undefined) return 1;
    const t = s.trim();
    const lit = /^([0-9]+)[iu]?$/.exec(t);
    return lit ? Number(lit[1]) : consts.get(t);
  };
  const workgroupSizes = [...src.matchAll(/@workgroup_size\s*\(([^)]*)\)/g)].map((m): [number, number, number] | undefined => {
    const parts = m[1].split(",").map((s) => s.trim()).filter(Boolean);
    const [x, y, z] = [int(parts[0]), int(parts[1]), int(parts[2])];
    return x === undefined || y === undefined || z === undefined ? undefined : [x, y, z];
  });
  const structs = new Map<string, Layout>();
  let workgroupBytes: number | undefined = 0;
  const types = new TypeSizes(structs, int);
  for (const m of src.matchAll(/\bstruct\s+([A-Za-z_]\w*)\s*\{([^}]*)\}/g)) {
    const members = splitTop(m[2]).map((s) => s.replace(/^(@\w+(\([^)]*\))?\s*)*/, ""));
    const layout = types.struct(members.map((s) => s.slice(s.indexOf(":") + 1).trim()));
    if (layout) structs.set(m[1], layout);
  }
  for (const m of src.matchAll(/\bvar\s*<\s*workgroup\s*>\s*[A-Za-z_]\w*\s*:\s*([^;=]+?)\s*;/g)) {
    const t = types.of(m[1]);
    workgroupBytes = t && workgroupBytes !== undefined ? workgroupBytes + Math.ceil(t.size / 16) * 16 : undefined;
  }
  return { workgroupSizes, workgroupBytes, features: [...features] };
}

interface Layout {
  size: number;
  align: number;
}

/** WGSL's size and alignment rules for the host-shareable and workgroup types kernels use. */
class TypeSizes {
  constructor(
    private readonly structs: Map<string, Layout>,
    private readonly int: (s: string) => number | undefined,
  ) {}

  of(type: string): Layout | undefined {
    const t = type.replace(/\s+/g, "");
    const scalar: Record<string, number> = { f32: 4, i32: 4, u32: 4, bool: 4, f16: 2 };
    if (t in scalar) return { size: scalar[t], align: scalar[t] };
    const atomic = /^atomic<(i32|u32)>$/.exec(t);
    if (atomic) return { size: 4, align: 4 };
    const vec = /^vec([234])(?:<(\w+)>|([fiuh]))$/.exec(t);
    if (vec) {
      const n = Number(vec[1]);
      const s = vec[2] ? scalar[vec[2]] : vec[3] === "h" ? 2 : 4;
      if (!s) return undefined;
      return { size: n * s, align: (n === 3 ? 4 : n) * s };
    }
    const mat = /^mat([234])x([234])(?:<(\w+)>|([fh]))$/.exec(t);
    if (mat) {
      const col = this.of(`vec${mat[2]}<${mat[3] ?? (mat[4] === "h" ? "f16" : "f32")}>`);
      if (!col) return undefined;
      return { size: Number(mat[1]) * roundUp(col.align, col.size), align: col.align };
    }
    const arr = /^array<(.+),([^,<>]+)>$/.exec(t);
    if (arr) {
      const el = this.of(arr[1]);
      const n = this.int(arr[2]);
      if (!el || n === undefined) return undefined;
      return { size: n * roundUp(el.align, el.size), align: el.align };
    }
    return this.structs.get(t);
  }

  struct(memberTypes: string[]): Layout | undefined {
    let offset = 0;
    let align = 1;
    for (const m of memberTypes) {
      const l = this.of(m);
      if (!l) return undefined;
      offset = roundUp(l.align, offset) + l.size;
      align = Math.max(align, l.align);
    }
    return { size: roundUp(align, offset), align };
  }
}

const roundUp = (k: number, n: number) => Math.ceil(n / k) * k;

/** Comma-separated parts not inside <...> (struct members). */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of s) {
    if (c === "<") depth++;
    if (c === ">") depth--;
    if ((c === "," || c === ";") && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += c;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/**
 * Everything the bundle needs beyond what WebGPU guarantees, checked against `limits`
 * and `features` (a limit missing from `limits` is not checked; features are not
 * checked when `features` is null).
 */
export function checkDevice(
  bundle: Bundle,
  limits: Limits,
  features: readonly string[] | ReadonlySet<string> | null,
  /** the device's smallest subgroup (0 where it has subgroups of unknown size); undefined: not checked */
  subgroupMinSize?: number,
): Shortfall[] {
  const out: Shortfall[] = [];
  const has = (f: string) => features === null || ("has" in features ? features.has(f) : features.includes(f));
  const over = (limit: LimitName, need: number, where: string, what: string) => {
    const have = limits[limit];
    if (have !== undefined && need > have) out.push({ limit, need, have, where, what });
  };
  const specs = new Map(bundle.buffers.map((b) => [b.id, b]));
  const bytes = new Map(bundle.buffers.map((b) => [b.id, bufferBytes(b.length, b.type)]));
  for (const b of bundle.buffers) over("maxBufferSize", bytes.get(b.id)!, `buffer ${b.id}${b.name ? ` (${b.name})` : ""}`, `is ${bytes.get(b.id)} bytes`);
  for (const k of bundle.kernels) {
    const where = `kernel "${k.name}"`;
    over("maxStorageBuffersPerShaderStage", k.bindings.length, where, `binds ${k.bindings.length} storage buffers`);
    // a split launch binds a part of each buffer per chunk (runtime/split.ts)
    const sizes = k.bindings.map((id) => bytes.get(id) ?? 4);
    const bound = boundBytes(k, sizes);
    const binding = limits.maxStorageBufferBindingSize;
    k.bindings.forEach((id, i) => {
      if (!bytes.has(id) || binding === undefined || bound[i] <= binding) return;
      const what = k.chunks ? `is ${sizes[i]} bytes, bound ${bound[i]} bytes at a time` : `is ${sizes[i]} bytes`;
      // (no reasons against limits of 0: requirements() asks only what the bundle binds)
      const why = binding > 0 ? whyUnsplit(k, sizes, binding, i) : "";
      out.push({ limit: "maxStorageBufferBindingSize", need: bound[i], have: binding, where: `${where} binding ${i} (${describeBuffer(specs.get(id), id)})`, what, ...(why ? { why } : {}) });
    });
    k.workgroups.forEach((w, d) => over("maxComputeWorkgroupsPerDimension", w, where, `dispatches ${w} workgroups in dimension ${"xyz"[d]}`));
    const needs = kernelNeeds(k.wgsl);
    for (const f of needs.features) if (!has(f)) out.push({ limit: `feature "${f}"`, need: 1, have: 0, where, what: `uses feature "${f}"` });
    if (k.lanes !== undefined && subgroupMinSize !== undefined && subgroupMinSize < k.lanes) {
      out.push({ limit: "subgroupMinSize", need: k.lanes, have: subgroupMinSize, where, what: `shares values across a subgroup of ${k.lanes} lanes (its workgroup)` });
    }
    if (needs.workgroupBytes !== undefined) over("maxComputeWorkgroupStorageSize", needs.workgroupBytes, where, `uses ${needs.workgroupBytes} bytes of workgroup storage`);
    for (const size of needs.workgroupSizes) {
      if (!size) continue;
      const ws = `has @workgroup_size(${size.join(", ")})`;
      over("maxComputeInvocationsPerWorkgroup", size[0] * size[1] * size[2], where, `${ws}: ${size[0] * size[1] * size[2]} invocations`);
      (["maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ"] as const).forEach((l, d) => over(l, size[d], where, ws));
    }
  }
  return out;
}

/** The largest value of each checked limit the bundle needs, the features it needs, and the subgroup lanes its kernels assume (0: none). */
export function requirements(bundle: Bundle): { limits: Record<LimitName, number>; features: string[]; lanes: number } {
  const limits = Object.fromEntries(CHECKED_LIMITS.map((l) => [l, 0])) as Record<LimitName, number>;
  const zero = Object.fromEntries(CHECKED_LIMITS.map((l) => [l, 0])) as Limits;
  // every need shows up as a shortfall against limits of 0
  const features = new Set<string>();
  let lanes = 0;
  for (const s of checkDevice(bundle, zero, [], 0)) {
    if (s.limit.startsWith("feature ")) features.add(s.limit.slice(9, -1));
    else if (s.limit === "subgroupMinSize") lanes = Math.max(lanes, s.need);
    else limits[s.limit as LimitName] = Math.max(limits[s.limit as LimitName], s.need);
  }
  return { limits, features: [...features], lanes };
}
