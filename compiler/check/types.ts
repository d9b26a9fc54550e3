// The checker's types. A tensor type is a dtype plus symbolic dims (see dims.ts); compile-time
// values (ints that are dims, numbers, flags) are types of their own so that `for` bounds,
// `if` conditions and block constructor arguments are checked without running anything.
import type { BlockItem, FnItem, InstanceDecl, Param, ParamDecl, Span } from "../../grammar/ast.ts";
import { type Atom, type Dim, type NamedAtom, atomsOf, dimEquals, dimKey, printDim, substDim } from "./dims.ts";

export type DType = "f32" | "f16" | "i32" | "bool";
export const DTYPES: readonly DType[] = ["f32", "f16", "i32", "bool"];

export function isDType(name: string): name is DType {
  return (DTYPES as readonly string[]).includes(name);
}

/** Leading dims of unknown number: the `..` of a rank-polymorphic signature. */
export interface Rest {
  key: string;
  /** a rigid `..` of the signature being checked, or a variable bound when a call is matched */
  isVar: boolean;
  /**
   * The NumPy broadcast of leading shapes that cannot be aligned symbolically (`..` with `[T]`,
   * or two different `..`): decided once the rests inside are bound (unify.ts `broadcast`).
   */
  parts?: RestPart[];
}

/** One of the leading shapes a broadcast `Rest` joins. */
export interface RestPart {
  rest?: Rest;
  dims: Dim[];
}

function partKey(p: RestPart): string {
  return `${p.rest ? `${p.rest.key};` : ""}${p.dims.map(dimKey).join(",")}`;
}

/**
 * The broadcast of several leading shapes, as one rest: nested broadcasts are flattened and
 * repeated parts dropped, so that equal broadcasts have equal keys. One part is that part.
 */
export function broadcastRest(parts: RestPart[]): RestPart {
  const flat: RestPart[] = [];
  for (const p of parts) {
    if (p.rest?.parts && p.dims.length === 0) flat.push(...p.rest.parts);
    else if (p.rest || p.dims.length > 0) flat.push(p);
  }
  const byKey = new Map<string, RestPart>();
  for (const p of flat) byKey.set(partKey(p), p);
  // rests first (`..broadcast(.., [T])`), then a fixed order, so equal broadcasts have equal keys
  const keys = [...byKey.keys()].sort((a, b) => Number(!byKey.get(a)!.rest) - Number(!byKey.get(b)!.rest) || (a < b ? -1 : a > b ? 1 : 0));
  if (keys.length === 0) return { dims: [] };
  if (keys.length === 1) return byKey.get(keys[0])!;
  return { rest: { key: `broadcast(${keys.join("|")})`, isVar: false, parts: keys.map((k) => byKey.get(k)!) }, dims: [] };
}

export function printRest(r: Rest): string {
  if (!r.parts) return "..";
  return `..broadcast(${r.parts.map((p) => (p.rest && p.dims.length === 0 ? printRest(p.rest) : printDims(p))).join(", ")})`;
}

export interface TensorType {
  kind: "tensor";
  dtype: DType;
  /** `..` before `dims`, when the leading dims are unknown */
  rest?: Rest;
  dims: Dim[];
}

export interface InstanceType {
  kind: "instance";
  block: BlockInfo;
  /** the block's constructor dims, in order */
  args: Dim[];
  frozen: boolean;
}

export type Type =
  | TensorType
  /** compile-time int; `value` is a Dim (`4`, `L`, `2*D`), unknown for loop variables */
  | { kind: "int"; value?: Dim }
  /** compile-time number */
  | { kind: "float"; value?: number }
  /** compile-time bool (`training`, `sign > 0`) */
  | { kind: "bool"; value?: boolean }
  | { kind: "string"; value?: string }
  | InstanceType
  /** `repeat(L) Layer(D, F)`: `elem` is an instance (or a nested repeat) */
  | { kind: "repeat"; count: Dim; elem: Type }
  | { kind: "tuple"; items: Type[] }
  | { kind: "list"; items: Type[] }
  | { kind: "record"; fields: { name: string; type: Type }[] }
  /** a user fn used as a value (`map(example_grad, ...)`); `self` for a block's named fn */
  | { kind: "fn"; fn: FnInfo; self?: InstanceType }
  | { kind: "builtin"; name: string }
  /** `batch.<field>`: known only when the data is read; accepted wherever a tensor is expected */
  | { kind: "data"; field?: string }
  /** the record `batch` inside a train job */
  | { kind: "batch" }
  | { kind: "dtype"; dtype: DType }
  /** an import alias, `import "x" as L` */
  | { kind: "module"; file: string }
  | { kind: "block"; block: BlockInfo }
  /** train-only values: `jsonl("x")`, `adamw(...)`, `cosine(...)` */
  | { kind: "dataset"; path: string }
  | { kind: "optimizer"; name: string }
  | { kind: "schedule"; name: string }
  | { kind: "none" }
  /** the value of a block with no final expression */
  | { kind: "unit" }
  /** an expression that already has an error: suppresses follow-on diagnostics */
  | { kind: "error" };

