// WGSL rendering of the three kernel shapes the unfused back end needs: elementwise
// (with inputs read through views and constants inlined), reduction, and matmul.
// Sizes are baked in as constants: shapes are static, and the driver folds them.
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import type { Node, Shape } from "../ir/graph.ts";
import { numel, stridesOf } from "../ir/graph.ts";
import type { View } from "../kernel/view.ts";
import type { KernelArgs, Lowering } from "../ops/registry.ts";
import { Renderer, type Operand } from "./render.ts";
import { wgslFloat } from "../ops/elementwise.ts";

export type { Operand } from "./render.ts";

export const WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Workgroup grid for `threads` invocations, split into 2-D past the per-dimension limit. */
export function grid(threads: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / WORKGROUP));
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

export const storage = (d: DType) => (d === "f32" ? "f32" : d === "i32" ? "i32" : "u32");
export const u = (n: number) => `${n}u`;

export function literal(value: number, dtype: DType): string {
  if (dtype === "f32") return wgslFloat(value);
  if (dtype === "i32") return value === -2147483648 ? "(-2147483647i - 1i)" : `${Math.trunc(value)}i`;
  return value ? "true" : "false";
}

/** A value loaded from storage, converted to its WGSL value type. */
export function load(expr: string, dtype: DType): string {
  return dtype === "bool" ? `(${expr} != 0u)` : expr;
}
export function store(expr: string, dtype: DType): string {
  return dtype === "bool" ? `select(0u, 1u, ${expr})` : expr;
}

/** `offset + Σ idx[k] * stride[k]` as WGSL, skipping zero strides. */
export function offsetExpr(view: View, idx: readonly string[]): string {
  const terms = [view.offset ? u(view.offset) : ""];
  view.strides.forEach((s, k) => {
    // an index may be an expression (`m0 + 1u`): parenthesise it before scaling
    const i = /^[A-Za-z0-9_]+$/.test(idx[k]) ? idx[k] : `(${idx[k]})`;
    if (s !== 0 && view.shape[k] !== 1) terms.push(s === 1 ? i : `${i} * ${u(s)}`);
  });
  const t = terms.filter(Boolean);
  return t.length ? t.join(" + ") : "0u";
}

/** Lines decomposing flat index `flat` into per-axis indices `${prefix}k`. */
export function unflatten(flat: string, shape: Shape, prefix: string): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, k) => {
    const q = strides[k] === 1 ? flat : `${flat} / ${u(strides[k])}`;
    return `  let ${prefix}${k} = ${k === 0 ? q : `(${q}) % ${u(d)}`};`;
  });
}

