// The checker proper: resolves names, infers the type and symbolic shape of every
// expression, and reports what does not fit. Items are summarised lazily (a block's
// members, a fn's signature) so that order in the file does not matter; each body is
// checked once on its own, and a template fn (one taking block instances) again at each
// distinct instantiation.
import type {
  Arg, BinaryExpr, BlockItem, BlockStmt, CallExpr, DimDecl, Expr, FnItem, Ident, IfExpr, IndexExpr, IndexItem, LetStmt,
  MemberExpr, Pattern, SliceItem, Span, Stmt, TypeExpr, UnaryExpr, VarStmt,
} from "../../grammar/ast.ts";
import { type Diagnostic, type Related, error, warning } from "../diagnostics.ts";
import { BUILTINS, INITS, type BoundArg, type Builtin, type BuiltinParam, type RuleCx } from "./builtins.ts";
import { Code } from "./codes.ts";
import {
  type Dim, type NamedAtom, addDim, atomDim, atomsOf, constDim, dimEquals, divDim, evalDim, hasVars, isConst, mulDim, negDim, printDim, productDims, subDim, symDim,
} from "./dims.ts";
import { Frame, type FnContext, type TypedNode } from "./frame.ts";
import { type GlobalSym, type ModuleScope, hintFor, symSpan } from "./scope.ts";
import {
  type BlockInfo, type DimInfo, type DType, type FnInfo, type FnSig, type InstanceType, type ParamInfo, type Rest, type TensorType, type Type,
  DTYPES, ERROR, UNIT, collectSyms, collectVars, describe, freeze, hasInstance, instanceSubst, isCompileTime, isDType, joinCompileTime, liftRecord, liftType,
  printDims, printType, substType, tensor, typeKey,
} from "./types.ts";
import { castHint, dtypeList, mismatchDetail, mismatchHint, rankDetail, sameNameHint } from "./messages.ts";
import { type BroadcastFail, type Mismatch, type Shape, Unifier, shapeOf } from "./unify.ts";

const NUMERIC: readonly DType[] = ["f32", "f16", "i32"];
const ANY: readonly DType[] = DTYPES;

/** What a call expression calls. */
export type CallTarget =
  | { kind: "builtin"; name: string }
  /** a user fn, or a named fn of a block (`m.encode(x)`) */
  | { kind: "fn"; fn: FnInfo }
  /** calling an instance: the block's forward fn */
  | { kind: "forward"; block: BlockInfo }
  /** `Linear(D, 4*D)`: a constructor */
  | { kind: "construct"; block: BlockInfo };

interface EvaluatedArg {
  arg: Arg;
  type: Type;
}

interface SigBuilder {
  id: string;
  rest?: Rest;
  freshAtoms: NamedAtom[];
  paramName?: string;
  inRet: boolean;
  retHoles: boolean;
  holes: number;
}

interface Instantiation {
  ret: Type;
  errors: Diagnostic[];
  /** the caller's variables the body determined */
  learnt: [NamedAtom, Dim][];
}

export class Checker {
  readonly diagnostics: Diagnostic[] = [];
  readonly types = new Map<TypedNode, Type>();
  /** where each name used in the program is defined */
  readonly definitions = new Map<Ident, Span>();
  readonly scopes = new Map<string, ModuleScope>();
  readonly dims = new Map<string, DimInfo>();
  readonly blocks = new Map<BlockItem, BlockInfo>();
  readonly fns = new Map<FnItem, FnInfo>();
  /** what each call calls */
  readonly calls = new Map<CallExpr, CallTarget>();
  private readonly dimDefaults = new Map<DimInfo, { expr: Expr; module: ModuleScope }>();
  private readonly edges = new Map<string, { to: string; span: Span }[]>();
  private readonly names = new Map<string, string>();
  private readonly instantiations = new Map<string, Instantiation | "busy">();
  private readonly sigBusy = new Set<string>();
  private readonly sizeBusy = new Set<string>();
  /** block dims already warned about (W0403), `blockId.name` */
  private readonly shadowWarned = new Set<string>();

  constructor(private readonly sources: Map<string, string>) {}

  // ================================================================ reporting

  err(f: Frame | undefined, code: string, span: Span, message: string, extra: { hint?: string; related?: Related[] } = {}): void {
    const d = error(code, span, message, extra);
    if (f) f.report(d);
    else this.diagnostics.push(d);
  }

  text(span: Span): string {
    return this.sources.get(span.file)?.slice(span.start, span.end) ?? "";
  }