// ------------------------------------------------------------------ item summaries

export interface ParamInfo {
  name: string;
  node: Param;
  /** type in terms of the fn's own symbols (rigid `..`, `_`, compile-time params) */
  type: Type;
  hasDefault: boolean;
  /** a compile-time int parameter usable as a dim (`K = 16`) */
  dimAtom?: NamedAtom;
}

export interface FnInfo {
  id: string;
  name: string;
  node: FnItem;
  file: string;
  owner?: BlockInfo;
  /** filled lazily: signatures may depend on other blocks (`sizeof(m.head)`) */
  sig?: FnSig;
  /** the body's type in terms of the signature's symbols, once checked */
  inferredRet?: Type;
  state: "new" | "checking" | "done";
  /** errors were reported in the body during its own check */
  bodyErrors: boolean;
}

export interface FnSig {
  params: ParamInfo[];
  /** the `..` of this signature, if any */
  rest?: Rest;
  /** declared return type; undefined when inferred from the body */
  ret?: Type;
  /** has block-instance params: checked again at each call site with the concrete instance */
  template: boolean;
  /** atoms that a call binds afresh: `_` dims and template instance dims */
  freshAtoms: NamedAtom[];
  /** the declared return type has `_` dims: the body decides them */
  retHasHoles: boolean;
}

export interface BlockInfo {
  id: string;
  name: string;
  node: BlockItem;
  file: string;
  /** the block's own dims as rigid symbols */
  dims: NamedAtom[];
  params: Map<string, { node: ParamDecl; type: Type }>;
  subs: Map<string, { node: InstanceDecl; type: Type }>;
  fns: Map<string, FnInfo>;
  forward?: FnInfo;
  state: "new" | "resolving" | "done";
}

export interface DimInfo {
  name: string;
  atom: NamedAtom;
  file: string;
  span: Span;
  default?: Dim;
  /** value from `opts.dims` or the default, when known */
  value?: number;
}

// ------------------------------------------------------------------ helpers

export const ERROR: Type = { kind: "error" };
export const UNIT: Type = { kind: "unit" };

export function tensor(dtype: DType, dims: Dim[], rest?: Rest): TensorType {
  return rest ? { kind: "tensor", dtype, rest, dims } : { kind: "tensor", dtype, dims };
}

export function isError(t: Type): boolean {
  return t.kind === "error";
}

/** Printed shape only: `[B, T, D]`, `[.., I]`, `[]`. */
export function printDims(t: { rest?: Rest; dims: Dim[] }): string {
  const parts = t.rest ? [printRest(t.rest), ...t.dims.map(printDim)] : t.dims.map(printDim);
  return `[${parts.join(", ")}]`;
}

export function printType(t: Type): string {
  switch (t.kind) {
    case "tensor":
      return t.dims.length === 0 && !t.rest ? t.dtype : `${t.dtype}${printDims(t)}`;
    case "int":
      return t.value ? `int = ${printDim(t.value)}` : "int";
    case "float":
      return t.value !== undefined ? `number = ${t.value}` : "number";
    case "bool":
      return t.value !== undefined ? `flag = ${t.value}` : "flag";
    case "string":
      return "string";
    case "instance":
      return `${t.frozen ? "frozen " : ""}${t.block.name}(${t.args.map(printDim).join(", ")})`;
    case "repeat":
      return `repeat(${printDim(t.count)}) ${printType(t.elem)}`;
    case "tuple":
      return `(${t.items.map(printType).join(", ")})`;
    case "list":
      return `[${t.items.map(printType).join(", ")}]`;
    case "record":
      return `{ ${t.fields.map((f) => `${f.name}: ${printType(f.type)}`).join(", ")} }`;
    case "fn":
      return `fn ${t.fn.owner ? `${t.fn.owner.name}.` : ""}${t.fn.name}`;
    case "builtin":
      return `built-in ${t.name}`;
    case "data":
      return t.field ? `data (batch.${t.field})` : "data";
    case "batch":
      return "batch";
    case "dtype":
      return `dtype ${t.dtype}`;
    case "module":
      return `module "${t.file}"`;
    case "block":
      return `block ${t.block.name}`;
    case "dataset":
      return `dataset "${t.path}"`;
    case "optimizer":
      return `optimizer ${t.name}`;
    case "schedule":
      return `schedule ${t.name}`;
    case "none":
      return "None";
    case "unit":
      return "()";
    case "error":
      return "<error>";
  }
}

