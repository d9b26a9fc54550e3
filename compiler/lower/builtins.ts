// The built-in functions of the language, as compositions of primitives. Numerically
// sensitive ones (softmax, log_softmax, logsumexp, cross_entropy) subtract the max first.
import type { CallExpr, Span } from "../../grammar/ast.ts";
import { Code } from "../check/codes.ts";
import type { DType } from "../../runtime/bundle.ts";
import { NotDifferentiableError } from "../autodiff/vjp.ts";
import { fill, reshape } from "../ops/build.ts";
import { quantile, topk } from "../ops/select.ts";
import type { Lowering } from "./lower.ts";
import type { Module, Scope } from "./scope.ts";
import { describe, type Label, type TensorValue, type Value } from "./values.ts";
import { lowerMap } from "./map.ts";

interface Call {
  l: Lowering;
  args: Value[];
  named: Map<string, Value>;
  expr: CallExpr;
  scope: Scope;
  module: Module;
}

type Impl = (c: Call) => Value;

interface BuiltinDef {
  impl: Impl;
  /** positional arity range */
  min: number;
  max: number;
  named?: string[];
  doc: string;
}

/** The graph input holding the training step, which keys random numbers. */
export const RNG_STEP = "rng.step";

const T = (l: Lowering, id: number, labels: Label[]): TensorValue => ({ kind: "tensor", id, labels });

function argSpan(c: Call, i: number): Span {
  return c.expr.args[i]?.span ?? c.expr.span;
}

function tensorArg(c: Call, i: number): TensorValue {
  return c.l.tensor(c.args[i], argSpan(c, i));
}

function floatArg(c: Call, i: number): TensorValue {
  const t = tensorArg(c, i);
  const d = c.l.dtypeOf(t);
  if (d !== "f32" && d !== "f16") c.l.fail(argSpan(c, i), `expected a float tensor (f32 or f16), found ${c.l.typeText(t)}`, Code.DtypeMismatch, "convert it with cast(x)");
  return t;
}

const castTo = (c: Call, x: TensorValue, dtype: DType): TensorValue =>
  c.l.dtypeOf(x) === dtype ? x : T(c.l, c.l.op("cast", [x.id], { dtype }, c.expr.span), x.labels);

/**
 * `f` of an f16 tensor computed in f32: x widened, the result rounded back to f16 (as
 * mixed-precision frameworks run softmax, norms and losses). The sums inside would
 * overflow f16 (a mean over more than 65504 elements, a variance of values past 256),
 * and the extra casts cost nothing on the GPU: they fuse into the reductions' prologues
 * and the last kernel's store. The gradient flows through the casts, f16 at x.
 */
function inF32(c: Call, x: TensorValue, f: (x32: TensorValue) => TensorValue): TensorValue {
  if (c.l.dtypeOf(x) !== "f16") return f(x);
  return castTo(c, f(castTo(c, x, "f32")), "f16");
}

function numberArg(c: Call, v: Value | undefined, span: Span, fallback?: number): number {
  if (v === undefined) {
    if (fallback === undefined) c.l.fail(span, "missing argument", Code.MissingArg);
    return fallback;
  }
  if (v.kind !== "number") c.l.fail(span, `expected a number, found ${describe(v)}`, Code.TypeMismatch);
  return v.value;
}

/** Resolves an axis argument: a dim name (`T`) found among x's axis labels, or an integer. */
function axisOf(c: Call, x: TensorValue, v: Value, span: Span): number {
  const rank = c.l.g.type(x.id).shape.length;
  if (v.kind === "number" && v.label) {
    const hits = x.labels.flatMap((lab, i) => (lab === v.label ? [i] : []));
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) c.l.fail(span, `${c.l.typeText(x)} has more than one axis named ${v.label}`, Code.Axis, "use an integer axis");
    c.l.fail(span, `${c.l.typeText(x)} has no axis named ${v.label}`, Code.Axis, x.labels.some(Boolean) ? `its axes: ${x.labels.map((s) => s ?? "?").join(", ")}` : "annotate the tensor's type so its axes have names, or use an integer axis");
  }
  if (v.kind === "number" && v.isInt) {
    const a = v.value < 0 ? rank + v.value : v.value;
    if (a < 0 || a >= rank) c.l.fail(span, `axis ${v.value} is out of range for ${c.l.typeText(x)}`, Code.Axis);
    return a;
  }
  return c.l.fail(span, `expected an axis (a dim name or an integer), found ${describe(v)}`, Code.Axis);
}

function optionalAxis(c: Call, x: TensorValue, i: number, fallbackLast: boolean): number[] {
  const v = c.args[i] ?? c.named.get("axis");
  const rank = c.l.g.type(x.id).shape.length;
  if (v === undefined) return fallbackLast ? [rank - 1] : [...Array(rank).keys()];
  return [axisOf(c, x, v, argSpan(c, i))];
}

