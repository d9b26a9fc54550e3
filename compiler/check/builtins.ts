// The built-in functions as the checker sees them: one row per name, with the parameter
// names that calls bind to (positional or `name=value`), the signature and doc line the
// language server shows, and the rule that computes the result type. Shape logic shared with
// the operators (broadcasting, axes) is in the RuleCx the checker passes in.
import type { CallExpr, Expr, Span } from "../../grammar/ast.ts";
import type { Diagnostic, Related } from "../diagnostics.ts";
import { Code } from "./codes.ts";
import { type Dim, addDim, constDim, dimEquals, divDim, isConst, printDim, productDims } from "./dims.ts";
import { type DType, type TensorType, type Type, ERROR, describe, printType, tensor } from "./types.ts";
import type { Unifier } from "./unify.ts";

export interface BoundArg {
  type: Type;
  expr: Expr;
  span: Span;
}

export interface BuiltinArgs {
  call: CallExpr;
  /** the argument bound to a parameter, by name */
  get(name: string): BoundArg | undefined;
  /** the arguments collected by a variadic parameter */
  rest: BoundArg[];
}

/** What a rule may ask of the checker. */
export interface RuleCx {
  u: Unifier;
  report(d: Diagnostic): void;
  error(code: string, span: Span, message: string, extra?: { hint?: string; related?: Related[] }): void;
  /** a tensor operand; a compile-time number becomes a scalar of `dtypes[0]`; reports and returns undefined otherwise */
  operand(a: BoundArg, fn: string, dtypes: readonly DType[]): TensorType | undefined;
  /** elementwise join of several operands: broadcasting plus the dtype rule */
  elementwise(args: BoundArg[], span: Span, what: string, dtypes: readonly DType[]): TensorType | undefined;
  /** the position in `x.dims` that `axis` names (a dim such as `T`, or an integer such as `-1`) */
  axis(x: TensorType, axis: BoundArg, xArg: BoundArg): number | undefined;
  /** the dim an argument stands for (`T`, `2*D`, `16`) */
  dim(a: BoundArg, what: string): Dim | undefined;
  /** call a fn value with argument types (for `map`) */
  callValue(f: BoundArg, args: Type[], span: Span): Type;
  /** the number of parameters of an instance (`sizeof`) */
  sizeOf(t: Type, span: Span): Dim | undefined;
  /** the type of the gradient with respect to `wrt`, which must be a differentiable path */
  gradTarget(wrt: BoundArg): Type | undefined;
}

export interface BuiltinParam {
  name: string;
  optional?: boolean;
  /** collects every further positional argument */
  variadic?: boolean;
}

export interface Builtin {
  name: string;
  /** shown on hover: `sum(x, axis?) -> reduced` */
  signature: string;
  doc: string;
  params: BuiltinParam[];
  /** gets `data` arguments itself (otherwise any `data` argument makes the result `data`) */
  seesData?: boolean;
  rule(a: BuiltinArgs, cx: RuleCx): Type;
}

const FLOAT: readonly DType[] = ["f32", "f16"];
const NUMERIC: readonly DType[] = ["f32", "f16", "i32"];
const ANY: readonly DType[] = ["f32", "f16", "i32", "bool"];

const p = (name: string, optional = false): BuiltinParam => ({ name, optional });

function arg(a: BuiltinArgs, name: string): BoundArg {
  const v = a.get(name);
  if (!v) throw new Error(`builtin argument ${name} was not bound`);
  return v;
}

/** `x` with the dim at `i` removed. */
function without(x: TensorType, i: number): TensorType {
  return tensor(x.dtype, [...x.dims.slice(0, i), ...x.dims.slice(i + 1)], x.rest);
}

function unary(name: string, dtypes: readonly DType[], doc: string): Builtin {
  return {
    name,
    signature: `${name}(x) -> same type`,
    doc,
    params: [p("x")],
    rule: (a, cx) => cx.operand(arg(a, "x"), name, dtypes) ?? ERROR,
  };
}

function reduction(name: string, doc: string, opts: { dtypes: readonly DType[]; out?: DType; unbiased?: boolean }): Builtin {
  const params = [p("x"), p("axis", true)];
  if (opts.unbiased) params.push(p("unbiased", true));
  return {
    name,
    signature: `${name}(x, axis?${opts.unbiased ? ", unbiased=false" : ""}) -> x without axis`,
    doc,
    params,
    rule: (a, cx) => reduce(name, a, cx, opts),
  };
}

function reduce(name: string, a: BuiltinArgs, cx: RuleCx, opts: { dtypes: readonly DType[]; out?: DType; unbiased?: boolean }): Type {
  const xa = arg(a, "x");
  const x = cx.operand(xa, name, opts.dtypes);
  const ub = a.get("unbiased");
  if (ub && ub.type.kind !== "bool") cx.error(Code.TypeMismatch, ub.span, `unbiased= expects true or false, found ${describe(ub.type)}`);
  if (!x) return ERROR;
  const out = opts.out ?? x.dtype;
  const ax = a.get("axis");
  if (!ax) return tensor(out, []);
  const i = cx.axis(x, ax, xa);
  if (i === undefined) return ERROR;
  return { ...without(x, i), dtype: out };
}