/** A short description for "expected …, found …" messages. */
export function describe(t: Type): string {
  switch (t.kind) {
    case "int":
      return `the compile-time int ${t.value ? printDim(t.value) : ""}`.trimEnd();
    case "float":
      return "a compile-time number";
    case "bool":
      return "a compile-time flag";
    case "instance":
      return `the instance ${printType(t)}`;
    case "unit":
      return "no value";
    default:
      return printType(t);
  }
}

/** Substitute atoms inside every dim of a type (instances, records, tuples too). Rests map via `rest`. */
export function substType(
  t: Type,
  f: (a: Atom) => Dim | undefined,
  rest?: (r: Rest) => { rest?: Rest; dims: Dim[] } | undefined,
): Type {
  const sd = (d: Dim) => substDim(d, f);
  const sp = (p: RestPart): RestPart => {
    const dims = p.dims.map(sd);
    if (!p.rest) return { dims };
    const r = sr(p.rest);
    return { rest: r.rest, dims: [...r.dims, ...dims] };
  };
  const sr = (r: Rest): RestPart => (r.parts ? broadcastRest(r.parts.map(sp)) : (rest?.(r) ?? { rest: r, dims: [] }));
  switch (t.kind) {
    case "tensor": {
      const dims = t.dims.map(sd);
      if (!t.rest) return tensor(t.dtype, dims);
      const r = sr(t.rest);
      return tensor(t.dtype, [...r.dims, ...dims], r.rest);
    }
    case "int":
      return t.value ? { kind: "int", value: sd(t.value) } : t;
    case "instance":
      return { ...t, args: t.args.map(sd) };
    case "repeat":
      return { kind: "repeat", count: sd(t.count), elem: substType(t.elem, f, rest) };
    case "tuple":
      return { kind: "tuple", items: t.items.map((x) => substType(x, f, rest)) };
    case "list":
      return { kind: "list", items: t.items.map((x) => substType(x, f, rest)) };
    case "record":
      return { kind: "record", fields: t.fields.map((x) => ({ name: x.name, type: substType(x.type, f, rest) })) };
    case "fn":
      return t.self ? { ...t, self: { ...t.self, args: t.self.args.map(sd) } } : t;
    default:
      return t;
  }
}

/** Structural equality with dims compared symbolically (no unification). */
export function typeEquals(a: Type, b: Type): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "tensor": {
      const y = b as TensorType;
      return a.dtype === y.dtype && a.rest?.key === y.rest?.key && a.dims.length === y.dims.length && a.dims.every((d, i) => dimEquals(d, y.dims[i]));
    }
    case "instance": {
      const y = b as InstanceType;
      return a.block === y.block && a.args.every((d, i) => dimEquals(d, y.args[i]));
    }
    case "repeat": {
      const y = b as Extract<Type, { kind: "repeat" }>;
      return dimEquals(a.count, y.count) && typeEquals(a.elem, y.elem);
    }
    case "tuple":
    case "list": {
      const y = b as { items: Type[] };
      return a.items.length === y.items.length && a.items.every((x, i) => typeEquals(x, y.items[i]));
    }
    case "record": {
      const y = b as Extract<Type, { kind: "record" }>;
      return a.fields.length === y.fields.length && a.fields.every((f, i) => f.name === y.fields[i].name && typeEquals(f.type, y.fields[i].type));
    }
    case "int": {
      const y = b as Extract<Type, { kind: "int" }>;
      return !a.value || !y.value || dimEquals(a.value, y.value);
    }
    default:
      return true;
  }
}