function dropAxes(labels: Label[], axes: number[]): Label[] {
  return labels.filter((_, i) => !axes.includes(i));
}

function reduceOp(c: Call, op: "sum" | "reduce_max" | "reduce_min", x: TensorValue, axes: number[]): TensorValue {
  return T(c.l, c.l.op(op, [x.id], { axes: [...axes].sort((a, b) => a - b) }, c.expr.span), dropAxes(x.labels, axes));
}

/** Re-insert reduced axes with size 1 and broadcast back: keepdims. */
function keep(c: Call, r: TensorValue, x: TensorValue, axes: number[]): TensorValue {
  const shape = c.l.g.type(x.id).shape;
  const kept = reshape(c.l.g, r.id, shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  return T(c.l, c.l.op("broadcast", [kept], { shape: [...shape] }, c.expr.span), x.labels);
}

function count(c: Call, x: TensorValue, axes: number[]): number {
  const shape = c.l.g.type(x.id).shape;
  return axes.reduce((n, a) => n * shape[a], 1);
}

const bin = (c: Call, op: string, a: TensorValue, b: TensorValue) => c.l.nary(op, [a, b], c.expr.span);
const un = (c: Call, op: string, a: TensorValue) => T(c.l, c.l.op(op, [a.id], {}, c.expr.span), a.labels);
const num = (c: Call, v: number, like: TensorValue) => T(c.l, fill(c.l.g, v, c.l.g.type(like.id)), like.labels);

function mean(c: Call, x: TensorValue, axes: number[]): TensorValue {
  const s = reduceOp(c, "sum", x, axes);
  return bin(c, "div", s, num(c, count(c, x, axes), s));
}

function variance(c: Call, x: TensorValue, axes: number[], unbiased: boolean): TensorValue {
  const d = bin(c, "sub", x, keep(c, mean(c, x, axes), x, axes));
  const s = reduceOp(c, "sum", bin(c, "mul", d, d), axes);
  return bin(c, "div", s, num(c, count(c, x, axes) - (unbiased ? 1 : 0), s));
}

function logsumexp(c: Call, x: TensorValue, axes: number[]): TensorValue {
  const m = T(c.l, c.l.op("stop", [reduceOp(c, "reduce_max", x, axes).id], {}, c.expr.span), dropAxes(x.labels, axes));
  const e = un(c, "exp", bin(c, "sub", x, keep(c, m, x, axes)));
  return bin(c, "add", un(c, "log", reduceOp(c, "sum", e, axes)), m);
}

function logSoftmax(c: Call, x: TensorValue, axes: number[]): TensorValue {
  return bin(c, "sub", x, keep(c, logsumexp(c, x, axes), x, axes));
}

function boolNamed(c: Call, name: string, fallback: boolean): boolean {
  const v = c.named.get(name);
  if (v === undefined) return fallback;
  if (v.kind !== "bool") c.l.fail(c.expr.span, `${name} must be true or false`, Code.TypeMismatch);
  return v.value;
}

const unaryPrims = ["exp", "log", "sqrt", "rsqrt", "abs", "sign", "tanh", "sigmoid", "relu", "softplus", "sin", "cos", "floor"];

const defs = new Map<string, BuiltinDef>();
const def = (name: string, min: number, max: number, doc: string, impl: Impl, named?: string[]) => defs.set(name, { impl, min, max, doc, named });

for (const p of unaryPrims) def(p, 1, 1, `elementwise ${p}`, (c) => un(c, p, floatArg(c, 0)));
def("log_sigmoid", 1, 1, "log(sigmoid(x)), computed stably as -softplus(-x)", (c) => un(c, "neg", un(c, "softplus", un(c, "neg", floatArg(c, 0)))));
def("silu", 1, 1, "x * sigmoid(x)", (c) => {
  const x = floatArg(c, 0);
  return bin(c, "mul", x, un(c, "sigmoid", x));
});
def("gelu", 1, 1, 'gelu(x, approximate="none"): x·Φ(x), exact through erf; approximate="tanh" gives 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))', (c) => {
  const x = floatArg(c, 0);
  const a = c.named.get("approximate");
  if (a !== undefined && (a.kind !== "string" || (a.value !== "none" && a.value !== "tanh"))) {
    c.l.fail(c.expr.argsSpan, `approximate must be "none" or "tanh", found ${describe(a)}`, Code.TypeMismatch);
  }
  return T(c.l, c.l.op("gelu", [x.id], { approximate: a?.kind === "string" ? a.value : "none" }, c.expr.span), x.labels);
}, ["approximate"]);

/** max(x, T) reduces over a dim; max(a, b) is elementwise. A dim name or a negative integer is an axis. */
function isAxisArg(v: Value | undefined): boolean {
  return v !== undefined && v.kind === "number" && (v.label !== undefined || (v.isInt && v.value < 0));
}

for (const [name, prim] of [["max", "reduce_max"], ["min", "reduce_min"]] as const) {
  def(name, 1, 2, `${name}(x, axis) reduces; ${name}(a, b) is elementwise`, (c) => {
    if (c.args.length === 2 && !isAxisArg(c.args[1]) && !c.named.has("axis")) {
      const a = c.args[0];
      const b = c.args[1];
      const dtype: DType = a.kind === "tensor" ? c.l.dtypeOf(a) : b.kind === "tensor" ? c.l.dtypeOf(b) : "f32";
      return bin(c, name, c.l.tensor(a, argSpan(c, 0), dtype), c.l.tensor(b, argSpan(c, 1), dtype));
    }
    const x = tensorArg(c, 0);
    return reduceOp(c, prim, x, optionalAxis(c, x, 1, false));
  }, ["axis"]);
}
def("sum", 1, 2, "sum(x, axis): sum over an axis; sum(x): over everything", (c) => {
  const x = tensorArg(c, 0);
  return reduceOp(c, "sum", x, optionalAxis(c, x, 1, false));
}, ["axis"]);
// (on f16: computed in f32, the result rounded to f16; see inF32)
def("mean", 1, 2, "mean(x, axis): mean over an axis; mean(x): over everything", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => mean(c, y, optionalAxis(c, y, 1, false)));
}, ["axis"]);
def("var", 1, 2, "var(x, axis, unbiased=false): variance (N−1 divisor when unbiased)", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => variance(c, y, optionalAxis(c, y, 1, false), boolNamed(c, "unbiased", false)));
}, ["axis", "unbiased"]);
def("std", 1, 2, "std(x, axis, unbiased=false): standard deviation", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => un(c, "sqrt", variance(c, y, optionalAxis(c, y, 1, false), boolNamed(c, "unbiased", false))));
}, ["axis", "unbiased"]);
def("logsumexp", 1, 2, "log Σ exp(x) over an axis, computed stably", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => logsumexp(c, y, optionalAxis(c, y, 1, false)));
}, ["axis"]);
def("log_softmax", 1, 2, "x − logsumexp(x) over an axis (default: the last)", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => logSoftmax(c, y, optionalAxis(c, y, 1, true)));
}, ["axis"]);
def("softmax", 1, 2, "exp(x) / Σ exp(x) over an axis (default: the last)", (c) => {
  const x = floatArg(c, 0);
  return inF32(c, x, (y) => un(c, "exp", logSoftmax(c, y, optionalAxis(c, y, 1, true))));
}, ["axis"]);
def("cross_entropy", 2, 2, "cross_entropy(logits: f32[.., C], target: i32[..]): mean negative log-likelihood of the targets", (c) => {
  const logits = floatArg(c, 0);
  const target = tensorArg(c, 1);
  const ls = c.l.g.type(logits.id).shape;
  const ts = c.l.g.type(target.id).shape;
  if (c.l.dtypeOf(target) !== "i32") c.l.fail(argSpan(c, 1), `targets must be i32 class indices, found ${c.l.typeText(target)}`, Code.DtypeMismatch);
  if (ts.length !== ls.length - 1 || ts.some((d, i) => d !== ls[i])) {
    c.l.fail(c.expr.span, `targets ${c.l.typeText(target)} must have the logits' shape without the class axis (logits ${c.l.typeText(logits)})`, Code.Annotation);
  }
  const axis = ls.length - 1;
  return inF32(c, logits, (z) => {
    const lsm = logSoftmax(c, z, [axis]);
    const classes = T(c.l, c.l.g.add("iota", [], { shape: [...ls], axis, dtype: "i32" }), z.labels);
    const t = T(c.l, reshape(c.l.g, target.id, [...ts, 1]), [...target.labels, undefined]);
    const onehot = T(c.l, c.l.op("cast", [bin(c, "eq", classes, t).id], { dtype: c.l.dtypeOf(z) }, c.expr.span), z.labels);
    const picked = reduceOp(c, "sum", bin(c, "mul", onehot, lsm), [...ls.keys()]);
    return bin(c, "div", un(c, "neg", picked), num(c, Math.max(1, count(c, target, [...ts.keys()])), picked));
  });
});
for (const [name, rms] of [["layer_norm", false], ["rms_norm", true]] as const) {
  def(name, 1, 2, `${name}(x, axis, eps=1e-5): normalise over an axis (no affine; std blocks add it)`, (c) => {
    const eps = numberArg(c, c.named.get("eps"), c.expr.span, 1e-5);
    return inF32(c, floatArg(c, 0), (x) => {
      const axes = optionalAxis(c, x, 1, true);
      const centred = rms ? x : bin(c, "sub", x, keep(c, mean(c, x, axes), x, axes));
      const ms = mean(c, bin(c, "mul", centred, centred), axes);
      const inv = un(c, "rsqrt", bin(c, "add", ms, num(c, eps, ms)));
      return bin(c, "mul", centred, keep(c, inv, x, axes));
    });
  }, ["axis", "eps"]);
}
def("pow", 2, 2, "pow(a, b): a^b elementwise (a > 0)", (c) => c.l.evalBinary("**", c.args[0], c.args[1], c.expr.span));
def("clamp", 3, 3, "clamp(x, lo, hi) = min(max(x, lo), hi)", (c) => {
  const x = tensorArg(c, 0);
  const d = c.l.dtypeOf(x);
  const lo = c.l.tensor(c.args[1], argSpan(c, 1), d);
  const hi = c.l.tensor(c.args[2], argSpan(c, 2), d);
  return bin(c, "min", bin(c, "max", x, lo), hi);
});
def("where", 3, 3, "where(cond, a, b): a where cond, else b", (c) => {
  const cond = tensorArg(c, 0);
  if (c.l.dtypeOf(cond) !== "bool") c.l.fail(argSpan(c, 0), `the condition must be bool, found ${c.l.typeText(cond)}`, Code.DtypeMismatch);
  const a = c.args[1];
  const b = c.args[2];
  const dtype: DType = a.kind === "tensor" ? c.l.dtypeOf(a) : b.kind === "tensor" ? c.l.dtypeOf(b) : "f32";
  return c.l.nary("where", [cond, c.l.tensor(a, argSpan(c, 1), dtype), c.l.tensor(b, argSpan(c, 2), dtype)], c.expr.span);
});
def("zeros_like", 1, 1, "zeros with x's shape and dtype", (c) => num(c, 0, tensorArg(c, 0)));
def("ones_like", 1, 1, "ones with x's shape and dtype", (c) => num(c, 1, tensorArg(c, 0)));
def("stop", 1, 1, "stop(x): x, with no gradient flowing back", (c) => un(c, "stop", tensorArg(c, 0)));
def("cast", 1, 2, "cast(x) to f32, or cast(x, f16), cast(x, i32), cast(x, bool)", (c) => {
  const x = tensorArg(c, 0);
  const dtype = dtypeArg(c, 1, "f32");
  return T(c.l, c.l.op("cast", [x.id], { dtype }, c.expr.span), x.labels);
});
function dtypeArg(c: Call, i: number, fallback: DType): DType {
  const v = c.args[i] ?? c.named.get("dtype");
  if (v === undefined) return fallback;
  if (v.kind === "string" && (v.value === "f32" || v.value === "f16" || v.value === "i32" || v.value === "bool")) return v.value;
  return c.l.fail(argSpan(c, i), `expected a dtype: f32, f16, i32 or bool, found ${describe(v)}`, Code.UnknownDtype);
}

