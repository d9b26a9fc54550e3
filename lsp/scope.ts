// The names a position can see and the members a value has, for completion, signature help
// and rename. Locals come from the (possibly partial) tree at the cursor; their types and
// everything global from the checker.
import type { BlockItem, Ident, TrainItem } from "../grammar/ast.ts";
import { BUILTINS } from "../compiler/check/builtins.ts";
import type { GlobalSym } from "../compiler/check/scope.ts";
import { DTYPES, type InstanceType, type Type, instanceSubst, printType, substType, tensor } from "../compiler/check/types.ts";
import { type Dim, printDim } from "../compiler/check/dims.ts";
import type { Analysis } from "./analysis.ts";
import { blockHeader, fnSignature } from "./show.ts";
import { enclosing, localsAt } from "./syntax.ts";

export type NameKind =
  | "local" | "parameter" | "loop" | "member" | "param" | "method" | "blockDim" | "field"
  | "block" | "fn" | "dim" | "train" | "alias" | "builtin" | "dtype" | "flag";

export interface Visible {
  name: string;
  kind: NameKind;
  type?: Type;
  /** one line: a type or a signature */
  detail?: string;
  doc?: string;
  /** where it is declared, when in source */
  decl?: Ident;
}

/** Every name visible at `offset`, innermost first (a shadowed name appears once). */
export function visibleAt(a: Analysis, offset: number): Visible[] {
  const out: Visible[] = [];
  const seen = new Set<string>();
  const add = (v: Visible) => {
    if (v.name === "" || seen.has(v.name)) return;
    seen.add(v.name);
    out.push(v);
  };
  const { checked } = a;
  const where = enclosing(a.program, offset, a.text);
  if (where.fn) {
    const params = new Set(where.fn.params.map((p) => p.name));
    for (const id of localsAt(where.fn, offset).reverse()) {
      const t = checked.types.get(id);
      add({ name: id.name, kind: params.has(id) ? "parameter" : "local", type: t, detail: t && printType(t), decl: id });
    }
  }
  if (where.block) for (const v of selfMembers(a, where.block)) add(v);
  if (where.train) for (const v of trainFields(a, where.train)) add(v);
  for (const v of globals(a)) add(v);
  for (const b of BUILTINS.values()) add({ name: b.name, kind: "builtin", detail: b.signature, doc: b.doc });
  add({ name: "training", kind: "flag", detail: "flag", doc: "true inside a train job's loss, false in `run` and evaluation." });
  for (const d of DTYPES) add({ name: d, kind: "dtype", detail: `dtype ${d}` });
  return out;
}

function selfMembers(a: Analysis, block: BlockItem): Visible[] {
  const info = a.checked.blocks.get(block);
  if (!info) return block.dims.map((d) => ({ name: d.name, kind: "blockDim", detail: "dim", decl: d }));
  const self: InstanceType = { kind: "instance", block: info, args: info.dims.map((d) => ({ terms: [{ coef: 1, atoms: [d] }] })), frozen: false };
  return memberList(a, self);
}

function trainFields(a: Analysis, train: TrainItem): Visible[] {
  const out: Visible[] = train.fields.map((f) => {
    const t = a.checked.types.get(f.name) ?? a.checked.types.get(f);
    return { name: f.name.name, kind: "field", type: t, detail: t && printType(t), decl: f.name };
  });
  out.push({ name: "batch", kind: "field", type: { kind: "batch" }, detail: "batch: the data's fields, batch.<name>" });
  return out;
}

/** The file's own items, what its imports open, its aliases, and every global dim. */
export function globals(a: Analysis, file = a.file): Visible[] {
  const out: Visible[] = [];
  const scope = a.checked.scopes.get(file);
  if (!scope) return out;
  const sym = (name: string, s: GlobalSym) => out.push(describeSym(a, name, s));
  for (const [name, s] of scope.names) sym(name, s);
  for (const f of scope.opens) for (const [name, s] of a.checked.scopes.get(f)?.names ?? []) if (s.kind !== "train" && s.kind !== "dim") sym(name, s);
  for (const [name, alias] of scope.aliases)
    out.push({ name, kind: "alias", type: alias.file ? { kind: "module", file: alias.file } : undefined, detail: alias.file ? `module "${alias.file}"` : "module (not found)" });
  for (const [name, d] of a.checked.dims) out.push({ name, kind: "dim", type: { kind: "int", value: { terms: [{ coef: 1, atoms: [d.atom] }] } }, detail: d.value !== undefined ? `dim ${name} = ${d.value}` : `dim ${name}` });
  return out;
}

