// Elementwise primitives: inputs of one shape (the builder broadcasts first), one
// WGSL expression per element, one float64 formula, one VJP each.
import type { DType } from "../../runtime/bundle.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, Graph, TensorType } from "../ir/graph.ts";
import { fmtType, sameShape } from "../ir/graph.ts";
import { add, cast, div, fill, mul, sub } from "./build.ts";
import { defineOp, OpTypeError, type ExprContext, type VjpArgs } from "./registry.ts";
import { batchElementwise } from "./batching.ts";

type Kind = "float" | "numeric" | "bool" | "any";

export const isFloat = (d: DType): boolean => d === "f32" || d === "f16";

function accepts(kind: Kind, d: DType): boolean {
  return kind === "any" || (kind === "float" ? isFloat(d) : kind === "numeric" ? d !== "bool" : d === "bool");
}

function sameShapeRule(name: string, kind: Kind, out?: DType) {
  return (inputs: readonly TensorType[]): TensorType => {
    const first = inputs[0];
    for (const t of inputs) {
      if (!sameShape(t.shape, first.shape)) throw new OpTypeError(`${name}: operands ${inputs.map(fmtType).join(", ")} differ in shape`);
      if (t.dtype !== first.dtype) throw new OpTypeError(`${name}: operands ${inputs.map(fmtType).join(", ")} differ in dtype`);
      if (!accepts(kind, t.dtype)) throw new OpTypeError(`${name} takes ${kind} operands, got ${fmtType(t)}`);
    }
    return { shape: first.shape, dtype: out ?? first.dtype };
  };
}

function mapRef(inputs: readonly RefTensor[], f: (...xs: number[]) => number): RefTensor {
  const out = refTensor(inputs[0].shape);
  const n = out.data.length;
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) args[k] = inputs[k].data[i];
    out.data[i] = f(...args);
  }
  return out;
}

/**
 * float literal in WGSL for a JS number (an abstract float: it takes the type of the f32
 * or f16 operands it meets). NaN and ±Inf have no literal, and WGSL rejects them in any
 * constant expression (`bitcast<f32>(0x7f800000u)` fails to compile), so they come from
 * bits through a function call, which is evaluated at run time (codegen/wgsl.ts adds it).
 */
export function wgslFloat(v: number): string {
  if (Number.isNaN(v)) return "weft_f32_bits(0x7fc00000u)";
  if (v === Infinity) return "weft_f32_bits(0x7f800000u)";
  if (v === -Infinity) return "weft_f32_bits(0xff800000u)";
  const s = Math.fround(v).toPrecision(9);
  return s.includes(".") || s.includes("e") ? s : `${s}.0`;
}

interface EwSpec {
  name: string;
  doc: string;
  kind: Kind;
  /** output dtype when it differs from the inputs' (comparisons give bool) */
  out?: DType;
  f: (...xs: number[]) => number;
  wgsl: (args: readonly string[], ctx: ExprContext) => string;
  vjp?: (a: VjpArgs, x: readonly number[]) => readonly (number | null)[];
  zeroGrad?: boolean;
  /** exact (or correctly rounded) on f16 in WGSL: rendered on the halves, not through f32 */
  native?: boolean;
}

function ew(spec: EwSpec, arity: number): void {
  defineOp({
    name: spec.name,
    arity,
    doc: spec.doc,
    infer: sameShapeRule(spec.name, spec.kind, spec.out),
    // i32 results truncate toward zero, as WGSL's integer division does
    evaluate: (inputs, _attrs, out) => (out.dtype === "i32" ? mapRef(inputs, (...xs) => Math.trunc(spec.f(...xs))) : mapRef(inputs, spec.f)),
    vjp: spec.vjp ? (a) => spec.vjp!(a, a.node.inputs) : spec.zeroGrad ? (a) => a.node.inputs.map(() => null) : undefined,
    zeroGrad: spec.zeroGrad,
    batch: batchElementwise,
    lower: { kind: "elementwise", expr: spec.wgsl, native: spec.native },
  });
}

const where0 = (g: Graph, cond: number, x: number) => g.add("where", [cond, x, fill(g, 0, x)]);
const gt0 = (g: Graph, x: number) => g.add("gt", [x, fill(g, 0, x)]);
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