/** The instance's dims as a substitution for atoms of its block. */
export function instanceSubst(inst: InstanceType): (a: Atom) => Dim | undefined {
  const m = new Map<string, Dim>();
  inst.block.dims.forEach((a, i) => {
    if (inst.args[i]) m.set(a.key, inst.args[i]);
  });
  return (a) => m.get(a.key);
}

export function isCompileTime(t: Type): t is Extract<Type, { kind: "int" | "float" | "bool" | "string" }> {
  return t.kind === "int" || t.kind === "float" || t.kind === "bool" || t.kind === "string";
}

/** The type of a compile-time value that may be either: values merge into "unknown". */
export function joinCompileTime(a: Type, b: Type): Type | undefined {
  if (a.kind === "int" && b.kind === "int") return a.value && b.value && dimEquals(a.value, b.value) ? a : { kind: "int" };
  if ((a.kind === "int" || a.kind === "float") && (b.kind === "int" || b.kind === "float")) return { kind: "float" };
  if (a.kind === "bool" && b.kind === "bool") return a.value === b.value ? a : { kind: "bool" };
  if (a.kind === "string" && b.kind === "string") return { kind: "string" };
  return undefined;
}

export function freeze(t: Type): Type {
  if (t.kind === "instance") return { ...t, frozen: true };
  if (t.kind === "repeat") return { ...t, elem: freeze(t.elem) };
  return t;
}

export function liftType(t: Type, n: Dim): Type {
  if (t.kind === "tensor") return tensor(t.dtype, [n, ...t.dims], t.rest);
  if (t.kind === "instance" || t.kind === "repeat") return { kind: "repeat", count: n, elem: t };
  if (t.kind === "record") return liftRecord(t, n);
  return t;
}

export function liftRecord(t: Type, n: Dim): Type {
  if (t.kind !== "record") return liftType(t, n);
  return { kind: "record", fields: t.fields.map((x) => ({ name: x.name, type: liftType(x.type, n) })) };
}

export function hasInstance(t: Type): boolean {
  return t.kind === "instance" || t.kind === "repeat" || (t.kind === "tuple" && t.items.some(hasInstance));
}

/** The unification variables mentioned in a type. */
export function collectVars(t: Type, out: Map<string, NamedAtom>): void {
  collectAtoms(t, "var", out);
}

/** The named sizes a type mentions (dims, instance args, counts), by key. */
export function collectSyms(t: Type, out: Map<string, NamedAtom>): void {
  collectAtoms(t, "sym", out);
}

function collectAtoms(t: Type, kind: "var" | "sym", out: Map<string, NamedAtom>): void {
  const add = (d: Dim) => {
    for (const a of atomsOf(d).values()) if (a.kind === kind) out.set(a.key, a);
  };
  switch (t.kind) {
    case "tensor":
      t.dims.forEach(add);
      for (const p of t.rest?.parts ?? []) collectAtoms(tensor(t.dtype, p.dims, p.rest), kind, out);
      return;
    case "int":
      if (t.value) add(t.value);
      return;
    case "instance":
      t.args.forEach(add);
      return;
    case "repeat":
      add(t.count);
      collectAtoms(t.elem, kind, out);
      return;
    case "tuple":
    case "list":
      t.items.forEach((x) => collectAtoms(x, kind, out));
      return;
    case "record":
      t.fields.forEach((x) => collectAtoms(x.type, kind, out));
      return;
  }
}

/** A key that is equal for equal types (dims by canonical key, instances by block id). */
export function typeKey(t: Type): string {
  switch (t.kind) {
    case "tensor":
      return `${t.dtype}[${t.rest ? `${t.rest.key};` : ""}${t.dims.map(dimKey).join(",")}]`;
    case "int":
      return `int(${t.value ? dimKey(t.value) : "?"})`;
    case "instance":
      return `${t.block.id}(${t.args.map(dimKey).join(",")})`;
    case "repeat":
      return `repeat(${dimKey(t.count)})${typeKey(t.elem)}`;
    case "tuple":
    case "list":
      return `${t.kind}(${t.items.map(typeKey).join(",")})`;
    case "record":
      return `{${t.fields.map((x) => `${x.name}:${typeKey(x.type)}`).join(",")}}`;
    default:
      return printType(t);
  }
}