function describeSym(a: Analysis, name: string, s: GlobalSym): Visible {
  switch (s.kind) {
    case "block":
      return { name, kind: "block", type: { kind: "block", block: s.info }, detail: blockHeader(s.info), doc: s.info.node.doc, decl: s.info.node.name };
    case "fn":
      return { name, kind: "fn", type: { kind: "fn", fn: s.info }, detail: fnSignature(s.info, s.info.node, (x) => a.textOf(x)), doc: s.info.node.doc, decl: s.info.node.name };
    case "dim":
      return { name, kind: "dim", detail: s.info.value !== undefined ? `dim ${name} = ${s.info.value}` : `dim ${name}` };
    case "train":
      return { name, kind: "train", detail: `train ${name}`, doc: s.item.doc, decl: s.item.name };
  }
}

/** What `value.` offers: an instance's params, sub-instances, fns and dims; a module's items. */
export function memberList(a: Analysis, t: Type): Visible[] {
  switch (t.kind) {
    case "instance": {
      const b = t.block;
      const s = instanceSubst(t);
      const out: Visible[] = [];
      for (const [name, p] of b.params) {
        const pt = substType(p.type, s);
        out.push({ name, kind: "param", type: pt, detail: printType(pt), doc: p.node.doc, decl: p.node.name });
      }
      for (const [name, sub] of b.subs) {
        const st = substType(sub.type, s);
        out.push({ name, kind: "member", type: st, detail: printType(st), doc: sub.node.doc, decl: sub.node.name });
      }
      for (const [name, fn] of b.fns) out.push({ name, kind: "method", type: { kind: "fn", fn, self: t }, detail: fnSignature(fn, fn.node, (x) => a.textOf(x)), doc: fn.node.doc, decl: fn.node.name });
      b.node.dims.forEach((d, i) => out.push({ name: d.name, kind: "blockDim", type: { kind: "int", value: t.args[i] }, detail: t.args[i] ? `dim ${d.name} = ${printDim(t.args[i])}` : "dim", decl: d }));
      return out;
    }
    case "repeat": {
      // `layers.ff.w`: members of every instance, stacked along the count (fns need an index)
      let elem: Type = t;
      const counts: Dim[] = [];
      while (elem.kind === "repeat") {
        counts.push(elem.count);
        elem = elem.elem;
      }
      return memberList(a, elem)
        .filter((m) => m.kind !== "method")
        .map((m) => {
          const lifted = m.type?.kind === "tensor" ? tensor(m.type.dtype, [...counts, ...m.type.dims], m.type.rest) : m.type;
          return { ...m, type: lifted, detail: lifted ? printType(lifted) : m.detail };
        });
    }
    case "module":
      return globalsOfModule(a, t.file);
    case "record":
      return t.fields.map((f) => ({ name: f.name, kind: "field", type: f.type, detail: printType(f.type) }));
    default:
      return [];
  }
}

function globalsOfModule(a: Analysis, file: string): Visible[] {
  const scope = a.checked.scopes.get(file);
  return scope ? [...scope.names].map(([name, s]) => describeSym(a, name, s)) : [];
}

/** The type of a name chain (`m.layers[i].ff`) at `offset`, from the names in scope. */
export function chainType(a: Analysis, parts: { name: string; indexed: number }[], offset: number): Type | undefined {
  let t: Type | undefined;
  parts.forEach((p, i) => {
    if (i === 0) t = visibleAt(a, offset).find((v) => v.name === p.name)?.type;
    else t = t && memberList(a, t).find((m) => m.name === p.name)?.type;
    for (let k = 0; k < p.indexed && t; k++) t = t.kind === "repeat" ? t.elem : undefined;
  });
  if (t?.kind === "block") return undefined;
  return t;
}
