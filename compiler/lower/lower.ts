// Lowering: the checked AST, with every dim bound to a number, becomes a Graph.
// Blocks are instantiated at concrete dims, fns are inlined at each call, compile-time
// loops and ifs are unrolled, and `grad` runs the VJP transform in place.
import type {
  BlockItem, BlockStmt, DimExpr, Expr, FnItem, Ident, IndexItem, Pattern, Span, Stmt, TensorTypeExpr, TypeExpr,
} from "../../grammar/ast.ts";
import type { DType } from "../../runtime/bundle.ts";
import { Code } from "../check/codes.ts";
import { error, InternalError, UserError, type Diagnostic } from "../diagnostics.ts";
import { fmtType, Graph, numel, type Shape } from "../ir/graph.ts";
import { broadcastShapes, broadcastTo, fill, reshape } from "../ops/build.ts";
import { OpTypeError } from "../ops/registry.ts";
import { vjp } from "../autodiff/vjp.ts";
import { callBuiltin, isBuiltin, builtinNames } from "./builtins.ts";
import { globalsOf, Scope, type Global, type Module } from "./scope.ts";
import { describe, type Dim, type Instance, type Label, type NumberValue, type ParamInit, type RepeatSlot, type TensorValue, type Value } from "./values.ts";
import type { Stacked } from "../../runtime/stacked.ts";

export interface LowerOptions {
  /** values for global dims (`--dim D=256`); override defaults */
  dims?: Record<string, number>;
  /** the `training` flag seen by the program */
  training?: boolean;
  /** seed of the program's random numbers (dropout) */
  seed?: number;
  /**
   * Mixed precision (train jobs): a trainable param declared f16 is an f32 source, its
   * master copy, and the program reads `cast(master, f16)`; the optimizer updates the
   * master in f32, and its gradient (f16, through the program) is cast to f32 by the
   * cast's VJP. Frozen f16 params stay f16 sources.
   */
  masterWeights?: boolean;
}

export interface ParamInfo {
  path: string;
  shape: number[];
  dtype: DType;
  init: ParamInit;
  frozen: boolean;
  /** checkpoint the instance is initialised from */
  from?: string;
  span: Span;
  /** declared f16 and held as an f32 master (LowerOptions.masterWeights): `dtype` is f32 */
  master?: boolean;
  /**
   * a param of the layers of a `repeat`: one tensor, the repeat counts leading its shape
   * (`stack.layers.ff.w1`: f32[L, D, F]); `init` is each layer's, for the per-layer shape
   */
  stacked?: Stacked;
}

/** A layer's param in a `repeat` stack: a view of its slice of the stacked source. */
interface LayerView {
  graph: Graph;
  source: number;
  /** the layer's index in each enclosing repeat */
  index: number[];
}

/** Where an instance is created: the path without repeat indices, and the repeats around it. */
interface Placement {
  stackPath: string;
  slots: RepeatSlot[];
}

class ReturnSignal {
  constructor(readonly value: Value) {}
}

const DTYPES = new Set(["f32", "f16", "i32", "bool"]);
const MAX_INLINE_DEPTH = 200;

export class Lowering {
  /** the graph being built; `within` swaps it while `map` lowers its fn on one example */
  g = new Graph();
  readonly params = new Map<string, ParamInfo>();
  /** each layer's param view in a repeat stack (by view node) … */
  private readonly views = new Map<number, LayerView>();
  /** f16 rounding of an f32 master param (its cast node) → the master source */
  private readonly masters = new Map<number, { graph: Graph; source: number }>();
  /** … and by the layer's own path (`stack.layers[3].ff.w1` → the stacked source and index 3) */
  readonly layerParams = new Map<string, { source: string; index: number[]; view: number }>();
  private readonly globals = new Map<string, Map<string, Global>>();
  /** global dims by name: a number once known */
  private readonly dimValues = new Map<string, number>();
  private readonly dimPending = new Set<string>();
  private depth = 0;
  private streams = 0;

  constructor(
    readonly modules: ReadonlyMap<string, Module>,
    readonly entry: Module,
    readonly opts: LowerOptions = {},
  ) {
    for (const [k, v] of Object.entries(opts.dims ?? {})) this.dimValues.set(k, v);
  }

  /** Runs `f` building into `g` instead of the current graph. */
  within<T>(g: Graph, f: () => T): T {
    const saved = this.g;
    this.g = g;
    try {
      return f();
    } finally {
      this.g = saved;
    }
  }

  /** A distinct random stream for each random call site. */
  nextStream(): number {
    return this.streams++;
  }

  // ------------------------------------------------------------ errors

  fail(span: Span, message: string, code: string = Code.TypeMismatch, hint?: string): never {
    throw new UserError(error(code, span, message, hint ? { hint } : {}));
  }

  /** Adds a primitive, turning a shape-rule failure into a located error. */
  op(op: string, inputs: readonly number[], attrs: Record<string, number | string | boolean | readonly number[]>, span: Span): number {
    try {
      return this.g.add(op, inputs, attrs, span);
    } catch (e) {
      if (e instanceof OpTypeError) this.fail(span, e.message);
      throw e;
    }
  }

