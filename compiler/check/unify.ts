// Unification of symbolic shapes. Variables stand for dims we infer (`_`, the dims of a
// template's instance argument, the `..` of a callee bound at a call); everything else is
// rigid and compares by its canonical polynomial. Broadcasting lives here too because a
// variable meeting a concrete dim under broadcasting is resolved the same way.
import { type Atom, type Dim, type NamedAtom, atomsOf, dimEquals, hasVars, isConst, divDim, constDim, negDim, subDim, substDim, varDim } from "./dims.ts";
import { type DType, type InstanceType, type Rest, type TensorType, type Type, broadcastRest, tensor } from "./types.ts";

export interface Shape {
  rest?: Rest;
  dims: Dim[];
}

/** Why two types do not match; the caller words the message. */
export type Mismatch =
  | { kind: "dtype"; expected: DType; found: string }
  | { kind: "rank"; expected: Shape; found: Shape }
  /** `index` counts from the left of `found` (0-based) */
  | { kind: "dim"; expected: Dim; found: Dim; index: number; rank: number }
  | { kind: "type" }
  | { kind: "instance"; index: number; expected: Dim; found: Dim }
  | { kind: "block" };

let fresh = 0;

function varId(key: string): number {
  return Number(key.replace(/\D/g, "")) || 0;
}

export class Unifier {
  private dimVars = new Map<string, Dim>();
  private restVars = new Map<string, Shape>();

  freshDim(name: string): Dim {
    return varDim(`?${++fresh}`, name);
  }

  freshAtom(name: string): NamedAtom {
    return { kind: "var", key: `?${++fresh}`, name };
  }

  freshRest(): Rest {
    return { key: `?..${++fresh}`, isVar: true };
  }

  resolveDim(d: Dim): Dim {
    if (this.dimVars.size === 0) return d;
    return substDim(d, (a) => {
      if (a.kind !== "var") return undefined;
      const b = this.dimVars.get(a.key);
      return b ? this.resolveDim(b) : undefined;
    });
  }

  resolveShape(s: Shape): Shape {
    let rest = s.rest;
    let dims = s.dims.map((d) => this.resolveDim(d));
    while (rest?.isVar) {
      const b = this.restVars.get(rest.key);
      if (!b) break;
      dims = [...b.dims.map((d) => this.resolveDim(d)), ...dims];
      rest = b.rest;
    }
    if (rest?.parts) {
      // a broadcast of leading shapes: what became known may decide it
      const lead = this.joinLeading(rest.parts.map((p) => this.resolveShape(p)));
      return lead.rest ? { rest: lead.rest, dims: [...lead.dims, ...dims] } : { dims: [...lead.dims, ...dims] };
    }
    return rest ? { rest, dims } : { dims };
  }

  /** Bind a rest variable (a call's `..`) to leading dims. */
  bindRestVar(r: Rest, to: Shape): void {
    if (r.isVar && !this.restVars.has(r.key)) this.restVars.set(r.key, to);
  }

  /**
   * The broadcast of leading shapes, as far as it is decided: shapes without `..` broadcast
   * dim by dim (NumPy); what stays unknown stays a broadcast rest. Binds nothing.
   */
  private joinLeading(parts: Shape[]): Shape {
    let acc: Shape = { dims: [] };
    for (const p of parts) {
      const r = this.align(acc, p, stretch);
      if ("fail" in r) return broadcastRest(parts);
      acc = r.shape;
    }
    return acc;
  }

  /**
   * A broadcast of leading shapes that is known to fail: every shape inside is known and two
   * dims differ (neither is 1). What a call reports once its arguments decide the rests.
   */
  leadingConflict(s: Shape): { a: Dim; b: Dim; shapes: Shape[] } | undefined {
    const r = this.resolveShape(s).rest;
    if (!r?.parts || r.parts.some((p) => p.rest || p.dims.some(hasVars))) return undefined;
    let acc: Shape = { dims: [] };
    for (const p of r.parts) {
      const j = this.align(acc, p, stretch);
      if ("fail" in j) return { a: j.fail.a, b: j.fail.b, shapes: r.parts };
      acc = j.shape;
    }
    return undefined;
  }

  resolveTensor(t: TensorType): TensorType {
    const s = this.resolveShape(t);
    return tensor(t.dtype, s.dims, s.rest);
  }

  resolveInstance(t: InstanceType): InstanceType {
    return { ...t, args: t.args.map((d) => this.resolveDim(d)) };
  }

