// WGSL rendering of the three kernel shapes the unfused back end needs: elementwise
// (with inputs read through views and constants inlined), reduction, and matmul.
// Sizes are baked in as constants: shapes are static, and the driver folds them.
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import type { Node, Shape } from "../ir/graph.ts";
import { numel, stridesOf } from "../ir/graph.ts";
import type { View } from "../kernel/view.ts";
import type { ExprContext, Lowering } from "../ops/registry.ts";
import { wgslFloat } from "../ops/elementwise.ts";

export type Operand =
  | { kind: "buffer"; buffer: number; view: View; dtype: DType }
  | { kind: "const"; value: number; shape: Shape; dtype: DType };

export const WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Workgroup grid for `threads` invocations, split into 2-D past the per-dimension limit. */
export function grid(threads: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / WORKGROUP));
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

const storage = (d: DType) => (d === "f32" ? "f32" : d === "i32" ? "i32" : "u32");
const u = (n: number) => `${n}u`;

export function literal(value: number, dtype: DType): string {
  if (dtype === "f32") return wgslFloat(value);
  if (dtype === "i32") return value === -2147483648 ? "(-2147483647i - 1i)" : `${Math.trunc(value)}i`;
  return value ? "true" : "false";
}

/** A value loaded from storage, converted to its WGSL value type. */
function load(expr: string, dtype: DType): string {
  return dtype === "bool" ? `(${expr} != 0u)` : expr;
}
function store(expr: string, dtype: DType): string {
  return dtype === "bool" ? `select(0u, 1u, ${expr})` : expr;
}

/** `offset + Σ idx[k] * stride[k]` as WGSL, skipping zero strides. */
function offsetExpr(view: View, idx: readonly string[]): string {
  const terms = [view.offset ? u(view.offset) : ""];
  view.strides.forEach((s, k) => {
    if (s !== 0 && view.shape[k] !== 1) terms.push(s === 1 ? idx[k] : `${idx[k]} * ${u(s)}`);
  });
  const t = terms.filter(Boolean);
  return t.length ? t.join(" + ") : "0u";
}

/** Lines decomposing flat index `flat` into per-axis indices `${prefix}k`. */
function unflatten(flat: string, shape: Shape, prefix: string): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, k) => {
    const q = strides[k] === 1 ? flat : `${flat} / ${u(strides[k])}`;
    return `  let ${prefix}${k} = ${k === 0 ? q : `(${q}) % ${u(d)}`};`;
  });
}

class Bindings {
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

function kernel(name: string, b: Bindings, outType: DType, out: number, threads: number, body: string[]): KernelSpec {
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

export function elementwiseKernel(
  name: string,
  node: Node,
  inputs: readonly Operand[],
  expr: (args: readonly string[], ctx: ExprContext) => string,
  out: number,
): KernelSpec {
  const shape = node.type.shape;
  const n = Math.max(1, numel(shape));
  const b = new Bindings();
  const body = unflatten("i", shape, "o");
  const idx = shape.map((_, k) => `o${k}`);
  const args = inputs.map((op, k) => {
    // Constants become `let`s, not literals: a literal would make the expression a
    // WGSL const-expression, which fails to compile on overflow (exp(100.0)).
    const value = op.kind === "const" ? literal(op.value, op.dtype) : load(`${b.bind(op.buffer, op.dtype)}[${offsetExpr(op.view, idx)}]`, op.dtype);
    body.push(`  let a${k} = ${value};`);
    return `a${k}`;
  });
  const ctx: ExprContext = {
    attrs: node.attrs,
    inputs: inputs.map((o) => o.dtype),
    out: node.type.dtype,
    index: (axis) => idx[axis],
  };
  body.push(`  out[i] = ${store(expr(args, ctx), node.type.dtype)};`);
  return kernel(name, b, node.type.dtype, out, n, body);
}

export function reduceKernel(name: string, node: Node, input: Operand & { kind: "buffer" }, lower: Lowering & { kind: "reduce" }, out: number): KernelSpec {
  const axes = node.attrs.axes as number[];
  const inShape = input.view.shape;
  const kept = inShape.map((_, k) => k).filter((k) => !axes.includes(k));
  const outShape = node.type.shape;
  const reduced = axes.map((k) => inShape[k]);
  const R = numel(reduced);
  const b = new Bindings();
  const src = b.bind(input.buffer, input.dtype);
  const body = unflatten("i", outShape, "o");
  // Start from the first element, not an identity: WGSL cannot spell -inf as a constant.
  if (R > 0) {
    const first = inShape.map((_, k) => (axes.includes(k) ? "0u" : `o${kept.indexOf(k)}`));
    body.push(`  var acc = ${load(`${src}[${offsetExpr(input.view, first)}]`, input.dtype)};`);
  } else {
    body.push(`  var acc = ${lower.init(node.type.dtype)};`);
  }
  body.push(`  for (var r = 1u; r < ${u(R)}; r++) {`);
  body.push(...unflatten("r", reduced, "q").map((l) => `  ${l}`));
  const idx = inShape.map((_, k) => (axes.includes(k) ? `q${axes.indexOf(k)}` : `o${kept.indexOf(k)}`));
  body.push(`    let x = ${load(`${src}[${offsetExpr(input.view, idx)}]`, input.dtype)};`);
  body.push(`    acc = ${lower.combine("acc", "x")};`);
  body.push("  }");
  body.push(`  out[i] = ${store("acc", node.type.dtype)};`);
  return kernel(name, b, node.type.dtype, out, Math.max(1, numel(outShape)), body);
}

export function matmulKernel(name: string, node: Node, a: Operand & { kind: "buffer" }, bOp: Operand & { kind: "buffer" }, out: number): KernelSpec {
  const shape = node.type.shape;
  const r = shape.length;
  const K = a.view.shape[r - 1];
  const b = new Bindings();
  const A = b.bind(a.buffer, "f32");
  const B = b.bind(bOp.buffer, "f32");
  const body = unflatten("i", shape, "o");
  const batch = shape.slice(0, -2).map((_, k) => `o${k}`);
  const m = `o${r - 2}`;
  const n = `o${r - 1}`;
  body.push(`  let abase = ${offsetExpr(a.view, [...batch, m, "0u"])};`);
  body.push(`  let bbase = ${offsetExpr(bOp.view, [...batch, "0u", n])};`);
  body.push("  var acc = 0.0;");
  body.push(`  for (var k = 0u; k < ${u(K)}; k++) {`);
  body.push(`    acc = fma(${A}[abase + k * ${u(a.view.strides[r - 1])}], ${B}[bbase + k * ${u(bOp.view.strides[r - 2])}], acc);`);
  body.push("  }");
  body.push("  out[i] = acc;");
  return kernel(name, b, "f32", out, Math.max(1, numel(shape)), body);
}