// ---- unary
const unary: EwSpec[] = [
  { name: "neg", native: true, doc: "-x", kind: "numeric", f: (x) => -x, wgsl: ([x]) => `(-${x})`, vjp: ({ g, cot }) => [g.add("neg", [cot])] },
  { name: "exp", doc: "e^x", kind: "float", f: Math.exp, wgsl: ([x]) => `exp(${x})`, vjp: ({ g, cot, node }) => [mul(g, cot, node.id)] },
  { name: "log", doc: "natural logarithm", kind: "float", f: Math.log, wgsl: ([x]) => `log(${x})`, vjp: ({ g, cot }, [x]) => [div(g, cot, x)] },
  {
    name: "sqrt", doc: "square root", kind: "float", f: Math.sqrt, wgsl: ([x]) => `sqrt(${x})`,
    vjp: ({ g, cot, node }) => [div(g, cot, mul(g, fill(g, 2, cot), node.id))],
  },
  {
    name: "rsqrt", doc: "1 / sqrt(x)", kind: "float", f: (x) => 1 / Math.sqrt(x), wgsl: ([x]) => `inverseSqrt(${x})`,
    // d/dx x^(-1/2) = -1/2 · y / x
    vjp: ({ g, cot, node }, [x]) => [mul(g, cot, mul(g, fill(g, -0.5, x), div(g, node.id, x)))],
  },
  { name: "abs", native: true, doc: "|x|", kind: "numeric", f: Math.abs, wgsl: ([x]) => `abs(${x})`, vjp: ({ g, cot }, [x]) => [mul(g, cot, g.add("sign", [x]))] },
  { name: "sign", native: true, doc: "-1, 0 or 1", kind: "numeric", f: Math.sign, wgsl: ([x]) => `sign(${x})`, zeroGrad: true },
  { name: "floor", native: true, doc: "largest integer ≤ x", kind: "float", f: Math.floor, wgsl: ([x]) => `floor(${x})`, zeroGrad: true },
  {
    // from the exponent bits: WGSL lets a compiler assume floats are finite, so x == x and
    // x - x == 0 may fold to true; an integer test of the bits cannot (an f16 widens exactly)
    name: "is_finite", doc: "x is neither ±Inf nor NaN", kind: "float", out: "bool", f: (x) => +Number.isFinite(x),
    wgsl: ([x]) => `((bitcast<u32>(f32(${x})) & 0x7f800000u) != 0x7f800000u)`, zeroGrad: true,
  },
  {
    name: "tanh", doc: "hyperbolic tangent", kind: "float", f: Math.tanh,
    // clamped: some drivers compute tanh through exp and return NaN for large |x|
    wgsl: ([x]) => `tanh(clamp(${x}, -20.0, 20.0))`,
    vjp: ({ g, cot, node }) => [mul(g, cot, sub(g, fill(g, 1, cot), mul(g, node.id, node.id)))],
  },
  {
    name: "sigmoid", doc: "1 / (1 + e^-x)", kind: "float", f: sigmoid,
    wgsl: ([x]) => `select(exp(${x}) / (1.0 + exp(${x})), 1.0 / (1.0 + exp(-${x})), ${x} >= 0.0)`,
    vjp: ({ g, cot, node }) => [mul(g, cot, mul(g, node.id, sub(g, fill(g, 1, cot), node.id)))],
  },
  {
    name: "relu", native: true, doc: "max(x, 0)", kind: "float", f: (x) => Math.max(x, 0), wgsl: ([x]) => `max(${x}, 0.0)`,
    vjp: ({ g, cot }, [x]) => [where0(g, gt0(g, x), cot)],
  },
  {
    name: "softplus", doc: "log(1 + e^x), computed stably", kind: "float", f: softplus,
    wgsl: ([x]) => `(max(${x}, 0.0) + log(1.0 + exp(-abs(${x}))))`,
    vjp: ({ g, cot }, [x]) => [mul(g, cot, g.add("sigmoid", [x]))],
  },
  { name: "sin", doc: "sine", kind: "float", f: Math.sin, wgsl: ([x]) => `sin(${x})`, vjp: ({ g, cot }, [x]) => [mul(g, cot, g.add("cos", [x]))] },
  {
    name: "cos", doc: "cosine", kind: "float", f: Math.cos, wgsl: ([x]) => `cos(${x})`,
    vjp: ({ g, cot }, [x]) => [g.add("neg", [mul(g, cot, g.add("sin", [x]))])],
  },
  { name: "not", native: true, doc: "logical not", kind: "bool", f: (x) => (x ? 0 : 1), wgsl: ([x]) => `(!${x})`, zeroGrad: true },
];
for (const s of unary) ew(s, 1);