function shapeArg(c: Call, i: number): { shape: number[]; labels: Label[] } {
  const v = c.args[i];
  if (v.kind !== "list") return c.l.fail(argSpan(c, i), `expected a list of dims: [B, D], found ${describe(v)}`, Code.TypeMismatch);
  const dims = v.items.map((d) => (d.kind === "number" && d.isInt && d.value >= 0 ? d : c.l.fail(argSpan(c, i), `${describe(d)} is not a dim`, Code.TypeMismatch)));
  return { shape: dims.map((d) => d.value), labels: dims.map((d) => d.label) };
}

for (const [name, value] of [["zeros", 0], ["ones", 1]] as const) {
  def(name, 1, 2, `${name}([dims], dtype=f32): a tensor of ${value}s`, (c) => {
    const { shape, labels } = shapeArg(c, 0);
    return T(c.l, c.l.g.add("const", [], { value, shape, dtype: dtypeArg(c, 1, "f32") }), labels);
  }, ["dtype"]);
}
def("full", 2, 3, "full([dims], value, dtype=f32): a tensor filled with one value", (c) => {
  const { shape, labels } = shapeArg(c, 0);
  const value = numberArg(c, c.args[1], argSpan(c, 1));
  return T(c.l, c.l.g.add("const", [], { value, shape, dtype: dtypeArg(c, 2, "f32") }), labels);
}, ["dtype"]);