/** `max(x, T)` / `max(x)` reduce; `max(a, b)` with a second value is elementwise. */
function minMax(name: "max" | "min"): Builtin {
  const reduction_ = name === "max" ? "largest" : "smallest";
  return {
    name,
    signature: `${name}(x, axis) -> x without axis  |  ${name}(a, b) -> broadcast(a, b)`,
    doc: `With a dim (\`${name}(x, T)\`), a negative integer (\`${name}(x, -1)\`), \`axis=\`, or one argument: the ${reduction_} element along that axis (or of all). With two values (\`${name}(a, 0.0)\`): elementwise, broadcasting; a non-negative integer second argument is a value.`,
    params: [p("x"), p("y", true), p("axis", true)],
    rule: (a, cx) => {
      const y = a.get("y");
      // a dim (T) or a negative integer (-1) is an axis; any other number is a value
      const k = y && y.type.kind === "int" && y.type.value !== undefined ? isConst(y.type.value) : undefined;
      const isDim = y && y.type.kind === "int" && y.type.value !== undefined && (k === undefined || k < 0);
      if (!y || isDim || a.get("axis")) {
        if (y && a.get("axis")) cx.error(Code.Arity, y.span, `${name} with axis= takes one tensor`);
        const bound: BuiltinArgs = { call: a.call, rest: [], get: (n) => (n === "axis" ? a.get("axis") ?? (isDim ? y : undefined) : a.get(n)) };
        return reduce(name, bound, cx, { dtypes: NUMERIC });
      }
      return cx.elementwise([arg(a, "x"), y], a.call.span, name, NUMERIC) ?? ERROR;
    },
  };
}

function sameShape(name: string, doc: string, extra: BuiltinParam[], dtypes: readonly DType[], check?: (a: BuiltinArgs, cx: RuleCx, x: TensorType) => boolean): Builtin {
  return {
    name,
    signature: `${name}(${["x", ...extra.map((e) => (e.optional ? `${e.name}?` : e.name))].join(", ")}) -> same type`,
    doc,
    params: [p("x"), ...extra],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, name, dtypes);
      if (!x) return ERROR;
      const ax = a.get("axis");
      if (ax && cx.axis(x, ax, xa) === undefined) return ERROR;
      if (check && !check(a, cx, x)) return ERROR;
      return x;
    },
  };
}

function compileTimeNumber(cx: RuleCx, b: BoundArg | undefined, what: string, range?: [number, number]): boolean {
  if (!b) return true;
  if (b.type.kind !== "int" && b.type.kind !== "float") {
    cx.error(Code.NotCompileTime, b.span, `${what} must be a compile-time number, found ${describe(b.type)}`);
    return false;
  }
  const v = b.type.kind === "float" ? b.type.value : b.type.value ? isConst(b.type.value) : undefined;
  if (range && v !== undefined && !(v >= range[0] && v < range[1])) {
    cx.error(Code.TypeMismatch, b.span, `${what} must be in [${range[0]}, ${range[1]}), found ${v}`);
    return false;
  }
  return true;
}

function dimList(cx: RuleCx, b: BoundArg, what: string): Dim[] | undefined {
  if (b.type.kind !== "list") {
    cx.error(Code.TypeMismatch, b.span, `${what} must be a list of dims like [B, T, D], found ${describe(b.type)}`);
    return undefined;
  }
  const items = b.expr.kind === "list" ? b.expr.items : [];
  const out: Dim[] = [];
  for (let i = 0; i < b.type.items.length; i++) {
    const d = cx.dim({ type: b.type.items[i], expr: items[i] ?? b.expr, span: items[i]?.span ?? b.span }, what);
    if (!d) return undefined;
    out.push(d);
  }
  return out;
}

function dtypeArg(cx: RuleCx, b: BoundArg | undefined, dflt: DType): DType | undefined {
  if (!b) return dflt;
  if (b.type.kind === "dtype") return b.type.dtype;
  cx.error(Code.TypeMismatch, b.span, `expected a dtype (f32, f16, i32, bool), found ${describe(b.type)}`);
  return undefined;
}

function tensorList(cx: RuleCx, b: BoundArg, fn: string): TensorType[] | undefined {
  if (b.type.kind !== "list" || b.type.items.length === 0) {
    cx.error(Code.TypeMismatch, b.span, `${fn} expects a non-empty list of tensors [a, b, ...], found ${describe(b.type)}`);
    return undefined;
  }
  const items = b.expr.kind === "list" ? b.expr.items : [];
  const out: TensorType[] = [];
  for (let i = 0; i < b.type.items.length; i++) {
    const t = cx.operand({ type: b.type.items[i], expr: items[i] ?? b.expr, span: items[i]?.span ?? b.span }, fn, ANY);
    if (!t) return undefined;
    out.push(t);
  }
  return out;
}

/** Params of an instance as a record (what `grad(loss, m.head)` returns), and their count. */
export function flattenSize(t: Type): Dim | undefined {
  switch (t.kind) {
    case "tensor":
      return t.rest ? undefined : productDims(t.dims);
    case "record": {
      let n: Dim = constDim(0);
      for (const f of t.fields) {
        const k = flattenSize(f.type);
        if (!k) return undefined;
        n = addDim(n, k);
      }
      return n;
    }
    default:
      return undefined;
  }
}

