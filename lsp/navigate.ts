// Go to definition, find references and rename. A name's identity is the span of its
// declaration, as the checker resolved it; a global dim declared in several files is one dim,
// so all its declarations count as one.
import type { Location, Range, TextEdit, WorkspaceEdit } from "vscode-languageserver";
import type { Ident, ImportItem, Span } from "../grammar/ast.ts";
import { BUILTINS } from "../compiler/check/builtins.ts";
import { DTYPES } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { toRange } from "./convert.ts";
import { globals, visibleAt } from "./scope.ts";
import { type Declaration, contains, identAt, pathAt, spanKey } from "./syntax.ts";

export interface Navigator {
  uriOf(file: string): string;
  /** analyses of every file a workspace-wide question must look at */
  allAnalyses(): Analysis[];
  /** whether a file may be edited by a rename (it is in the workspace) */
  editable(file: string): boolean;
}

const KEYWORDS = new Set(["import", "as", "dim", "block", "param", "fn", "let", "var", "return", "for", "in", "if", "else", "train", "frozen", "repeat", "true", "false", "None"]);
const LOCAL_KINDS = new Set<Declaration["kind"]>(["parameter", "let", "var", "loop", "field", "alias"]);

export function definition(a: Analysis, offset: number, nav: Navigator): Location[] {
  const item = pathAt(a.program, offset)[1];
  if (item && "kind" in item && item.kind === "import" && contains((item as ImportItem).pathSpan, offset)) {
    const file = a.modules.modules.get(a.file)?.imports.find((i) => i.item === item)?.file;
    return file ? [{ uri: nav.uriOf(file), range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } }] : [];
  }
  const hit = identAt(a.program, offset);
  const target = hit && a.targetOf(hit.ident);
  return target ? [{ uri: nav.uriOf(target.file), range: toRange(target) }] : [];
}

interface Target {
  decl: Declaration;
  /** spans that all denote it (several for a dim declared in several files) */
  keys: Set<string>;
}

function targetAt(a: Analysis, offset: number): Target | undefined {
  const hit = identAt(a.program, offset);
  const span = hit && a.targetOf(hit.ident);
  const decl = span && a.declarationAt(span);
  if (!decl) return undefined;
  const keys = new Set([spanKey(decl.name.span)]);
  if (decl.kind === "dim") for (const [k, d] of a.index.decls) if (d.kind === "dim" && d.name.name === decl.name.name) keys.add(k);
  return { decl, keys };
}

/** Every name that denotes the target in `a` (declarations included). */
function occurrences(a: Analysis, t: Target): Ident[] {
  const out: Ident[] = [];
  const { decls, uses } = a.index;
  for (const [k, d] of decls) if (t.keys.has(k) || (t.decl.kind === "dim" && d.kind === "dim" && d.name.name === t.decl.name.name)) out.push(d.name);
  for (const [ident, span] of uses) if (span && (t.keys.has(spanKey(span)) || (t.decl.kind === "dim" && a.declarationAt(span)?.kind === "dim" && a.declarationAt(span)?.name.name === t.decl.name.name))) out.push(ident);
  return out;
}

/** Where the target's occurrences can be: its fn for a local; every file for the rest (a fn's parameter is set by name at calls anywhere). */
function scopeOf(a: Analysis, t: Target, nav: Navigator): Analysis[] {
  return LOCAL_KINDS.has(t.decl.kind) && t.decl.kind !== "parameter" ? [a] : [a, ...nav.allAnalyses().filter((x) => x.file !== a.file)];
}

function collect(analyses: Analysis[], t: Target, withDecl: boolean): Map<string, Ident> {
  const seen = new Map<string, Ident>();
  for (const x of analyses) {
    for (const id of occurrences(x, t)) {
      if (!withDecl && x.declarationAt(id.span)) continue;
      seen.set(spanKey(id.span), id);
    }
  }
  return seen;
}

export function references(a: Analysis, offset: number, withDecl: boolean, nav: Navigator): Location[] {
  const t = targetAt(a, offset);
  if (!t) return [];
  return [...collect(scopeOf(a, t, nav), t, withDecl).values()]
    .sort((x, y) => (x.span.file < y.span.file ? -1 : x.span.file > y.span.file ? 1 : x.span.start - y.span.start))
    .map((id) => ({ uri: nav.uriOf(id.span.file), range: toRange(id.span) }));
}