def("dropout", 2, 2, "dropout(x, p): while training, zero each element with probability p and scale the rest by 1/(1−p); the identity otherwise", (c) => {
  const x = floatArg(c, 0);
  const p = numberArg(c, c.args[1], argSpan(c, 1));
  if (!(p >= 0 && p < 1)) c.l.fail(argSpan(c, 1), `dropout probability must be in [0, 1), found ${p}`, Code.TypeMismatch);
  if (!c.l.opts.training || p === 0) return x;
  // A fresh mask every step: the numbers are keyed by (seed, call site, step).
  const shape = [...c.l.g.type(x.id).shape];
  const step = c.l.g.source("input", RNG_STEP, { shape: [], dtype: "i32" });
  const u = T(c.l, c.l.g.add("random_uniform", [step], { shape, seed: c.l.opts.seed ?? 0, stream: c.l.nextStream() }, c.expr.span), x.labels);
  const kept = bin(c, "ge", u, num(c, p, u));
  return c.l.nary("where", [kept, bin(c, "mul", x, num(c, 1 / (1 - p), x)), num(c, 0, x)], c.expr.span);
});

for (const [name, base] of [["iota", 0], ["positions", 1]] as const) {
  def(name, 1, 1, `${name}(T): f32[T] holding ${base}, ${base + 1}, …`, (c) => {
    const n = c.args[0];
    if (n.kind !== "number" || !n.isInt) return c.l.fail(argSpan(c, 0), `expected a dim, found ${describe(n)}`, Code.TypeMismatch);
    const id = c.l.g.add("iota", [], { shape: [n.value], axis: 0, dtype: "f32" });
    const t = T(c.l, id, [n.label]);
    return base ? bin(c, "add", t, num(c, base, t)) : t;
  });
}
def("reshape", 2, 2, "reshape(x, [dims]): same elements, new shape", (c) => {
  const x = tensorArg(c, 0);
  const dims = c.args[1];
  if (dims.kind !== "list") return c.l.fail(argSpan(c, 1), "expected a list of dims: [B, T*D]", Code.TypeMismatch);
  const ds = dims.items.map((d, i) => {
    if (d.kind !== "number" || !d.isInt) return c.l.fail(c.expr.args[1].span, `dim ${i} of the new shape is ${describe(d)}, not a dim`, Code.TypeMismatch);
    return d;
  });
  const shape = ds.map((d) => d.value);
  const n = shape.reduce((a, b) => a * b, 1);
  const xn = c.l.g.type(x.id).shape.reduce((a, b) => a * b, 1);
  if (n !== xn) c.l.fail(c.expr.span, `cannot reshape ${c.l.typeText(x)} (${xn} elements) to [${shape.join(", ")}] (${n})`, Code.Reshape);
  return T(c.l, reshape(c.l.g, x.id, shape), ds.map((d) => d.label));
});
function flat(c: Call, x: TensorValue): TensorValue {
  return T(c.l, reshape(c.l.g, x.id, [c.l.g.type(x.id).shape.reduce((a, b) => a * b, 1)]), [undefined]);
}