// ---- binary
const binary: EwSpec[] = [
  { name: "add", native: true, doc: "a + b", kind: "numeric", f: (a, b) => a + b, wgsl: ([a, b]) => `(${a} + ${b})`, vjp: ({ cot }) => [cot, cot] },
  { name: "sub", native: true, doc: "a - b", kind: "numeric", f: (a, b) => a - b, wgsl: ([a, b]) => `(${a} - ${b})`, vjp: ({ g, cot }) => [cot, g.add("neg", [cot])] },
  { name: "mul", native: true, doc: "a * b", kind: "numeric", f: (a, b) => a * b, wgsl: ([a, b]) => `(${a} * ${b})`, vjp: ({ g, cot }, [a, b]) => [mul(g, cot, b), mul(g, cot, a)] },
  {
    name: "div", doc: "a / b", kind: "numeric", f: (a, b) => a / b,
    wgsl: ([a, b]) => `(${a} / ${b})`,
    vjp: ({ g, cot, node }, [, b]) => [div(g, cot, b), g.add("neg", [div(g, mul(g, cot, node.id), b)])],
  },
  {
    name: "max", native: true, doc: "elementwise maximum (ties send the gradient to a)", kind: "numeric", f: Math.max, wgsl: ([a, b]) => `max(${a}, ${b})`,
    vjp: ({ g, cot }, [a, b]) => {
      const pick = g.add("ge", [a, b]);
      return [where0(g, pick, cot), where0(g, g.add("not", [pick]), cot)];
    },
  },
  {
    name: "min", native: true, doc: "elementwise minimum (ties send the gradient to a)", kind: "numeric", f: Math.min, wgsl: ([a, b]) => `min(${a}, ${b})`,
    vjp: ({ g, cot }, [a, b]) => {
      const pick = g.add("le", [a, b]);
      return [where0(g, pick, cot), where0(g, g.add("not", [pick]), cot)];
    },
  },
  {
    name: "pow", doc: "a^b for a > 0 (integer powers are expanded to products by the lowering)", kind: "float", f: Math.pow,
    wgsl: ([a, b]) => `pow(${a}, ${b})`,
    vjp: ({ g, cot, node }, [a, b]) => [
      mul(g, cot, mul(g, b, g.add("pow", [a, sub(g, b, fill(g, 1, b))]))),
      mul(g, cot, mul(g, node.id, g.add("log", [a]))),
    ],
  },
  { name: "lt", native: true, doc: "a < b", kind: "numeric", out: "bool", f: (a, b) => +(a < b), wgsl: ([a, b]) => `(${a} < ${b})`, zeroGrad: true },
  { name: "le", native: true, doc: "a <= b", kind: "numeric", out: "bool", f: (a, b) => +(a <= b), wgsl: ([a, b]) => `(${a} <= ${b})`, zeroGrad: true },
  { name: "gt", native: true, doc: "a > b", kind: "numeric", out: "bool", f: (a, b) => +(a > b), wgsl: ([a, b]) => `(${a} > ${b})`, zeroGrad: true },
  { name: "ge", native: true, doc: "a >= b", kind: "numeric", out: "bool", f: (a, b) => +(a >= b), wgsl: ([a, b]) => `(${a} >= ${b})`, zeroGrad: true },
  { name: "eq", native: true, doc: "a == b", kind: "any", out: "bool", f: (a, b) => +(a === b), wgsl: ([a, b]) => `(${a} == ${b})`, zeroGrad: true },
  { name: "ne", native: true, doc: "a != b", kind: "any", out: "bool", f: (a, b) => +(a !== b), wgsl: ([a, b]) => `(${a} != ${b})`, zeroGrad: true },
  { name: "and", native: true, doc: "logical and", kind: "bool", f: (a, b) => +(a !== 0 && b !== 0), wgsl: ([a, b]) => `(${a} && ${b})`, zeroGrad: true },
  { name: "or", native: true, doc: "logical or", kind: "bool", f: (a, b) => +(a !== 0 || b !== 0), wgsl: ([a, b]) => `(${a} || ${b})`, zeroGrad: true },
];
for (const s of binary) ew(s, 2);