  resolve(t: Type): Type {
    // nothing to resolve, unless a broadcast rest (of a tensor, or in a tuple) may now be decided
    if (this.dimVars.size === 0 && this.restVars.size === 0 && t.kind !== "tensor" && t.kind !== "tuple") return t;
    switch (t.kind) {
      case "tensor":
        return this.resolveTensor(t);
      case "int":
        return t.value ? { kind: "int", value: this.resolveDim(t.value) } : t;
      case "instance":
        return this.resolveInstance(t);
      case "repeat":
        return { kind: "repeat", count: this.resolveDim(t.count), elem: this.resolve(t.elem) };
      case "tuple":
      case "list":
        return { kind: t.kind, items: t.items.map((x) => this.resolve(x)) };
      case "record":
        return { kind: "record", fields: t.fields.map((f) => ({ name: f.name, type: this.resolve(f.type) })) };
      default:
        return t;
    }
  }

  /** Make two dims equal, binding one variable when the difference is linear in it. */
  unifyDim(a: Dim, b: Dim): boolean {
    a = this.resolveDim(a);
    b = this.resolveDim(b);
    if (dimEquals(a, b)) return true;
    const diff = subDim(a, b);
    // bind the newest variable first: a callee's fresh variables, not the caller's
    const vars = [...atomsOf(diff).values()].filter((x) => x.kind === "var").sort((x, y) => varId(y.key) - varId(x.key));
    for (const v of vars) {
      const lone = diff.terms.filter((t) => t.atoms.length === 1 && t.atoms[0].key === v.key);
      if (lone.length !== 1) continue;
      const others = { terms: diff.terms.filter((t) => t !== lone[0]) };
      if (atomsOf(others).has(v.key)) continue; // occurs check
      this.dimVars.set(v.key, divDim(negDim(others), constDim(lone[0].coef)));
      return true;
    }
    return false;
  }

  /** Match `found` against `expected` exactly (no broadcasting), binding variables on either side. */
  unifyShape(expected: Shape, found: Shape): Mismatch | undefined {
    const e = this.resolveShape(expected), f = this.resolveShape(found);
    if (e.rest?.isVar && !(f.rest && f.rest.key === e.rest.key)) return this.bindRest(e, f, false);
    if (f.rest?.isVar && !(e.rest && e.rest.key === f.rest.key)) return this.bindRest(f, e, true);
    if (e.rest?.key !== f.rest?.key || e.dims.length !== f.dims.length) return { kind: "rank", expected: e, found: f };
    for (let i = 0; i < e.dims.length; i++)
      if (!this.unifyDim(e.dims[i], f.dims[i])) return { kind: "dim", expected: e.dims[i], found: f.dims[i], index: i, rank: f.dims.length };
    return undefined;
  }

  /** `v` has an unbound rest variable: it takes the leading dims of `other`. */
  private bindRest(v: Shape, other: Shape, swapped: boolean): Mismatch | undefined {
    const n = other.dims.length - v.dims.length;
    const rank = (): Mismatch => (swapped ? { kind: "rank", expected: other, found: v } : { kind: "rank", expected: v, found: other });
    if (n < 0) return rank();
    for (let i = 0; i < v.dims.length; i++) {
      const od = other.dims[n + i];
      if (!this.unifyDim(v.dims[i], od))
        return swapped
          ? { kind: "dim", expected: od, found: v.dims[i], index: i, rank: v.dims.length }
          : { kind: "dim", expected: v.dims[i], found: od, index: n + i, rank: other.dims.length };
    }
    this.restVars.set(v.rest!.key, other.rest ? { rest: other.rest, dims: other.dims.slice(0, n) } : { dims: other.dims.slice(0, n) });
    return undefined;
  }

  /** Does a value of type `found` fit where `expected` is declared? Binds variables. */
  unifyType(expected: Type, found: Type): Mismatch | undefined {
    if (expected.kind === "error" || found.kind === "error") return undefined;
    if (found.kind === "data" && (expected.kind === "tensor" || expected.kind === "data")) return undefined;
    switch (expected.kind) {
      case "tensor": {
        if ((found.kind === "int" || found.kind === "float") && expected.dims.length === 0 && !expected.rest && expected.dtype !== "bool")
          return found.kind === "float" && expected.dtype === "i32" ? { kind: "dtype", expected: expected.dtype, found: "a number" } : undefined;
        if (found.kind !== "tensor") return { kind: "type" };
        if (expected.dtype !== found.dtype) return { kind: "dtype", expected: expected.dtype, found: found.dtype };
        return this.unifyShape(expected, found);
      }
      case "int":
        if (found.kind !== "int") return { kind: "type" };
        if (expected.value && found.value && !this.unifyDim(expected.value, found.value))
          return { kind: "dim", expected: expected.value, found: found.value, index: 0, rank: 1 };
        return undefined;
      case "float":
        return found.kind === "float" || found.kind === "int" ? undefined : { kind: "type" };
      case "bool":
      case "string":
        return found.kind === expected.kind ? undefined : { kind: "type" };
      case "instance": {
        if (found.kind !== "instance") return { kind: "type" };
        if (found.block !== expected.block) return { kind: "block" };
        for (let i = 0; i < expected.args.length; i++)
          if (!this.unifyDim(expected.args[i], found.args[i])) return { kind: "instance", index: i, expected: expected.args[i], found: found.args[i] };
        return undefined;
      }
      case "repeat": {
        if (found.kind !== "repeat") return { kind: "type" };
        if (!this.unifyDim(expected.count, found.count)) return { kind: "dim", expected: expected.count, found: found.count, index: 0, rank: 1 };
        return this.unifyType(expected.elem, found.elem);
      }
      case "tuple":
      case "list": {
        if (found.kind !== expected.kind || found.items.length !== expected.items.length) return { kind: "type" };
        for (let i = 0; i < expected.items.length; i++) {
          const m = this.unifyType(expected.items[i], found.items[i]);
          if (m) return m;
        }
        return undefined;
      }
      case "record": {
        if (found.kind !== "record" || found.fields.length !== expected.fields.length) return { kind: "type" };
        for (let i = 0; i < expected.fields.length; i++) {
          if (expected.fields[i].name !== found.fields[i].name) return { kind: "type" };
          const m = this.unifyType(expected.fields[i].type, found.fields[i].type);
          if (m) return m;
        }
        return undefined;
      }
      default:
        return found.kind === expected.kind ? undefined : { kind: "type" };
    }
  }