const table: Builtin[] = [
  // ---------------------------------------------------------------- elementwise
  unary("exp", FLOAT, "e^x, elementwise."),
  unary("log", FLOAT, "Natural logarithm, elementwise."),
  unary("sqrt", FLOAT, "Square root, elementwise."),
  unary("rsqrt", FLOAT, "1 / sqrt(x), elementwise."),
  unary("abs", NUMERIC, "|x|, elementwise."),
  unary("sign", NUMERIC, "-1, 0 or 1, elementwise (no gradient)."),
  unary("tanh", FLOAT, "Hyperbolic tangent, elementwise."),
  unary("sigmoid", FLOAT, "1 / (1 + e^-x), elementwise."),
  unary("relu", FLOAT, "max(x, 0), elementwise."),
  {
    name: "gelu",
    signature: 'gelu(x, approximate="none") -> same type',
    doc: 'Gaussian error linear unit x·Φ(x), elementwise, as torch.nn.functional.gelu: exact through erf by default; `approximate="tanh"` gives 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).',
    params: [p("x"), p("approximate", true)],
    rule: (a, cx) => {
      const ap = a.get("approximate");
      if (ap && !(ap.type.kind === "string" && (ap.type.value === undefined || ap.type.value === "none" || ap.type.value === "tanh"))) {
        cx.error(Code.TypeMismatch, ap.span, `gelu: approximate must be "none" or "tanh", found ${ap.type.kind === "string" ? JSON.stringify(ap.type.value) : describe(ap.type)}`);
      }
      return cx.operand(arg(a, "x"), "gelu", FLOAT) ?? ERROR;
    },
  },
  unary("silu", FLOAT, "x * sigmoid(x), elementwise."),
  unary("softplus", FLOAT, "log(1 + e^x), computed stably, elementwise."),
  unary("log_sigmoid", FLOAT, "log(sigmoid(x)), computed stably, elementwise."),
  unary("sin", FLOAT, "Sine, elementwise."),
  unary("cos", FLOAT, "Cosine, elementwise."),
  unary("floor", FLOAT, "Largest integer ≤ x, elementwise (no gradient)."),
  {
    name: "pow",
    signature: "pow(a, b) -> broadcast(a, b)",
    doc: "a^b elementwise with broadcasting; the same as `a ** b`.",
    params: [p("a"), p("b")],
    rule: (a, cx) => cx.elementwise([arg(a, "a"), arg(a, "b")], a.call.span, "pow", FLOAT) ?? ERROR,
  },
  minMax("max"),
  minMax("min"),
  {
    name: "clamp",
    signature: "clamp(x, lo, hi) -> broadcast(x, lo, hi)",
    doc: "min(max(x, lo), hi) elementwise; lo and hi broadcast against x.",
    params: [p("x"), p("lo"), p("hi")],
    rule: (a, cx) => cx.elementwise([arg(a, "x"), arg(a, "lo"), arg(a, "hi")], a.call.span, "clamp", NUMERIC) ?? ERROR,
  },
  {
    name: "where",
    signature: "where(c: bool[..], a, b) -> broadcast(c, a, b)",
    doc: "Elementwise select: a where c is true, else b. c is a bool tensor; a and b share a dtype.",
    params: [p("c"), p("a"), p("b")],
    rule: (a, cx) => {
      const c = cx.operand(arg(a, "c"), "where (condition)", ["bool"]);
      const v = cx.elementwise([arg(a, "a"), arg(a, "b")], a.call.span, "where", ANY);
      if (!c || !v) return ERROR;
      const r = cx.u.broadcast(c, v);
      if ("fail" in r) {
        cx.error(Code.DimMismatch, a.call.span, `where: cannot broadcast the condition ${printType(c)} with ${printType(v)}`);
        return ERROR;
      }
      return tensor(v.dtype, r.shape.dims, r.shape.rest);
    },
  },
  // ---------------------------------------------------------------- reductions
  reduction("sum", "Sum along an axis (a dim name such as T, or an integer such as -1); without an axis, of every element.", { dtypes: NUMERIC }),
  reduction("mean", "Mean along an axis; without an axis, of every element.", { dtypes: FLOAT }),
  reduction("logsumexp", "log(sum(exp(x))) along an axis, computed stably.", { dtypes: FLOAT }),
  reduction("var", "Variance along an axis; `unbiased=true` divides by N-1.", { dtypes: FLOAT, unbiased: true }),
  reduction("std", "Standard deviation along an axis; `unbiased=true` divides by N-1 (like torch.std).", { dtypes: FLOAT, unbiased: true }),
  {
    name: "quantile",
    signature: "quantile(x, q, axis?) -> x without axis",
    doc: "The q-quantile (0 ≤ q ≤ 1, a compile-time number) along an axis, or of every element without one, as torch.quantile: on the sorted values v_0 ≤ … ≤ v_{n-1}, p = q·(n-1) and the result is v_⌊p⌋ + (p-⌊p⌋)·(v_⌊p⌋+1 - v_⌊p⌋). The gradient goes to those two elements.",
    params: [p("x"), p("q"), p("axis", true)],
    rule: (a, cx) => {
      const qa = arg(a, "q");
      const ok = compileTimeNumber(cx, qa, "quantile q");
      const q = qa.type.kind === "float" ? qa.type.value : qa.type.kind === "int" && qa.type.value ? isConst(qa.type.value) : undefined;
      if (ok && q !== undefined && !(q >= 0 && q <= 1)) cx.error(Code.TypeMismatch, qa.span, `quantile q must be in [0, 1], found ${q}`);
      return reduce("quantile", a, cx, { dtypes: FLOAT });
    },
  },
  {
    name: "argmax",
    signature: "argmax(x, axis) -> i32, x without axis",
    doc: "Index (i32) of the largest element along an axis (the first on ties).",
    params: [p("x"), p("axis")],
    rule: (a, cx) => reduce("argmax", a, cx, { dtypes: NUMERIC, out: "i32" }),
  },
  sameShape("softmax", "Softmax along an axis (default: the last): exp(x) / sum(exp(x), axis).", [p("axis", true)], FLOAT),
  sameShape("log_softmax", "log(softmax(x, axis)) along an axis (default: the last), computed stably.", [p("axis", true)], FLOAT),
  sameShape("layer_norm", "(x - mean) / sqrt(var + eps) along an axis (default: the last; eps = 1e-5); no learned scale: the LayerNorm block adds it.", [p("axis", true), p("eps", true)], FLOAT, (a, cx) =>
    compileTimeNumber(cx, a.get("eps"), "eps"),
  ),
  sameShape("rms_norm", "x / sqrt(mean(x*x) + eps) along an axis (default: the last; eps = 1e-5).", [p("axis", true), p("eps", true)], FLOAT, (a, cx) =>
    compileTimeNumber(cx, a.get("eps"), "eps"),
  ),
  sameShape("cumsum", "Running sum along an axis; `reverse=true` sums from the end.", [p("axis"), p("reverse", true)], NUMERIC, (a, cx) => {
    const r = a.get("reverse");
    if (r && r.type.kind !== "bool") cx.error(Code.TypeMismatch, r.span, `reverse= expects true or false, found ${describe(r.type)}`);
    return !r || r.type.kind === "bool";
  }),
  sameShape("dropout", "Zero each element with probability p and scale the rest by 1/(1-p) when `training`; the identity otherwise.", [p("p")], FLOAT, (a, cx) =>
    compileTimeNumber(cx, a.get("p"), "dropout probability", [0, 1]),
  ),
  sameShape("keep_topk", "Keep the k largest elements along an axis and set the others to zero.", [p("k"), p("axis")], NUMERIC, (a, cx) => !!cx.dim(arg(a, "k"), "k")),
  {
    name: "topk",
    signature: "topk(x, k, axis) -> (values, i32 indices)",
    doc: "The k largest elements along an axis, largest first, and their i32 indices; the axis becomes k long. Ties go to the lower index first; NaN counts as the largest. The values carry gradients (back to where they were taken); the indices do not.",
    params: [p("x"), p("k"), p("axis")],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "topk", NUMERIC);
      const k = cx.dim(arg(a, "k"), "k");
      if (!x || !k) return ERROR;
      const i = cx.axis(x, arg(a, "axis"), xa);
      if (i === undefined) return ERROR;
      const dims = x.dims.map((d, j) => (j === i ? k : d));
      return { kind: "tuple", items: [tensor(x.dtype, dims, x.rest), tensor("i32", dims, x.rest)] };
    },
  },
  {
    name: "cross_entropy",
    signature: "cross_entropy(logits: f32[.., C], target: i32[..]) -> f32",
    doc: "Mean over every leading position of -log_softmax(logits)[target]; target holds class indices.",
    params: [p("logits"), p("target")],
    rule: (a, cx) => {
      const la = arg(a, "logits"), ta = arg(a, "target");
      const l = cx.operand(la, "cross_entropy (logits)", FLOAT);
      if (ta.type.kind === "data") return l ? tensor(l.dtype, []) : ERROR;
      const t = cx.operand(ta, "cross_entropy (target)", ["i32"]);
      if (!l || !t) return ERROR;
      if (l.dims.length === 0) {
        cx.error(Code.RankMismatch, la.span, `cross_entropy expects logits with a class axis, found ${printType(l)}`);
        return ERROR;
      }
      const lead = { rest: l.rest, dims: l.dims.slice(0, -1) };
      const m = cx.u.unifyShape(lead, t);
      if (m) {
        cx.error(Code.DimMismatch, ta.span, `cross_entropy: target ${printType(t)} must have the logits' leading dims ${printType(tensor("i32", lead.dims, lead.rest))} (logits ${printType(l)})`);
        return ERROR;
      }
      return tensor(l.dtype, []);
    },
  },
  // ---------------------------------------------------------------- structure
  {
    name: "concat",
    signature: "concat([a, b, ...], axis) -> joined along axis",
    doc: "Join tensors along an axis; the other dims must agree. concat([k1, k2], D) of two f32[B, T, D] is f32[B, T, 2*D].",
    params: [p("xs"), p("axis")],
    rule: (a, cx) => {
      const xsArg = arg(a, "xs");
      const xs = tensorList(cx, xsArg, "concat");
      if (!xs) return ERROR;
      const first: BoundArg = { type: xs[0], expr: xsArg.expr.kind === "list" ? xsArg.expr.items[0] : xsArg.expr, span: xsArg.span };
      const i = cx.axis(xs[0], arg(a, "axis"), first);
      if (i === undefined) return ERROR;
      let total: Dim = xs[0].dims[i];
      for (let k = 1; k < xs.length; k++) {
        const x = xs[k];
        const span = xsArg.expr.kind === "list" ? xsArg.expr.items[k].span : xsArg.span;
        if (x.dtype !== xs[0].dtype) {
          cx.error(Code.DtypeMismatch, span, `concat: all inputs need one dtype: ${printType(xs[0])} and ${printType(x)}`);
          return ERROR;
        }
        if (x.dims.length !== xs[0].dims.length || x.rest?.key !== xs[0].rest?.key) {
          cx.error(Code.RankMismatch, span, `concat: all inputs need the same rank: ${printType(xs[0])} and ${printType(x)}`);
          return ERROR;
        }
        for (let j = 0; j < x.dims.length; j++) {
          if (j === i) continue;
          if (!cx.u.unifyDim(xs[0].dims[j], x.dims[j])) {
            cx.error(Code.DimMismatch, span, `concat: ${printType(xs[0])} and ${printType(x)} differ at dim ${j + 1} (${printDim(xs[0].dims[j])} vs ${printDim(x.dims[j])}), which is not the concat axis`);
            return ERROR;
          }
        }
        total = addDim(total, x.dims[i]);
      }
      const dims = xs[0].dims.map((d, j) => cx.u.resolveDim(j === i ? total : d));
      return tensor(xs[0].dtype, dims, xs[0].rest);
    },
  },
  {
    name: "stack",
    signature: "stack([a, b, ...], axis = 0) -> new axis of length n",
    doc: "Stack same-shaped tensors along a new axis (an integer position) of length n.",
    params: [p("xs"), p("axis", true)],
    rule: (a, cx) => {
      const xs = tensorList(cx, arg(a, "xs"), "stack");
      if (!xs) return ERROR;
      for (const x of xs.slice(1))
        if (cx.u.unifyType(xs[0], x)) {
          cx.error(Code.DimMismatch, a.call.span, `stack: all inputs need one type: ${printType(xs[0])} and ${printType(x)}`);
          return ERROR;
        }
      const ax = a.get("axis");
      let pos = 0;
      if (ax) {
        const v = ax.type.kind === "int" && ax.type.value ? isConst(ax.type.value) : undefined;
        if (v === undefined || v > xs[0].dims.length || v < -xs[0].dims.length - 1) {
          cx.error(Code.Axis, ax.span, `stack: axis must be an integer position in -${xs[0].dims.length + 1}..${xs[0].dims.length}`);
          return ERROR;
        }
        pos = v < 0 ? xs[0].dims.length + 1 + v : v;
      }
      const dims = [...xs[0].dims];
      dims.splice(pos, 0, constDim(xs.length));
      return tensor(xs[0].dtype, dims, xs[0].rest);
    },
  },
  {
    name: "reshape",
    signature: "reshape(x, [dims]) -> x with those dims",
    doc: "The same elements with new dims; the element counts must be equal symbolically (B*T*D = B*T*H*(D/H)). One dim may be -1 (inferred).",
    params: [p("x"), p("shape")],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "reshape", ANY);
      const sa = arg(a, "shape");
      const dims = dimList(cx, sa, "reshape dims");
      if (!x || !dims) return ERROR;
      if (x.rest) {
        cx.error(Code.Reshape, xa.span, `reshape needs all dims of its input known, found ${printType(x)}`);
        return ERROR;
      }
      const n = productDims(x.dims);
      const hole = dims.findIndex((d) => isConst(d) === -1);
      if (hole >= 0) {
        const known = productDims(dims.filter((_, i) => i !== hole));
        dims[hole] = divDim(n, known);
      }
      const m = productDims(dims);
      if (!cx.u.unifyDim(n, m)) {
        cx.error(Code.Reshape, sa.span, `reshape changes the number of elements: ${printType(x)} has ${printDim(n)}, [${dims.map(printDim).join(", ")}] has ${printDim(m)}`);
        return ERROR;
      }
      return tensor(x.dtype, dims.map((d) => cx.u.resolveDim(d)));
    },
  },
  {
    name: "transpose",
    signature: "transpose(x, [dims by name]) -> x with its axes in that order",
    doc: "Permute axes: transpose(x, [T, B, D]) of f32[B, T, D] is f32[T, B, D]. Each axis of x is named exactly once (names or integer positions).",
    params: [p("x"), p("axes")],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "transpose", ANY);
      const aa = arg(a, "axes");
      if (!x) return ERROR;
      if (aa.type.kind !== "list") {
        cx.error(Code.TypeMismatch, aa.span, `transpose expects a list of axes like [T, B, D], found ${describe(aa.type)}`);
        return ERROR;
      }
      const items = aa.expr.kind === "list" ? aa.expr.items : [];
      if (x.rest || aa.type.items.length !== x.dims.length) {
        cx.error(Code.Axis, aa.span, `transpose must name every axis of ${printType(x)} once; found ${aa.type.items.length} axes`);
        return ERROR;
      }
      const order: number[] = [];
      for (let k = 0; k < aa.type.items.length; k++) {
        const i = cx.axis(x, { type: aa.type.items[k], expr: items[k] ?? aa.expr, span: items[k]?.span ?? aa.span }, xa);
        if (i === undefined) return ERROR;
        if (order.includes(i)) {
          cx.error(Code.Axis, items[k]?.span ?? aa.span, `transpose names axis ${i + 1} of ${printType(x)} twice`);
          return ERROR;
        }
        order.push(i);
      }
      return tensor(x.dtype, order.map((i) => x.dims[i]));
    },
  },
  {
    name: "flatten",
    signature: "flatten(x) -> f32[n]",
    doc: "All elements in one axis; n is the product of x's dims. Also flattens the record that grad(loss, instance) returns (n = number of parameters).",
    params: [p("x")],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      if (xa.type.kind === "record") {
        const n = flattenSize(xa.type);
        if (n) return tensor("f32", [n]);
      }
      const x = cx.operand(xa, "flatten", ANY);
      if (!x) return ERROR;
      if (x.rest) {
        cx.error(Code.Reshape, xa.span, `flatten needs all dims of its input known, found ${printType(x)}`);
        return ERROR;
      }
      return tensor(x.dtype, [productDims(x.dims)]);
    },
  },
  {
    name: "gather",
    signature: "gather(x, idx: i32[..], axis = 0) -> x with the axis replaced by idx's dims",
    doc: "Index one axis with an i32 tensor (NumPy take): gather(table: f32[V, D], ids: i32[B, T]) is f32[B, T, D], an embedding lookup.",
    params: [p("x"), p("idx"), p("axis", true)],
    seesData: true,
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "gather", ANY);
      const ia = arg(a, "idx");
      if (!x) return ERROR;
      const ax = a.get("axis");
      const i = ax ? cx.axis(x, ax, xa) : x.rest ? undefined : 0;
      if (i === undefined) {
        if (!ax) cx.error(Code.Axis, xa.span, `gather: axis 0 of ${printType(x)} is inside the unknown leading dims \`..\``);
        return ERROR;
      }
      if (ia.type.kind === "data") return { kind: "data" };
      const idx = cx.operand(ia, "gather (indices)", ["i32"]);
      if (!idx) return ERROR;
      if (idx.rest && (i > 0 || x.rest)) {
        cx.error(Code.Axis, ia.span, `gather: indices ${printType(idx)} with unknown leading dims can only index axis 0 of a tensor with known dims`);
        return ERROR;
      }
      return tensor(x.dtype, [...x.dims.slice(0, i), ...idx.dims, ...x.dims.slice(i + 1)], x.rest ?? idx.rest);
    },
  },
  {
    name: "take_along",
    signature: "take_along(x, idx: i32[..], axis) -> x's dtype, idx's dims",
    doc: "NumPy take_along_axis: idx has x's rank and x's dims off the axis; take_along(log_softmax(l, V), y[:, :, None], V)[:, :, 0] picks each target's log-probability.",
    params: [p("x"), p("idx"), p("axis")],
    seesData: true,
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "take_along", ANY);
      const ia = arg(a, "idx");
      if (!x) return ERROR;
      const i = cx.axis(x, arg(a, "axis"), xa);
      if (i === undefined) return ERROR;
      if (ia.type.kind === "data") return { kind: "data" };
      const idx = cx.operand(ia, "take_along (indices)", ["i32"]);
      if (!idx) return ERROR;
      const ok = idx.dims.length === x.dims.length && idx.rest?.key === x.rest?.key && idx.dims.every((d, j) => j === i || cx.u.unifyDim(d, x.dims[j]));
      if (!ok) {
        cx.error(Code.DimMismatch, ia.span, `take_along: indices ${printType(idx)} must have the dims of ${printType(x)} except along the axis (dim ${i + 1})`);
        return ERROR;
      }
      return tensor(x.dtype, idx.dims.map((d) => cx.u.resolveDim(d)), idx.rest);
    },
  },
  {
    name: "split",
    signature: "split(x, n, axis) -> (x, ..., x) with the axis n times shorter",
    doc: "n equal parts along an axis, as a tuple: let (q, k, v) = split(qkv, 3, D3).",
    params: [p("x"), p("n"), p("axis")],
    rule: (a, cx) => {
      const xa = arg(a, "x");
      const x = cx.operand(xa, "split", ANY);
      const na = arg(a, "n");
      const n = na.type.kind === "int" && na.type.value ? isConst(na.type.value) : undefined;
      if (!x) return ERROR;
      if (n === undefined || n < 1) {
        cx.error(Code.NotCompileTime, na.span, `split: the number of parts must be a positive integer constant, found ${describe(na.type)}`);
        return ERROR;
      }
      const i = cx.axis(x, arg(a, "axis"), xa);
      if (i === undefined) return ERROR;
      const part = tensor(x.dtype, x.dims.map((d, j) => (j === i ? divDim(d, constDim(n)) : d)), x.rest);
      return { kind: "tuple", items: Array.from({ length: n }, () => part) };
    },
  },
  {
    name: "one_hot",
    signature: "one_hot(idx: i32[..], n) -> f32[.., n]",
    doc: "1.0 at each index along a new last axis of length n, 0.0 elsewhere.",
    params: [p("idx"), p("n")],
    rule: (a, cx) => {
      const idx = cx.operand(arg(a, "idx"), "one_hot", ["i32"]);
      const n = cx.dim(arg(a, "n"), "one_hot length");
      if (!idx || !n) return ERROR;
      return tensor("f32", [...idx.dims, n], idx.rest);
    },
  },
  {
    name: "zeros_like",
    signature: "zeros_like(x) -> same type",
    doc: "A tensor of zeros with x's dtype and dims.",
    params: [p("x")],
    rule: (a, cx) => cx.operand(arg(a, "x"), "zeros_like", ANY) ?? ERROR,
  },
  {
    name: "ones_like",
    signature: "ones_like(x) -> same type",
    doc: "A tensor of ones with x's dtype and dims.",
    params: [p("x")],
    rule: (a, cx) => cx.operand(arg(a, "x"), "ones_like", ANY) ?? ERROR,
  },
  ...(["zeros", "ones"] as const).map(
    (name): Builtin => ({
      name,
      signature: `${name}([dims], dtype = f32) -> dtype[dims]`,
      doc: `A tensor of ${name}: ${name}([B, D]) is f32[B, D].`,
      params: [p("shape"), p("dtype", true)],
      rule: (a, cx) => {
        const dims = dimList(cx, arg(a, "shape"), `${name} dims`);
        const dt = dtypeArg(cx, a.get("dtype"), "f32");
        return dims && dt ? tensor(dt, dims) : ERROR;
      },
    }),
  ),
  {
    name: "full",
    signature: "full([dims], value, dtype = f32) -> dtype[dims]",
    doc: "A tensor filled with a compile-time number.",
    params: [p("shape"), p("value"), p("dtype", true)],
    rule: (a, cx) => {
      const dims = dimList(cx, arg(a, "shape"), "full dims");
      const ok = compileTimeNumber(cx, a.get("value"), "full value");
      const dt = dtypeArg(cx, a.get("dtype"), "f32");
      return dims && dt && ok ? tensor(dt, dims) : ERROR;
    },
  },
  {
    name: "cast",
    signature: "cast(x, dtype = f32) -> x's dims, dtype",
    doc: "Convert elements to another dtype: cast(a > 0) turns a bool mask into 0.0/1.0.",
    params: [p("x"), p("dtype", true)],
    rule: (a, cx) => {
      const x = cx.operand(arg(a, "x"), "cast", ANY);
      const dt = dtypeArg(cx, a.get("dtype"), "f32");
      return x && dt ? { ...x, dtype: dt } : ERROR;
    },
  },
  {
    name: "iota",
    signature: "iota(T) -> f32[T]",
    doc: "0, 1, ..., T-1 (0-based positions).",
    params: [p("n")],
    rule: (a, cx) => {
      const n = cx.dim(arg(a, "n"), "iota length");
      return n ? tensor("f32", [n]) : ERROR;
    },
  },
  {
    name: "positions",
    signature: "positions(T) -> f32[T]",
    doc: "1, 2, ..., T: 1-based positions (D2PO weights position t by gamma^t).",
    params: [p("n")],
    rule: (a, cx) => {
      const n = cx.dim(arg(a, "n"), "positions length");
      return n ? tensor("f32", [n]) : ERROR;
    },
  },
  {
    name: "len",
    signature: "len(x) -> int",
    doc: "The number of instances in a repeat (len(layers) = L), of items in a list, or the leading dim of a tensor; a compile-time int.",
    params: [p("x")],
    rule: (a, cx) => {
      const x = arg(a, "x");
      const t = x.type;
      if (t.kind === "repeat") return { kind: "int", value: t.count };
      if (t.kind === "list" || t.kind === "tuple") return { kind: "int", value: constDim(t.items.length) };
      if (t.kind === "tensor" && t.dims.length > 0 && !t.rest) return { kind: "int", value: t.dims[0] };
      cx.error(Code.TypeMismatch, x.span, `len expects a repeat instance, a list or a tensor with a leading dim, found ${describe(t)}`);
      return ERROR;
    },
  },
  {
    name: "sizeof",
    signature: "sizeof(instance) -> int",
    doc: "The number of parameters of an instance (a compile-time dim: sizeof(Linear(D, V)) = D*V+V).",
    params: [p("x")],
    rule: (a, cx) => {
      const n = cx.sizeOf(arg(a, "x").type, arg(a, "x").span);
      return n ? { kind: "int", value: n } : ERROR;
    },
  },
  // ---------------------------------------------------------------- autodiff
  {
    name: "stop",
    signature: "stop(x) -> same type",
    doc: "x, with no gradient flowing back through it.",
    params: [p("x")],
    rule: (a, cx) => cx.operand(arg(a, "x"), "stop", ANY) ?? ERROR,
  },
  {
    name: "grad",
    signature: "grad(expr: f32, wrt) -> type of wrt",
    doc: "The gradient of a scalar f32 with respect to an input binding, a param path (m.head.w) or an instance (m.head: a record of its params).",
    params: [p("expr"), p("wrt")],
    seesData: true,
    rule: (a, cx) => {
      const e = arg(a, "expr");
      const target = cx.gradTarget(arg(a, "wrt"));
      if (e.type.kind !== "data" && e.type.kind !== "error") {
        const ok = e.type.kind === "tensor" && e.type.dims.length === 0 && !e.type.rest && (e.type.dtype === "f32" || e.type.dtype === "f16");
        if (!ok) {
          cx.error(Code.Grad, e.span, `grad needs a scalar f32 to differentiate, found ${describe(e.type)}`, {
            hint: e.type.kind === "tensor" && e.type.dims.length > 0 ? "reduce it first, e.g. sum(...) or mean(...)" : undefined,
          });
          return ERROR;
        }
      }
      return target ?? ERROR;
    },
  },
  {
    name: "map",
    signature: "map(f, args.., over=N) -> f's result with a leading N",
    doc: "Apply f to each slice along dim N (vmap): arguments with dim N are sliced, others are passed whole; the result gets a leading N.",
    params: [p("f"), { name: "args", variadic: true }, p("over")],
    seesData: true,
    rule: (a, cx) => {
      const n = cx.dim(arg(a, "over"), "over");
      if (!n) return ERROR;
      let sliced = 0;
      const types = a.rest.map((b) => {
        const t = b.type;
        if (t.kind !== "tensor") return t;
        const i = t.dims.findIndex((d) => dimEquals(cx.u.resolveDim(d), n));
        if (i < 0) return t;
        sliced++;
        return without(t, i);
      });
      if (sliced === 0 && !a.rest.some((b) => b.type.kind === "data" || b.type.kind === "error")) {
        cx.error(Code.Axis, arg(a, "over").span, `map over ${printDim(n)}: no argument has dim ${printDim(n)}`);
        return ERROR;
      }
      const r = cx.callValue(arg(a, "f"), types, a.call.span);
      const lift = (t: Type): Type =>
        t.kind === "tensor" ? tensor(t.dtype, [n, ...t.dims], t.rest) : t.kind === "tuple" ? { kind: "tuple", items: t.items.map(lift) } : t;
      return lift(r);
    },
  },
];