// ---- where(cond, a, b)
defineOp({
  name: "where",
  arity: 3,
  doc: "where(cond, a, b): a where cond is true, else b",
  infer: ([c, a, b]) => {
    if (c.dtype !== "bool") throw new OpTypeError(`where: condition must be bool, got ${fmtType(c)}`);
    if (!sameShape(c.shape, a.shape) || !sameShape(a.shape, b.shape) || a.dtype !== b.dtype) {
      throw new OpTypeError(`where: operands ${fmtType(c)}, ${fmtType(a)}, ${fmtType(b)} differ`);
    }
    return a;
  },
  evaluate: (inputs) => mapRef(inputs, (c, a, b) => (c ? a : b)),
  vjp: ({ g, cot, node }) => {
    const c = node.inputs[0];
    return [null, where0(g, c, cot), where0(g, g.add("not", [c]), cot)];
  },
  batch: batchElementwise,
  lower: { kind: "elementwise", native: true, expr: ([c, a, b]) => `select(${b}, ${a}, ${c})` },
});

// ---- cast
function castValue(v: number, to: DType): number {
  // (an f16 result is rounded by the interpreter, as every f16 node is)
  return isFloat(to) ? v : to === "i32" ? Math.trunc(v) : +(v !== 0);
}
/** A WGSL zero / one of a value type. */
const zeroOf = (d: DType) => (d === "f32" ? "0.0" : d === "f16" ? "0.0h" : "0i");
const oneOf = (d: DType) => (d === "f32" ? "1.0" : d === "f16" ? "1.0h" : "1i");
defineOp({
  name: "cast",
  arity: 1,
  doc: "convert to another dtype (float → i32 truncates toward zero; f32 ↔ f16 rounds to the nearest; bool ↔ 0/1)",
  infer: ([x], attrs) => ({ shape: x.shape, dtype: attrs.dtype as DType }),
  evaluate: ([x], attrs) => mapRef([x], (v) => castValue(v, attrs.dtype as DType)),
  // Between float types the gradient is cast back (an f16 value's gradient is f16, an
  // f32 master's f32); rounding to integers or bools is flat almost everywhere.
  vjp: ({ g, cot, node }) => {
    const from = g.type(node.inputs[0]).dtype;
    return [isFloat(from) && isFloat(node.type.dtype) ? cast(g, cot, from) : null];
  },
  batch: batchElementwise,
  lower: {
    kind: "elementwise",
    native: true,
    expr: ([x], ctx) => {
      const from = ctx.inputs[0];
      const to = ctx.out;
      if (from === to) return x;
      if (from === "bool") return `select(${zeroOf(to)}, ${oneOf(to)}, ${x})`;
      if (to === "bool") return `(${x} != ${zeroOf(from)})`;
      return `${to}(${x})`;
    },
  },
});

// ---- iota: the index along one axis
defineOp({
  name: "iota",
  arity: 0,
  doc: "iota(shape, axis): the 0-based index along `axis`",
  infer: (_inputs, attrs: Attrs) => ({ shape: attrs.shape as number[], dtype: attrs.dtype as DType }),
  evaluate: (_inputs, attrs, out) => {
    const shape = out.shape;
    const axis = attrs.axis as number;
    const t = refTensor(shape);
    let inner = 1;
    for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
    for (let i = 0; i < t.data.length; i++) t.data[i] = Math.floor(i / inner) % shape[axis];
    return t;
  },
  vjp: () => [],
  // (an f16 index is exact up to 2048; past it, the conversion rounds as the reference does)
  lower: { kind: "elementwise", native: true, expr: (_args, ctx) => `${ctx.out}(${ctx.index(ctx.attrs.axis as number)})` },
});

export { add, sub, mul, div };
