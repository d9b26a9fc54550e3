// WGSL rendering of the kernel shapes the back end needs: elementwise (with inputs read
// through views and constants inlined), reduction, and matmul (in matmul.ts), plus the
// helpers the ops' own kernels share. Sizes are baked in as constants: shapes are
// static, and the driver folds them.
import type { Access, DType, Footprint, IndexStep, KernelSpec } from "../../runtime/bundle.ts";
import type { Node, Shape } from "../ir/graph.ts";
import { numel, stridesOf } from "../ir/graph.ts";
import { contiguous, type View } from "../kernel/view.ts";
import type { Lowering } from "../ops/registry.ts";
import { isIdentity, Renderer, type Operand, type Renderable } from "./render.ts";
import { wgslFloat } from "../ops/elementwise.ts";
import { f16Round } from "../../runtime/f16.ts";
import { InternalError } from "../diagnostics.ts";
import { DEFAULT_TARGET, type Target } from "./target.ts";
import type { DeviceProfile } from "../../runtime/profile.ts";
import { affine, fitsBindingLimit } from "./footprint.ts";

export type { Operand } from "./render.ts";

export const WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Workgroup grid for `threads` invocations, split into 2-D past the per-dimension limit. */
export function grid(threads: number): [number, number, number] {
  return groupGrid(Math.ceil(threads / WORKGROUP));
}

/**
 * A grid of `groups` workgroups: 1-D up to the per-dimension limit (65,535, which every
 * device offers), else 2-D. Kernels number their workgroup `wid.x + wid.y * groups.x`
 * and skip numbers past `groups` (the 2-D grid may round up).
 */
export function groupGrid(groups: number): [number, number, number] {
  const n = Math.max(1, groups);
  if (n <= MAX_GROUPS) return [n, 1, 1];
  const y = Math.ceil(n / MAX_GROUPS);
  if (y > MAX_GROUPS) throw new InternalError(`${n} workgroups do not fit a 65,535 × 65,535 grid`);
  return [Math.ceil(n / y), y, 1];
}

export const storage = (d: DType) => (d === "bool" ? "u32" : d);
export const u = (n: number) => `${n}u`;

/** The type a reduction of `d` values accumulates in: f16 sums, maxima and scans run in f32. */
export const accumulatorOf = (d: DType): DType => (d === "f16" ? "f32" : d);

/** WGSL spelling of a constant of dtype `d` (an f16 one rounded to the nearest half). */
export function literal(value: number, dtype: DType): string {
  if (dtype === "f32") return wgslFloat(value);
  if (dtype === "f16") return halfLiteral(value);
  if (dtype === "i32") return value === -2147483648 ? "(-2147483647i - 1i)" : `${Math.trunc(value)}i`;
  return value ? "true" : "false";
}

/**
 * An f16 constant. The value is rounded to the nearest half here (as the reference rounds
 * every f16 node) and written out in full (JS's shortest round-trip decimal of a half is
 * the half exactly, so the shader compiler has nothing to round: Tint's rounding of a
 * literal that is not a half, 3.0e-8h, gave 0 on lavapipe). Infinities and NaN come from
 * bits at run time (see wgslFloat).
 */
function halfLiteral(value: number): string {
  const h = f16Round(value);
  if (Number.isNaN(h)) return "weft_f16_bits(0x7e00u)";
  if (h === Infinity) return "weft_f16_bits(0x7c00u)";
  if (h === -Infinity) return "weft_f16_bits(0xfc00u)";
  const s = Object.is(h, -0) ? "-0" : String(h);
  return `${/[.e]/.test(s) ? s : `${s}.0`}h`;
}

/** Module-scope helpers a kernel may call, added where it does. */
const HELPERS: Record<string, string> = {
  weft_f32_bits: "fn weft_f32_bits(b: u32) -> f32 { return bitcast<f32>(b); }",
  // the low half of the word (bits 0x0000hhhh)
  weft_f16_bits: "fn weft_f16_bits(b: u32) -> f16 { return bitcast<vec2<f16>>(b).x; }",
};

/**
 * A kernel made ready to compile: `enable f16;` at its head when its code (outside
 * comments) names f16 or writes a half literal (WGSL needs the directive before any
 * declaration, and the device needs `shader-f16`: runtime/limits.ts reads the directive),
 * and the helpers it calls appended (module-scope declarations may follow their use).
 */