export class Bindings {
  readonly ids: number[] = [];
  readonly types: DType[] = [];
  bind(buffer: number, dtype: DType): string {
    let k = this.ids.indexOf(buffer);
    if (k < 0) {
      k = this.ids.length;
      this.ids.push(buffer);
      this.types.push(dtype);
    }
    return `in${k}`;
  }
  declare(outType: DType): string {
    const lines = this.ids.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<${storage(this.types[k])}>;`);
    lines.push(`@group(0) @binding(${this.ids.length}) var<storage, read_write> out: array<${storage(outType)}>;`);
    return lines.join("\n");
  }
}

export function kernel(name: string, b: Bindings, outType: DType, out: number, threads: number, body: string[]): KernelSpec {
  const wgsl = [
    `// ${name}`,
    b.declare(outType),
    "",
    `@compute @workgroup_size(${WORKGROUP})`,
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {",
    `  let i = gid.x + gid.y * groups.x * ${u(WORKGROUP)};`,
    `  if (i >= ${u(threads)}) { return; }`,
    ...body,
    "}",
    "",
  ].join("\n");
  return { name, wgsl, bindings: [...b.ids, out], readOnly: b.ids.length, workgroups: grid(threads) };
}

/** One thread per element of `root` (a fused expression tree, a view, or a constant). */
export function elementwiseKernel(name: string, shape: Shape, dtype: DType, root: Operand, out: number): KernelSpec {
  const b = new Bindings();
  const body = unflatten("i", shape, "o");
  const r = new Renderer(b, body);
  const v = r.value(root, shape.map((_, k) => `o${k}`));
  body.push(`  out[i] = ${store(v, dtype)};`);
  return kernel(name, b, dtype, out, Math.max(1, numel(shape)), body);
}

/** Reductions at least this long get a workgroup each, not one thread. */
export const PARALLEL_REDUCE = 1024;

/**
 * One workgroup per output element: each thread folds a strided share of the reduced
 * elements, then the workgroup folds the partials in shared memory (a tree).
 */
function parallelReduceKernel(name: string, node: Node, input: Operand, lower: Lowering & { kind: "reduce" }, out: number, R: number): KernelSpec {
  const axes = node.attrs.axes as number[];
  const inShape = input.kind === "const" ? input.shape : input.view.shape;
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const outShape = node.type.shape;
  const reduced = axes.map((k) => inShape[k]);
  const outs = Math.max(1, numel(outShape));
  const t = storage(node.type.dtype) === "u32" ? "u32" : storage(node.type.dtype);
  const b = new Bindings();
  const body = unflatten("i", outShape, "o");
  const idx = inShape.map((_, k) => (axes.includes(k) ? `q${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  body.push("  var have = false;");
  body.push(`  var acc: ${t} = ${lower.init(node.type.dtype)};`);
  body.push(`  for (var r = lid.x; r < ${u(R)}; r += ${u(WORKGROUP)}) {`);
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  const inner = new Renderer(b, body, "    ");
  const x = inner.value(input, idx);
  body.push(`    acc = select(${x}, ${lower.combine("acc", x)}, have);`);
  body.push("    have = true;");
  body.push("  }");
  body.push("  partial[lid.x] = acc;");
  body.push("  workgroupBarrier();");
  for (let s = WORKGROUP / 2; s >= 1; s /= 2) {
    body.push(`  if (lid.x < ${u(s)}) { partial[lid.x] = ${lower.combine("partial[lid.x]", `partial[lid.x + ${u(s)}]`)}; }`);
    body.push("  workgroupBarrier();");
  }
  // Uniform control flow for the barriers: groups past the end compute but store nothing.
  body.push(`  if (lid.x == 0u && i < ${u(outs)}) { out[i] = ${store("partial[0]", node.type.dtype)}; }`);
  const groups = grid(outs * WORKGROUP);
  const wgsl = [
    `// ${name} (one workgroup per output)`,
    b.declare(node.type.dtype),
    `var<workgroup> partial: array<${t}, ${WORKGROUP}>;`,
    "",
    `@compute @workgroup_size(${WORKGROUP})`,
    "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {",
    "  let i = wid.x + wid.y * groups.x;",
    ...body,
    "}",
    "",
  ].join("\n");
  return { name, wgsl, bindings: [...b.ids, out], readOnly: b.ids.length, workgroups: groups };
}

/**
 * One thread per output element, looping over the reduced axes. The input may be a
 * fused expression (a reduction prologue): it is rendered inside the loop. Long
 * reductions over few outputs get a workgroup per output instead.
 */
export function reduceKernel(name: string, node: Node, input: Operand, lower: Lowering & { kind: "reduce" }, out: number): KernelSpec {
  const axes = node.attrs.axes as number[];
  const inShape = input.kind === "const" ? input.shape : input.view.shape;
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const outShape = node.type.shape;
  const reduced = axes.map((k) => inShape[k]);
  const R = numel(reduced);
  if (R >= PARALLEL_REDUCE && numel(outShape) * WORKGROUP <= 65535 * 65535) return parallelReduceKernel(name, node, input, lower, out, R);
  const b = new Bindings();
  const body = unflatten("i", outShape, "o");
  const top = new Renderer(b, body);
  // Start from the first element, not an identity: WGSL cannot spell -inf as a constant.
  if (R > 0) {
    const first = inShape.map((_, k) => (axes.includes(k) ? "0u" : `o${kept.indexOf(k)}`));
    body.push(`  var acc = ${top.value(input, first)};`);
  } else {
    body.push(`  var acc = ${lower.init(node.type.dtype)};`);
  }
  body.push(`  for (var r = 1u; r < ${u(R)}; r++) {`);
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  const idx = inShape.map((_, k) => (axes.includes(k) ? `q${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  const inner = top.child(body, "    ");
  const x = inner.value(input, idx);
  body.push(`    acc = ${lower.combine("acc", x)};`);
  body.push("  }");
  body.push(`  out[i] = ${store("acc", node.type.dtype)};`);
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(outShape)), body);
}

/**
 * Batched matmul, register-blocked: each thread computes a TM×TN block of the output,
 * so every loaded element of A is used TN times and every element of B TM times.
 * Operands are read through their views (a transposed operand costs no copy); edge
 * blocks clamp their loads and guard their stores, so any M, N, K works.
 * (DEVICE-NOTES: on lavapipe, register blocking from global memory beats shared-memory tiles.)
 */
export interface Epilogue {
  /** the value stored for the output element at `idx`, given the accumulator's variable */
  render(r: Renderer, idx: readonly string[], acc: string): string;
  dtype: DType;
}

export function matmulKernel({ name, node, inputs: [a, bOp], out }: KernelArgs, epilogue?: Epilogue): KernelSpec {
  const shape = node.type.shape;
  const r = shape.length;
  const M = shape[r - 2];
  const N = shape[r - 1];
  const K = a.view.shape[r - 1];
  const TM = Math.min(4, M);
  const TN = Math.min(4, N);
  const MB = Math.ceil(M / TM);
  const NB = Math.ceil(N / TN);
  const batchShape = shape.slice(0, -2);
  const batches = numel(batchShape);
  const b = new Bindings();
  const A = b.bind(a.buffer, "f32");
  const B = b.bind(bOp.buffer, "f32");
  const body = [`  let nb = i % ${u(NB)};`, `  let mb = (i / ${u(NB)}) % ${u(MB)};`, `  let p = i / ${u(NB * MB)};`];
  body.push(...unflatten("p", batchShape, "o"));
  const batch = batchShape.map((_, k) => `o${k}`);
  body.push(`  let m0 = mb * ${u(TM)};`, `  let n0 = nb * ${u(TN)};`);
  const sAm = a.view.strides[r - 2];
  const sAk = a.view.strides[r - 1];
  const sBk = bOp.view.strides[r - 2];
  const sBn = bOp.view.strides[r - 1];
  body.push(`  let abase = ${offsetExpr(a.view, [...batch, "0u", "0u"])};`);
  body.push(`  let bbase = ${offsetExpr(bOp.view, [...batch, "0u", "0u"])};`);
  for (let x = 0; x < TM; x++) body.push(`  let ar${x} = abase + min(m0 + ${u(x)}, ${u(M - 1)}) * ${u(sAm)};`);
  for (let y = 0; y < TN; y++) body.push(`  let bc${y} = bbase + min(n0 + ${u(y)}, ${u(N - 1)}) * ${u(sBn)};`);
  for (let x = 0; x < TM; x++) for (let y = 0; y < TN; y++) body.push(`  var c${x}_${y} = 0.0;`);
  body.push(`  for (var k = 0u; k < ${u(K)}; k++) {`);
  body.push(`    let ka = k * ${u(sAk)};`, `    let kb = k * ${u(sBk)};`);
  for (let x = 0; x < TM; x++) body.push(`    let a${x} = ${A}[ar${x} + ka];`);
  for (let y = 0; y < TN; y++) body.push(`    let b${y} = ${B}[bc${y} + kb];`);
  for (let x = 0; x < TM; x++) for (let y = 0; y < TN; y++) body.push(`    c${x}_${y} = fma(a${x}, b${y}, c${x}_${y});`);
  body.push("  }");
  body.push(`  let obase = p * ${u(M * N)};`);
  const shared = epilogue ? new Renderer(b, body) : undefined;
  for (let x = 0; x < TM; x++) {
    for (let y = 0; y < TN; y++) {
      const guard = [M % TM ? `m0 + ${u(x)} < ${u(M)}` : "", N % TN ? `n0 + ${u(y)} < ${u(N)}` : ""].filter(Boolean);
      const at = `obase + (m0 + ${u(x)}) * ${u(N)} + n0 + ${u(y)}`;
      if (!epilogue || !shared) {
        const st = `out[${at}] = c${x}_${y};`;
        body.push(guard.length ? `  if (${guard.join(" && ")}) { ${st} }` : `  ${st}`);
        continue;
      }
      // The fused epilogue (bias, activation, residual…) per output element, inside the guard.
      const lines: string[] = [];
      const r = shared.child(lines, "    ");
      const v = epilogue.render(r, [...batch, `m0 + ${u(x)}`, `n0 + ${u(y)}`], `c${x}_${y}`);
      body.push(`  ${guard.length ? `if (${guard.join(" && ")})` : "if (true)"} {`, ...lines, `    out[${at}] = ${store(v, epilogue.dtype)};`, "  }");
    }
  }
  return kernel(name, b, epilogue?.dtype ?? "f32", out, Math.max(1, batches * MB * NB), body);
}
