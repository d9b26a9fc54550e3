// Semantic tokens: what each name is (a dim, a block, a parameter, a built-in ...), which the
// TextMate grammar cannot know. Keywords, numbers, strings and comments stay with the grammar.
import type { SemanticTokens, SemanticTokensLegend } from "vscode-languageserver";
import { SemanticTokensBuilder } from "vscode-languageserver";
import type { Ident, Item } from "../grammar/ast.ts";
import type { Analysis } from "./analysis.ts";
import { type DeclKind, type Declaration, type Node, children, isIdent, itemDeclarations } from "./syntax.ts";

const TYPES = ["namespace", "class", "typeParameter", "parameter", "variable", "property", "function", "method", "type", "event"] as const;
const MODIFIERS = ["declaration", "readonly", "defaultLibrary"] as const;
type TokenType = (typeof TYPES)[number];
type Modifier = (typeof MODIFIERS)[number];

export const legend: SemanticTokensLegend = { tokenTypes: [...TYPES], tokenModifiers: [...MODIFIERS] };

const ofDecl: Record<DeclKind, [TokenType, Modifier[]]> = {
  alias: ["namespace", []],
  dim: ["typeParameter", ["readonly"]],
  blockDim: ["typeParameter", ["readonly"]],
  block: ["class", []],
  fn: ["function", []],
  method: ["method", []],
  param: ["property", []],
  member: ["property", []],
  parameter: ["parameter", []],
  let: ["variable", ["readonly"]],
  var: ["variable", []],
  loop: ["variable", ["readonly"]],
  train: ["event", []],
  field: ["property", []],
};

function bits(mods: Modifier[]): number {
  return mods.reduce((n, m) => n | (1 << MODIFIERS.indexOf(m)), 0);
}

/** An item's names in source order, each with its parent node and, if it declares something, the declaration. */
interface Named {
  ident: Ident;
  parent: Node | undefined;
  own?: Declaration;
}

/** Found once per item node (an unchanged item keeps its node from one version to the next). */
const namesOf = new WeakMap<Item, Named[]>();

function itemNames(item: Item): Named[] {
  let out = namesOf.get(item);
  if (out) return out;
  const own = new Map(itemDeclarations(item).map((d) => [d.name, d]));
  const found: Named[] = [];
  const visit = (n: Node, parent: Node | undefined) => {
    if (isIdent(n) && n.name !== "" && n.span.start !== n.span.end) found.push({ ident: n, parent, own: own.get(n) });
    for (const c of children(n)) visit(c, n);
  };
  visit(item, undefined);
  out = found.sort((x, y) => x.ident.span.start - y.ident.span.start);
  namesOf.set(item, out);
  return out;
}

export function semanticTokens(a: Analysis): SemanticTokens {
  const b = new SemanticTokensBuilder();
  const emit = (id: Ident, type: TokenType, mods: Modifier[]) => {
    const s = id.span;
    if (s.line === s.endLine) b.push(s.line - 1, s.col - 1, s.end - s.start, TYPES.indexOf(type), bits(mods));
  };
  const classify = ({ ident: id, parent, own }: Named): void => {
    if (own) {
      const [type, mods] = ofDecl[own.kind];
      return emit(id, type, [...mods, "declaration"]);
    }
    const t = a.checked.types.get(id);
    if (t?.kind === "batch") return emit(id, "variable", ["readonly", "defaultLibrary"]);
    const target = a.targetOf(id);
    const decl = target && a.declarationAt(target);
    if (decl) {
      const [type, mods] = ofDecl[decl.kind];
      return emit(id, type, mods);
    }
    if (parent && "kind" in parent && parent.kind === "tensorType") emit(id, "type", ["defaultLibrary"]);
    else if (parent && !("kind" in parent) && "value" in parent && "name" in parent && parent.name === id) emit(id, "parameter", []);
    else if (t?.kind === "builtin") emit(id, "function", ["defaultLibrary"]);
    else if (t?.kind === "dtype") emit(id, "type", ["defaultLibrary"]);
    else if (t?.kind === "module") emit(id, "namespace", []);
    else if (id.name === "training") emit(id, "variable", ["readonly", "defaultLibrary"]);
    else if (parent && "kind" in parent && parent.kind === "member") emit(id, "property", []);
  };
  // items are in source order and do not overlap: their names come out sorted
  for (const item of a.program.items) for (const n of itemNames(item)) classify(n);
  return b.build();
}