  /** Run one item's check; an exception is a compiler bug, reported as W0999 and contained. */
  guard(span: Span, what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.diagnostics.push(error(Code.Internal, span, `internal error while checking ${what}: ${msg}`, { hint: "this is a bug in the Weft checker; please report it with this file" }));
    }
  }

  // ================================================================ call graph

  addEdge(from: string, to: string, span: Span): void {
    let list = this.edges.get(from);
    if (!list) this.edges.set(from, (list = []));
    if (!list.some((e) => e.to === to)) list.push({ to, span });
  }

  nameOf(id: string, name: string): void {
    this.names.set(id, name);
  }

  /** Report each cycle of the call/containment graph once. */
  reportRecursion(): void {
    const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
    const stack: string[] = [];
    const sccs: string[][] = [];
    let counter = 0;
    const strong = (v: string) => {
      index.set(v, counter);
      low.set(v, counter++);
      stack.push(v);
      onStack.add(v);
      for (const e of this.edges.get(v) ?? []) {
        if (!index.has(e.to)) {
          strong(e.to);
          low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
        } else if (onStack.has(e.to)) low.set(v, Math.min(low.get(v)!, index.get(e.to)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        sccs.push(scc);
      }
    };
    for (const v of this.edges.keys()) if (!index.has(v)) strong(v);
    for (const scc of sccs) {
      const set = new Set(scc);
      const start = [...scc].sort()[0];
      const selfLoop = (this.edges.get(start) ?? []).some((e) => e.to === start);
      if (scc.length === 1 && !selfLoop) continue;
      // walk the cycle from `start`, staying inside the component
      const path: { to: string; span: Span }[] = [];
      const seen = new Set<string>();
      const walk = (v: string): boolean => {
        for (const e of this.edges.get(v) ?? []) {
          if (!set.has(e.to)) continue;
          if (e.to === start) {
            path.push(e);
            return true;
          }
          if (seen.has(e.to)) continue;
          seen.add(e.to);
          path.push(e);
          if (walk(e.to)) return true;
          path.pop();
        }
        return false;
      };
      walk(start);
      const chain = [start, ...path.map((e) => e.to)].map((id) => this.names.get(id) ?? id).join(" → ");
      const isBlock = start.startsWith("block:");
      this.diagnostics.push(
        error(Code.Recursion, path[0].span, `recursion is not allowed: ${chain}`, {
          hint: isBlock ? "a block cannot contain an instance of itself" : "Weft fns are inlined at compile time; write the repetition with `for` or `repeat`",
          related: path.slice(1).map((e, i) => ({ span: e.span, message: `${this.names.get(path[i].to) ?? path[i].to} uses ${this.names.get(e.to) ?? e.to} here` })),
        }),
      );
    }
  }

  // ================================================================ global names

  lookupGlobal(mod: ModuleScope, name: string, f: Frame | undefined, span: Span): GlobalSym | undefined {
    const own = mod.names.get(name);
    if (own) return own;
    const found: GlobalSym[] = [];
    const where: string[] = [];
    for (const file of mod.opens) {
      const s = this.scopes.get(file)?.names.get(name);
      if (s && s.kind !== "train" && !found.some((x) => sameSym(x, s))) {
        found.push(s);
        where.push(file);
      }
    }
    if (found.length > 1)
      this.err(f, Code.Ambiguous, span, `\`${name}\` is defined in ${where.map((w) => `"${w}"`).join(" and ")}`, {
        hint: "import one of them with `as` and write the qualified name",
        related: found.map((s) => ({ span: symSpan(s), message: `${name} defined here` })),
      });
    return found[0];
  }

  private globalNames(mod: ModuleScope): string[] {
    const out = [...mod.names.keys(), ...mod.aliases.keys()];
    for (const file of mod.opens) out.push(...(this.scopes.get(file)?.names.keys() ?? []));
    return out;
  }

  private visibleNames(f: Frame): string[] {
    const out = [...f.localNames(), ...this.globalNames(f.module), ...BUILTINS.keys(), "training", ...DTYPES];
    if (f.self) {
      const b = f.self.block;
      out.push(...b.params.keys(), ...b.subs.keys(), ...b.fns.keys(), ...b.node.dims.map((d) => d.name));
    }
    return out;
  }

  private symType(s: GlobalSym, f: Frame | undefined, span: Span): Type {
    switch (s.kind) {
      case "block":
        return { kind: "block", block: s.info };
      case "fn":
        return { kind: "fn", fn: s.info };
      case "dim":
        return { kind: "int", value: atomDim(s.info.atom) };
      case "train":
        this.err(f, Code.TypeMismatch, span, `\`${s.item.name.name}\` is a train job, not a value`);
        return ERROR;
    }
  }

  // ================================================================ dims

  declareDim(d: DimDecl, mod: ModuleScope): void {
    const name = d.name.name;
    const prev = this.dims.get(name);
    const ownPrev = mod.names.get(name);
    if (ownPrev) {
      this.err(undefined, Code.Duplicate, d.name.span, `\`${name}\` is already defined in this file`, { related: [{ span: symSpan(ownPrev), message: "first defined here" }] });
      return;
    }
    const info: DimInfo = prev ?? { name, atom: { kind: "sym", key: name, name }, file: mod.file, span: d.name.span };
    mod.names.set(name, { kind: "dim", info });
    if (!prev) this.dims.set(name, info);
    if (d.default) {
      const other = this.dimDefaults.get(info);
      if (other && this.text(other.expr.span).replace(/\s+/g, "") !== this.text(d.default.span).replace(/\s+/g, ""))
        this.err(undefined, Code.Duplicate, d.default.span, `dim ${name} has two different defaults`, { related: [{ span: other.expr.span, message: "the other default" }] });
      else if (!other) this.dimDefaults.set(info, { expr: d.default, module: mod });
    }
  }

  /** Evaluate dim defaults, apply `opts.dims`, and compute values (reporting circular defaults). */
  resolveDims(overrides: Record<string, number>): void {
    for (const [info, { expr, module }] of this.dimDefaults) {
      const f = new Frame(module, `dim:${info.name}`, new Unifier(), this.diagnostics, true);
      const d = this.dimExpr(expr, f);
      this.flush(f);
      if (d) info.default = d;
    }
    for (const [name, v] of Object.entries(overrides)) {
      const info = this.dims.get(name);
      if (!info) {
        const span = { file: "<command line>", start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
        this.err(undefined, Code.UnknownDimOverride, span, `--dim ${name}=${v}: there is no dim ${name}`, { hint: hintFor(name, this.dims.keys()) });
      } else if (!Number.isInteger(v) || v <= 0) {
        this.err(undefined, Code.UnknownDimOverride, info.span, `--dim ${name}=${v}: a dim must be a positive integer`);
      } else info.value = v;
    }
    const busy: string[] = [];
    const valueOf = (info: DimInfo): number | undefined => {
      if (info.value !== undefined || !info.default) return info.value;
      if (busy.includes(info.name)) {
        const chain = [...busy.slice(busy.indexOf(info.name)), info.name].join(" → ");
        this.err(undefined, Code.Recursion, info.span, `dim defaults are circular: ${chain}`);
        return undefined;
      }
      busy.push(info.name);
      let v = evalDim(info.default, (a) => {
        const dep = this.dims.get(a.name);
        return dep && a.key === dep.atom.key ? valueOf(dep) : undefined;
      });
      busy.pop();
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
        this.err(undefined, Code.TypeMismatch, info.span, `dim ${info.name} = ${printDim(info.default)} is ${v}, not a positive integer`);
        v = undefined;
      }
      info.value = v;
      return v;
    };
    for (const info of this.dims.values()) valueOf(info);
  }

  /** A dim written in an annotation or a constructor: `T`, `2*D`, `sizeof(m.head)`. */
  dimExpr(e: Expr, f: Frame): Dim | undefined {
    if (e.kind === "ident" && !this.nameExists(e.name, f)) {
      const near = hintFor(e.name, [...this.globalNames(f.module), ...(f.self?.block.node.dims.map((d) => d.name) ?? []), ...f.localNames()]);
      this.err(f, Code.UnknownDim, e.span, `unknown dim \`${e.name}\``, { hint: near ?? `declare it: \`dim ${e.name}\`` });
      f.rec(e, ERROR);
      return undefined;
    }
    const t = this.expr(e, f);
    if (t.kind === "int" && t.value) return t.value;
    if (t.kind !== "error")
      this.err(f, Code.TypeMismatch, e.span, `expected a dim (a dim name, an integer, or arithmetic on them), found ${describe(t)}`);
    return undefined;
  }

  private nameExists(name: string, f: Frame): boolean {
    if (f.lookup(name, false)) return true;
    if (f.self && this.selfMember(f.self, name) !== undefined) return true;
    if (f.module.names.has(name) || f.module.aliases.has(name)) return true;
    for (const file of f.module.opens) if (this.scopes.get(file)?.names.has(name)) return true;
    return BUILTINS.has(name) || name === "training" || isDType(name);
  }

  // ================================================================ type annotations

  typeExpr(te: TypeExpr, f: Frame, sig?: SigBuilder): Type {
    const t = this.typeExprInner(te, f, sig);
    f.rec(te, t);
    return t;
  }

  private typeExprInner(te: TypeExpr, f: Frame, sig?: SigBuilder): Type {
    switch (te.kind) {
      case "tensorType": {
        const dt = te.dtype.name;
        if (!isDType(dt)) {
          const near = hintFor(dt, DTYPES);
          this.err(f, Code.UnknownDtype, te.dtype.span, `unknown dtype \`${dt}\``, { hint: near ?? "the dtypes are f32, f16, i32 and bool" });
          return ERROR;
        }
        const dims: Dim[] = [];
        let rest: Rest | undefined;
        let ok = true;
        (te.dims ?? []).forEach((de, i) => {
          if (de.kind === "restDim") {
            if (i !== 0) {
              this.err(f, Code.TypeMismatch, de.span, "`..` stands for the leading dims and must come first");
              ok = false;
            } else if (sig) rest = sig.rest ??= { key: `${sig.id}..`, isVar: false };
            else rest = f.u.freshRest();
          } else if (de.kind === "inferDim") {
            if (sig && !sig.inRet) {
              sig.holes++;
              const atom: NamedAtom = { kind: "sym", key: `${sig.id}#_${sig.holes}`, name: "_" };
              sig.freshAtoms.push(atom);
              dims.push(symDim(atom.key, "_"));
            } else {
              if (sig) sig.retHoles = true;
              dims.push(f.u.freshDim("_"));
            }
          } else {
            const d = this.dimExpr(de, f);
            if (d) dims.push(d);
            else ok = false;
          }
        });
        return ok ? tensor(dt, dims, rest) : ERROR;
      }
      case "namedType": {
        const b = this.blockRef(te.name, te.qualifier, f);
        if (!b) return ERROR;
        const owner = sig?.paramName ?? "_";
        const args = b.dims.map((a) => {
          const v = f.u.freshAtom(`${owner}.${a.name}`);
          if (sig) sig.freshAtoms.push(v);
          return atomDim(v);
        });
        const inst: InstanceType = { kind: "instance", block: b, args, frozen: false };
        if (!te.repeat) return inst;
        const count = f.u.freshAtom(`len(${owner})`);
        if (sig) sig.freshAtoms.push(count);
        return { kind: "repeat", count: atomDim(count), elem: inst };
      }
      case "tupleType":
        return { kind: "tuple", items: te.items.map((x) => this.typeExpr(x, f, sig)) };
    }
  }

  private blockRef(name: Ident, qualifier: Ident | undefined, f: Frame): BlockInfo | undefined {
    let sym: GlobalSym | undefined;
    if (qualifier) {
      const alias = f.module.aliases.get(qualifier.name);
      if (!alias) {
        this.err(f, Code.UnknownName, qualifier.span, `unknown import alias \`${qualifier.name}\``, { hint: hintFor(qualifier.name, f.module.aliases.keys()) });
        return undefined;
      }
      const scope = alias.file ? this.scopes.get(alias.file) : undefined;
      if (!scope) return undefined; // the import itself was reported
      sym = scope.names.get(name.name);
      if (!sym) {
        this.err(f, Code.UnknownMember, name.span, `"${alias.file}" has no \`${name.name}\``, { hint: hintFor(name.name, scope.names.keys()) });
        return undefined;
      }
    } else {
      sym = this.lookupGlobal(f.module, name.name, f, name.span);
      if (!sym && /^(f|i|u|bf)\d+$/.test(name.name)) {
        this.err(f, Code.UnknownDtype, name.span, `unknown dtype \`${name.name}\``, { hint: "the dtypes are f32, f16, i32 and bool" });
        return undefined;
      }
      if (!sym) {
        const blocks = this.globalNames(f.module).filter((n) => this.lookupGlobal(f.module, n, undefined, name.span)?.kind === "block");
        this.err(f, Code.UnknownName, name.span, `unknown block \`${name.name}\``, { hint: hintFor(name.name, blocks) });
        return undefined;
      }
    }
    if (sym.kind !== "block") {
      this.err(f, Code.NotABlock, name.span, `\`${name.name}\` is a ${sym.kind}, not a block: a parameter type is a tensor type (f32[B, D]) or a block name`);
      return undefined;
    }
    this.definitions.set(name, symSpan(sym));
    return sym.info;
  }

  // ================================================================ blocks

  selfOf(b: BlockInfo): InstanceType {
    return { kind: "instance", block: b, args: b.dims.map(atomDim), frozen: false };
  }

  /** Type the block's params and sub-instances (once). */
  resolveBlock(b: BlockInfo): void {
    if (b.state !== "new") return;
    b.state = "resolving";
    const mod = this.scopes.get(b.file)!;
    const f = new Frame(mod, b.id, new Unifier(), this.diagnostics, true, this.selfOf(b));
    f.allowInstances = true;
    const seen = new Map<string, Span>();
    for (const d of b.node.dims) {
      if (seen.has(d.name)) this.err(f, Code.Duplicate, d.span, `dim \`${d.name}\` is listed twice`, { related: [{ span: seen.get(d.name)!, message: "first listed here" }] });
      seen.set(d.name, d.span);
    }
    for (const m of b.node.members) {
      const name = m.kind === "fn" ? m.name : m.name;
      if (name) {
        const prev = seen.get(name.name);
        if (prev) this.err(f, Code.Duplicate, name.span, `\`${name.name}\` is already defined in block ${b.name}`, { related: [{ span: prev, message: "first defined here" }] });
        else seen.set(name.name, name.span);
      }
      this.guard(m.span, `${b.name}.${name?.name ?? "fn"}`, () => {
        if (m.kind === "param") {
          let t = this.typeExpr(m.type, f);
          if (t.kind === "tensor" && (t.rest || t.dims.some(hasVars))) {
            this.err(f, Code.TypeMismatch, m.type.span, "a param needs all its dims: `..` and `_` are only for fn signatures and lets");
            t = ERROR;
          } else if (t.kind !== "tensor" && t.kind !== "error") {
            this.err(f, Code.TypeMismatch, m.type.span, `a param is a tensor (f32[I, O]), found ${describe(t)}`);
            t = ERROR;
          }
          if (m.init) this.checkInit(m.init, f);
          if (!b.params.has(m.name.name) && !b.subs.has(m.name.name)) b.params.set(m.name.name, { node: m, type: t });
          f.rec(m, t);
          f.rec(m.name, t);
        } else if (m.kind === "instance") {
          let t = this.expr(m.value, f);
          const ok = t.kind === "instance" || t.kind === "repeat" || t.kind === "int" || t.kind === "float" || t.kind === "bool" || t.kind === "error";
          if (!ok) {
            this.err(f, Code.TypeMismatch, m.value.span, `a block member is an instance (\`ln = LayerNorm(D)\`), a repeat or a compile-time constant; found ${describe(t)}`, {
              hint: t.kind === "tensor" ? "declare learned tensors with `param name: f32[...] = init`" : undefined,
            });
            t = ERROR;
          }
          if (!b.params.has(m.name.name) && !b.subs.has(m.name.name)) b.subs.set(m.name.name, { node: m, type: t });
          f.rec(m, t);
          f.rec(m.name, t);
        }
      });
    }
    this.flush(f);
    b.state = "done";
  }

  private checkInit(init: Expr, f: Frame): void {
    // A number fills the parameter with that value: `param alpha: f32 = 0.5`.
    if (init.kind === "number" || (init.kind === "unary" && init.op === "-" && init.operand.kind === "number")) return;
    const name = init.kind === "ident" ? init : init.kind === "call" && init.callee.kind === "ident" ? init.callee : undefined;
    const spec = name ? INITS.get(name.name) : undefined;
    const all = [...INITS.keys()].join(", ");
    if (!name || !spec) {
      this.err(f, Code.BadInit, init.span, `unknown initialiser ${name ? `\`${name.name}\`` : `\`${this.text(init.span)}\``}`, {
        hint: (name && hintFor(name.name, INITS.keys())) ?? `the initialisers are a number, ${all}`,
      });
      return;
    }
    const args = init.kind === "call" ? init.args : [];
    if (args.length !== spec.args.length) {
      const form = spec.args.length ? `${name.name}(${spec.args.join(", ")})` : name.name;
      this.err(f, Code.BadInit, init.span, `${name.name} takes ${spec.args.length} argument${spec.args.length === 1 ? "" : "s"}: write \`${form}\``);
      return;
    }
    for (const a of args) {
      if (a.name && !spec.args.includes(a.name.name)) {
        this.err(f, Code.UnknownNamedArg, a.name.span, `${name.name} has no argument \`${a.name.name}\``, { hint: hintFor(a.name.name, spec.args) });
        continue;
      }
      const t = this.expr(a.value, f);
      if (t.kind !== "int" && t.kind !== "float" && t.kind !== "error")
        this.err(f, Code.BadInit, a.value.span, `${name.name}'s argument must be a number, found ${describe(t)}`);
    }
  }

  private memberOfInstance(inst: InstanceType, name: string): Type | undefined {
    const b = inst.block;
    this.resolveBlock(b);
    const s = instanceSubst(inst);
    const p = b.params.get(name);
    if (p) return substType(p.type, s);
    const sub = b.subs.get(name);
    if (sub) {
      const t = substType(sub.type, s);
      return inst.frozen ? freeze(t) : t;
    }
    const fn = b.fns.get(name);
    if (fn) return { kind: "fn", fn, self: inst };
    const di = b.node.dims.findIndex((d) => d.name === name);
    if (di >= 0) return { kind: "int", value: inst.args[di] };
    return undefined;
  }

  private selfMember(self: InstanceType, name: string): Type | undefined {
    return this.memberOfInstance(self, name);
  }

  private memberSpan(b: BlockInfo, name: string): Span | undefined {
    const p = b.params.get(name) ?? b.subs.get(name);
    if (p) return p.node.name.span;
    const fn = b.fns.get(name);
    if (fn) return fn.node.name?.span;
    return b.node.dims.find((d) => d.name === name)?.span;
  }

  /** Number of parameters of an instance, as a dim. */
  sizeOf(t: Type, span: Span, f: Frame): Dim | undefined {
    if (t.kind === "repeat") {
      const n = this.sizeOf(t.elem, span, f);
      return n && mulDim(t.count, n);
    }
    if (t.kind !== "instance") {
      if (t.kind !== "error") this.err(f, Code.TypeMismatch, span, `sizeof expects an instance, found ${describe(t)}`);
      return undefined;
    }
    const rec = this.paramsRecord(t);
    if (!rec) return undefined;
    let n: Dim = constDim(0);
    const add = (x: Type) => {
      if (x.kind === "tensor") n = addDim(n, productDims(x.dims));
      else if (x.kind === "record") x.fields.forEach((g) => add(g.type));
    };
    add(rec);
    return n;
  }

  /** An instance's params as a record (sub-instances nested); what `grad(loss, inst)` returns. */
  paramsRecord(t: Type): Type | undefined {
    if (t.kind === "repeat") {
      const r = this.paramsRecord(t.elem);
      return r && liftRecord(r, t.count);
    }
    if (t.kind !== "instance") return undefined;
    if (this.sizeBusy.has(t.block.id)) return undefined;
    this.sizeBusy.add(t.block.id);
    try {
      this.resolveBlock(t.block);
      const s = instanceSubst(t);
      const fields: { name: string; type: Type }[] = [];
      for (const [name, p] of t.block.params) if (p.type.kind === "tensor") fields.push({ name, type: substType(p.type, s) });
      for (const [name, sub] of t.block.subs) {
        if (sub.type.kind !== "instance" && sub.type.kind !== "repeat") continue;
        const r = this.paramsRecord(substType(sub.type, s));
        if (!r) return undefined;
        fields.push({ name, type: r });
      }
      return { kind: "record", fields };
    } finally {
      this.sizeBusy.delete(t.block.id);
    }
  }

  // ================================================================ fns

  /** The fn's signature in terms of its own symbols (computed once). */
  sigOf(info: FnInfo): FnSig {
    if (info.sig) return info.sig;
    if (this.sigBusy.has(info.id)) return { params: [], template: false, freshAtoms: [], retHasHoles: false };
    this.sigBusy.add(info.id);
    const mod = this.scopes.get(info.file)!;
    if (info.owner) this.resolveBlock(info.owner);
    const f = new Frame(mod, info.id, new Unifier(), this.diagnostics, true, info.owner ? this.selfOf(info.owner) : undefined);
    const sb: SigBuilder = { id: info.id, freshAtoms: [], inRet: false, retHoles: false, holes: 0 };
    const params: ParamInfo[] = [];
    const seen = new Map<string, Span>();
    for (const p of info.node.params) {
      const name = p.name.name;
      if (seen.has(name)) this.err(f, Code.Duplicate, p.name.span, `parameter \`${name}\` is listed twice`, { related: [{ span: seen.get(name)!, message: "first listed here" }] });
      seen.set(name, p.name.span);
      let type: Type = ERROR;
      let dimAtom: NamedAtom | undefined;
      if (p.type) {
        sb.paramName = name;
        type = this.typeExpr(p.type, f, sb);
        if (p.default) {
          const dt = this.expr(p.default, f);
          if (f.u.unifyType(type, dt)) this.err(f, Code.TypeMismatch, p.default.span, `the default of \`${name}\` is ${describe(dt)}, but its type is ${printType(type)}`);
        }
      } else if (p.default) {
        const dt = this.expr(p.default, f);
        if (dt.kind === "int") {
          dimAtom = { kind: "sym", key: `${info.id}#${name}`, name };
          type = { kind: "int", value: symDim(dimAtom.key, name) };
        } else if (dt.kind === "float" || dt.kind === "bool" || dt.kind === "string") type = { kind: dt.kind };
        else if (dt.kind !== "error") this.err(f, Code.TypeMismatch, p.default.span, `a default must be a compile-time number, flag or string, found ${describe(dt)}`);
      } else {
        this.err(f, Code.Annotation, p.span, `parameter \`${name}\` needs a type: \`${name}: f32[B, D]\`, a block name, or a default value`);
      }
      params.push({ name, node: p, type, hasDefault: !!p.default, dimAtom });
      f.declare(p.name, type, "param", true);
      f.rec(p, type);
      f.rec(p.name, type);
    }
    sb.inRet = true;
    sb.paramName = undefined;
    const ret = info.node.ret ? this.typeExpr(info.node.ret, f, sb) : undefined;
    this.flush(f);
    const template = params.some((p) => hasInstance(p.type));
    info.sig = { params, rest: sb.rest, ret, template, freshAtoms: sb.freshAtoms, retHasHoles: sb.retHoles };
    this.sigBusy.delete(info.id);
    return info.sig;
  }

  /** Check a fn's body on its own (once), recording types and reporting into the program. */
  checkFn(info: FnInfo): void {
    if (info.state !== "new") return;
    info.state = "checking";
    const sig = this.sigOf(info);
    if (!info.node.body && !info.node.ret)
      this.err(undefined, Code.NoValue, info.node.name?.span ?? info.node.span, `${info.name} has neither a body nor a return type`, {
        hint: "a fn declared without a body needs its return type: fn g(x: f32[N]) -> f32[N]",
      });
    if (info.node.body) {
      const self = info.owner ? this.selfOf(info.owner) : undefined;
      info.inferredRet = this.checkBody(info, self, sig.params.map((p) => p.type), sig.ret, true, this.diagnostics);
      const { file, start, end } = info.node.span;
      info.bodyErrors = this.diagnostics.some((d) => d.severity === "error" && d.span.file === file && d.span.start >= start && d.span.end <= end);
      // hover on `-> f32[_]` shows what `_` became
      if (sig.retHasHoles && info.node.ret) this.types.set(info.node.ret, info.inferredRet);
    }
    info.state = "done";
  }

  private checkBody(
    info: FnInfo,
    self: InstanceType | undefined,
    paramTypes: Type[],
    ret: Type | undefined,
    record: boolean,
    diags: Diagnostic[],
    u = new Unifier(),
  ): Type {
    const mod = this.scopes.get(info.file)!;
    const params = new Map<string, Span>();
    const fnc: FnContext = { info, ret, results: [], params };
    const f = new Frame(mod, info.id, u, diags, record, self, fnc);
    info.node.params.forEach((p, i) => {
      f.declare(p.name, paramTypes[i] ?? ERROR, "param", true);
      params.set(p.name.name, p.name.span);
    });
    const body = info.node.body!;
    if (body.kind === "block") this.blockStmt(body, f, true);
    else fnc.results.push({ type: this.expr(body, f), span: body.span });
    let result: Type;
    const label = info.owner ? (info.name === "forward" ? `the forward fn of ${info.owner.name}` : `${info.owner.name}.${info.name}`) : info.name;
    if (fnc.results.length === 0) {
      this.err(f, Code.NoValue, info.node.ret?.span ?? info.node.name?.span ?? info.node.span, `${label} has no value: end its body with an expression or \`return\``);
      result = ERROR;
    } else if (ret) {
      for (const r of fnc.results) {
        const m = f.u.unifyType(ret, r.type);
        if (m && r.type.kind !== "error")
          this.err(f, Code.Annotation, r.span, `${label} is declared to return ${printType(f.u.resolve(ret))}, but this is ${describe(f.u.resolve(r.type))}${mismatchDetail(m)}`, {
            related: info.node.ret ? [{ span: info.node.ret.span, message: "return type declared here" }] : [],
            hint: mismatchHint(m),
          });
      }
      result = f.u.resolve(ret);
    } else {
      const first = fnc.results.find((r) => r.type.kind !== "error") ?? fnc.results[0];
      for (const r of fnc.results) {
        if (r === first || r.type.kind === "error") continue;
        const m = f.u.unifyType(first.type, r.type);
        if (m) this.err(f, Code.TypeMismatch, r.span, `${label} returns ${describe(f.u.resolve(first.type))} here, but ${describe(f.u.resolve(r.type))} here${mismatchDetail(m)}`, { related: [{ span: first.span, message: "the first value" }] });
      }
      result = f.u.resolve(first.type);
    }
    this.flush(f);
    return result;
  }

  /** Write a frame's recorded types into the program-wide map, with variables solved. */
  flush(f: Frame): void {
    if (!f.record) return;
    for (const [node, t] of f.recorded) this.types.set(node, f.u.resolve(t));
    f.recorded.length = 0;
  }

  private inferredRet(info: FnInfo): Type {
    if (info.state === "new") this.checkFn(info);
    if (info.state === "checking") return ERROR; // recursion, reported from the call graph
    return info.inferredRet ?? ERROR;
  }

  /** Call a user fn (or a block's fn with `self`) with arguments already bound to parameter names. */
  callFn(info: FnInfo, self: InstanceType | undefined, args: Map<string, BoundArg>, span: Span, f: Frame): Type {
    this.addEdge(f.owner, info.id, span);
    const sig = this.sigOf(info);
    const sigma = new Map<string, Dim>();
    if (self && info.owner) info.owner.dims.forEach((a, i) => sigma.set(a.key, self.args[i]));
    for (const a of sig.freshAtoms) sigma.set(a.key, f.u.freshDim(a.name));
    for (const p of sig.params) {
      if (!p.dimAtom) continue;
      const a = args.get(p.name);
      let v: Dim | undefined;
      if (a && a.type.kind === "int" && a.type.value) v = a.type.value;
      else if (!a && p.node.default?.kind === "number" && p.node.default.isInt) v = constDim(p.node.default.value);
      sigma.set(p.dimAtom.key, v ?? f.u.freshDim(p.name));
    }
    const rest = sig.rest ? f.u.freshRest() : undefined;
    const inst = (t: Type): Type =>
      substType(t, (a) => sigma.get(a.key), (r) => (rest && r.key === sig.rest?.key ? { rest, dims: [] } : undefined));
    const declared = sig.params.map((p) => inst(p.type));
    const expected = [...declared];
    const label = fnLabel(info);
    this.warnShadowedDims(sig, label, span, f);
    if (rest && !this.bindLeading(rest, sig.params, expected, args, label, f)) return ERROR;
    let ok = true;
    sig.params.forEach((p, i) => {
      const a = args.get(p.name);
      if (!a || !ok) return;
      const m = f.u.unifyType(expected[i], a.type);
      if (m) {
        ok = false;
        this.argMismatch(f, m, `argument \`${p.name}\` of ${label}`, f.u.resolve(expected[i]), f.u.resolve(a.type), a.span, { span: p.node.span, message: `parameter ${p.name} declared here` });
      }
    });
    if (!ok) return ERROR;
    if (!sig.template || !info.node.body) {
      const r = sig.ret && !sig.retHasHoles ? sig.ret : info.node.body ? this.inferredRet(info) : sig.ret ?? ERROR;
      return this.leadingConflict(f.u.resolve(inst(r)), label, span, f);
    }
    // a template: check the body with these instances
    if (info.state === "new") this.checkFn(info);
    const concrete = declared.map((t) => f.u.resolve(t));
    const selfC = self ? f.u.resolveInstance(self) : undefined;
    const retC = sig.ret ? f.u.resolve(inst(sig.ret)) : undefined;
    const key = `${info.id}|${selfC ? typeKey(selfC) : ""}|${concrete.map(typeKey).join(",")}|${retC ? typeKey(retC) : ""}`;
    const memo = this.instantiations.get(key);
    if (memo === "busy") return ERROR;
    let done = memo;
    if (!done) {
      this.instantiations.set(key, "busy");
      const diags: Diagnostic[] = [];
      const inner = new Unifier();
      const ret = this.checkBody(info, selfC, concrete, retC, false, diags, inner);
      // what the body learnt about the caller's unknowns (`m.I` is D because the body calls m(x: f32[D]))
      const outer = new Map<string, NamedAtom>();
      for (const t of [...concrete, ...(selfC ? [selfC] : []), ...(retC ? [retC] : [])]) collectVars(t, outer);
      const learnt: [NamedAtom, Dim][] = [];
      for (const v of outer.values()) {
        const d = inner.resolveDim(atomDim(v));
        if (!dimEquals(d, atomDim(v))) learnt.push([v, d]);
      }
      done = { ret, errors: diags.filter((d) => d.severity === "error"), learnt };
      this.instantiations.set(key, done);
    }
    for (const [v, d] of done.learnt) f.u.unifyDim(atomDim(v), d);
    if (done.errors.length > 0 && !info.bodyErrors) {
      const withArgs = sig.params
        .map((p, i) => (hasInstance(p.type) ? `${p.name}: ${printType(concrete[i])}` : undefined))
        .filter((x) => x)
        .join(", ");
      this.err(f, Code.Instantiation, span, `${label} does not check with ${withArgs || "these arguments"}: ${done.errors[0].message}`, {
        related: done.errors.slice(0, 3).map((d) => ({ span: d.span, message: d.message })),
      });
      return ERROR;
    }
    return done.ret;
  }

  /**
   * The arguments typed with a signature's `..` share those leading dims up to broadcasting
   * (NumPy): `..` is bound to the broadcast of the arguments' leading dims, and each argument
   * is matched with its own (the lowering broadcasts them to `..` on entry). With one such
   * argument, or equal leading dims, this is plain unification. False after an error.
   */
  private bindLeading(rest: Rest, params: ParamInfo[], expected: Type[], args: Map<string, BoundArg>, label: string, f: Frame): boolean {
    const lead: { i: number; shape: Shape; arg: BoundArg; param: ParamInfo }[] = [];
    params.forEach((p, i) => {
      const e = expected[i], a = args.get(p.name);
      if (e.kind !== "tensor" || e.rest?.key !== rest.key || a?.type.kind !== "tensor") return;
      const at = f.u.resolveTensor(a.type);
      const n = at.dims.length - e.dims.length;
      if (n < 0) return; // unification reports the rank
      lead.push({ i, shape: at.rest ? { rest: at.rest, dims: at.dims.slice(0, n) } : { dims: at.dims.slice(0, n) }, arg: a, param: p });
    });
    const key = (s: Shape) => typeKey(tensor("f32", s.dims, s.rest));
    if (lead.length < 2 || lead.every((l) => key(l.shape) === key(lead[0].shape))) return true;
    let group = lead[0].shape;
    for (const l of lead.slice(1)) {
      const r = f.u.broadcast(group, l.shape);
      if ("fail" in r) {
        const first = lead[0];
        this.err(f, Code.DimMismatch, l.arg.span, `the leading dims \`..\` of ${label}'s arguments do not broadcast: \`${first.param.name}\` has ${printDims(first.shape)}, \`${l.param.name}\` has ${printDims(l.shape)}: dim ${printDim(r.fail.a)} vs ${printDim(r.fail.b)}`, {
          related: [first, l].map((x) => ({ span: x.param.node.span, message: `parameter ${x.param.name} declared here` })),
          hint: this.shadowing(r.fail.a, r.fail.b)?.hint ?? sameNameHint(r.fail.a, r.fail.b),
        });
        return false;
      }
      group = r.shape;
    }
    f.u.bindRestVar(rest, group);
    for (const l of lead) {
      const e = expected[l.i] as TensorType;
      expected[l.i] = tensor(e.dtype, [...l.shape.dims, ...e.dims], l.shape.rest);
    }
    return true;
  }

  /** A call's result whose leading dims are a broadcast that the arguments show to fail. */
  private leadingConflict(t: Type, label: string, span: Span, f: Frame): Type {
    const tensors = t.kind === "tensor" ? [t] : t.kind === "tuple" ? t.items.filter((x): x is TensorType => x.kind === "tensor") : [];
    for (const x of tensors) {
      const c = f.u.leadingConflict(shapeOf(x));
      if (!c) continue;
      this.err(f, Code.DimMismatch, span, `the result of ${label} has leading dims that do not broadcast here: ${c.shapes.map(printDims).join(" with ")}: dim ${printDim(c.a)} vs ${printDim(c.b)}`, {
        hint: sameNameHint(c.a, c.b),
      });
      return ERROR;
    }
    return t;
  }

  /**
   * Two dims that print alike because one is a block's dim and the other the global dim of
   * the same name (which the block's shadows): a note for the message, both declarations.
   */
  shadowing(a: Dim, b: Dim): { note: string; hint: string; related: Related[] } | undefined {
    if (printDim(a) !== printDim(b) || dimEquals(a, b)) return undefined;
    const all = [...atomsOf(a).values(), ...atomsOf(b).values()];
    for (const x of all) {
      if (x.kind !== "sym") continue;
      const global = this.dims.get(x.name);
      if (!global || global.atom.key === x.key || !all.some((y) => y.key === global.atom.key)) continue;
      const block = [...this.blocks.values()].find((bl) => bl.dims.some((d) => d.key === x.key));
      const decl = block?.node.dims.find((d) => d.name === x.name);
      if (!block || !decl) continue;
      return {
        note: `block ${block.name}'s dim \`${x.name}\` shadows the global dim \`${x.name}\``,
        hint: `inside block ${block.name}, \`${x.name}\` is the block's own dim, not the global one: rename the block's dim to tell them apart`,
        related: [
          { span: decl.span, message: `block ${block.name}'s dim ${x.name}, declared here` },
          { span: global.span, message: `the global dim ${x.name}, declared here` },
        ],
      };
    }
    return undefined;
  }

  /**
   * W0403: inside a block whose dim shadows a global dim, a call to something typed with
   * that global dim (which the block cannot name): the two are easily taken for one.
   */
  private warnShadowedDims(sig: FnSig, label: string, span: Span, f: Frame): void {
    const block = f.self?.block;
    if (!f.record || !block) return;
    const seen = new Map<string, NamedAtom>();
    for (const t of [...sig.params.map((p) => p.type), ...(sig.ret ? [sig.ret] : [])]) collectSyms(t, seen);
    for (const a of seen.values()) {
      const global = this.dims.get(a.name);
      const decl = block.node.dims.find((d) => d.name === a.name);
      if (!global || global.atom.key !== a.key || !decl || this.shadowWarned.has(`${block.id}.${a.name}`)) continue;
      this.shadowWarned.add(`${block.id}.${a.name}`);
      f.report(
        warning(Code.DimShadow, decl.span, `block ${block.name}'s dim \`${a.name}\` shadows the global dim \`${a.name}\`, which ${label} is typed with: inside ${block.name} they are different dims`, {
          hint: `rename the block's dim (\`block ${block.name}(${block.node.dims.map((d) => (d.name === a.name ? `${d.name}2` : d.name)).join(", ")})\`), or drop it and use the global \`${a.name}\``,
          related: [
            { span: global.span, message: `the global dim ${a.name}, declared here` },
            { span, message: `${label} is typed with the global ${a.name}` },
          ],
        }),
      );
    }
  }

  private argMismatch(f: Frame, m: Mismatch, what: string, expected: Type, found: Type, span: Span, decl?: Related): void {
    const related = decl ? [decl] : [];
    const base = `${what}: expected ${describe(expected)}, found ${describe(found)}`;
    switch (m.kind) {
      case "dtype":
        return this.err(f, Code.DtypeMismatch, span, `${base} (dtype ${m.found} where ${m.expected} is needed)`, { related, hint: castHint(m.expected) });
      case "rank":
        return this.err(f, Code.RankMismatch, span, `${base}${rankDetail(m.found, m.expected)}`, { related });
      case "dim": {
        const sh = this.shadowing(m.found, m.expected);
        return this.err(f, Code.DimMismatch, span, `${base}: dim ${printDim(m.found)} vs ${printDim(m.expected)} (at dim ${m.index + 1} of ${m.rank})${sh ? `; ${sh.note}` : ""}`, {
          related: [...related, ...(sh?.related ?? [])],
          hint: sh?.hint ?? mismatchHint(m),
        });
      }
      case "instance": {
        const sh = this.shadowing(m.found, m.expected);
        return this.err(f, Code.DimMismatch, span, `${base}: dim ${m.index + 1} is ${printDim(m.found)}, not ${printDim(m.expected)}${sh ? `; ${sh.note}` : ""}`, {
          related: [...related, ...(sh?.related ?? [])],
          hint: sh?.hint ?? mismatchHint(m),
        });
      }
      case "block":
      case "type":
        return this.err(f, Code.TypeMismatch, span, base, { related });
    }
  }

  // ================================================================ statements

  /** A `{ ... }` block: its value is its last expression (or `()`). In a fn body, that value is a result. */
  blockStmt(b: BlockStmt, f: Frame, fnBody = false): Type {
    f.push();
    let value: Type = UNIT;
    for (let i = 0; i < b.stmts.length; i++) {
      const s = b.stmts[i];
      const t = this.stmt(s, f);
      if (s.kind === "return") break;
      if (i === b.stmts.length - 1 && s.kind === "exprStmt") {
        value = t;
        if (fnBody && !(value.kind === "unit" && f.fn && f.fn.results.length > 0)) f.fn?.results.push({ type: value, span: s.expr.span });
      }
    }
    f.pop();
    return value;
  }

  /** Check a statement; an expression statement gives its value. */
  private stmt(s: Stmt, f: Frame): Type {
    switch (s.kind) {
      case "let":
      case "var":
        this.bindStmt(s, f);
        return UNIT;
      case "assign": {
        const t = this.expr(s.value, f);
        const b = f.lookup(s.target.name, false);
        if (!b) {
          if (this.nameExists(s.target.name, f)) this.err(f, Code.Assign, s.target.span, `cannot assign to \`${s.target.name}\`: only a \`var\` can be reassigned`);
          else this.err(f, Code.UnknownName, s.target.span, `unknown name \`${s.target.name}\``, { hint: hintFor(s.target.name, f.localNames()) ?? `declare it first: \`var ${s.target.name} = ...\`` });
          return UNIT;
        }
        this.definitions.set(s.target, b.span);
        if (b.kind !== "var") {
          this.err(f, Code.Assign, s.target.span, `cannot assign to \`${b.name}\`: it is a ${b.kind === "let" ? "`let` binding" : b.kind}; declare it with \`var\` to reassign`, {
            related: [{ span: b.span, message: "declared here" }],
          });
          return UNIT;
        }
        if (isCompileTime(b.type) && isCompileTime(t)) {
          const j = joinCompileTime(b.type, t);
          if (j) b.type = j;
          else this.err(f, Code.Assign, s.value.span, `assignment changes the type of \`${b.name}\` from ${describe(b.type)} to ${describe(t)}`, { related: [{ span: b.span, message: "declared here" }] });
          return UNIT;
        }
        const m = f.u.unifyType(b.type, t);
        if (m)
          this.err(f, Code.Assign, s.value.span, `assignment changes the type of \`${b.name}\`: declared ${describe(f.u.resolve(b.type))}, assigned ${describe(f.u.resolve(t))}${mismatchDetail(m)}`, {
            related: [{ span: b.span, message: `\`${b.name}\` declared here` }],
          });
        f.rec(s.target, b.type);
        return UNIT;
      }
      case "for": {
        const lo = this.expr(s.start, f), hi = this.expr(s.end, f);
        for (const [t, e] of [[lo, s.start], [hi, s.end]] as const)
          if (t.kind !== "int" && t.kind !== "error")
            this.err(f, Code.NotCompileTime, e.span, `a \`for\` bound must be a compile-time int (a number, a dim, len(layers)), found ${describe(t)}`);
        f.push();
        const iv: Type = { kind: "int" };
        f.declare(s.variable, iv, "loop");
        f.rec(s.variable, iv);
        this.blockStmt(s.body, f);
        f.pop();
        return UNIT;
      }
      case "return": {
        const t = this.expr(s.value, f);
        if (f.fn) f.fn.results.push({ type: t, span: s.value.span });
        else this.err(f, Code.TypeMismatch, s.span, "`return` is only allowed inside a fn");
        return UNIT;
      }
      case "exprStmt":
        return this.expr(s.expr, f);
      case "errorStmt":
        return UNIT;
    }
  }

  private bindStmt(s: LetStmt | VarStmt, f: Frame): void {
    let t = this.expr(s.value, f);
    if (s.type) {
      const ann = this.typeExpr(s.type, f);
      const m = f.u.unifyType(ann, t);
      if (m && t.kind !== "error" && ann.kind !== "error") {
        const name = s.target.kind === "ident" ? `\`${s.target.name}\`` : "the pattern";
        this.err(f, Code.Annotation, s.value.span, `${name} is declared ${printType(f.u.resolve(ann))}, but its value is ${describe(f.u.resolve(t))}${mismatchDetail(m)}`, {
          related: [{ span: s.type.span, message: "type declared here" }],
        });
      }
      if (ann.kind !== "error") t = ann;
    }
    this.declarePattern(s.target, t, s.kind, f);
  }

  private declarePattern(p: Pattern, t: Type, kind: "let" | "var", f: Frame): void {
    if (p.kind === "ident") {
      const param = f.fn?.params.get(p.name) ?? (f.self ? this.memberSpan(f.self.block, p.name) : undefined);
      if (param && f.record)
        f.report(warning(Code.Shadow, p.span, `\`${p.name}\` shadows the ${f.fn?.params.has(p.name) ? "parameter" : "block member"} \`${p.name}\``, {
          related: [{ span: param, message: "declared here" }],
          hint: "pick another name; the original is no longer reachable here",
        }));
      f.declare(p, t, kind);
      f.rec(p, t);
      return;
    }
    let items: Type[];
    if (t.kind === "tuple" && t.items.length === p.items.length) items = t.items;
    else {
      if (t.kind !== "error") this.err(f, Code.TypeMismatch, p.span, `cannot destructure ${describe(t)} into ${p.items.length} names`);
      items = p.items.map(() => ERROR);
    }
    p.items.forEach((q, i) => this.declarePattern(q, items[i], kind, f));
  }

  // ================================================================ expressions

  expr(e: Expr, f: Frame): Type {
    let t: Type;
    try {
      t = this.exprInner(e, f);
    } catch (x) {
      if (x instanceof RangeError) {
        this.err(f, Code.Internal, e.span, "expression nested too deeply to check", { hint: "split it with `let`" });
        t = ERROR;
      } else throw x;
    }
    return f.rec(e, t);
  }

  private exprInner(e: Expr, f: Frame): Type {
    switch (e.kind) {
      case "number":
        return e.isInt ? { kind: "int", value: constDim(e.value) } : { kind: "float", value: e.value };
      case "string":
        return { kind: "string", value: e.value };
      case "bool":
        return { kind: "bool", value: e.value };
      case "none":
        this.err(f, Code.TypeMismatch, e.span, "`None` only adds an axis inside an index: x[:, None]");
        return ERROR;
      case "ident":
        return this.ident(e, f);
      case "paren":
        return this.expr(e.expr, f);
      case "binary":
        return this.binary(e, f);
      case "unary":
        return this.unary(e, f);
      case "call":
        return this.call(e, f);
      case "member":
        return this.member(e, f);
      case "index":
        return this.index(e, f);
      case "if":
        return this.ifExpr(e, f);
      case "list":
        return { kind: "list", items: e.items.map((x) => this.expr(x, f)) };
      case "tuple":
        return { kind: "tuple", items: e.items.map((x) => this.expr(x, f)) };
      case "record":
        return { kind: "record", fields: e.fields.map((x) => ({ name: x.name.name, type: f.rec(x, this.expr(x.value, f)) })) };
      case "repeat": {
        if (!this.instancesAllowed(e.span, f)) return ERROR;
        const n = this.dimExpr(e.count, f);
        const body = this.expr(e.body, f);
        if (body.kind !== "instance" && body.kind !== "error") {
          this.err(f, Code.TypeMismatch, e.body.span, `repeat(${this.text(e.count.span)}) needs a block constructor, like repeat(L) Layer(D, F); found ${describe(body)}`);
          return ERROR;
        }
        return n && body.kind === "instance" ? { kind: "repeat", count: n, elem: body } : ERROR;
      }
      case "frozen": {
        if (!this.instancesAllowed(e.span, f)) return ERROR;
        const body = this.expr(e.body, f);
        if (body.kind !== "instance" && body.kind !== "repeat" && body.kind !== "error") {
          this.err(f, Code.TypeMismatch, e.body.span, `frozen applies to an instance, found ${describe(body)}`);
          return ERROR;
        }
        return freeze(body);
      }
      case "from": {
        if (!this.instancesAllowed(e.span, f)) return ERROR;
        const body = this.expr(e.body, f);
        f.rec(e.path, { kind: "string", value: e.path.value });
        if (body.kind !== "instance" && body.kind !== "repeat" && body.kind !== "error") {
          this.err(f, Code.TypeMismatch, e.body.span, `\`from "${e.path.value}"\` loads an instance's params; found ${describe(body)}`);
          return ERROR;
        }
        return body;
      }
      case "blockExpr":
        return this.blockStmt(e.block, f);
      case "error":
        return ERROR;
    }
  }

  private instancesAllowed(span: Span, f: Frame): boolean {
    if (f.allowInstances) return true;
    this.err(f, Code.InstanceHere, span, "instances are created only as block members (`ln = LayerNorm(D)`) or train fields (`model = Lm(V, D)`)", {
      hint: "declare it as a member of the block, or take it as a parameter (`g: Linear`)",
    });
    return false;
  }

  private ident(e: Ident, f: Frame): Type {
    const name = e.name;
    const b = f.lookup(name);
    if (b) {
      this.definitions.set(e, b.span);
      return b.type;
    }
    if (f.self) {
      const t = this.selfMember(f.self, name);
      if (t) {
        const s = this.memberSpan(f.self.block, name);
        if (s) this.definitions.set(e, s);
        return t;
      }
    }
    if (f.module.aliases.has(name)) {
      const a = f.module.aliases.get(name)!;
      return a.file ? { kind: "module", file: a.file } : ERROR;
    }
    const g = this.lookupGlobal(f.module, name, f, e.span);
    if (g) {
      this.definitions.set(e, symSpan(g));
      return this.symType(g, f, e.span);
    }
    if (BUILTINS.has(name)) return { kind: "builtin", name };
    if (name === "training") return { kind: "bool" };
    if (isDType(name)) return { kind: "dtype", dtype: name };
    const near = hintFor(name, this.visibleNames(f));
    const looksLikeDim = /^[A-Z]$/.test(name) || /^[A-Z][A-Z0-9_]*$/.test(name);
    this.err(f, Code.UnknownName, e.span, `unknown name \`${name}\``, { hint: near ?? (looksLikeDim ? `if it is a size, declare it: \`dim ${name}\`` : undefined) });
    return ERROR;
  }

  private member(e: MemberExpr, f: Frame): Type {
    const obj = this.expr(e.object, f);
    const name = e.name.name;
    const unknown = (what: string, candidates: Iterable<string>): Type => {
      this.err(f, Code.UnknownMember, e.name.span, `${what} has no member \`${name}\``, { hint: hintFor(name, candidates) });
      return ERROR;
    };
    switch (obj.kind) {
      case "error":
        return ERROR;
      case "data":
        return obj;
      case "batch":
        return { kind: "data", field: name };
      case "module": {
        const scope = this.scopes.get(obj.file);
        const s = scope?.names.get(name);
        if (!scope || !s) return unknown(`"${obj.file}"`, scope?.names.keys() ?? []);
        this.definitions.set(e.name, symSpan(s));
        return this.symType(s, f, e.name.span);
      }
      case "instance": {
        const t = this.memberOfInstance(obj, name);
        if (!t) {
          const b = obj.block;
          return unknown(`${printType(obj)}`, [...b.params.keys(), ...b.subs.keys(), ...b.fns.keys(), ...b.node.dims.map((d) => d.name)]);
        }
        const s = this.memberSpan(obj.block, name);
        if (s) this.definitions.set(e.name, s);
        return t;
      }
      case "repeat": {
        // `layers.ff.w`: the member of every instance, stacked along the repeat count
        let elem: Type = obj.elem;
        const counts: Dim[] = [obj.count];
        while (elem.kind === "repeat") {
          counts.push(elem.count);
          elem = elem.elem;
        }
        if (elem.kind !== "instance") return ERROR;
        const t = this.memberOfInstance(elem, name);
        if (!t) return unknown(printType(obj), [...elem.block.params.keys(), ...elem.block.subs.keys()]);
        if (t.kind === "fn") {
          this.err(f, Code.TypeMismatch, e.span, `index the repeat first to call a fn: ${this.text(e.object.span)}[i].${name}(...)`);
          return ERROR;
        }
        return counts.reduceRight<Type>((acc, n) => liftType(acc, n), t);
      }
      case "record": {
        const fld = obj.fields.find((x) => x.name === name);
        return fld ? fld.type : unknown(printType(obj), obj.fields.map((x) => x.name));
      }
      default:
        return unknown(describe(obj), []);
    }
  }

  // ---------------------------------------------------------------- operators

  private origin(e: Expr, f: Frame): Related | undefined {
    while (e.kind === "paren") e = e.expr;
    if (e.kind !== "ident") return undefined;
    const b = f.lookup(e.name, false);
    const t = this.typeOfRecorded(e, f);
    if (b) return { span: b.span, message: `\`${e.name}\` is ${t ? printType(f.u.resolve(t)) : printType(f.u.resolve(b.type))}, declared here` };
    if (f.self) {
      const s = this.memberSpan(f.self.block, e.name);
      const mt = this.selfMember(f.self, e.name);
      if (s && mt) return { span: s, message: `\`${e.name}\` is ${printType(mt)}, declared here` };
    }
    return undefined;
  }

  private typeOfRecorded(e: Expr, f: Frame): Type | undefined {
    for (let i = f.recorded.length - 1; i >= 0; i--) if (f.recorded[i][0] === e) return f.recorded[i][1];
    return undefined;
  }

  /**
   * Elementwise join: broadcasting plus the dtype rule. Compile-time numbers are weak
   * scalars that take the tensor's dtype.
   */
  elementwise(args: BoundArg[], span: Span, what: string, dtypes: readonly DType[], f: Frame): TensorType | undefined {
    const strong: { t: TensorType; a: BoundArg }[] = [];
    for (const a of args) {
      const t = a.type;
      if (t.kind === "tensor") strong.push({ t, a });
      else if (t.kind !== "int" && t.kind !== "float") {
        if (t.kind !== "error")
          this.err(f, Code.TypeMismatch, a.span, `${what} expects tensors or numbers, found ${describe(t)}`, {
            hint: t.kind === "instance" ? `call it first: ${this.text(a.span)}(x)` : t.kind === "bool" ? "a compile-time flag selects code with `if`; for a tensor mask use a comparison" : undefined,
          });
        return undefined;
      }
    }
    if (strong.length === 0) return tensor(dtypes.includes("f32") ? "f32" : dtypes[0], []);
    const dtype = strong[0].t.dtype;
    for (const s of strong.slice(1))
      if (s.t.dtype !== dtype) {
        this.err(f, Code.DtypeMismatch, span, `${what} needs operands of one dtype: ${printType(strong[0].t)} and ${printType(s.t)} (${dtype} vs ${s.t.dtype})`, {
          hint: castHint(dtype),
          related: [strong[0].a, s.a].map((a) => this.origin(a.expr, f)).filter((r): r is Related => !!r),
        });
        return undefined;
      }
    if (!dtypes.includes(dtype)) {
      this.err(f, Code.DtypeMismatch, span, `${what} is not defined on ${dtype} tensors (${printType(strong[0].t)})`, { hint: castHint(dtypes[0]) });
      return undefined;
    }
    for (const a of args) {
      if (a.type.kind === "float" && (dtype === "i32" || dtype === "bool") && !(a.type.value !== undefined && Number.isInteger(a.type.value))) {
        this.err(f, Code.DtypeMismatch, a.span, `${what}: a fractional number cannot mix with ${printType(strong[0].t)}`, { hint: "cast the tensor first: cast(x)" });
        return undefined;
      }
    }
    let acc: Shape = shapeOf(strong[0].t);
    let accArg = strong[0];
    for (const s of strong.slice(1)) {
      const r = f.u.broadcast(acc, shapeOf(s.t));
      if ("fail" in r) {
        this.broadcastError(f, span, what, tensor(dtype, acc.dims, acc.rest), s.t, r.fail, accArg.a, s.a);
        return undefined;
      }
      acc = r.shape;
      accArg = s;
    }
    return tensor(dtype, acc.dims, acc.rest);
  }

  private broadcastError(f: Frame, span: Span, what: string, a: TensorType, b: TensorType, fail: BroadcastFail, aa: BoundArg, ba: BoundArg): void {
    const ra = f.u.resolveTensor(a), rb = f.u.resolveTensor(b);
    const related = [this.origin(aa.expr, f), this.origin(ba.expr, f)].filter((r): r is Related => !!r);
    let hint: string | undefined;
    // would a new axis on the shorter operand make it broadcast?
    const [short, long, sArg] = ra.dims.length <= rb.dims.length ? [ra, rb, aa] : [rb, ra, ba];
    if (!short.rest && short.dims.length < long.dims.length + 1) {
      for (let k = short.dims.length; k >= 0; k--) {
        const dims = [...short.dims.slice(0, k), constDim(1), ...short.dims.slice(k)];
        if (f.u.wouldBroadcast(dims, long.dims) && dims.length <= Math.max(long.dims.length, short.dims.length + 1)) {
          const text = this.text(sArg.span);
          const name = text.length > 0 && text.length <= 24 && /^[\w.]+$/.test(text) ? text : "x";
          hint = `insert \`None\` to broadcast: ${name}[${":, ".repeat(k)}None]`;
          break;
        }
      }
    }
    const sh = this.shadowing(fail.a, fail.b);
    this.err(f, Code.DimMismatch, span, `cannot broadcast ${printType(ra)} with ${printType(rb)}: dim ${printDim(fail.a)} vs ${printDim(fail.b)} (at dim ${fail.index + 1} of ${fail.rank})${sh ? `; ${sh.note}` : ""}`, {
      hint: hint ?? sh?.hint ?? sameNameHint(fail.a, fail.b),
      related: [...related, ...(sh?.related ?? [])],
    });
  }

  private binary(e: BinaryExpr, f: Frame): Type {
    const l = this.expr(e.left, f), r = this.expr(e.right, f);
    if (l.kind === "error" || r.kind === "error") return ERROR;
    const op = e.op;
    const la: BoundArg = { type: l, expr: e.left, span: e.left.span }, ra: BoundArg = { type: r, expr: e.right, span: e.right.span };
    if (l.kind === "data" || r.kind === "data") return { kind: "data" };
    if (op === "@") return this.matmul(e, l, r, f);
    if (isCompileTime(l) && isCompileTime(r)) return this.constBinary(e, l, r, f);
    const what = `\`${op}\``;
    switch (op) {
      case "+": case "-": case "*": case "/": case "%": case "**":
        return this.elementwise([la, ra], e.span, what, NUMERIC, f) ?? ERROR;
      case "<": case "<=": case ">": case ">=": {
        const t = this.elementwise([la, ra], e.span, what, NUMERIC, f);
        return t ? { ...t, dtype: "bool" } : ERROR;
      }
      case "==": case "!=": {
        const t = this.elementwise([la, ra], e.span, what, ANY, f);
        return t ? { ...t, dtype: "bool" } : ERROR;
      }
      case "&&": case "||":
        return this.elementwise([la, ra], e.span, what, ["bool"], f) ?? ERROR;
    }
  }

  /** Arithmetic and comparisons of compile-time values (dims stay symbolic). */
  private constBinary(e: BinaryExpr, l: Type, r: Type, f: Frame): Type {
    const op = e.op;
    const num = (t: Type): number | undefined => (t.kind === "float" ? t.value : t.kind === "int" && t.value ? isConst(t.value) : undefined);
    if (op === "&&" || op === "||") {
      if (l.kind !== "bool" || r.kind !== "bool") {
        this.err(f, Code.TypeMismatch, e.span, `\`${op}\` needs flags on both sides, found ${describe(l)} and ${describe(r)}`);
        return ERROR;
      }
      const v = l.value !== undefined && r.value !== undefined ? (op === "&&" ? l.value && r.value : l.value || r.value) : undefined;
      return { kind: "bool", value: v };
    }
    if (l.kind === "bool" || r.kind === "bool" || l.kind === "string" || r.kind === "string") {
      if ((op === "==" || op === "!=") && l.kind === r.kind) {
        const lv = l.kind === "bool" || l.kind === "string" ? l.value : undefined;
        const rv = r.kind === "bool" || r.kind === "string" ? r.value : undefined;
        return { kind: "bool", value: lv !== undefined && rv !== undefined ? (op === "==") === (lv === rv) : undefined };
      }
      this.err(f, Code.TypeMismatch, e.span, `\`${op}\` is not defined on ${describe(l)} and ${describe(r)}`);
      return ERROR;
    }
    const a = num(l), b = num(r);
    if (["<", "<=", ">", ">=", "==", "!="].includes(op)) {
      let v: boolean | undefined;
      if (a !== undefined && b !== undefined)
        v = op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : op === ">=" ? a >= b : op === "==" ? a === b : a !== b;
      else if (l.kind === "int" && r.kind === "int" && l.value && r.value && dimEquals(l.value, r.value))
        v = op === "==" || op === "<=" || op === ">=";
      return { kind: "bool", value: v };
    }
    if (l.kind === "int" && r.kind === "int") {
      if (!l.value || !r.value) return { kind: "int" };
      switch (op) {
        case "+": return { kind: "int", value: addDim(l.value, r.value) };
        case "-": return { kind: "int", value: subDim(l.value, r.value) };
        case "*": return { kind: "int", value: mulDim(l.value, r.value) };
        case "/":
          if (a !== undefined && b !== undefined && b !== 0 && a % b !== 0) return { kind: "float", value: a / b };
          return { kind: "int", value: divDim(l.value, r.value) };
        case "%":
          return a !== undefined && b !== undefined && b !== 0 ? { kind: "int", value: constDim(a % b) } : { kind: "int" };
        case "**":
          if (a !== undefined && b !== undefined) return b >= 0 ? { kind: "int", value: constDim(a ** b) } : { kind: "float", value: a ** b };
          return { kind: "int" };
      }
    }
    let v: number | undefined;
    if (a !== undefined && b !== undefined)
      v = op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : op === "/" ? a / b : op === "%" ? a % b : a ** b;
    return { kind: "float", value: v };
  }

  private matmul(e: BinaryExpr, l: Type, r: Type, f: Frame): Type {
    if (l.kind !== "tensor" || r.kind !== "tensor") {
      const bad = l.kind !== "tensor" ? [l, e.left] as const : [r, e.right] as const;
      this.err(f, Code.TypeMismatch, bad[1].span, `\`@\` multiplies tensors, found ${describe(bad[0])}`, {
        hint: bad[0].kind === "instance" ? `call the instance instead: ${this.text(bad[1].span)}(x)` : bad[0].kind === "int" || bad[0].kind === "float" ? "use `*` to scale by a number" : undefined,
      });
      return ERROR;
    }
    const a = f.u.resolveTensor(l), b = f.u.resolveTensor(r);
    const related = [this.origin(e.left, f), this.origin(e.right, f)].filter((x): x is Related => !!x);
    if (a.dtype !== b.dtype) {
      this.err(f, Code.DtypeMismatch, e.span, `\`@\` needs operands of one dtype: ${printType(a)} @ ${printType(b)} (${a.dtype} vs ${b.dtype})`, { hint: castHint(a.dtype), related });
      return ERROR;
    }
    if (a.dtype === "bool") {
      this.err(f, Code.DtypeMismatch, e.span, "`@` is not defined on bool tensors", { hint: castHint("f32") });
      return ERROR;
    }
    for (const [t, side] of [[a, e.left], [b, e.right]] as const)
      if (t.dims.length === 0) {
        this.err(f, Code.RankMismatch, side.span, `\`@\` needs operands with at least one dim, found ${printType(t)}`, { hint: "use `*` to scale by a scalar" });
        return ERROR;
      }
    if (b.rest && b.dims.length < 2) {
      this.err(f, Code.RankMismatch, e.right.span, `\`@\`: the right operand ${printType(b)} needs two known trailing dims`);
      return ERROR;
    }
    const b1 = !b.rest && b.dims.length === 1;
    const k1 = a.dims[a.dims.length - 1];
    const k2 = b1 ? b.dims[0] : b.dims[b.dims.length - 2];
    if (!f.u.unifyDim(k1, k2)) {
      this.err(f, Code.MatmulInner, e.span, `matmul inner dims differ: ${printType(a)} @ ${printType(b)}: ${printDim(f.u.resolveDim(k1))} vs ${printDim(f.u.resolveDim(k2))}`, {
        related,
        hint: !b1 && f.u.wouldBroadcast([k1], [b.dims[b.dims.length - 1]]) ? "the right operand may need a transpose" : undefined,
      });
      return ERROR;
    }
    const aPrefix: Shape = { rest: a.rest, dims: a.dims.slice(0, -1) };
    const bBatched = b.rest !== undefined || b.dims.length > 2;
    let out: Shape;
    if (!bBatched) out = { rest: a.rest, dims: b1 ? aPrefix.dims : [...aPrefix.dims, b.dims[b.dims.length - 1]] };
    else {
      const bBatch: Shape = { rest: b.rest, dims: b.dims.slice(0, -2) };
      const n = b.dims[b.dims.length - 1];
      if (!a.rest && a.dims.length === 1) out = { rest: bBatch.rest, dims: [...bBatch.dims, n] };
      else if (a.dims.length < 2) {
        this.err(f, Code.RankMismatch, e.span, `\`@\`: cannot align ${printType(a)} with the batched ${printType(b)}`);
        return ERROR;
      } else {
        const br = f.u.broadcast({ rest: a.rest, dims: a.dims.slice(0, -2) }, bBatch);
        if ("fail" in br) {
          this.err(f, Code.DimMismatch, e.span, `matmul batch dims do not broadcast: ${printType(a)} @ ${printType(b)}`, { related });
          return ERROR;
        }
        out = { rest: br.shape.rest, dims: [...br.shape.dims, a.dims[a.dims.length - 2], n] };
      }
    }
    return tensor(a.dtype, out.dims.map((d) => f.u.resolveDim(d)), out.rest);
  }

  private unary(e: UnaryExpr, f: Frame): Type {
    const t = this.expr(e.operand, f);
    switch (t.kind) {
      case "error":
      case "data":
        return t;
      case "int":
        if (e.op === "-") return t.value ? { kind: "int", value: negDim(t.value) } : t;
        break;
      case "float":
        if (e.op === "-") return { kind: "float", value: t.value === undefined ? undefined : -t.value };
        break;
      case "bool":
        if (e.op === "!") return { kind: "bool", value: t.value === undefined ? undefined : !t.value };
        break;
      case "tensor":
        if (e.op === "-" && t.dtype !== "bool") return t;
        if (e.op === "!" && t.dtype === "bool") return t;
        this.err(f, Code.DtypeMismatch, e.span, `\`${e.op}\` is not defined on ${printType(t)}`, { hint: e.op === "!" ? "`!` negates bool tensors and flags" : castHint("f32") });
        return ERROR;
    }
    this.err(f, Code.TypeMismatch, e.span, `\`${e.op}\` is not defined on ${describe(t)}`);
    return ERROR;
  }

  // ---------------------------------------------------------------- indexing

  private index(e: IndexExpr, f: Frame): Type {
    const obj = this.expr(e.object, f);
    const valueItems = () => {
      for (const it of e.indices) if (it.kind !== "slice" && it.kind !== "restDim") this.expr(it, f);
    };
    if (obj.kind === "error") {
      valueItems();
      return ERROR;
    }
    if (obj.kind === "repeat" || obj.kind === "list" || obj.kind === "tuple") {
      const only = e.indices[0];
      if (e.indices.length !== 1 || only.kind === "slice" || only.kind === "restDim") {
        this.err(f, Code.Index, e.span, `index ${describe(obj)} with one compile-time int: ${this.text(e.object.span)}[i]`);
        return ERROR;
      }
      const i = this.expr(only, f);
      if (i.kind !== "int") {
        if (i.kind !== "error") this.err(f, Code.NotCompileTime, only.span, `an index into ${describe(obj)} must be a compile-time int, found ${describe(i)}`);
        return ERROR;
      }
      if (obj.kind === "repeat") return obj.elem;
      const k = i.value ? isConst(i.value) : undefined;
      if (k === undefined || k < -obj.items.length || k >= obj.items.length) {
        this.err(f, Code.Index, only.span, `index ${i.value ? printDim(i.value) : "?"} is out of range for ${describe(obj)}`);
        return ERROR;
      }
      return obj.items[k < 0 ? obj.items.length + k : k];
    }
    if (obj.kind === "data") {
      valueItems();
      return obj;
    }
    if (obj.kind !== "tensor") {
      this.err(f, Code.Index, e.object.span, `cannot index ${describe(obj)}`);
      return ERROR;
    }
    const x = f.u.resolveTensor(obj);
    const rests = e.indices.filter((it) => it.kind === "restDim");
    if (rests.length > 1) {
      this.err(f, Code.Index, rests[1].span, "an index has at most one `..`");
      return ERROR;
    }
    // `..` stands for every axis the other items do not address: items before it address
    // the leading axes, items after it the trailing ones (NumPy's `...`)
    const restAt = e.indices.findIndex((it) => it.kind === "restDim");
    const consuming = e.indices.filter((it) => it.kind !== "none" && it.kind !== "restDim").length;
    const objText = this.text(e.object.span);
    const name = /^[\w.]{1,24}$/.test(objText) ? objText : "x";
    const related = [this.origin(e.object, f)].filter((r): r is Related => !!r);
    /** what addresses each axis, in order: an item, or `keep` for an axis that `..` stands for */
    let items: (IndexItem | "keep")[];
    if (x.rest) {
      if (restAt !== 0) {
        // `x[:, 0]` on f32[.., D] most likely means the last axis: drop leading `:`s that do not fit
        const shownItems = e.indices.filter((it) => it.kind !== "restDim");
        let extra = consuming - x.dims.length;
        while (extra > 0 && shownItems[0]?.kind === "slice" && !shownItems[0].start && !shownItems[0].end && !shownItems[0].step) {
          shownItems.shift();
          extra--;
        }
        const shown = shownItems.map((it) => this.text(it.span)).join(", ");
        const [span, what] = restAt < 0 ? [e.span, "its leading dims `..` are unknown, so an index without `..` cannot tell which axis it addresses"] : [e.indices[0].span, "items before `..` would address its unknown leading dims"];
        this.err(f, Code.Index, span, `cannot index ${printType(x)} from the left: ${what}`, {
          hint: restAt < 0 ? `index its trailing dims after \`..\`: ${name}[..${shown ? `, ${shown}` : ""}]` : "index the leading dims where they are known (in the caller), or reshape first",
          related,
        });
        return ERROR;
      }
      if (consuming > x.dims.length) {
        this.err(f, Code.Index, e.span, `too many indices after \`..\` for ${printType(x)}: ${consuming} indices for its ${x.dims.length} known trailing dim${x.dims.length === 1 ? "" : "s"}`, {
          hint: "the leading dims `..` are unknown here; reduce or reshape first, or index in the caller",
          related,
        });
        return ERROR;
      }
      items = [...x.dims.slice(0, x.dims.length - consuming).map(() => "keep" as const), ...e.indices.slice(1)];
    } else {
      if (consuming > x.dims.length) {
        this.err(f, Code.Index, e.span, `too many indices for ${printType(x)}: ${consuming} indices for ${x.dims.length} dim${x.dims.length === 1 ? "" : "s"}`, { related });
        return ERROR;
      }
      const keep = Array.from({ length: x.dims.length - consuming }, () => "keep" as const);
      items = restAt < 0 ? e.indices : [...e.indices.slice(0, restAt), ...keep, ...e.indices.slice(restAt + 1)];
    }
    const out: Dim[] = [];
    // a tensor with unknown leading dims keeps them in front
    let outRest: Rest | undefined = x.rest;
    let pos = 0;
    for (const it of items) {
      if (it === "keep") {
        out.push(x.dims[pos++]);
        continue;
      }
      if (it.kind === "none") {
        f.rec(it, { kind: "none" });
        out.push(constDim(1));
        continue;
      }
      if (it.kind === "restDim") continue;
      const d = x.dims[pos++];
      if (it.kind === "slice") {
        const len = this.sliceLength(it, d, f);
        if (!len) return ERROR;
        out.push(len);
        continue;
      }
      const t = this.expr(it, f);
      if (t.kind === "int") {
        const k = t.value ? isConst(t.value) : undefined;
        const n = isConst(d);
        if (k !== undefined && n !== undefined && (k >= n || k < -n)) {
          this.err(f, Code.Index, it.span, `index ${k} is out of range for dim ${printDim(d)} = ${n}`);
          return ERROR;
        }
        continue;
      }
      if (t.kind === "tensor" && t.dtype === "i32") {
        if (t.rest) {
          // `emb[x]` with x: i32[.., T]: the unknown leading dims lead the result
          if (out.length > 0 || outRest) {
            this.err(f, Code.Index, it.span, `an index with unknown leading dims (${printType(t)}) must be the first index`);
            return ERROR;
          }
          outRest = t.rest;
        }
        out.push(...t.dims);
        continue;
      }
      if (t.kind === "data") continue;
      if (t.kind !== "error") this.err(f, Code.Index, it.span, `an index is a compile-time int, a slice a:b, None, \`..\` or an i32 tensor; found ${describe(t)}`);
      return ERROR;
    }
    out.push(...x.dims.slice(pos));
    return tensor(x.dtype, out, outRest);
  }

  private sliceLength(s: SliceItem, d: Dim, f: Frame): Dim | undefined {
    const bound = (e: Expr | undefined, dflt: Dim): Dim | undefined => {
      if (!e) return dflt;
      const t = this.expr(e, f);
      if (t.kind === "int" && t.value) {
        const k = isConst(t.value);
        return k !== undefined && k < 0 ? addDim(d, t.value) : t.value;
      }
      if (t.kind === "int")
        this.err(f, Code.Index, e.span, "a slice bound must have a known value (0:T-1); a loop variable's value is not known when shapes are checked", {
          hint: "slice with dims or constants, or index one element with x[i]",
        });
      else if (t.kind !== "error") this.err(f, Code.Index, e.span, `a slice bound must be a compile-time int or dim (0:T-1), found ${describe(t)}`);
      return undefined;
    };
    const start = bound(s.start, constDim(0));
    const end = bound(s.end, d);
    let step = 1;
    if (s.step) {
      const t = this.expr(s.step, f);
      const k = t.kind === "int" && t.value ? isConst(t.value) : undefined;
      if (k === undefined || k <= 0) {
        if (t.kind !== "error") this.err(f, Code.Index, s.step.span, `a slice step must be a positive integer, found ${describe(t)}`);
        return undefined;
      }
      step = k;
    }
    if (!start || !end) return undefined;
    let len = subDim(end, start);
    if (step !== 1) len = divDim(addDim(len, constDim(step - 1)), constDim(step));
    const n = isConst(len);
    if (n !== undefined && n <= 0) {
      this.err(f, Code.Index, s.span, `the slice ${this.text(s.span)} of dim ${printDim(d)} is empty`);
      return undefined;
    }
    return len;
  }

  // ---------------------------------------------------------------- if

  private ifExpr(e: IfExpr, f: Frame): Type {
    const c = this.expr(e.cond, f);
    if (c.kind === "tensor")
      this.err(f, Code.NotCompileTime, e.cond.span, `\`if\` needs a compile-time condition, found the tensor ${printType(c)}`, { hint: "to choose per element, use where(c, a, b)" });
    else if (c.kind !== "bool" && c.kind !== "error" && c.kind !== "data")
      this.err(f, Code.NotCompileTime, e.cond.span, `\`if\` needs a compile-time flag (true, false, training, a comparison of compile-time ints), found ${describe(c)}`);
    const a = this.blockStmt(e.then, f);
    if (!e.else) return UNIT;
    const b = e.else.kind === "if" ? this.expr(e.else, f) : this.blockStmt(e.else, f);
    if (a.kind === "error") return b;
    if (b.kind === "error") return a;
    if (isCompileTime(a) && isCompileTime(b)) {
      const j = joinCompileTime(a, b);
      if (j) return j;
    }
    const m = f.u.unifyType(a, b);
    if (m) {
      this.err(f, Code.TypeMismatch, e.span, `the branches of \`if\` differ: ${describe(f.u.resolve(a))} and ${describe(f.u.resolve(b))}${mismatchDetail(m)}`);
      return ERROR;
    }
    return f.u.resolve(a);
  }

  // ---------------------------------------------------------------- calls

  private call(e: CallExpr, f: Frame): Type {
    const callee = this.expr(e.callee, f);
    const args: EvaluatedArg[] = e.args.map((a) => ({ arg: a, type: this.expr(a.value, f) }));
    if (f.record) {
      const target: CallTarget | undefined =
        callee.kind === "builtin" ? { kind: "builtin", name: callee.name }
        : callee.kind === "fn" ? { kind: "fn", fn: callee.fn }
        : callee.kind === "instance" ? { kind: "forward", block: callee.block }
        : callee.kind === "block" ? { kind: "construct", block: callee.block }
        : undefined;
      if (target) this.calls.set(e, target);
    }
    switch (callee.kind) {
      case "error":
        return ERROR;
      case "builtin":
        return this.callBuiltin(BUILTINS.get(callee.name)!, e, args, f);
      case "fn": {
        const sig = this.sigOf(callee.fn);
        const bound = this.bindArgs(
          sig.params.map((p) => ({ name: p.name, optional: p.hasDefault })),
          args,
          e,
          fnLabel(callee.fn),
          f,
        );
        if (!bound || bound.all.some((a) => a.type.kind === "error")) return ERROR;
        return this.callFn(callee.fn, callee.self, bound.map, e.span, f);
      }
      case "instance":
        return this.callInstance(callee, e, args, f);
      case "block":
        return this.construct(callee.block, e, args, f);
      case "repeat":
        this.err(f, Code.NotCallable, e.callee.span, `${describe(callee)} is a stack of instances; call one of them: ${this.text(e.callee.span)}[i](x)`);
        return ERROR;
      case "data":
        return callee;
      default: {
        const name = e.callee.kind === "ident" ? e.callee.name : undefined;
        const isOptimizer = name && ["sgd", "adam", "adamw", "jsonl", "cosine", "linear", "constant", "inverse_sqrt"].includes(name);
        this.err(f, Code.NotCallable, e.callee.span, `${describe(callee)} is not a function`, {
          hint: isOptimizer ? `${name}(...) is only meaningful as a train field` : undefined,
        });
        return ERROR;
      }
    }
  }

  private callInstance(inst: InstanceType, e: CallExpr, args: EvaluatedArg[], f: Frame): Type {
    this.resolveBlock(inst.block);
    const fwd = inst.block.forward;
    if (!fwd) {
      this.err(f, Code.NotCallable, e.callee.span, `${printType(inst)} cannot be called: block ${inst.block.name} has no forward fn`, {
        hint: `add an unnamed fn to the block: fn (x: f32[..]) -> f32[..] = ...`,
        related: [{ span: inst.block.node.name.span, message: `block ${inst.block.name} declared here` }],
      });
      return ERROR;
    }
    const sig = this.sigOf(fwd);
    const bound = this.bindArgs(sig.params.map((p) => ({ name: p.name, optional: p.hasDefault })), args, e, fnLabel(fwd), f);
    if (!bound || bound.all.some((a) => a.type.kind === "error")) return ERROR;
    return this.callFn(fwd, inst, bound.map, e.span, f);
  }

  private construct(b: BlockInfo, e: CallExpr, args: EvaluatedArg[], f: Frame): Type {
    if (!this.instancesAllowed(e.span, f)) return ERROR;
    if (f.owner.startsWith("block:")) this.addEdge(f.owner, b.id, e.span);
    const named = args.find((a) => a.arg.name);
    if (named) {
      this.err(f, Code.UnknownNamedArg, named.arg.span, `block ${b.name} takes its dims by position: ${b.name}(${b.node.dims.map((d) => d.name).join(", ")})`);
      return ERROR;
    }
    const n = b.node.dims.length;
    if (args.length !== n) {
      const code = args.length < n ? Code.MissingArg : Code.Arity;
      this.err(f, code, e.argsSpan, `${b.name} takes ${n} dim${n === 1 ? "" : "s"} (${b.node.dims.map((d) => d.name).join(", ")}), found ${args.length}`, {
        related: [{ span: b.node.name.span, message: `block ${b.name} declared here` }],
      });
      return ERROR;
    }
    const dims: Dim[] = [];
    for (const a of args) {
      if (a.type.kind === "int" && a.type.value) dims.push(a.type.value);
      else {
        if (a.type.kind !== "error") this.err(f, Code.TypeMismatch, a.arg.value.span, `a block's dims are compile-time ints (D, 4*D, 64), found ${describe(a.type)}`);
        return ERROR;
      }
    }
    return { kind: "instance", block: b, args: dims, frozen: false };
  }

  /** Bind positional and `name=value` arguments to parameter names. */
  bindArgs(
    params: BuiltinParam[],
    args: EvaluatedArg[],
    call: CallExpr,
    label: string,
    f: Frame,
  ): { map: Map<string, BoundArg>; rest: BoundArg[]; all: BoundArg[] } | undefined {
    const map = new Map<string, BoundArg>();
    const rest: BoundArg[] = [];
    let ok = true;
    const toBound = (a: EvaluatedArg): BoundArg => ({ type: a.type, expr: a.arg.value, span: a.arg.value.span });
    for (const a of args) {
      if (!a.arg.name) continue;
      const name = a.arg.name.name;
      const p = params.find((q) => q.name === name && !q.variadic);
      if (!p) {
        this.err(f, Code.UnknownNamedArg, a.arg.name.span, `${label} has no parameter \`${name}\``, {
          hint: hintFor(name, params.filter((q) => !q.variadic).map((q) => q.name)) ?? `its parameters are ${params.map((q) => q.name).join(", ")}`,
        });
        ok = false;
      } else if (map.has(name)) {
        this.err(f, Code.UnknownNamedArg, a.arg.name.span, `argument \`${name}\` of ${label} is given twice`);
        ok = false;
      } else map.set(name, toBound(a));
    }
    let pi = 0;
    const positional = args.filter((a) => !a.arg.name);
    for (const a of positional) {
      const p = params[pi];
      if (p?.variadic) {
        rest.push(toBound(a));
        continue;
      }
      if (!p) {
        const max = params.filter((q) => !q.variadic).length;
        this.err(f, Code.Arity, a.arg.span, `${label} takes ${max} argument${max === 1 ? "" : "s"}, found ${args.length}`);
        ok = false;
        break;
      }
      if (map.has(p.name)) {
        this.err(f, Code.UnknownNamedArg, a.arg.span, `argument \`${p.name}\` of ${label} is given twice (by position and by name)`);
        ok = false;
      } else map.set(p.name, toBound(a));
      pi++;
    }
    const missing = params.filter((p) => !p.optional && !p.variadic && !map.has(p.name));
    // after a misspelt name, the "missing" parameter is usually the one it meant
    if (missing.length > 0 && ok) {
      this.err(f, Code.MissingArg, call.argsSpan, `missing argument${missing.length > 1 ? "s" : ""} ${missing.map((p) => `\`${p.name}\``).join(", ")} of ${label}`, {
        hint: `${label} takes (${params.map((p) => (p.variadic ? `${p.name}..` : p.optional ? `${p.name}?` : p.name)).join(", ")})`,
      });
      ok = false;
    }
    return ok ? { map, rest, all: [...map.values(), ...rest] } : undefined;
  }

  private callBuiltin(b: Builtin, e: CallExpr, args: EvaluatedArg[], f: Frame): Type {
    const bound = this.bindArgs(b.params, args, e, b.name, f);
    if (!bound) return ERROR;
    if (bound.all.some((a) => a.type.kind === "error")) return ERROR;
    if (!b.seesData && bound.all.some((a) => a.type.kind === "data")) return { kind: "data" };
    return b.rule({ call: e, get: (n) => bound.map.get(n), rest: bound.rest }, this.ruleCx(f));
  }

  private ruleCx(f: Frame): RuleCx {
    const ck = this;
    return {
      u: f.u,
      report: (d) => f.report(d),
      error: (code, span, message, extra) => ck.err(f, code, span, message, extra),
      operand(a, fn, dtypes) {
        const t = a.type;
        if (t.kind === "tensor") {
          if (dtypes.includes(t.dtype)) return f.u.resolveTensor(t);
          ck.err(f, Code.DtypeMismatch, a.span, `${fn} expects ${dtypeList(dtypes)}, found ${printType(f.u.resolve(t))}`, {
            hint: castHint(dtypes[0]),
            related: [ck.origin(a.expr, f)].filter((r): r is Related => !!r),
          });
          return undefined;
        }
        if (t.kind === "int" || t.kind === "float") return tensor(dtypes.includes("f32") ? "f32" : dtypes[0], []);
        if (t.kind !== "error" && t.kind !== "data")
          ck.err(f, Code.TypeMismatch, a.span, `${fn} expects a tensor, found ${describe(t)}`, {
            hint: t.kind === "instance" ? `call the instance first: ${ck.text(a.span)}(x)` : undefined,
          });
        return undefined;
      },
      elementwise: (args, span, what, dtypes) => ck.elementwise(args, span, what, dtypes, f),
      axis: (x, axis, xArg) => ck.axis(x, axis, xArg, f),
      dim(a, what) {
        if (a.type.kind === "int" && a.type.value) return a.type.value;
        if (a.type.kind !== "error") ck.err(f, Code.TypeMismatch, a.span, `${what} must be a dim (a dim name or a compile-time int), found ${describe(a.type)}`);
        return undefined;
      },
      callValue: (fn, types, span) => ck.callValue(fn, types, span, f),
      sizeOf: (t, span) => ck.sizeOf(t, span, f),
      gradTarget: (wrt) => ck.gradTarget(wrt, f),
    };
  }

  /** Which position of `x` an axis argument names. */
  axis(x: TensorType, a: BoundArg, xArg: BoundArg, f: Frame): number | undefined {
    const t = a.type;
    if (t.kind === "error") return undefined;
    if (t.kind !== "int" || !t.value) {
      this.err(f, Code.Axis, a.span, `an axis is a dim name (T) or a constant integer (-1), found ${describe(t)}`);
      return undefined;
    }
    const k = isConst(t.value);
    const rank = x.dims.length;
    if (k !== undefined) {
      if (x.rest) {
        if (k < 0 && -k <= rank) return rank + k;
        this.err(f, Code.Axis, a.span, `axis ${k} of ${printType(x)} is inside the unknown leading dims \`..\``, { hint: "name the axis (sum(x, T)) or count from the end (-1)" });
        return undefined;
      }
      if (k >= rank || k < -rank) {
        this.err(f, Code.Axis, a.span, `axis ${k} is out of range for ${printType(x)} (rank ${rank})`);
        return undefined;
      }
      return k < 0 ? rank + k : k;
    }
    const want = f.u.resolveDim(t.value);
    const dims = x.dims.map((d) => f.u.resolveDim(d));
    const hits = dims.map((d, i) => (dimEquals(d, want) ? i : -1)).filter((i) => i >= 0);
    if (hits.length === 1) return hits[0];
    const name = printDim(want);
    if (hits.length > 1) {
      this.err(f, Code.Axis, a.span, `axis ${name} is ambiguous: ${printType(x)} has ${name} at dims ${hits.map((i) => i + 1).join(" and ")}`, {
        hint: `give the position instead, e.g. ${hits[hits.length - 1] - rank}`,
      });
      return undefined;
    }
    // a template's unknown dim may be the one named
    const vars = dims.map((d, i) => (d.terms.length === 1 && d.terms[0].atoms.length === 1 && d.terms[0].atoms[0].kind === "var" && d.terms[0].coef === 1 ? i : -1)).filter((i) => i >= 0);
    if (vars.length === 1 && f.u.unifyDim(dims[vars[0]], want)) return vars[0];
    this.err(f, Code.Axis, a.span, `${printType(x)} has no dim ${name}`, {
      hint: x.rest ? "the axis may be among the leading dims `..`, which are unknown here" : `its dims are ${printDims(x)}`,
      related: [this.origin(xArg.expr, f)].filter((r): r is Related => !!r),
    });
    return undefined;
  }

  private callValue(fa: BoundArg, types: Type[], span: Span, f: Frame): Type {
    const t = fa.type;
    let info: FnInfo | undefined;
    let self: InstanceType | undefined;
    if (t.kind === "fn") {
      info = t.fn;
      self = t.self;
    } else if (t.kind === "instance") {
      this.resolveBlock(t.block);
      info = t.block.forward;
      self = t;
    }
    if (!info) {
      if (t.kind !== "error")
        this.err(f, Code.NotCallable, fa.span, `map applies a user fn or an instance, found ${describe(t)}`, { hint: t.kind === "builtin" ? `wrap it: fn g(x: f32[..]) -> f32[..] = ${t.name}(x)` : undefined });
      return ERROR;
    }
    const sig = this.sigOf(info);
    if (types.length > sig.params.length || types.length < sig.params.filter((p) => !p.hasDefault).length) {
      this.err(f, Code.Arity, span, `${fnLabel(info)} takes ${sig.params.length} argument${sig.params.length === 1 ? "" : "s"}, map passes ${types.length}`);
      return ERROR;
    }
    const map = new Map<string, BoundArg>();
    types.forEach((ty, i) => map.set(sig.params[i].name, { type: ty, expr: fa.expr, span }));
    return this.callFn(info, self, map, span, f);
  }

  private gradTarget(w: BoundArg, f: Frame): Type | undefined {
    const isPath = (e: Expr): boolean =>
      e.kind === "ident" || (e.kind === "member" && isPath(e.object)) || (e.kind === "paren" && isPath(e.expr)) || (e.kind === "index" && isPath(e.object) && e.indices.every((i) => i.kind !== "slice" && i.kind !== "restDim"));
    const t = w.type;
    if (t.kind === "error") return undefined;
    if (!isPath(w.expr)) {
      this.err(f, Code.Grad, w.span, "grad differentiates with respect to a name, a param path (m.head.w) or an instance (m.head), not an expression", {
        hint: "bind the value with `let` first if it is an input",
      });
      return undefined;
    }
    if (t.kind === "tensor") {
      if (t.dtype === "f32" || t.dtype === "f16") return t;
      this.err(f, Code.Grad, w.span, `cannot differentiate with respect to ${printType(t)}: only float tensors have gradients`);
      return undefined;
    }
    if (t.kind === "data") return t;
    if (t.kind === "instance" || t.kind === "repeat") {
      const r = this.paramsRecord(t);
      if (r) return r;
      return undefined;
    }
    this.err(f, Code.Grad, w.span, `cannot differentiate with respect to ${describe(t)}`);
    return undefined;
  }
}

// ================================================================ helpers

function sameSym(a: GlobalSym, b: GlobalSym): boolean {
  if (a.kind === "block" && b.kind === "block") return a.info === b.info;
  if (a.kind === "fn" && b.kind === "fn") return a.info === b.info;
  if (a.kind === "dim" && b.kind === "dim") return a.info === b.info;
  return false;
}


function fnLabel(info: FnInfo): string {
  if (!info.owner) return `\`${info.name}\``;
  return info.name === "forward" ? `${info.owner.name}'s forward fn` : `\`${info.owner.name}.${info.name}\``;
}