export const BUILTINS: ReadonlyMap<string, Builtin> = new Map(table.map((b) => [b.name, b]));

/** Optimizers in a train job: `optimizer = adamw(lr = 3e-4, weight_decay = 0.01)`. */
export const OPTIMIZERS: ReadonlyMap<string, { args: string[]; doc: string }> = new Map([
  ["sgd", { args: ["lr", "momentum", "weight_decay", "nesterov"], doc: "Stochastic gradient descent, optional momentum." }],
  ["adam", { args: ["lr", "b1", "b2", "eps", "weight_decay"], doc: "Adam (defaults b1 = 0.9, b2 = 0.999, eps = 1e-8); weight_decay is L2 on the gradient, as in torch.optim.Adam." }],
  ["adamw", { args: ["lr", "b1", "b2", "eps", "weight_decay"], doc: "Adam with decoupled weight decay (default weight_decay = 0.01)." }],
  ["lion", { args: ["lr", "b1", "b2", "weight_decay"], doc: "Lion (Chen et al. 2023): the sign of an interpolated momentum, decoupled weight decay (defaults b1 = 0.9, b2 = 0.99)." }],
]);

/** Learning-rate schedules: `schedule = cosine(warmup = 50)`. */
export const SCHEDULES: ReadonlyMap<string, { args: string[]; doc: string }> = new Map([
  ["constant", { args: ["warmup"], doc: "Constant learning rate after an optional linear warmup." }],
  ["linear", { args: ["warmup", "min_lr"], doc: "Linear warmup, then linear decay to min_lr." }],
  ["cosine", { args: ["warmup", "min_lr"], doc: "Linear warmup (steps, or a fraction of steps when < 1), then cosine decay to min_lr." }],
  ["inverse_sqrt", { args: ["warmup"], doc: "Linear warmup, then lr * sqrt(warmup / step)." }],
  ["step", { args: ["warmup", "every", "gamma"], doc: "Step decay: multiply the rate by gamma (default 0.1) every `every` steps after the warmup." }],
]);

/** `param w: f32[I, O] = glorot`: initialisers and their arguments. */
export const INITS: ReadonlyMap<string, { args: string[]; doc: string }> = new Map([
  ["zeros", { args: [], doc: "All zeros." }],
  ["ones", { args: [], doc: "All ones." }],
  ["glorot", { args: [], doc: "Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))." }],
  ["normal", { args: ["std"], doc: "normal(std): N(0, std^2)." }],
  ["uniform", { args: ["a"], doc: "uniform(a): U(-a, a)." }],
]);

