// Semantic tokens: what each name is (a dim, a block, a parameter, a built-in ...), which the
// TextMate grammar cannot know. Keywords, numbers, strings and comments stay with the grammar.
import type { SemanticTokens, SemanticTokensLegend } from "vscode-languageserver";
import { SemanticTokensBuilder } from "vscode-languageserver";
import type { Ident } from "../grammar/ast.ts";
import type { Analysis } from "./analysis.ts";
import { type DeclKind, type Node, children, isIdent } from "./syntax.ts";

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

export function semanticTokens(a: Analysis): SemanticTokens {
  const found: { ident: Ident; type: TokenType; mods: Modifier[] }[] = [];
  const classify = (id: Ident, parent: Node | undefined): void => {
    if (id.name === "" || id.span.start === id.span.end) return;
    const own = a.declarationAt(id.span);
    if (own) {
      const [type, mods] = ofDecl[own.kind];
      found.push({ ident: id, type, mods: [...mods, "declaration"] });
      return;
    }
    const t = a.checked.types.get(id);
    if (t?.kind === "batch") {
      found.push({ ident: id, type: "variable", mods: ["readonly", "defaultLibrary"] });
      return;
    }
    const target = a.targetOf(id);
    const decl = target && a.declarationAt(target);
    if (decl) {
      const [type, mods] = ofDecl[decl.kind];
      found.push({ ident: id, type, mods });
      return;
    }
    if (parent && "kind" in parent && parent.kind === "tensorType") found.push({ ident: id, type: "type", mods: ["defaultLibrary"] });
    else if (parent && !("kind" in parent) && "value" in parent && "name" in parent && parent.name === id) found.push({ ident: id, type: "parameter", mods: [] });
    else if (t?.kind === "builtin") found.push({ ident: id, type: "function", mods: ["defaultLibrary"] });
    else if (t?.kind === "dtype") found.push({ ident: id, type: "type", mods: ["defaultLibrary"] });
    else if (t?.kind === "module") found.push({ ident: id, type: "namespace", mods: [] });
    else if (id.name === "training") found.push({ ident: id, type: "variable", mods: ["readonly", "defaultLibrary"] });
    else if (parent && "kind" in parent && parent.kind === "member") found.push({ ident: id, type: "property", mods: [] });
  };
  const visit = (n: Node, parent: Node | undefined) => {
    if (isIdent(n)) classify(n, parent);
    for (const c of children(n)) visit(c, n);
  };
  visit(a.program, undefined);
  found.sort((x, y) => x.ident.span.start - y.ident.span.start);
  const b = new SemanticTokensBuilder();
  for (const f of found) {
    const s = f.ident.span;
    if (s.line !== s.endLine) continue;
    b.push(s.line - 1, s.col - 1, s.end - s.start, TYPES.indexOf(f.type), bits(f.mods));
  }
  return b.build();
}