/** Joins tensors along `axis` with the `concat` primitive (one kernel; its VJP slices). */
function concatTensors(c: Call, xs: TensorValue[], axis: number): TensorValue {
  const first = c.l.g.type(xs[0].id);
  for (const x of xs) {
    const t = c.l.g.type(x.id);
    const same = t.shape.length === first.shape.length && t.shape.every((d, i) => i === axis || d === first.shape[i]);
    if (!same || t.dtype !== first.dtype) {
      c.l.fail(c.expr.span, `concat: ${c.l.typeText(x)} does not match ${c.l.typeText(xs[0])} outside axis ${axis}`, Code.DimMismatch);
    }
  }
  if (xs.length === 1) return xs[0];
  const joined = c.l.op("concat", xs.map((x) => x.id), { axis }, c.expr.span);
  return T(c.l, joined, xs[0].labels.map((lab, i) => (i === axis ? undefined : lab)));
}

function tensorList(c: Call, i: number): TensorValue[] {
  const v = c.args[i];
  if (v.kind !== "list" && v.kind !== "tuple") return c.l.fail(argSpan(c, i), `expected a list of tensors [a, b], found ${describe(v)}`, Code.DimMismatch);
  if (v.items.length === 0) return c.l.fail(argSpan(c, i), "expected at least one tensor", Code.DimMismatch);
  return v.items.map((x) => c.l.tensor(x, argSpan(c, i)));
}

