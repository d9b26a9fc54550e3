// Inlay hints: the inferred type after each `let` and `var` name that has no annotation.
// Each hint carries the edit that writes the annotation in (the same edit as the code action).
import type { InlayHint, TextEdit } from "vscode-languageserver";
import { InlayHintKind } from "vscode-languageserver";
import type { Ident, Item, LetStmt, Pattern, VarStmt } from "../grammar/ast.ts";
import { printType } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { toRange } from "./convert.ts";
import { annotationText, shapeNote } from "./show.ts";
import { walk } from "./syntax.ts";

export interface Binding {
  stmt: LetStmt | VarStmt;
  /** the name, for a single-name binding */
  name?: Ident;
}

/** `let` and `var` statements without an annotation, in source order. */
export function unannotated(a: Analysis, from = 0, to = Infinity): Binding[] {
  const out: Binding[] = [];
  for (const item of a.program.items) {
    if (item.span.end < from || item.span.start > to) continue;
    for (const b of itemBindings(item)) if (!(b.stmt.span.end < from || b.stmt.span.start > to)) out.push(b);
  }
  return out;
}

/** Found once per item node (an unchanged item keeps its node from one version to the next). */
const bindingsOf = new WeakMap<Item, Binding[]>();

function itemBindings(item: Item): Binding[] {
  let out = bindingsOf.get(item);
  if (out) return out;
  out = [];
  if (item.kind === "fn" || item.kind === "block") {
    for (const n of walk(item)) {
      if (!("kind" in n) || (n.kind !== "let" && n.kind !== "var")) continue;
      const s = n as LetStmt | VarStmt;
      if (!s.type) out.push({ stmt: s, name: s.target.kind === "ident" ? s.target : undefined });
    }
  }
  bindingsOf.set(item, out);
  return out;
}

/** The edit that writes a binding's inferred annotation, when the type can be written. */
export function annotationEdit(a: Analysis, b: Binding): TextEdit | undefined {
  const t = a.checked.types.get(b.stmt.target);
  const text = t && annotationText(t);
  if (!text || !b.name || b.name.name === "") return undefined;
  const at = toRange(b.name.span).end;
  return { range: { start: at, end: at }, newText: `: ${text}` };
}

export function inlayHints(a: Analysis, from: number, to: number): InlayHint[] {
  const out: InlayHint[] = [];
  for (const b of unannotated(a, from, to)) {
    for (const id of names(b.stmt.target)) {
      const t = a.checked.types.get(id);
      if (!t || t.kind === "error" || id.name === "") continue;
      const note = shapeNote(t, a.checked);
      const hint: InlayHint = { position: toRange(id.span).end, label: `: ${printType(t)}`, kind: InlayHintKind.Type, paddingLeft: false };
      if (note) hint.tooltip = `shape ${note}`;
      const edit = b.name === id ? annotationEdit(a, b) : undefined;
      if (edit) hint.textEdits = [edit];
      out.push(hint);
    }
  }
  return out;
}

function names(p: Pattern): Ident[] {
  return p.kind === "ident" ? [p] : p.items.flatMap(names);
}