  // ---------------------------------------------------------------- broadcasting

  /**
   * NumPy broadcasting, aligned on trailing dims. A dim of 1 stretches; a variable meeting a
   * dim takes it. Leading dims that cannot be aligned symbolically (a `..` against known
   * dims, or two different `..`) become a broadcast rest, decided when the rests are bound.
   */
  broadcast(a: Shape, b: Shape): { shape: Shape } | { fail: BroadcastFail } {
    return this.align(this.resolveShape(a), this.resolveShape(b), (x, y) => this.broadcastDim(x, y));
  }

  private align(a: Shape, b: Shape, join: (a: Dim, b: Dim) => Dim | undefined): { shape: Shape } | { fail: BroadcastFail } {
    const n = Math.min(a.dims.length, b.dims.length);
    const pa: Shape = { rest: a.rest, dims: a.dims.slice(0, a.dims.length - n) };
    const pb: Shape = { rest: b.rest, dims: b.dims.slice(0, b.dims.length - n) };
    const empty = (p: Shape) => !p.rest && p.dims.length === 0;
    let lead: Shape;
    if (empty(pa)) lead = pb;
    else if (empty(pb)) lead = pa;
    else if (pa.rest && pb.rest && pa.rest.key === pb.rest.key && pa.dims.length === pb.dims.length) lead = pa;
    else lead = broadcastRest([pa, pb]);
    const rank = lead.dims.length + n;
    const out: Dim[] = new Array(n);
    // from the right, so that a failure names the trailing dim NumPy would complain about
    for (let i = n - 1; i >= 0; i--) {
      const da = a.dims[a.dims.length - n + i], db = b.dims[b.dims.length - n + i];
      const d = join(da, db);
      if (!d) return { fail: { kind: "dim", a: da, b: db, index: lead.dims.length + i, rank } };
      out[i] = d;
    }
    const dims = [...lead.dims, ...out];
    return { shape: lead.rest ? { rest: lead.rest, dims } : { dims } };
  }

  private broadcastDim(a: Dim, b: Dim): Dim | undefined {
    if (dimEquals(a, b)) return a;
    if (isConst(a) === 1) return b;
    if (isConst(b) === 1) return a;
    if (this.unifyDim(a, b)) return this.resolveDim(a);
    return undefined;
  }

  /** Would `a` and `b` broadcast? Pure: binds nothing (used to look for a fix to suggest). */
  wouldBroadcast(a: Dim[], b: Dim[]): boolean {
    const n = Math.max(a.length, b.length);
    for (let i = 1; i <= n; i++) {
      const da = a[a.length - i], db = b[b.length - i];
      if (!da || !db) continue;
      if (!(dimEquals(da, db) || isConst(da) === 1 || isConst(db) === 1)) return false;
    }
    return true;
  }
}

export type BroadcastFail =
  /** `index` is 0-based in the known dims of the broadcast result, `rank` of them */
  { kind: "dim"; a: Dim; b: Dim; index: number; rank: number };

/** NumPy's rule for two dims, deciding only what is known: equal, or one of them is 1. */
function stretch(a: Dim, b: Dim): Dim | undefined {
  return dimEquals(a, b) ? a : isConst(a) === 1 ? b : isConst(b) === 1 ? a : undefined;
}

export function shapeOf(t: TensorType): Shape {
  return t.rest ? { rest: t.rest, dims: t.dims } : { dims: t.dims };
}

export type { Atom };