export function finishKernel(wgsl: string): string {
  const code = wgsl.replace(/\/\/[^\n]*/g, " ");
  let out = wgsl;
  for (const [name, fn] of Object.entries(HELPERS)) {
    if (new RegExp(`\\b${name}\\(`).test(code) && !new RegExp(`\\bfn\\s+${name}\\b`).test(code)) out = `${out}${out.endsWith("\n") ? "" : "\n"}${fn}\n`;
  }
  const half = /\bf16\b|\b\d+(?:\.\d*)?(?:e[-+]?\d+)?h\b/.test(out.replace(/\/\/[^\n]*/g, " "));
  if (half && !/\benable\s+[^;]*\bf16\b/.test(code)) out = `enable f16;\n${out}`;
  return out;
}

/** A value loaded from storage, converted to its WGSL value type. */
export function load(expr: string, dtype: DType): string {
  return dtype === "bool" ? `(${expr} != 0u)` : expr;
}
export function store(expr: string, dtype: DType): string {
  return dtype === "bool" ? `select(0u, 1u, ${expr})` : expr;
}

/**
 * `offset + Σ idx[k] * stride[k]` as WGSL, skipping zero strides. `int` renders a size or
 * stride (a literal, or a uniform slot in a shape-generic kernel: Bindings.int).
 */
export function offsetExpr(view: View, idx: readonly string[], int: (n: number) => string = u): string {
  // With sizes in uniforms every term is kept (a zero stride, a size-1 dim, a unit stride
  // are values, not structure), so that the code does not depend on them.
  const generic = int !== u;
  const terms = [view.offset || generic ? int(view.offset) : ""];
  view.strides.forEach((s, k) => {
    if (generic) {
      if (idx[k] !== "0u") terms.push(`${/^[A-Za-z0-9_]+$/.test(idx[k]) ? idx[k] : `(${idx[k]})`} * ${int(view.shape[k] === 1 ? 0 : s)}`);
      return;
    }
    // an index may be an expression (`m0 + 1u`): parenthesise it before scaling
    const i = /^[A-Za-z0-9_]+$/.test(idx[k]) ? idx[k] : `(${idx[k]})`;
    if (s !== 0 && view.shape[k] !== 1) terms.push(s === 1 ? i : `${i} * ${int(s)}`);
  });
  const t = terms.filter(Boolean);
  return t.length ? t.join(" + ") : "0u";
}

/** Lines decomposing flat index `flat` into per-axis indices `${prefix}k`. */
export function unflatten(flat: string, shape: Shape, prefix: string, int: (n: number) => string = u): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, k) => {
    const q = strides[k] === 1 ? flat : `${flat} / ${int(strides[k])}`;
    return `  let ${prefix}${k} = ${k === 0 ? q : `(${q}) % ${int(d)}`};`;
  });
}

/** A string that tells accesses apart (cheaper than JSON: kernels note one per read they render). */
function accessKey(a: Access): string {
  if (a === "whole") return a;
  let key = a.items ? `${a.items[0]}:${a.items[1]}${a.gathered ? "g" : ""}` : a.gathered ? "g" : "";
  for (const s of a.steps) {
    key += `/${s.shape.join(",")}`;
    for (const row of "axes" in s ? s.axes : [s]) key += `|${row.strides.join(",")}+${row.offset}`;
  }
  return key;
}

/**
 * The read-only buffers a kernel binds, in binding order. A buffer read both as vec4
 * (matmul operands) and element by element is bound twice, once per element type.
 */