def("flatten", 1, 1, "flatten(x): the elements of x (or of every tensor in a grad record) as one vector", (c) => {
  const v = c.args[0];
  if (v.kind === "record") {
    // nested records (an instance's sub-instances) in order, depth first
    const leaves = (x: Value): TensorValue[] => (x.kind === "record" ? [...x.fields.values()].flatMap(leaves) : [c.l.tensor(x, argSpan(c, 0))]);
    const parts = leaves(v).map((x) => flat(c, x));
    return concatTensors(c, parts, 0);
  }
  return flat(c, tensorArg(c, 0));
});
def("concat", 2, 2, "concat([a, b, …], axis): join along an axis", (c) => {
  const xs = tensorList(c, 0);
  return concatTensors(c, xs, axisOf(c, xs[0], c.args[1], argSpan(c, 1)));
});
def("stack", 1, 2, "stack([a, b, …], axis=0): join along a new axis", (c) => {
  const xs = tensorList(c, 0);
  const rank = c.l.g.type(xs[0].id).shape.length;
  const av = c.args[1] ?? c.named.get("axis");
  const a = av === undefined ? 0 : av.kind === "number" && av.isInt ? (av.value < 0 ? rank + 1 + av.value : av.value) : -1;
  if (a < 0 || a > rank) c.l.fail(argSpan(c, 1), `stack axis must be an integer in 0..${rank}`, Code.Axis);
  const lifted = xs.map((x) => {
    const s = [...c.l.g.type(x.id).shape];
    s.splice(a, 0, 1);
    const labels = [...x.labels];
    labels.splice(a, 0, undefined);
    return T(c.l, reshape(c.l.g, x.id, s), labels);
  });
  return concatTensors(c, lifted, a);
}, ["axis"]);
def("split", 3, 3, "split(x, n, axis): n equal parts along an axis, as a tuple", (c) => {
  const x = tensorArg(c, 0);
  const n = numberArg(c, c.args[1], argSpan(c, 1));
  const axis = axisOf(c, x, c.args[2], argSpan(c, 2));
  const shape = c.l.g.type(x.id).shape;
  if (!Number.isInteger(n) || n < 1 || shape[axis] % n !== 0) c.l.fail(argSpan(c, 1), `cannot split an axis of size ${shape[axis]} into ${n} equal parts`, Code.DimMismatch);
  const size = shape[axis] / n;
  const items: Value[] = [];
  for (let k = 0; k < n; k++) {
    const starts = shape.map((_, i) => (i === axis ? k * size : 0));
    const sizes = shape.map((d, i) => (i === axis ? size : d));
    items.push(T(c.l, c.l.op("slice", [x.id], { starts, steps: shape.map(() => 1), shape: sizes }, c.expr.span), x.labels.map((lab, i) => (i === axis ? undefined : lab))));
  }
  return { kind: "tuple", items };
});
def("gather", 2, 3, "gather(table, idx, axis=0): rows of table at i32 indices (embedding lookup)", (c) => {
  const x = tensorArg(c, 0);
  const idx = tensorArg(c, 1);
  if (c.l.dtypeOf(idx) !== "i32") c.l.fail(argSpan(c, 1), `indices must be i32, found ${c.l.typeText(idx)}`, Code.DtypeMismatch);
  const av = c.args[2] ?? c.named.get("axis");
  const axis = av === undefined ? 0 : axisOf(c, x, av, argSpan(c, 2));
  const labels = [...x.labels.slice(0, axis), ...idx.labels, ...x.labels.slice(axis + 1)];
  return T(c.l, c.l.op("gather", [x.id, idx.id], { axis }, c.expr.span), labels);
}, ["axis"]);
def("take_along", 3, 3, "take_along(x, idx, axis): x's values at i32 indices along an axis (NumPy take_along_axis)", (c) => {
  const x = tensorArg(c, 0);
  const idx = tensorArg(c, 1);
  if (c.l.dtypeOf(idx) !== "i32") c.l.fail(argSpan(c, 1), `indices must be i32, found ${c.l.typeText(idx)}`, Code.DtypeMismatch);
  const axis = axisOf(c, x, c.args[2], argSpan(c, 2));
  return T(c.l, c.l.op("take_along", [x.id, idx.id], { axis }, c.expr.span), idx.labels.map((lab, i) => lab ?? x.labels[i]));
});
def("one_hot", 2, 2, "one_hot(idx: i32[..], C): f32[.., C], 1 at each index", (c) => {
  const idx = tensorArg(c, 0);
  const n = c.args[1];
  if (n.kind !== "number" || !n.isInt) return c.l.fail(argSpan(c, 1), `expected a dim, found ${describe(n)}`, Code.TypeMismatch);
  const s = c.l.g.type(idx.id).shape;
  const classes = T(c.l, c.l.g.add("iota", [], { shape: [...s, n.value], axis: s.length, dtype: "i32" }), []);
  const lifted = T(c.l, reshape(c.l.g, idx.id, [...s, 1]), []);
  return T(c.l, c.l.op("cast", [bin(c, "eq", classes, lifted).id], { dtype: "f32" }, c.expr.span), [...idx.labels, n.label]);
});
def("cumsum", 2, 2, "cumsum(x, axis, reverse=false): running sum along an axis", (c) => {
  const x = tensorArg(c, 0);
  const axis = axisOf(c, x, c.args[1], argSpan(c, 1));
  return T(c.l, c.l.op("cumsum", [x.id], { axis, reverse: boolNamed(c, "reverse", false) }, c.expr.span), x.labels);
}, ["reverse"]);
def("argmax", 2, 2, "argmax(x, axis): i32 index of the largest value (the first on ties)", (c) => {
  const x = tensorArg(c, 0);
  const axis = axisOf(c, x, c.args[1], argSpan(c, 1));
  return T(c.l, c.l.op("argmax", [x.id], { axis }, c.expr.span), dropAxes(x.labels, [axis]));
});
def("topk", 3, 3, "topk(x, k, axis): (values, i32 indices) of the k largest along the axis, largest first; ties: the lower index first", (c) => {
  const x = tensorArg(c, 0);
  if (c.l.dtypeOf(x) === "bool") c.l.fail(argSpan(c, 0), `topk takes f32 or i32, found ${c.l.typeText(x)}`, Code.DtypeMismatch, "convert it with cast(x)");
  const kv = c.args[1];
  const k = numberArg(c, kv, argSpan(c, 1));
  const axis = axisOf(c, x, c.args[2], argSpan(c, 2));
  const n = c.l.g.type(x.id).shape[axis];
  if (!Number.isInteger(k) || k < 1 || k > n) c.l.fail(argSpan(c, 1), `k must be an integer in 1..${n} (the length of axis ${axis} of ${c.l.typeText(x)}), found ${k}`, Code.DimMismatch);
  const r = topk(c.l.g, x.id, axis, k, c.expr.span);
  const labels = x.labels.map((lab, i) => (i === axis ? (kv.kind === "number" ? kv.label : undefined) : lab));
  return { kind: "tuple", items: [T(c.l, r.values, labels), T(c.l, r.indices, labels)] };
});
def("quantile", 1, 3, "quantile(x, q, axis): the q-quantile along an axis (of all elements without one), interpolating linearly between order statistics as torch.quantile", (c) => {
  const x = floatArg(c, 0);
  const q = numberArg(c, c.args[1] ?? c.named.get("q"), argSpan(c, 1));
  if (!(q >= 0 && q <= 1)) c.l.fail(argSpan(c, 1), `q must be in [0, 1], found ${q}`, Code.TypeMismatch);
  const av = c.args[2] ?? c.named.get("axis");
  if (av === undefined) return T(c.l, quantile(c.l.g, flat(c, x).id, 0, q, c.expr.span), []);
  const axis = axisOf(c, x, av, argSpan(c, 2));
  return T(c.l, quantile(c.l.g, x.id, axis, q, c.expr.span), dropAxes(x.labels, [axis]));
}, ["q", "axis"]);
def("keep_topk", 3, 3, "keep_topk(x, k, axis): x where it is among the k largest along the axis, 0 elsewhere", (c) => {
  const x = floatArg(c, 0);
  const k = numberArg(c, c.args[1], argSpan(c, 1));
  const axis = axisOf(c, x, c.args[2], argSpan(c, 2));
  const n = c.l.g.type(x.id).shape[axis];
  if (!Number.isInteger(k) || k < 1 || k > n) c.l.fail(argSpan(c, 1), `k must be an integer in 1..${n}`, Code.DimMismatch);
  const kth = T(c.l, c.l.op("stop", [c.l.op("kth_largest", [x.id], { axis, k }, c.expr.span)], {}, c.expr.span), dropAxes(x.labels, [axis]));
  const keepMask = bin(c, "ge", x, keep(c, kth, x, [axis]));
  return c.l.nary("where", [keepMask, x, num(c, 0, x)], c.expr.span);
});
def("sizeof", 1, 1, "sizeof(instance): its number of parameters, a compile-time dim", (c) => {
  const v = c.args[0];
  const tree = v.kind === "instance" || v.kind === "instances" ? c.l.paramTree(v, c.expr.span) : undefined;
  if (!tree) return c.l.fail(argSpan(c, 0), `sizeof takes an instance, found ${describe(v)}`, Code.TypeMismatch);
  const n = c.l.treeLeaves(tree).reduce((a, t) => a + c.l.g.type(t.id).shape.reduce((x, y) => x * y, 1), 0);
  const text = c.expr.args[0].value;
  return { kind: "number", value: n, isInt: true, label: `sizeof(${text.kind === "ident" ? text.name : "…"})` };
});
def("map", 2, 99, "map(f, args…, over=N): f applied to each slice along dim N, results stacked along a new leading N axis", (c) => {
  const over = c.named.get("over");
  if (!over || over.kind !== "number" || !over.label) return c.l.fail(c.expr.span, "map needs over=N, a dim name", Code.TypeMismatch);
  // f is lowered once, on one example, then batched (compiler/lower/map.ts)
  return lowerMap(c.l, c.args[0], c.args.slice(1), { value: over.value, label: over.label }, c.expr.span, argSpan(c, 0));
}, ["over"]);
def("transpose", 2, 2, "transpose(x, [T, B, D]): reorder axes by name", (c) => {
  const x = tensorArg(c, 0);
  const order = c.args[1];
  if (order.kind !== "list") return c.l.fail(argSpan(c, 1), "expected a list of axes: [T, B, D]", Code.Axis);
  const perm = order.items.map((v) => axisOf(c, x, v, argSpan(c, 1)));
  const rank = c.l.g.type(x.id).shape.length;
  if (perm.length !== rank || new Set(perm).size !== rank) c.l.fail(argSpan(c, 1), `expected each of the ${rank} axes of ${c.l.typeText(x)} once`, Code.Axis);
  return T(c.l, c.l.op("transpose", [x.id], { perm }, c.expr.span), perm.map((p) => x.labels[p]));
});
def("len", 1, 1, "len(xs): the number of instances in a repeat, or items in a list", (c) => {
  const v = c.args[0];
  if (v.kind === "instances" || v.kind === "list" || v.kind === "tuple") return { kind: "number", value: v.items.length, isInt: true };
  if (v.kind === "tensor") return { kind: "number", value: c.l.g.type(v.id).shape[0] ?? 1, isInt: true };
  return c.l.fail(argSpan(c, 0), `len of ${describe(v)}`, Code.TypeMismatch);
});
def("grad", 2, 2, "grad(expr, wrt): the gradient of scalar expr with respect to a tensor, a parameter or an instance", (c) => {
  const y = floatArg(c, 0);
  if (c.l.g.type(y.id).shape.length !== 0) c.l.fail(argSpan(c, 0), `grad needs a scalar, found ${c.l.typeText(y)}`, Code.Grad, "reduce it first: sum(...) or mean(...)");
  const wrt = c.args[1];
  // an instance: a record of its params, sub-instances nested; a repeat: the same, stacked
  const tree = c.l.paramTree(wrt, c.expr.span);
  if (!tree) return c.l.fail(argSpan(c, 1), `grad with respect to ${describe(wrt)}; expected a tensor, a parameter or an instance`, Code.Grad);
  let grads: number[];
  try {
    grads = c.l.gradients(y.id, c.l.treeLeaves(tree).map((t) => t.id));
  } catch (e) {
    if (e instanceof NotDifferentiableError) c.l.fail(e.span ?? c.expr.span, `${e.message}; wrap the non-differentiable part in stop(...)`, Code.Grad);
    throw e;
  }
  let k = 0;
  const rebuild = (v: Value): Value =>
    v.kind === "tensor" ? T(c.l, grads[k++], v.labels) : v.kind === "record" ? { ...v, fields: new Map([...v.fields].map(([n, x]) => [n, rebuild(x)])) } : v;
  return rebuild(tree);
});
// Train-job configuration: recorded here, interpreted by the train lowering.
def("jsonl", 1, 1, "jsonl(\"file\"): training data, one JSON object per line (path relative to this file)", (c) => {
  const p = c.args[0];
  if (p.kind !== "string") return c.l.fail(argSpan(c, 0), "expected a file name string", Code.TrainValue);
  return { kind: "data", file: c.l.resolvePath(c.module, p.value), span: c.expr.span };
});
for (const name of ["sgd", "adam", "adamw", "constant", "cosine", "linear"]) {
  def(name, 0, 0, `${name}(...): a train-job setting`, (c) => ({ kind: "config", name, named: c.named, span: c.expr.span }), ["*"]);
}

export function isBuiltin(name: string): boolean {
  return defs.has(name);
}

export function builtinNames(): string[] {
  return [...defs.keys()];
}

export function builtinDoc(name: string): string | undefined {
  return defs.get(name)?.doc;
}

export function callBuiltin(l: Lowering, name: string, args: Value[], named: Map<string, Value>, expr: CallExpr, scope: Scope, module: Module): Value {
  const d = defs.get(name)!;
  if (args.length < d.min || args.length > d.max) {
    const want = d.min === d.max ? `${d.min}` : `${d.min} to ${d.max}`;
    l.fail(expr.argsSpan, `${name} takes ${want} argument${d.max === 1 ? "" : "s"}, found ${args.length}`, Code.Arity, d.doc);
  }
  if (!d.named?.includes("*")) {
    for (const k of named.keys()) if (!d.named?.includes(k)) l.fail(expr.argsSpan, `${name} has no named argument '${k}'`, Code.UnknownNamedArg, d.doc);
  }
  return d.impl({ l, args, named, expr, scope, module });
}