  /** Runs a graph-building helper, turning a shape-rule failure into a located error. */
  guard<T>(span: Span, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof OpTypeError) this.fail(span, e.message);
      throw e;
    }
  }

  // ------------------------------------------------------------ globals and dims

  globalsOf(module: Module): Map<string, Global> {
    let g = this.globals.get(module.file);
    if (!g) {
      g = globalsOf(module, this.modules);
      this.globals.set(module.file, g);
    }
    return g;
  }

  /** The value of a global dim, evaluating its default on first use; undefined if unbound. */
  globalDim(name: string, module: Module, span: Span): number | undefined {
    const known = this.dimValues.get(name);
    if (known !== undefined) return known;
    const g = this.globalsOf(module).get(name);
    if (!g || g.kind !== "dim" || !g.decl.default) return undefined;
    if (this.dimPending.has(name)) this.fail(span, `the default of dim ${name} depends on itself`, Code.Recursion);
    this.dimPending.add(name);
    const v = this.evalDim(g.decl.default, new Scope(), g.module).value;
    this.dimPending.delete(name);
    this.dimValues.set(name, v);
    return v;
  }

  bindDim(name: string, value: number): void {
    this.dimValues.set(name, value);
  }

  boundDims(): Map<string, number> {
    return new Map(this.dimValues);
  }

  /** A dim expression: a number with its symbolic label. */
  evalDim(e: Expr, scope: Scope, module: Module): Dim {
    const v = this.evalExpr(e, scope, module);
    if (v.kind === "number" && v.isInt) return { value: v.value, label: v.label ?? String(v.value) };
    return this.fail(e.span, `expected a dim (an integer size), found ${describe(v)}`, Code.TypeMismatch);
  }

  // ------------------------------------------------------------ instances

  instantiate(block: BlockItem, module: Module, dims: Dim[], path: string, span: Span, frozen = false, from?: string, at: Placement = { stackPath: path, slots: [] }): Instance {
    if (dims.length !== block.dims.length) {
      this.fail(span, `${block.name.name} takes ${block.dims.length} dim${block.dims.length === 1 ? "" : "s"} (${block.dims.map((d) => d.name).join(", ")}), found ${dims.length}`, Code.Arity);
    }
    const inst: Instance = {
      block, module, path, frozen, from, span,
      stackPath: at.stackPath,
      slots: at.slots,
      dims: new Map(block.dims.map((d, i) => [d.name, dims[i]])),
      members: new Map(),
    };
    const scope = this.instanceScope(inst);
    for (const m of block.members) {
      if (m.kind === "param") {
        const type = this.tensorAnnotation(m.type, scope, module);
        const shape = type.dims.map((d) => d.value);
        const p = `${path}.${m.name.name}`;
        const init = this.paramInit(m.init, shape, scope, module);
        const labels = type.dims.map((d) => d.label);
        // an f16 param trained with an f32 master: the source is f32, the program reads its rounding
        const master = type.dtype === "f16" && !frozen && this.opts.masterWeights === true;
        const dtype: DType = master ? "f32" : type.dtype;
        const info: ParamInfo = { path: p, shape, dtype, init, frozen, from, span: m.span, ...(master ? { master } : {}) };
        let v: TensorValue;
        if (at.slots.length) {
          v = this.layerParam(`${at.stackPath}.${m.name.name}`, p, at.slots, { shape, dtype }, labels, info);
        } else {
          const id = this.g.source("param", p, { shape, dtype }, m.span);
          this.params.set(p, info);
          v = { kind: "tensor", id: this.halfOf(id, master, m.span), labels };
        }
        inst.members.set(m.name.name, v);
        scope.define(m.name.name, v);
      } else if (m.kind === "instance") {
        const v = this.evalInstance(m.value, scope, module, `${path}.${m.name.name}`, frozen, from, { stackPath: `${at.stackPath}.${m.name.name}`, slots: at.slots });
        inst.members.set(m.name.name, v);
        scope.define(m.name.name, v);
      } else if (m.name) {
        inst.members.set(m.name.name, { kind: "fn", fn: m, module, self: inst });
      }
    }
    return inst;
  }

  /**
   * A param of a layer in a repeat stack. The stack holds ONE tensor per param of the
   * repeated block, `stack.layers.ff.w1`: f32[L, …] (the repeat counts lead; nested
   * repeats add one each); the layer reads its slice, `stack.layers[3].ff.w1`, as a view.
   */
  private layerParam(stacked: string, own: string, slots: RepeatSlot[], type: { shape: number[]; dtype: DType }, labels: Label[], info: ParamInfo): TensorValue {
    const counts = slots.map((s) => s.count);
    const full = [...counts, ...type.shape];
    // (with an f32 master, the layers read slices of the whole stack's f16 rounding)
    const source = this.halfOf(this.g.source("param", stacked, { shape: full, dtype: type.dtype }, info.span), info.master === true, info.span);
    if (!this.params.has(stacked)) {
      this.params.set(stacked, { ...info, path: stacked, shape: full, stacked: { lead: slots.length, names: sliceNames(stacked, slots) } });
    }
    const index = slots.map((s) => s.index);
    const sl = this.g.add("slice", [source], { starts: [...index, ...type.shape.map(() => 0)], steps: full.map(() => 1), shape: [...counts.map(() => 1), ...type.shape] }, info.span);
    const id = reshape(this.g, sl, type.shape);
    this.views.set(id, { graph: this.g, source, index });
    this.layerParams.set(own, { source: stacked, index, view: id });
    return { kind: "tensor", id, labels };
  }

  /** The f16 value the program reads of master param `source` (a cast, remembered); `source` itself without a master. */
  private halfOf(source: number, master: boolean, span: Span): number {
    if (!master) return source;
    const id = this.g.add("cast", [source], { dtype: "f16" }, span);
    this.masters.set(id, { graph: this.g, source });
    return id;
  }

  /**
   * The param source behind a value the program reads: the source itself, or the f32
   * master of an f16 param's rounding (LowerOptions.masterWeights). Undefined otherwise.
   */
  paramSource(id: number): number | undefined {
    if (this.g.node(id).op === "param") return id;
    const m = this.masters.get(id);
    return m && m.graph === this.g ? m.source : undefined;
  }

  /** A layer's param view (in the graph being built), if `id` is one. */
  layerView(id: number): LayerView | undefined {
    const v = this.views.get(id);
    return v && v.graph === this.g ? v : undefined;
  }

  /** The scope inside a block's fns: its dims, params, sub-instances and named fns. */
  instanceScope(inst: Instance): Scope {
    const s = new Scope();
    for (const [name, d] of inst.dims) s.define(name, { kind: "number", value: d.value, isInt: true, label: d.label });
    for (const [name, v] of inst.members) s.define(name, v);
    return s;
  }

  private paramInit(init: Expr | undefined, shape: number[], scope: Scope, module: Module): ParamInit {
    if (!init) return { kind: "zeros" };
    const name = init.kind === "ident" ? init.name : init.kind === "call" && init.callee.kind === "ident" ? init.callee.name : undefined;
    const arg = () => {
      if (init.kind !== "call" || init.args.length !== 1) this.fail(init.span, `${name} takes one argument`, Code.BadInit);
      const v = this.evalExpr(init.args[0].value, scope, module);
      if (v.kind !== "number") this.fail(init.args[0].span, `expected a number, found ${describe(v)}`, Code.BadInit);
      return v.value;
    };
    if (init.kind === "number" || (init.kind === "unary" && init.operand.kind === "number")) {
      const v = this.evalExpr(init, scope, module);
      if (v.kind === "number") return { kind: "constant", scale: v.value };
    }
    switch (name) {
      case "zeros":
      case "ones":
      case "glorot":
        if (init.kind === "call") this.fail(init.span, `${name} takes no arguments`, Code.BadInit);
        if (name === "glorot" && shape.length === 0) this.fail(init.span, "glorot needs a parameter of rank ≥ 1", Code.BadInit);
        return { kind: name };
      case "normal":
        return { kind: "normal", scale: arg() };
      case "uniform":
        return { kind: "uniform", scale: arg() };
      default:
        return this.fail(init.span, `unknown initialiser; expected a number, zeros, ones, glorot, normal(std) or uniform(bound)`, Code.BadInit);
    }
  }

  /** `Block(dims)`, `repeat(L) Block(dims)`, `frozen e`, `e from "ckpt"` — where an instance is created. */
  evalInstance(e: Expr, scope: Scope, module: Module, path: string, frozen = false, from?: string, at: Placement = { stackPath: path, slots: [] }): Value {
    switch (e.kind) {
      case "frozen":
        return this.evalInstance(e.body, scope, module, path, true, from, at);
      case "from":
        return this.evalInstance(e.body, scope, module, path, frozen, this.resolvePath(module, e.path.value), at);
      case "paren":
        return this.evalInstance(e.expr, scope, module, path, frozen, from, at);
      case "call": {
        const callee = this.evalExpr(e.callee, scope, module);
        if (callee.kind !== "block") break;
        const dims = e.args.map((a) => {
          if (a.name) this.fail(a.span, "block dims are positional", Code.Arity);
          return this.evalDim(a.value, scope, module);
        });
        return { kind: "instance", inst: this.instantiate(callee.block, callee.module, dims, path, e.span, frozen, from, at) };
      }
      case "repeat": {
        // L instances, `path[i]`, whose params are stacked: each param of the block is one
        // tensor with a leading L dim (`path.ff.w1`), and instance i reads its slice i.
        const count = this.evalDim(e.count, scope, module);
        const n = count.value;
        const items: Instance[] = [];
        for (let i = 0; i < n; i++) {
          const slot: RepeatSlot = { index: i, count: n, label: count.label, stackPath: at.stackPath };
          const v = this.evalInstance(e.body, scope, module, `${path}[${i}]`, frozen, from, { stackPath: at.stackPath, slots: [...at.slots, slot] });
          if (v.kind !== "instance") return this.fail(e.body.span, `repeat builds instances of a block, found ${describe(v)}`, Code.InstanceHere);
          items.push(v.inst);
        }
        return { kind: "instances", items };
      }
      default:
        break;
    }
    return this.evalExpr(e, scope, module);
  }

  resolvePath(module: Module, rel: string): string {
    if (rel.startsWith("/")) return rel;
    const dir = module.file.includes("/") ? module.file.slice(0, module.file.lastIndexOf("/")) : ".";
    return `${dir}/${rel}`;
  }

  // ------------------------------------------------------------ annotations

  /** Evaluates a tensor type annotation to concrete dims (binding unbound global dims to `actual`). */
  tensorAnnotation(t: TypeExpr, scope: Scope, module: Module, actual?: readonly number[]): { dtype: DType; dims: Dim[] } {
    if (t.kind !== "tensorType") return this.fail(t.span, "expected a tensor type", Code.UnknownDtype);
    const dtype = t.dtype.name;
    if (!DTYPES.has(dtype)) {
      this.fail(t.dtype.span, `unknown dtype '${dtype}'; expected f32, f16, i32 or bool`, Code.UnknownDtype);
    }
    const dims = t.dims ?? [];
    const rest = dims.findIndex((d) => d.kind === "restDim");
    const out: Dim[] = [];
    if (rest > 0) this.fail(dims[rest].span, "`..` must be the first dim", Code.UnknownDtype);
    const fixed = rest === 0 ? dims.slice(1) : dims;
    const lead = actual ? actual.length - fixed.length : 0;
    if (rest === 0) {
      if (actual && lead < 0) return { dtype: dtype as DType, dims: [] };
      for (let i = 0; i < lead; i++) out.push({ value: actual![i], label: "" });
    }
    fixed.forEach((d, i) => out.push(this.annotationDim(d, scope, module, actual?.[lead + i])));
    return { dtype: dtype as DType, dims: out };
  }

  private annotationDim(d: DimExpr, scope: Scope, module: Module, actual: number | undefined): Dim {
    if (d.kind === "restDim") return this.fail(d.span, "`..` must be the first dim", Code.UnknownDtype);
    if (d.kind === "inferDim") return { value: actual ?? -1, label: "" };
    if (d.kind === "ident" && !scope.lookup(d.name)) {
      const g = this.globalsOf(module).get(d.name);
      if (g?.kind === "dim") {
        const v = this.globalDim(d.name, module, d.span);
        if (v === undefined) {
          if (actual === undefined) this.fail(d.span, `dim ${d.name} has no value here`, Code.NoValue, `give it one: \`dim ${d.name} = ...\` or --dim ${d.name}=N`);
          this.bindDim(d.name, actual);
          return { value: actual, label: d.name };
        }
        return { value: v, label: d.name };
      }
      if (!g) this.fail(d.span, `unknown dim '${d.name}'`, Code.UnknownName, `declare it: \`dim ${d.name}\``);
    }
    return this.evalDim(d, scope, module);
  }

  /** Checks a value against a parameter or return annotation; relabels tensors with the annotation's names. */
  conform(v: Value, t: TypeExpr | undefined, scope: Scope, module: Module, span: Span, what: string): Value {
    if (!t) return v;
    if (t.kind === "namedType") {
      const ok = t.repeat
        ? v.kind === "instances" && v.items.every((i) => i.block.name.name === t.name.name)
        : v.kind === "instance" && v.inst.block.name.name === t.name.name;
      if (!ok) this.fail(span, `${what}: expected ${t.repeat ? "repeat " : ""}${t.name.name}, found ${describe(v)}`, Code.TypeMismatch, undefined);
      return v;
    }
    if (t.kind === "tupleType") {
      if (v.kind !== "tuple" || v.items.length !== t.items.length) this.fail(span, `${what}: expected a tuple of ${t.items.length}, found ${describe(v)}`, Code.TypeMismatch);
      return { kind: "tuple", items: v.items.map((x, i) => this.conform(x, t.items[i], scope, module, span, what)) };
    }
    let tv: TensorValue;
    if (v.kind === "number" && (t.dims ?? []).length === 0) {
      const dtype = t.dtype.name as DType;
      tv = { kind: "tensor", id: this.g.add("const", [], { value: v.value, shape: [], dtype }), labels: [] };
    } else if (v.kind === "tensor") {
      tv = v;
    } else {
      return this.fail(span, `${what}: expected a tensor ${typeText(t)}, found ${describe(v)}`, Code.TypeMismatch);
    }
    const type = this.g.type(tv.id);
    const ann = this.tensorAnnotation(t, scope, module, type.shape);
    if (ann.dtype !== type.dtype) {
      // Data read from JSON has no f32/i32 distinction for whole numbers: widen integer inputs.
      if ((ann.dtype === "f32" || ann.dtype === "f16") && type.dtype === "i32" && this.g.node(tv.id).op === "input") {
        tv = { kind: "tensor", id: this.g.add("cast", [tv.id], { dtype: ann.dtype }), labels: tv.labels };
      } else {
        this.fail(span, `${what}: expected ${typeText(t)}, found ${fmtType(type)}`, Code.DtypeMismatch);
      }
    }
    const expected = ann.dims.map((d) => d.value);
    const rankOk = expected.length === type.shape.length;
    if (!rankOk || expected.some((d, i) => d !== -1 && d !== type.shape[i])) {
      const dimsText = ann.dims.map((d) => (d.label && d.label !== String(d.value) ? `${d.label}=${d.value}` : String(d.value))).join(", ");
      this.fail(span, `${what}: expected ${typeText(t)} = ${ann.dtype}[${dimsText}], found ${fmtType(this.g.type(tv.id))}`, Code.Annotation);
    }
    return { kind: "tensor", id: tv.id, labels: ann.dims.map((d, i) => d.label || tv.labels[i]) };
  }

  // ------------------------------------------------------------ fns

  /**
   * The leading dims shared by the arguments typed `f32[.., ...]`: their NumPy broadcast, to
   * which each is broadcast on entry (the checker's rule for a signature's `..`). Undefined
   * when fewer than two such arguments differ.
   */
  private leadingGroup(fn: FnItem, args: Value[], named: Map<string, Value>, name: string, span: Span): number[] | undefined {
    const leads: { param: string; lead: number[] }[] = [];
    fn.params.forEach((p, i) => {
      const v = i < args.length ? args[i] : named.get(p.name.name);
      const k = restTrailing(p.type);
      if (k === undefined || v?.kind !== "tensor") return;
      const shape = this.g.type(v.id).shape;
      if (shape.length >= k) leads.push({ param: p.name.name, lead: shape.slice(0, shape.length - k) });
    });
    if (leads.length < 2 || leads.every((l) => l.lead.join() === leads[0].lead.join())) return undefined;
    let group = leads[0].lead;
    for (const l of leads.slice(1)) {
      const b = broadcastShapes(group, l.lead);
      if (!b) this.fail(span, `the leading dims \`..\` of ${name}'s arguments do not broadcast: '${leads[0].param}' has [${leads[0].lead.join(", ")}], '${l.param}' has [${l.lead.join(", ")}]`, Code.DimMismatch);
      group = b;
    }
    return group;
  }

  callFn(fn: FnItem, module: Module, base: Scope | undefined, args: Value[], named: Map<string, Value>, span: Span): Value {
    const name = fn.name?.name ?? "forward";
    if (!fn.body) this.fail(span, `${name} is declared without a body`, Code.NotCallable);
    if (++this.depth > MAX_INLINE_DEPTH) this.fail(span, `calls nested more than ${MAX_INLINE_DEPTH} deep (is ${name} recursive?)`, Code.Recursion);
    try {
      const scope = base ? base.child() : new Scope();
      if (args.length > fn.params.length) this.fail(span, `${name} takes ${fn.params.length} argument${fn.params.length === 1 ? "" : "s"}, found ${args.length}`, Code.Arity);
      for (const key of named.keys()) {
        if (!fn.params.some((p) => p.name.name === key)) {
          this.fail(span, `${name} has no parameter '${key}'`, Code.UnknownNamedArg, `its parameters: ${fn.params.map((p) => p.name.name).join(", ")}`);
        }
      }
      const lead = this.leadingGroup(fn, args, named, name, span);
      fn.params.forEach((p, i) => {
        let v = i < args.length ? args[i] : named.get(p.name.name);
        if (i < args.length && named.has(p.name.name)) this.fail(span, `argument '${p.name.name}' given twice`, Code.UnknownNamedArg);
        if (v === undefined) {
          if (!p.default) this.fail(span, `missing argument '${p.name.name}' of ${name}`, Code.MissingArg);
          v = this.evalExpr(p.default, scope, module);
        }
        const k = restTrailing(p.type);
        if (lead && k !== undefined && v.kind === "tensor") {
          const shape = this.g.type(v.id).shape;
          if (shape.length >= k) {
            const target = [...lead, ...shape.slice(shape.length - k)];
            const labels = [...lead.map((): Label => undefined), ...v.labels.slice(shape.length - k)];
            v = { kind: "tensor", id: broadcastTo(this.g, v.id, target, span), labels };
          }
        }
        scope.define(p.name.name, this.conform(v, p.type, scope, module, span, `argument '${p.name.name}' of ${name}`));
      });
      let result: Value;
      try {
        result = fn.body!.kind === "block" ? this.evalBlock(fn.body as BlockStmt, scope, module) : this.evalExpr(fn.body as Expr, scope, module);
      } catch (e) {
        if (!(e instanceof ReturnSignal)) throw e;
        result = e.value;
      }
      return this.conform(result, fn.ret, scope, module, fn.ret?.span ?? span, `the result of ${name}`);
    } finally {
      this.depth--;
    }
  }

  callInstance(inst: Instance, args: Value[], named: Map<string, Value>, span: Span): Value {
    const fwd = inst.block.members.find((m): m is FnItem => m.kind === "fn" && !m.name);
    if (!fwd) this.fail(span, `${inst.block.name.name} has no forward fn to call`, Code.NotCallable, "add `fn (x: ...) -> ... = ...` to the block");
    return this.callFn(fwd, inst.module, this.instanceScope(inst), args, named, span);
  }

  // ------------------------------------------------------------ statements

  evalBlock(b: BlockStmt, parent: Scope, module: Module): Value {
    const scope = parent.child();
    let last: Value = { kind: "none" };
    for (const s of b.stmts) last = this.evalStmt(s, scope, module);
    return last;
  }

  private evalStmt(s: Stmt, scope: Scope, module: Module): Value {
    switch (s.kind) {
      case "let":
      case "var": {
        let v = this.evalExpr(s.value, scope, module);
        if (s.type) v = this.conform(v, s.type, scope, module, s.value.span, `'${patternText(s.target)}'`);
        this.bindPattern(s.target, v, scope, s.kind === "var");
        return { kind: "none" };
      }
      case "assign": {
        const b = scope.lookup(s.target.name);
        if (!b) this.fail(s.target.span, `unknown name '${s.target.name}'`, Code.UnknownName);
        if (!b.mutable) this.fail(s.target.span, `'${s.target.name}' is not a var; only a \`var\` can be reassigned`, Code.Assign);
        const v = this.evalExpr(s.value, scope, module);
        if (b.value.kind === "tensor" && v.kind === "tensor") {
          const a = this.g.type(b.value.id);
          const c = this.g.type(v.id);
          if (fmtType(a) !== fmtType(c)) this.fail(s.value.span, `'${s.target.name}' is ${fmtType(a)}; cannot assign ${fmtType(c)}`, Code.Assign);
        }
        b.value = v;
        return { kind: "none" };
      }
      case "for": {
        const lo = this.evalExpr(s.start, scope, module);
        const hi = this.evalExpr(s.end, scope, module);
        if (lo.kind !== "number" || hi.kind !== "number" || !lo.isInt || !hi.isInt) this.fail(s.span, "loop bounds must be compile-time integers", Code.NotCompileTime);
        for (let i = lo.value; i < hi.value; i++) {
          const body = scope.child();
          body.define(s.variable.name, { kind: "number", value: i, isInt: true });
          this.evalBlock(s.body, body, module);
        }
        return { kind: "none" };
      }
      case "return":
        throw new ReturnSignal(this.evalExpr(s.value, scope, module));
      case "exprStmt":
        return this.evalExpr(s.expr, scope, module);
      case "errorStmt":
        return this.fail(s.span, "this statement did not parse", Code.ParseError);
    }
  }

  private bindPattern(p: Pattern, v: Value, scope: Scope, mutable: boolean): void {
    if (p.kind === "ident") {
      scope.define(p.name, v, mutable);
      return;
    }
    if (v.kind !== "tuple" || v.items.length !== p.items.length) this.fail(p.span, `cannot destructure ${describe(v)} into ${p.items.length} names`, Code.TypeMismatch);
    p.items.forEach((q, i) => this.bindPattern(q, v.items[i], scope, mutable));
  }

  // ------------------------------------------------------------ expressions

  evalExpr(e: Expr, scope: Scope, module: Module): Value {
    switch (e.kind) {
      case "number":
        return { kind: "number", value: e.value, isInt: e.isInt };
      case "string":
        return { kind: "string", value: e.value };
      case "bool":
        return { kind: "bool", value: e.value };
      case "none":
        return { kind: "none" };
      case "ident":
        return this.evalIdent(e, scope, module);
      case "paren":
        return this.evalExpr(e.expr, scope, module);
      case "blockExpr":
        return this.evalBlock(e.block, scope, module);
      case "list":
        return { kind: "list", items: e.items.map((x) => this.evalExpr(x, scope, module)) };
      case "tuple":
        return { kind: "tuple", items: e.items.map((x) => this.evalExpr(x, scope, module)) };
      case "record":
        return { kind: "record", fields: new Map(e.fields.map((f) => [f.name.name, this.evalExpr(f.value, scope, module)])), span: e.span };
      case "unary":
        return this.evalUnary(e.op, this.evalExpr(e.operand, scope, module), e.span);
      case "binary":
        return this.evalBinary(e.op, this.evalExpr(e.left, scope, module), this.evalExpr(e.right, scope, module), e.span);
      case "if": {
        const c = this.evalExpr(e.cond, scope, module);
        if (c.kind !== "bool") this.fail(e.cond.span, `an \`if\` condition must be known at compile time (a bool), found ${describe(c)}`, Code.NotCompileTime, "on tensors, use where(cond, a, b)");
        if (c.value) return this.evalBlock(e.then, scope, module);
        if (!e.else) return { kind: "none" };
        return e.else.kind === "if" ? this.evalExpr(e.else, scope, module) : this.evalBlock(e.else, scope, module);
      }
      case "member":
        return this.evalMember(this.evalExpr(e.object, scope, module), e.name, e.span);
      case "index":
        return this.evalIndex(this.evalExpr(e.object, scope, module), e.indices, scope, module, e.span);
      case "call":
        return this.evalCall(e, scope, module);
      case "repeat":
      case "frozen":
      case "from":
        return this.fail(e.span, "an instance is created only in a block member or a train job field", Code.InstanceHere);
      case "error":
        return this.fail(e.span, "this expression did not parse", Code.ParseError);
    }
  }

  private evalIdent(e: Ident, scope: Scope, module: Module): Value {
    const local = scope.lookup(e.name);
    if (local) return local.value;
    if (e.name === "training") return { kind: "bool", value: this.opts.training ?? false };
    const g = this.globalsOf(module).get(e.name);
    if (g) {
      switch (g.kind) {
        case "block":
          return { kind: "block", block: g.item, module: g.module };
        case "fn":
          return { kind: "fn", fn: g.item, module: g.module };
        case "namespace":
          return { kind: "namespace", module: g.module };
        case "train":
          return this.fail(e.span, `'${e.name}' is a train job, not a value`, Code.TypeMismatch);
        case "dim": {
          const v = this.globalDim(e.name, module, e.span);
          if (v === undefined) this.fail(e.span, `dim ${e.name} has no value yet`, Code.NoValue, `give it a default (\`dim ${e.name} = 64\`) or pass --dim ${e.name}=N`);
          return { kind: "number", value: v, isInt: true, label: e.name };
        }
      }
    }
    if (isBuiltin(e.name)) return { kind: "builtin", name: e.name };
    // dtype names as values: cast(x, i32), zeros([N], i32)
    if (DTYPES.has(e.name)) return { kind: "string", value: e.name };
    const candidates = [...this.scopeNames(scope), ...this.globalsOf(module).keys(), ...builtinNames()];
    const near = didYouMean(e.name, candidates);
    return this.fail(e.span, `unknown name '${e.name}'`, Code.UnknownName, near ? `did you mean \`${near}\`?` : undefined);
  }

  private scopeNames(scope: Scope): string[] {
    const out: string[] = [];
    for (let s: Scope | undefined = scope; s; s = s.parent) out.push(...s.namesHere());
    return out;
  }

  evalMember(obj: Value, name: Ident, span: Span): Value {
    if (obj.kind === "instances") return this.stackMember(obj.items, name, span);
    if (obj.kind === "instance") {
      const m = obj.inst.members.get(name.name) ?? dimMember(obj.inst, name.name);
      if (!m) {
        const near = didYouMean(name.name, [...obj.inst.members.keys()]);
        this.fail(name.span, `${obj.inst.block.name.name} has no member '${name.name}'`, Code.UnknownMember, near ? `did you mean \`${near}\`?` : undefined);
      }
      return m;
    }
    if (obj.kind === "record") {
      const f = obj.fields.get(name.name);
      if (!f) {
        const near = didYouMean(name.name, [...obj.fields.keys()]);
        this.fail(name.span, `no field '${name.name}' (fields: ${[...obj.fields.keys()].join(", ")})`, Code.UnknownMember, near ? `did you mean \`${near}\`?` : undefined);
      }
      return f;
    }
    if (obj.kind === "namespace") {
      const g = this.globalsOf(obj.module).get(name.name);
      if (!g) this.fail(name.span, `${obj.module.file} has no item '${name.name}'`, Code.UnknownMember);
      return this.evalIdent(name, new Scope(), obj.module);
    }
    return this.fail(span, `${describe(obj)} has no members`, Code.UnknownMember);
  }

  /**
   * `layers.ff.w1` on a repeat: the member of every layer, stacked along the repeat's axis
   * — the stacked param itself (or, inside a nested repeat, its slice). `layers.ff` is the
   * repeat of the layers' `ff` instances.
   */
  private stackMember(items: readonly Instance[], name: Ident, span: Span): Value {
    if (!items.length) return this.fail(span, `an empty repeat has no member '${name.name}'`, Code.UnknownMember);
    const ms = items.map((inst) => this.evalMember({ kind: "instance", inst }, name, span));
    const m0 = ms[0];
    switch (m0.kind) {
      case "instance":
        return { kind: "instances", items: ms.map((m) => (m as Extract<Value, { kind: "instance" }>).inst) };
      case "number":
        return m0;
      case "tensor":
        return this.stackTensors(ms as TensorValue[], items[0].slots[items[0].slots.length - 1]?.label, span);
      case "fn":
        return this.fail(span, `index the repeat first to call a fn: layers[i].${name.name}(...)`, Code.TypeMismatch);
      default:
        return this.fail(span, `'${name.name}' is itself a repeat: index the outer repeat first (layers[i].${name.name})`, Code.UnknownMember);
    }
  }

  /** The layers' views of one stacked param, as the stacked tensor (or its slice); else joined. */
  private stackTensors(ts: readonly TensorValue[], label: string | undefined, span: Span): TensorValue {
    const inner = this.g.type(ts[0].id).shape;
    const labels: Label[] = [label, ...ts[0].labels];
    const views = ts.map((t) => this.layerView(t.id));
    const v0 = views[0];
    if (v0) {
      const k = v0.index.length - 1;
      const full = this.g.type(v0.source).shape;
      const whole = views.every((v, i) => v && v.source === v0.source && v.index[k] === i && v.index.every((x, j) => j === k || x === v0.index[j])) && ts.length === full[k];
      if (whole && k === 0) return { kind: "tensor", id: v0.source, labels };
      if (whole) {
        // inside an outer repeat: the outer indices are fixed
        const starts = full.map((_, a) => (a < k ? v0.index[a] : 0));
        const sizes = full.map((d, a) => (a < k ? 1 : d));
        const sl = this.op("slice", [v0.source], { starts, steps: full.map(() => 1), shape: sizes }, span);
        return { kind: "tensor", id: reshape(this.g, sl, [ts.length, ...inner]), labels };
      }
    }
    // Not the views of one stacked param (inside `map`, params are stand-ins): join them.
    const lifted = ts.map((t) => reshape(this.g, t.id, [1, ...inner]));
    return { kind: "tensor", id: lifted.length === 1 ? lifted[0] : this.op("concat", lifted, { axis: 0 }, span), labels };
  }

  /**
   * The params of an instance as a record, sub-instances nested (params first, then
   * sub-instances, as the checker types it); of a repeat, the same with stacked tensors.
   * What `grad(loss, inst)` differentiates with respect to, and what `sizeof` counts.
   */
  paramTree(v: Value, span: Span): Value | undefined {
    if (v.kind === "tensor") return v;
    if (v.kind !== "instance" && v.kind !== "instances") return undefined;
    const first = v.kind === "instance" ? v.inst : v.items[0];
    const fields = new Map<string, Value>();
    if (!first) return { kind: "record", fields, span };
    const member = (name: string): Value => (v.kind === "instance" ? v.inst.members.get(name)! : this.stackMember(v.items, { kind: "ident", name, span }, span));
    const names = [...first.members].filter(([, m]) => m.kind === "tensor").map(([k]) => k);
    const subs = [...first.members].filter(([, m]) => m.kind === "instance" || m.kind === "instances").map(([k]) => k);
    for (const k of names) fields.set(k, member(k));
    for (const k of subs) {
      if (v.kind === "instances" && first.members.get(k)!.kind === "instances") {
        this.fail(span, `'${k}' is a repeat inside a repeat: take its params through one layer (layers[i].${k})`, Code.Grad);
      }
      fields.set(k, this.paramTree(member(k), span)!);
    }
    return { kind: "record", fields, span };
  }

  /** The tensors of a param tree, in order. */
  treeLeaves(v: Value): TensorValue[] {
    if (v.kind === "tensor") return [v];
    if (v.kind === "record") return [...v.fields.values()].flatMap((x) => this.treeLeaves(x));
    return [];
  }

  /**
   * Gradients of scalar `y` with respect to each target. A layer's param view is
   * differentiated as the slice of the stacked param it is: its gradient is the slice of
   * the stacked param's gradient (every use of the stacked tensor counts).
   */
  gradients(y: number, targets: readonly number[]): number[] {
    const wrt = targets.map((t) => this.layerView(t)?.source ?? t);
    const unique = [...new Set(wrt)];
    const grads = vjp(this.g, y, unique);
    const of = new Map(unique.map((w, i) => [w, grads[i]]));
    return targets.map((t, i) => {
      const v = this.layerView(t);
      return v ? this.sliceGrad(of.get(wrt[i])!, v.index, this.g.type(t).shape) : of.get(wrt[i])!;
    });
  }

  /** Layer `index`'s slice of a stacked gradient; the piece itself when that is a concat's. */
  private sliceGrad(grad: number, index: readonly number[], shape: Shape): number {
    const n = this.g.node(grad);
    if (n.op === "concat" && index.length === 1 && n.attrs.axis === 0) {
      let at = 0;
      for (const piece of n.inputs) {
        const len = this.g.type(piece).shape[0];
        if (at === index[0] && len === 1) return reshape(this.g, piece, shape);
        at += len;
      }
    }
    const full = this.g.type(grad).shape;
    const starts = full.map((_, a) => index[a] ?? 0);
    const sizes = full.map((d, a) => (a < index.length ? 1 : d));
    return reshape(this.g, this.g.add("slice", [grad], { starts, steps: full.map(() => 1), shape: sizes }), shape);
  }

  private evalIndex(obj: Value, indices: IndexItem[], scope: Scope, module: Module, span: Span): Value {
    if (obj.kind === "instances" || obj.kind === "list" || obj.kind === "tuple") {
      if (indices.length !== 1 || indices[0].kind === "slice" || indices[0].kind === "restDim") this.fail(span, "index a list with one integer", Code.Index);
      const i = this.evalExpr(indices[0] as Expr, scope, module);
      const items: readonly unknown[] = obj.items;
      if (i.kind !== "number" || !i.isInt || i.value < 0 || i.value >= items.length) this.fail(span, `index out of range 0..${items.length}`, Code.Index);
      return obj.kind === "instances" ? { kind: "instance", inst: obj.items[i.value] } : obj.items[i.value];
    }
    if (obj.kind !== "tensor") return this.fail(span, `${describe(obj)} cannot be indexed`, Code.Index);
    // NumPy basic indexing: `None` adds an axis, an integer picks one (and drops the axis),
    // `a:b:c` slices with compile-time bounds (negative counts from the end). All views.
    const type = this.g.type(obj.id);
    const rank = type.shape.length;
    const starts = new Array<number>(rank).fill(0);
    const steps = new Array<number>(rank).fill(1);
    const sizes = [...type.shape];
    const shape: number[] = [];
    const labels: Label[] = [];
    let axis = 0;
    const gathers: { axis: number; index: TensorValue }[] = [];
    const int = (e: Expr | undefined, what: string): number | undefined => {
      if (!e) return undefined;
      const v = this.evalExpr(e, scope, module);
      if (v.kind !== "number" || !v.isInt) this.fail(e.span, `${what} must be a compile-time integer, found ${describe(v)}`, Code.Index);
      return v.value;
    };
    // `..` stands for the axes the other items do not address: as many `:` as that
    const restAt = indices.findIndex((ix) => ix.kind === "restDim");
    if (restAt >= 0) {
      const addressed = indices.filter((ix) => ix.kind !== "none" && ix.kind !== "restDim").length;
      if (addressed > rank) this.fail(span, `too many indices for ${this.typeText(obj)}`, Code.Index);
      const all: IndexItem = { kind: "slice", span: indices[restAt].span };
      indices = [...indices.slice(0, restAt), ...Array.from({ length: rank - addressed }, () => all), ...indices.slice(restAt + 1)];
      if (indices.some((ix) => ix.kind === "restDim")) this.fail(span, "an index has at most one `..`", Code.Index);
    }
    for (const ix of indices) {
      if (ix.kind === "restDim") continue;
      if (ix.kind === "none") {
        shape.push(1);
        labels.push(undefined);
        continue;
      }
      if (axis >= rank) this.fail(ix.span, `too many indices for ${this.typeText(obj)}`, Code.Index);
      const n = type.shape[axis];
      if (ix.kind === "slice") {
        const step = int(ix.step, "a slice step") ?? 1;
        if (step < 1) this.fail(ix.step!.span, "slice steps must be positive", Code.Index);
        const norm = (v: number | undefined, dflt: number) => (v === undefined ? dflt : Math.min(n, Math.max(0, v < 0 ? n + v : v)));
        const lo = norm(int(ix.start, "a slice start"), 0);
        const hi = norm(int(ix.end, "a slice end"), n);
        const len = Math.max(0, Math.ceil((hi - lo) / step));
        starts[axis] = lo;
        steps[axis] = step;
        sizes[axis] = len;
        shape.push(len);
        labels.push(len === n ? obj.labels[axis] : undefined);
      } else {
        const v = this.evalExpr(ix as Expr, scope, module);
        if (v.kind === "tensor" && this.dtypeOf(v) === "i32") {
          // an i32 tensor index: the whole axis here, then gathered (its dims replace the axis)
          gathers.push({ axis: shape.length, index: v });
          shape.push(n);
          labels.push(undefined);
          axis++;
          continue;
        }
        if (v.kind !== "number" || !v.isInt) this.fail(ix.span, `an index must be a compile-time integer or an i32 tensor, found ${describe(v)}`, Code.Index);
        const i = v.value;
        const k = i < 0 ? n + i : i;
        if (k < 0 || k >= n) this.fail(ix.span, `index ${i} is out of range for an axis of size ${n}`, Code.Index);
        starts[axis] = k;
        sizes[axis] = 1;
      }
      axis++;
    }
    for (; axis < rank; axis++) {
      shape.push(type.shape[axis]);
      labels.push(obj.labels[axis]);
    }
    const whole = starts.every((s0, k) => s0 === 0 && steps[k] === 1 && sizes[k] === type.shape[k]);
    const sliced = whole ? obj.id : this.op("slice", [obj.id], { starts, steps, shape: sizes }, span);
    let out: TensorValue = { kind: "tensor", id: reshape(this.g, sliced, shape), labels };
    // last axis first, so that the axes before each one stay where they are
    for (const { axis: at, index } of gathers.reverse()) {
      const id = this.op("gather", [out.id, index.id], { axis: at }, span);
      out = { kind: "tensor", id, labels: [...out.labels.slice(0, at), ...index.labels, ...out.labels.slice(at + 1)] };
    }
    return out;
  }

  private evalCall(e: Extract<Expr, { kind: "call" }>, scope: Scope, module: Module): Value {
    const callee = this.evalExpr(e.callee, scope, module);
    const args: Value[] = [];
    const named = new Map<string, Value>();
    for (const a of e.args) {
      if (a.name) {
        if (named.has(a.name.name)) this.fail(a.name.span, `argument '${a.name.name}' given twice`, Code.UnknownNamedArg);
        named.set(a.name.name, this.evalExpr(a.value, scope, module));
      } else {
        if (named.size) this.fail(a.span, "positional arguments must come before named ones", Code.UnknownNamedArg);
        args.push(this.evalExpr(a.value, scope, module));
      }
    }
    switch (callee.kind) {
      case "builtin":
        return callBuiltin(this, callee.name, args, named, e, scope, module);
      case "fn":
        return this.callFn(callee.fn, callee.module, callee.self ? this.instanceScope(callee.self) : undefined, args, named, e.span);
      case "instance":
        return this.callInstance(callee.inst, args, named, e.span);
      case "block":
        return this.fail(e.span, `${callee.block.name.name}(...) creates an instance; write it as a block member (\`f = ${callee.block.name.name}(...)\`) or a train job field`, Code.InstanceHere);
      default:
        return this.fail(e.callee.span, `${describe(callee)} is not callable`, Code.NotCallable);
    }
  }

  // ------------------------------------------------------------ arithmetic

  /** A tensor for `v`; numbers become constants of `like`'s dtype (f32 by default). */
  tensor(v: Value, span: Span, like?: DType): TensorValue {
    if (v.kind === "tensor") return v;
    if (v.kind === "number") {
      const dtype = like ?? "f32";
      return { kind: "tensor", id: this.g.add("const", [], { value: v.value, shape: [], dtype }), labels: [] };
    }
    if (v.kind === "bool") return { kind: "tensor", id: this.g.add("const", [], { value: +v.value, shape: [], dtype: "bool" }), labels: [] };
    return this.fail(span, `expected a tensor, found ${describe(v)}`, Code.TypeMismatch);
  }

  dtypeOf(v: TensorValue): DType {
    return this.g.type(v.id).dtype;
  }

  /** Applies a same-shape primitive to broadcast operands, merging axis labels. */
  nary(op: string, xs: TensorValue[], span: Span, attrs: Record<string, number | string | boolean | readonly number[]> = {}): TensorValue {
    const shapes = xs.map((x) => this.g.type(x.id).shape);
    let shape: number[] = [];
    for (const s of shapes) {
      const b = broadcastShapes(shape, s);
      if (!b) {
        const text = xs.map((x) => this.typeText(x)).join(" with ");
        this.fail(span, `cannot broadcast ${text}`, Code.DimMismatch, shapes.length === 2 && shapes[0].length !== shapes[1].length ? "insert `None` to add an axis: x[:, None]" : undefined);
      }
      shape = b;
    }
    // Each output axis takes the name of an operand axis of the same size (a broadcast
    // axis of size 1 lends no name to a larger one).
    const labels: Label[] = shape.map((d, i) => {
      for (const x of xs) {
        const s = this.g.type(x.id).shape;
        const j = i - (shape.length - s.length);
        if (j >= 0 && s[j] === d && x.labels[j]) return x.labels[j];
      }
      return undefined;
    });
    const ids = xs.map((x) => (this.g.type(x.id).shape.length === shape.length && this.g.type(x.id).shape.every((d, i) => d === shape[i]) ? x.id : this.op("broadcast", [x.id], { shape }, span)));
    return { kind: "tensor", id: this.op(op, ids, attrs, span), labels };
  }

  typeText(x: TensorValue): string {
    const t = this.g.type(x.id);
    return `${t.dtype}[${t.shape.map((d, i) => (x.labels[i] && x.labels[i] !== String(d) ? `${x.labels[i]}=${d}` : String(d))).join(", ")}]`;
  }

  private evalUnary(op: "-" | "!", v: Value, span: Span): Value {
    if (op === "-") {
      if (v.kind === "number") return { kind: "number", value: -v.value, isInt: v.isInt };
      const t = this.tensor(v, span);
      return { kind: "tensor", id: this.op("neg", [t.id], {}, span), labels: t.labels };
    }
    if (v.kind === "bool") return { kind: "bool", value: !v.value };
    const t = this.tensor(v, span);
    return { kind: "tensor", id: this.op("not", [t.id], {}, span), labels: t.labels };
  }

  evalBinary(op: string, a: Value, b: Value, span: Span): Value {
    if (a.kind === "number" && b.kind === "number") return foldNumbers(this, op, a, b, span);
    if (a.kind === "bool" && b.kind === "bool" && (op === "&&" || op === "||" || op === "==" || op === "!=")) {
      const v = op === "&&" ? a.value && b.value : op === "||" ? a.value || b.value : op === "==" ? a.value === b.value : a.value !== b.value;
      return { kind: "bool", value: v };
    }
    if (op === "@") {
      const x = this.tensor(a, span);
      const y = this.tensor(b, span);
      return this.matmul(x, y, span);
    }
    if (op === "**") return this.power(a, b, span);
    const dtype = a.kind === "tensor" ? this.dtypeOf(a) : b.kind === "tensor" ? this.dtypeOf(b) : "f32";
    const x = this.tensor(a, span, dtype);
    const y = this.tensor(b, span, dtype);
    const prim: Record<string, string> = {
      "+": "add", "-": "sub", "*": "mul", "/": "div", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne", "&&": "and", "||": "or",
    };
    const p = prim[op];
    if (!p) this.fail(span, `operator ${op} is not supported on tensors`, Code.TypeMismatch);
    const tx = this.dtypeOf(x);
    const ty = this.dtypeOf(y);
    if (tx !== ty) this.fail(span, `operands of ${op} differ in dtype: ${this.typeText(x)} and ${this.typeText(y)}`, Code.DtypeMismatch, "convert one with cast(x) or cast(x, i32)");
    return this.nary(p, [x, y], span);
  }

  private power(a: Value, b: Value, span: Span): Value {
    // Small integer powers are products: exact, and defined for negative bases (pow is not).
    if (a.kind === "tensor" && b.kind === "number" && b.isInt && b.value >= 0 && b.value <= 4) {
      let r: TensorValue = { kind: "tensor", id: fill(this.g, 1, a.id), labels: a.labels };
      for (let i = 0; i < b.value; i++) r = i === 0 ? a : this.nary("mul", [r, a], span);
      return r;
    }
    if (a.kind === "number" && a.value <= 0) this.fail(span, `${a.value} ** x is defined here only for a positive base`, Code.TypeMismatch);
    const x = this.tensor(a, span);
    const y = this.tensor(b, span);
    return this.nary("pow", [x, y], span);
  }

  matmul(x: TensorValue, y: TensorValue, span: Span): TensorValue {
    const xs = [...this.g.type(x.id).shape];
    const ys = [...this.g.type(y.id).shape];
    if (xs.length === 0 || ys.length === 0) this.fail(span, "@ needs operands of rank ≥ 1", Code.RankMismatch);
    // NumPy: a rank-1 operand is a row (left) or a column (right), removed from the result.
    const xa = xs.length === 1 ? [1, xs[0]] : xs;
    const ya = ys.length === 1 ? [ys[0], 1] : ys;
    if (xa[xa.length - 1] !== ya[ya.length - 2]) {
      this.fail(span, `@ inner dims differ: ${this.typeText(x)} @ ${this.typeText(y)} (${xa[xa.length - 1]} vs ${ya[ya.length - 2]})`, Code.MatmulInner);
    }
    const batch = broadcastShapes(xa.slice(0, -2), ya.slice(0, -2));
    if (!batch) this.fail(span, `@ batch dims don't broadcast: ${this.typeText(x)} @ ${this.typeText(y)}`, Code.MatmulInner);
    const xl = xs.length === 1 ? [undefined, x.labels[0]] : x.labels;
    const yl = ys.length === 1 ? [y.labels[0], undefined] : y.labels;
    const xb = this.g.add("broadcast", [reshape(this.g, x.id, xa)], { shape: [...batch, ...xa.slice(-2)] });
    const yb = this.g.add("broadcast", [reshape(this.g, y.id, ya)], { shape: [...batch, ...ya.slice(-2)] });
    let id = this.op("matmul", [xb, yb], {}, span);
    let labels: Label[] = [...batchLabels(batch.length, x, y, this), xl[xl.length - 2], yl[yl.length - 1]];
    const shape = [...this.g.type(id).shape];
    if (xs.length === 1 || ys.length === 1) {
      const drop = new Set<number>();
      if (xs.length === 1) drop.add(shape.length - 2);
      if (ys.length === 1) drop.add(shape.length - 1);
      id = reshape(this.g, id, shape.filter((_, i) => !drop.has(i)));
      labels = labels.filter((_, i) => !drop.has(i));
    }
    return { kind: "tensor", id, labels };
  }
}