export class Bindings {
  readonly ids: number[] = [];
  readonly types: DType[] = [];
  private readonly vec: boolean[] = [];
  /** the values of the uniform slots `int` handed out (shape-generic kernels) */
  readonly params: number[] = [];
  /**
   * `generic`: sizes and strides go through `int` into uniform slots, so the WGSL depends
   * on the kernel's structure only, not on its shapes.
   */
  constructor(readonly generic = false) {}
  /**
   * A size, stride or offset as WGSL: a literal, or in a generic kernel a new uniform slot.
   * Slots are handed out in rendering order, one per call (never shared by value, which
   * would make the code depend on which sizes happen to be equal).
   */
  readonly int = (n: number): string => {
    if (!this.generic) return u(n);
    const k = this.params.push(n >>> 0) - 1;
    return `P[${k >> 2}].${"xyzw"[k & 3]}`;
  };
  /** where the kernel's work items touch each binding, by WGSL name ("in0", "out", "out1") */
  private readonly touched = new Map<string, Map<string, Access>>();
  private untold = false;
  /**
   * Notes that the kernel's work items touch `name` through `access` (for its footprint);
   * undefined: in a way not described, and the kernel gets no footprint (it is never split).
   */
  touch(name: string, access: Access | undefined): void {
    if (!access) {
      this.untold = true;
      return;
    }
    const seen = this.touched.get(name) ?? new Map<string, Access>();
    seen.set(accessKey(access), access);
    this.touched.set(name, seen);
  }
  /**
   * The footprint (runtime/bundle.ts) of a kernel whose workgroup w runs items
   * [w·per, (w+1)·per) of `space`, with outputs named `outs` (as declare() names them):
   * undefined unless every binding's accesses were noted.
   */
  footprint(space: Shape, per: number, outs: readonly string[], round?: number): Footprint | undefined {
    if (this.untold || numel(space) === 0) return undefined;
    const access = [...this.ids.map((_, k) => `in${k}`), ...outs].map((n) => this.touched.get(n));
    if (access.some((a) => !a)) return undefined;
    return { space: [...space], per, access: access.map((a) => [...a!.values()]), ...(round !== undefined ? { round } : {}) };
  }
  bind(buffer: number, dtype: DType): string {
    return this.slot(buffer, dtype, false);
  }
  /** The buffer as `array<vec4<f32>>` (or `vec4<f16>`): the reader keeps every index a multiple of 4 elements. */
  bindVec4(buffer: number, dtype: "f32" | "f16" = "f32"): string {
    return this.slot(buffer, dtype, true);
  }
  private slot(buffer: number, dtype: DType, vec: boolean): string {
    let k = this.ids.findIndex((id, j) => id === buffer && this.vec[j] === vec);
    if (k < 0) {
      k = this.ids.length;
      this.ids.push(buffer);
      this.types.push(dtype);
      this.vec.push(vec);
    }
    return `in${k}`;
  }
  /** The read-only inputs' declarations, then the read_write output `out` (one dtype) or `out0`, `out1`, … (a list). */
  declare(out: DType | readonly DType[], vec4Out = false): string {
    const lines = this.ids.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<${this.vec[k] ? `vec4<${storage(this.types[k])}>` : storage(this.types[k])}>;`);
    const outs = typeof out === "string" ? [out] : out;
    const elem = (t: DType) => (vec4Out ? `vec4<${storage(t)}>` : storage(t));
    outs.forEach((t, k) => lines.push(`@group(0) @binding(${this.ids.length + k}) var<storage, read_write> out${typeof out === "string" ? "" : k}: array<${elem(t)}>;`));
    if (this.params.length) {
      lines.push(`@group(0) @binding(${this.ids.length + outs.length}) var<uniform> P: array<vec4<u32>, ${Math.ceil(this.params.length / 4)}>;`);
    }
    return lines.join("\n");
  }
}

/** The WGSL of a kernel with one thread per element `i` of `threads` (a 2-D grid past 65,535 workgroups). */
export function threadKernelWgsl(comment: string, declarations: string, threads: number, body: readonly string[]): string {
  return [
    `// ${comment}`,
    declarations,
    "",
    `@compute @workgroup_size(${WORKGROUP})`,
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {",
    `  let i = gid.x + gid.y * groups.x * ${u(WORKGROUP)};`,
    `  if (i >= ${u(threads)}) { return; }`,
    ...body,
    "}",
    "",
  ].join("\n");
}

/** How a thread kernel's work items map to its footprint, and how it is written. */
export interface ThreadKernelOptions {
  /** the WGSL's first comment line (default: the name) */
  comment?: string;
  /** work items per workgroup in `space` (default WORKGROUP: one a thread) */
  per?: number;
  /** Footprint.round */
  round?: number;
  /** the output is declared as vec4s (four elements a thread) */
  vec4Out?: boolean;
}

/**
 * A kernel of `threads` threads over `body`, writing `out` (one buffer of `outType`, or
 * several, `out0`, `out1`, …). With `space`, workgroup w computes items [w·per, (w+1)·per)
 * of that row-major space and the kernel gets a footprint (if `b` was told every access).
 */
export function kernel(
  name: string,
  b: Bindings,
  outType: DType | readonly DType[],
  out: number | readonly number[],
  threads: number,
  body: string[],
  space?: Shape,
  opts: ThreadKernelOptions = {},
): KernelSpec {
  const wgsl = threadKernelWgsl(opts.comment ?? name, b.declare(outType, opts.vec4Out), threads, body);
  const outs = typeof out === "number" ? [out] : [...out];
  const names = typeof out === "number" ? ["out"] : outs.map((_, k) => `out${k}`);
  const footprint = space ? b.footprint(space, opts.per ?? WORKGROUP, names, opts.round) : undefined;
  return { name, wgsl, bindings: [...b.ids, ...outs], readOnly: b.ids.length, workgroups: grid(threads), ...(footprint ? { footprint } : {}) };
}

/** One thread per element of `root` (a fused expression tree, a view, or a constant). */
/**
 * An f32 element kernel whose thread computes four consecutive elements: the tensors it
 * reads at its own elements (identity views) come in as one vec4 each, and the output
 * goes out as one vec4; the expression is rendered per element, so reads through other
 * views, index-dependent ops and non-f32 intermediates are as in the scalar kernel.
 * On lavapipe the vec4 loads and stores make a memory-bound chain 3–4× faster
 * (`gelu(x*a+b)*c`: 2.6 → 10 GB/s, hand-written). Undefined where it does not apply
 * (not f32, a length not a multiple of 4, or nothing read at the kernel's own elements).
 */
export function vec4ElementwiseKernel(name: string, shape: Shape, dtype: DType, root: Operand, out: number): KernelSpec | undefined {
  const n = numel(shape);
  if (dtype !== "f32" || n % 4 !== 0 || n === 0) return undefined;
  const own = (op: Renderable): boolean =>
    op.kind === "buffer" && op.dtype === "f32" && op.view.shape.length === shape.length && isIdentity(op.view, shape);
  // Only reads at the kernel's own element count: under a fused node read through another
  // view (a transpose of a square tensor) the same buffer is read at other elements.
  const aligned = (op: Renderable): boolean =>
    op.kind === "fused" && op.node.type.shape.length === shape.length && isIdentity(op.view, shape) && isIdentity(contiguous(op.node.type.shape), shape);
  const reads = new Set<number>();
  const scan = (op: Renderable): void => {
    if (op.kind === "buffer" && own(op)) reads.add(op.buffer);
    else if (aligned(op) && op.kind === "fused") op.inputs.forEach(scan);
  };
  scan(root);
  if (!reads.size) return undefined;
  const b = new Bindings();
  const body: string[] = [];
  const q = new Map<number, string>();
  for (const id of reads) {
    const arr = b.bindVec4(id, "f32");
    const v = `q${q.size}`;
    body.push(`  let ${v} = ${arr}[i];`);
    q.set(id, v);
    b.touch(arr, { steps: [contiguous(shape)] });
  }
  // element c of the thread: the tree with its own-element reads replaced by component c
  const swap = (op: Renderable, c: string): Renderable => {
    if (op.kind === "buffer" && own(op)) return { kind: "raw", name: `${q.get(op.buffer)!}.${c}`, dtype: "f32" };
    if (op.kind === "fused" && aligned(op)) return { ...op, inputs: op.inputs.map((x) => swap(x, c)) };
    return op;
  };
  const r = new Renderer(b, body, "  ", undefined, { steps: [] });
  const values = ["x", "y", "z", "w"].map((c, k) => {
    body.push(...unflatten(`(i * 4u + ${u(k)})`, shape, `e${k}_`));
    return r.value(swap(root, c), shape.map((_, a) => `e${k}_${a}`));
  });
  body.push(`  out[i] = vec4<f32>(${values.join(", ")});`);
  b.touch("out", { steps: [contiguous(shape)] });
  return kernel(name, b, dtype, out, n / 4, body, shape, { comment: `${name} (4 elements a thread)`, per: 4 * WORKGROUP, vec4Out: true });
}

export function elementwiseKernel(name: string, shape: Shape, dtype: DType, root: Operand, out: number): KernelSpec {
  const b = new Bindings();
  const body = unflatten("i", shape, "o");
  const r = new Renderer(b, body, "  ", undefined, { steps: [] });
  const v = r.value(root, shape.map((_, k) => `o${k}`));
  body.push(`  out[i] = ${store(v, dtype)};`);
  b.touch("out", { steps: [contiguous(shape)] });
  return kernel(name, b, dtype, out, Math.max(1, numel(shape)), body, shape);
}

/** One input of a concat: its operand, its shape, and where it starts along the axis. */
export interface ConcatPiece {
  op: Operand;
  shape: Shape;
  start: number;
}

/**
 * A concat: one thread per element of the pieces, each finding its piece, rendering the
 * piece's value (a buffer read through its view, a constant, a fused expression) and
 * storing it at its place in the output. The pieces must tile the output.
 */
export function concatKernel(name: string, shape: Shape, dtype: DType, axis: number, pieces: readonly ConcatPiece[], out: number): KernelSpec {
  const b = new Bindings();
  const body: string[] = [];
  const top = new Renderer(b, body);
  const strides = stridesOf(shape);
  // Each piece starts a workgroup of its own: a workgroup never writes two pieces' places
  // (far apart in the output when the axis is not the first), so a split launch's chunk
  // binds one range of the output per piece.
  const begins: number[] = [];
  let total = 0;
  for (const p of pieces) {
    begins.push(total);
    total = Math.ceil((total + numel(p.shape)) / WORKGROUP) * WORKGROUP;
  }
  total = Math.max(1, begins.length ? begins[begins.length - 1] + numel(pieces[pieces.length - 1].shape) : 0);
  pieces.forEach((p, k) => {
    const begin = begins[k];
    const end = begin + numel(p.shape);
    const lines = [`    let j = i - ${u(begin)};`, ...unflatten("j", p.shape, "o").map((l) => `  ${l}`)];
    // thread i of this piece is element i - begin of it
    const here = { steps: [{ shape: [total], strides: [1], offset: -begin }], items: [begin, end] as const };
    const v = top.child(lines, "    ", here).value(p.op, p.shape.map((_, a) => `o${a}`));
    const place = { shape: p.shape, strides, offset: p.start * strides[axis] };
    const at = offsetExpr(place, p.shape.map((_, a) => `o${a}`));
    lines.push(`    out[${at}] = ${store(v, dtype)};`);
    b.touch("out", { ...here, steps: [...here.steps, place] });
    body.push(`  ${k ? "} else " : ""}if (${begin ? `i >= ${u(begin)} && ` : ""}i < ${u(end)}) {`, ...lines);
  });
  if (pieces.length) body.push("  }");
  return kernel(name, b, dtype, out, total, body, [total]);
}

/** Reductions at least this long get a workgroup each (or several), not one thread. */
export const PARALLEL_REDUCE = 1024;
/** A split reduction gives each workgroup at least this many elements… */
const SPLIT_CHUNK = 4096;
/**
 * …and splits until there are about this many workgroups in all: enough to fill a large
 * GPU (on the H200, a sum of 16M floats in 256 workgroups reached 146 GB/s), few on a
 * CPU adapter, where each workgroup runs on one of a handful of threads anyway.
 */
const SPLIT_GROUPS: Record<DeviceProfile["kind"], number> = { gpu: 2048, unknown: 2048, cpu: 256 };

type ReduceLowering = Lowering & { kind: "reduce" };

/** What a reduction's kernels need from the bundle being built. */
export interface ReduceContext {
  readonly target: Target;
  /** a new temporary buffer of `length` elements (a split reduction's partial results); without it, no split */
  scratch?(length: number, dtype: DType): number;
}

/**
 * One reduction: `input` (of shape `inShape`, values of `inType`) folded over `axes` into
 * `out` (of shape `outShape`, stored as `outType`). An f16 reduction folds in an f32
 * accumulator (accumulatorOf) and rounds once, as it stores; the partial results of a
 * split one stay f32 between its two passes.
 */
interface ReduceJob {
  name: string;
  input: Operand;
  inShape: Shape;
  axes: readonly number[];
  outShape: Shape;
  inType: DType;
  outType: DType;
  lower: ReduceLowering;
  out: number;
}

/** The accumulator's WGSL for a value of `from` (widened), and for storing into `to` (narrowed). */
const widen = (x: string, from: DType) => (from === "f16" ? `f32(${x})` : x);
const narrow = (x: string, to: DType) => store(to === "f16" ? `f16(${x})` : x, to);

/**
 * The kernels of a reduction node. The input may be a fused expression (a reduction
 * prologue): it is rendered inside the loop. Short reductions get a thread per output;
 * long ones a workgroup per output; long ones over few outputs (a sum of 16M elements
 * to one scalar) are split over several workgroups per output, whose partial results a
 * second kernel folds.
 */
export function reduceKernels(name: string, node: Node, input: Operand, lower: ReduceLowering, out: number, ctx?: ReduceContext): KernelSpec[] {
  const inShape = input.kind === "const" ? input.shape : input.view.shape;
  const dtype = node.type.dtype;
  const job: ReduceJob = { name, input, inShape, axes: node.attrs.axes as number[], outShape: node.type.shape, inType: dtype, outType: dtype, lower, out };
  return reduceJob(job, ctx);
}

function reduceJob(job: ReduceJob, ctx: ReduceContext | undefined): KernelSpec[] {
  const R = numel(job.axes.map((k) => job.inShape[k]));
  const target = ctx?.target ?? DEFAULT_TARGET;
  const kernels = reduceByOutputs(job, ctx, R, target);
  if (R === 0 || fitsBindingLimit(kernels[0], target)) return kernels;
  // What one output reads does not fit a binding (a sum over the batch axis of a tensor
  // larger than the limit): fold the reduced axes in slices of their first one instead,
  // each slice's kernel adding into the outputs (runtime/split.ts runs it as chunks of at
  // most one slice each, in order). Serial folds continue from the stored value, so
  // they add in the same order as one launch; workgroup folds do not.
  const reduced = job.axes.map((k) => job.inShape[k]);
  for (let depth = 0; depth < reduced.length; depth++) {
    for (let count = 2; ; count *= 2) {
      const rows = Math.ceil(reduced[depth] / Math.min(count, reduced[depth]));
      const slicing = sliced(reduced, depth, rows);
      const spec = R < PARALLEL_REDUCE ? serialSliced(job, R, slicing) : workgroupReduce(job, R, 1, target, slicing);
      if (fitsBindingLimit(spec, target)) return [spec];
      if (rows === 1) break; // one index of this axis per slice is too much: slice the next one
    }
  }
  return kernels; // the device check says what does not fit
}

/**
 * Slices of a reduction's reduced elements (in the order of `axes`, flattened): each is
 * one index of the reduced axes before `depth`, `rows` indices of the axis at `depth`,
 * and all of those after it — a box, and a contiguous run [lo, hi) of the flat index r.
 */
interface Slicing {
  depth: number;
  rows: number;
  /** the slices, row-major: the axes before `depth`, then the blocks of `rows` */
  dims: number[];
  count: number;
  /** the dims one slice iterates: `rows`, then the axes after `depth` */
  inner: number[];
}

function sliced(reduced: readonly number[], depth: number, rows: number): Slicing {
  const dims = [...reduced.slice(0, depth), Math.ceil(reduced[depth] / rows)];
  return { depth, rows, dims, count: numel(dims), inner: [rows, ...reduced.slice(depth + 1)] };
}

/** Lines setting `lo` and `hi`, the run of the flat reduced index r that slice `s` folds. */
function sliceBounds(sl: Slicing, reduced: readonly number[], s: string): string[] {
  const per = numel(reduced.slice(sl.depth + 1)); // elements per index of the sliced axis
  const span = reduced[sl.depth] * per; // elements per index of the axes before it
  const blocks = sl.dims[sl.dims.length - 1];
  return [`  let sq = ${s} / ${u(blocks)};`, `  let lo = sq * ${u(span)} + (${s} % ${u(blocks)}) * ${u(sl.rows * per)};`, `  let hi = min(lo + ${u(sl.rows * per)}, sq * ${u(span)} + ${u(span)});`];
}

/**
 * The index step from a sliced reduction's items — the slice's dims, then `outDims` dims
 * for the outputs (kept axes in order) — and the slice's inner dims, to the input's
 * multi-index.
 */
function slicedStep(sl: Slicing, inShape: Shape, axes: readonly number[], kept: readonly number[], outDims: Shape): IndexStep {
  const lead = sl.dims.length;
  const space = lead + outDims.length;
  const rows = inShape.map((_, k) => {
    const m = axes.indexOf(k);
    if (m < 0) return { [lead + kept.indexOf(k)]: 1 };
    if (m < sl.depth) return { [m]: 1 };
    if (m === sl.depth) return { [lead - 1]: sl.rows, [space]: 1 };
    return { [space + m - sl.depth]: 1 };
  });
  return affine([...sl.dims, ...outDims, ...sl.inner], rows);
}

function reduceByOutputs(job: ReduceJob, ctx: ReduceContext | undefined, R: number, target: Target): KernelSpec[] {
  const outs = Math.max(1, numel(job.outShape));
  if (R < PARALLEL_REDUCE) return [serialReduce(job, R)];
  const parts = ctx?.scratch ? Math.min(Math.floor(R / SPLIT_CHUNK), Math.ceil(SPLIT_GROUPS[target.device.kind] / outs)) : 1;
  if (parts <= 1 || !ctx?.scratch) return [workgroupReduce(job, R, 1, target)];
  const acc = accumulatorOf(job.inType);
  const partial = ctx.scratch(outs * parts, acc);
  const first = workgroupReduce({ ...job, out: partial, outType: acc }, R, parts, target);
  const view = contiguous([outs, parts]);
  const second: ReduceJob = {
    ...job,
    name: `${job.name}_partials`,
    inType: acc,
    input: { kind: "buffer", buffer: partial, view, dtype: acc },
    inShape: view.shape,
    axes: [1],
    outShape: [outs],
  };
  return [first, ...reduceJob(second, ctx)];
}

/** One thread per output element, looping over the reduced axes. */
function serialReduce({ name, input, inShape, axes, outShape, inType, outType, lower, out }: ReduceJob, R: number): KernelSpec {
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const reduced = axes.map((k) => inShape[k]);
  const b = new Bindings();
  const body = unflatten("i", outShape, "o");
  // thread i: output i, over every reduced element
  const rows = inShape.map((_, k) => (axes.includes(k) ? { [outShape.length + axes.indexOf(k)]: 1 } : { [kept.indexOf(k)]: 1 }));
  const top = new Renderer(b, body, "  ", undefined, { steps: [affine([...outShape, ...reduced], rows)] });
  // Start from the first element, not an identity: WGSL cannot spell -inf as a constant.
  if (R > 0) {
    const first = inShape.map((_, k) => (axes.includes(k) ? "0u" : `o${kept.indexOf(k)}`));
    body.push(`  var acc = ${widen(top.value(input, first), inType)};`);
  } else {
    body.push(`  var acc = ${lower.init(accumulatorOf(inType))};`);
  }
  body.push(`  for (var r = 1u; r < ${u(R)}; r++) {`);
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  const idx = inShape.map((_, k) => (axes.includes(k) ? `q${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  const inner = top.child(body, "    ");
  const x = widen(inner.value(input, idx), inType);
  body.push(`    acc = ${lower.combine("acc", x)};`);
  body.push("  }");
  body.push(`  out[i] = ${narrow("acc", outType)};`);
  b.touch("out", { steps: [contiguous(outShape)] });
  return kernel(name, b, outType, out, Math.max(1, numel(outShape)), body, outShape);
}

/**
 * serialReduce over one slice of the reduced elements per thread, slice-major: thread
 * (s, o) continues output o from the value slice s − 1 stored (so the sum is added in the
 * order serialReduce adds it) and stores it again. A workgroup never holds two slices of
 * one output: past 64 outputs a round of workgroups is at most the outputs, below 64 the
 * last output axis is padded to 64 threads.
 */
function serialSliced({ name, input, inShape, axes, outShape, inType, outType, lower, out }: ReduceJob, R: number, sl: Slicing): KernelSpec {
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const reduced = axes.map((k) => inShape[k]);
  const outs = numel(outShape);
  const padded = outs < WORKGROUP;
  const outSpace = padded ? [...outShape.slice(0, -1), WORKGROUP * Math.ceil((outShape[outShape.length - 1] ?? 1) / WORKGROUP)] : [...outShape];
  const per = numel(outSpace);
  const space = [...sl.dims, ...outSpace];
  const b = new Bindings();
  const body = [`  let s = i / ${u(per)};`, `  let e = i % ${u(per)};`, ...unflatten("e", outSpace, "o")];
  if (padded) body.push(`  if (o${outSpace.length - 1} >= ${u(outShape[outShape.length - 1] ?? 1)}) { return; }`);
  const at = outShape.length ? offsetExpr(contiguous(outShape), outShape.map((_, j) => `o${j}`)) : "0u";
  body.push(...sliceBounds(sl, reduced, "s"));
  body.push(...unflatten("lo", reduced, "f"));
  const top = new Renderer(b, body, "  ", undefined, { steps: [slicedStep(sl, inShape, axes, kept, outSpace)] });
  const idx = (prefix: string) => inShape.map((_, k) => (axes.includes(k) ? `${prefix}${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  body.push(`  var acc = ${widen(top.value(input, idx("f")), inType)};`);
  // (an f16 output holds the slices' running sum as f16)
  body.push(`  if (s > 0u) { acc = ${widen(load(`out[${at}]`, outType), outType)}; }`);
  body.push("  for (var r = select(lo + 1u, lo, s > 0u); r < hi; r++) {");
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  const x = widen(top.child(body, "    ").value(input, idx("q")), inType);
  body.push(`    acc = ${lower.combine("acc", x)};`);
  body.push("  }");
  body.push(`  out[${at}] = ${narrow("acc", outType)};`);
  const lead = sl.dims.length;
  const outStep = outShape.length ? [affine(space, outShape.map((_, j) => ({ [lead + j]: 1 }))), contiguous(outShape)] : [{ shape: space, strides: space.map(() => 0), offset: 0 }];
  b.touch("out", { steps: outStep });
  return kernel(name, b, outType, out, sl.count * per, body, space, {
    comment: `${name} (${sl.count} slices of the reduced elements, in order)`,
    round: padded ? per / WORKGROUP : Math.floor(outs / WORKGROUP),
  });
}

/**
 * `parts` workgroups per output element (output i, part c writes out[i·parts + c]):
 * each thread folds a strided share of the reduced elements, then the workgroup folds
 * its threads' values — with subgroup operations where the device has them (each
 * subgroup folds in registers, then one thread folds the subgroups' results), else in
 * shared memory (a tree).
 */
function workgroupReduce({ name, input, inShape, axes, outShape, inType, outType, lower, out }: ReduceJob, R: number, parts: number, target: Target, sl?: Slicing): KernelSpec {
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const reduced = axes.map((k) => inShape[k]);
  const outs = Math.max(1, numel(outShape));
  const accType = accumulatorOf(inType);
  const t = storage(accType);
  const sub = lower.subgroup && accType !== "bool" && target.device.features.includes("subgroups") ? lower.subgroup : undefined;
  // With `sl`: workgroup (slice, i) folds a slice of output i's reduced elements into
  // what the slices before it stored.
  const slices = sl?.count ?? 1;
  const b = new Bindings();
  const body: string[] = [];
  if (parts > 1) body.push(`  let i = w / ${u(parts)};`, `  let c = w % ${u(parts)};`);
  else if (sl) body.push(`  let slice = w / ${u(outs)};`, `  let i = w % ${u(outs)};`, ...sliceBounds(sl, reduced, "slice"));
  else body.push("  let i = w;");
  body.push(...unflatten("i", outShape, "o"));
  const idx = inShape.map((_, k) => (axes.includes(k) ? `q${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  body.push("  var have = false;");
  body.push(`  var acc: ${t} = ${lower.init(accType)};`);
  // Part c reads runs of WORKGROUP elements c, c + parts, c + 2·parts, …: every part gets
  // about R / parts elements and every thread at least one (R ≥ parts · SPLIT_CHUNK).
  const start = parts > 1 ? `c * ${u(WORKGROUP)} + lid.x` : sl ? "lo + lid.x" : "lid.x";
  body.push(`  for (var r = ${start}; r < ${sl ? "hi" : u(R)}; r += ${u(WORKGROUP * parts)}) {`);
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  // the work items: outputs (× parts, or slices first), each over its reduced elements
  const space = sl ? [...sl.dims, ...outShape] : [...outShape, parts];
  const root = sl
    ? slicedStep(sl, inShape, axes, kept, outShape)
    : affine([...space, ...reduced], inShape.map((_, k) => (axes.includes(k) ? { [space.length + axes.indexOf(k)]: 1 } : { [kept.indexOf(k)]: 1 })));
  const inner = new Renderer(b, body, "    ", undefined, { steps: [root] });
  const x = widen(inner.value(input, idx), inType);
  body.push(`    acc = select(${x}, ${lower.combine("acc", x)}, have);`);
  body.push("    have = true;");
  body.push("  }");
  // Uniform control flow for the barriers: groups past the end compute but store nothing.
  const last = `lid.x == 0u && w < ${u(outs * parts * slices)}`;
  // a slice after the first adds into what the slices before it stored
  const dest = sl ? "i" : "w";
  const result = (v: string) => narrow(sl ? `select(${lower.combine(widen(load(`out[i]`, outType), outType), v)}, ${v}, slice == 0u)` : v, outType);
  let builtins = "";
  if (sub) {
    builtins = ", @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) sgs: u32";
    body.push(`  let s = ${sub}(acc);`);
    body.push("  if (lane == 0u) { partial[sg] = s; }");
    body.push("  workgroupBarrier();");
    body.push(`  if (${last}) {`, "    var v = partial[0];", `    for (var j = 1u; j < sgs; j++) { v = ${lower.combine("v", "partial[j]")}; }`, `    out[${dest}] = ${result("v")};`, "  }");
  } else {
    body.push("  partial[lid.x] = acc;");
    body.push("  workgroupBarrier();");
    for (let s = WORKGROUP / 2; s >= 1; s /= 2) {
      body.push(`  if (lid.x < ${u(s)}) { partial[lid.x] = ${lower.combine("partial[lid.x]", `partial[lid.x + ${u(s)}]`)}; }`);
      body.push("  workgroupBarrier();");
    }
    body.push(`  if (${last}) { out[${dest}] = ${result("partial[0]")}; }`);
  }
  b.touch("out", { steps: [sl ? { shape: space, strides: [...sl.dims.map(() => 0), ...stridesOf(outShape)], offset: 0 } : contiguous(space)] });
  const footprint = b.footprint(space, 1, ["out"], sl ? outs : undefined);
  const wgsl = [
    `// ${name} (${parts > 1 ? `${parts} workgroups` : "one workgroup"} per output${sl ? `, ${sl.count} slices of the reduced elements in order` : ""}${sub ? `, ${sub}` : ""})`,
    ...(sub ? ["enable subgroups;"] : []),
    b.declare(outType),
    // sized for the smallest subgroups (1 thread) on the subgroup path
    `var<workgroup> partial: array<${t}, ${WORKGROUP}>;`,
    "",
    `@compute @workgroup_size(${WORKGROUP})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>${builtins}) {`,
    "  let w = wid.x + wid.y * groups.x;",
    ...body,
    "}",
    "",
  ].join("\n");
  return { name, wgsl, bindings: [...b.ids, out], readOnly: b.ids.length, workgroups: groupGrid(outs * parts * slices), ...(footprint ? { footprint } : {}) };
}

export { matmulKernel, type Epilogue } from "./matmul.ts";