export class RenameRefused extends Error {}

export function prepareRename(a: Analysis, offset: number, nav: Navigator): { range: Range; placeholder: string } {
  const hit = identAt(a.program, offset);
  if (!hit) throw new RenameRefused("there is no name here to rename");
  const t = targetAt(a, offset);
  if (!t) {
    const builtin = BUILTINS.has(hit.ident.name) || DTYPES.includes(hit.ident.name as (typeof DTYPES)[number]) || hit.ident.name === "training";
    throw new RenameRefused(builtin ? `\`${hit.ident.name}\` is built in and cannot be renamed` : `\`${hit.ident.name}\` is not defined, so it cannot be renamed`);
  }
  if (!nav.editable(t.decl.name.span.file)) throw new RenameRefused(`\`${t.decl.name.name}\` is defined in ${t.decl.name.span.file}, outside the workspace`);
  return { range: toRange(hit.ident.span), placeholder: hit.ident.name };
}

export function rename(a: Analysis, offset: number, newName: string, nav: Navigator): WorkspaceEdit {
  prepareRename(a, offset, nav);
  const t = targetAt(a, offset)!;
  const old = t.decl.name.name;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(newName)) throw new RenameRefused(`\`${newName}\` is not a name`);
  if (KEYWORDS.has(newName)) throw new RenameRefused(`\`${newName}\` is a keyword`);
  if (newName === old) return { changes: {} };
  if (BUILTINS.has(newName) || newName === "training" || (DTYPES as readonly string[]).includes(newName))
    throw new RenameRefused(`\`${newName}\` would hide the built-in \`${newName}\``);
  const analyses = scopeOf(a, t, nav);
  const found = collect(analyses, t, true);
  const clash = (where: string) => {
    throw new RenameRefused(`cannot rename \`${old}\` to \`${newName}\`: ${where}`);
  };
  // 1. another declaration already has the name where the target is declared
  const decl = t.decl;
  const home = analyses.find((x) => x.file === decl.name.span.file) ?? a;
  if (LOCAL_KINDS.has(decl.kind) || decl.kind === "blockDim" || decl.kind === "param" || decl.kind === "member" || decl.kind === "method") {
    const siblings = [...home.index.decls.values()].filter((d) => d.container && d.container === decl.container && d.name.name === newName);
    if (siblings.length) clash(`\`${newName}\` is already declared at ${where(siblings[0].name.span)}`);
  } else {
    const g = globals(home, decl.name.span.file).find((v) => v.name === newName);
    if (g) clash(`\`${newName}\` is already defined${g.decl ? ` at ${where(g.decl.span)}` : ""}`);
  }
  // 2. at each use, the new name must not already mean something else (it would be captured or
  // shadow); a named argument is no use of a scope's name, but its call must not set the new one too
  for (const x of analyses) {
    for (const id of found.values()) {
      if (id.span.file !== x.file) continue;
      const call = x.namedArgCall(id);
      if (call) {
        if (call.args.some((g) => g.name?.name === newName)) clash(`the call at ${where(call.span)} already sets \`${newName}\``);
        continue;
      }
      const other = visibleAt(x, id.span.start).find((v) => v.name === newName && !(v.decl && found.has(spanKey(v.decl.span))));
      if (other && (other.kind !== "dim" || decl.kind !== "dim")) clash(`\`${newName}\` already means ${other.detail ?? `a ${other.kind}`} at ${where(id.span)}`);
    }
    // 3. and no existing use of the new name may fall under the renamed declaration
    for (const [ident, span] of x.index.uses) {
      if (ident.name !== newName || (span && found.has(spanKey(span)))) continue;
      const inside = LOCAL_KINDS.has(decl.kind) ? decl.container && contains(decl.container.span, ident.span.start) && ident.span.file === decl.name.span.file : false;
      if (inside) clash(`\`${newName}\` is used at ${where(ident.span)} for something else`);
    }
  }
  const changes: Record<string, TextEdit[]> = {};
  for (const id of found.values()) {
    if (!nav.editable(id.span.file)) continue;
    (changes[nav.uriOf(id.span.file)] ??= []).push({ range: toRange(id.span), newText: newName });
  }
  return { changes };
}

function where(s: Span): string {
  return `${s.file.split(/[\\/]/).pop()}:${s.line}:${s.col}`;
}