function batchLabels(n: number, x: TensorValue, y: TensorValue, l: Lowering): Label[] {
  const out: Label[] = [];
  const xs = l.g.type(x.id).shape;
  const ys = l.g.type(y.id).shape;
  for (let i = 0; i < n; i++) {
    const xi = xs.length - 2 - n + i;
    const yi = ys.length - 2 - n + i;
    out.push((xi >= 0 ? x.labels[xi] : undefined) ?? (yi >= 0 ? y.labels[yi] : undefined));
  }
  return out;
}

/** The slices' own names of a stacked param, row-major: `stack.layers[0].ff.w1`, … */
function sliceNames(stacked: string, slots: readonly RepeatSlot[]): string[] {
  let names = [""];
  let prev = "";
  for (const s of slots) {
    const seg = s.stackPath.slice(prev.length);
    names = names.flatMap((n) => Array.from({ length: s.count }, (_, i) => `${n}${seg}[${i}]`));
    prev = s.stackPath;
  }
  return names.map((n) => n + stacked.slice(prev.length));
}

function dimMember(inst: Instance, name: string): Value | undefined {
  const d = inst.dims.get(name);
  return d ? { kind: "number", value: d.value, isInt: true, label: d.label } : undefined;
}

function foldNumbers(l: Lowering, op: string, a: NumberValue, b: NumberValue, span: Span): Value {
  const isInt = a.isInt && b.isInt;
  const label = (sym: string) => (a.label || b.label ? `${a.label ?? a.value}${sym}${b.label ?? b.value}` : undefined);
  switch (op) {
    case "+":
      return { kind: "number", value: a.value + b.value, isInt, label: label("+") };
    case "-":
      return { kind: "number", value: a.value - b.value, isInt, label: label("-") };
    case "*":
      return { kind: "number", value: a.value * b.value, isInt, label: label("*") };
    case "/":
      if (isInt) {
        if (b.value === 0 || a.value % b.value !== 0) {
          l.fail(span, `${a.label ?? a.value} / ${b.label ?? b.value} = ${a.value} / ${b.value} is not a whole number`, Code.DimMismatch, "dims must divide exactly");
        }
        return { kind: "number", value: a.value / b.value, isInt: true, label: label("/") };
      }
      return { kind: "number", value: a.value / b.value, isInt: false };
    case "%":
      return { kind: "number", value: a.value % b.value, isInt };
    case "**":
      return { kind: "number", value: a.value ** b.value, isInt: isInt && b.value >= 0 };
    case "<":
      return { kind: "bool", value: a.value < b.value };
    case "<=":
      return { kind: "bool", value: a.value <= b.value };
    case ">":
      return { kind: "bool", value: a.value > b.value };
    case ">=":
      return { kind: "bool", value: a.value >= b.value };
    case "==":
      return { kind: "bool", value: a.value === b.value };
    case "!=":
      return { kind: "bool", value: a.value !== b.value };
    default:
      return l.fail(span, `operator ${op} does not apply to numbers`, Code.TypeMismatch);
  }
}

export function typeText(t: TensorTypeExpr): string {
  return t.dims ? `${t.dtype.name}[…${t.dims.length} dims]` : t.dtype.name;
}

function patternText(p: Pattern): string {
  return p.kind === "ident" ? p.name : `(${p.items.map(patternText).join(", ")})`;
}

/** The candidate within edit distance 2 (or a third of the name), if any. */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Math.min(2, Math.max(1, Math.floor(name.length / 3)));
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(name, c);
    if (d <= bestD && (best === undefined || d < bestD)) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

export { numel, InternalError };
export type { Diagnostic };

/** For a parameter typed `f32[.., A, B]`, the number of dims after `..` (2); else undefined. */
function restTrailing(t: TypeExpr | undefined): number | undefined {
  return t?.kind === "tensorType" && t.dims?.[0]?.kind === "restDim" ? t.dims.length - 1 : undefined;
}
