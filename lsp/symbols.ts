// Document symbols (the outline: dims, blocks with their members, fns, train jobs) and
// workspace symbols (the same items across every `.weft` file, parsed but not checked).
import type { DocumentSymbol, SymbolInformation } from "vscode-languageserver";
import { SymbolKind } from "vscode-languageserver";
import type { Program } from "../grammar/ast.ts";
import { parse } from "../grammar/index.ts";
import { printType } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { toRange } from "./convert.ts";
import { fnShape } from "./show.ts";

export function documentSymbols(a: Analysis): DocumentSymbol[] {
  const out: DocumentSymbol[] = [];
  const types = a.checked.types;
  for (const item of a.program.items) {
    switch (item.kind) {
      case "import":
        if (item.alias) out.push({ name: item.alias.name, detail: `import "${item.path}"`, kind: SymbolKind.Module, range: toRange(item.span), selectionRange: toRange(item.alias.span) });
        break;
      case "dim":
        for (const d of item.decls) {
          if (!d.name.name) continue;
          const v = a.checked.dims.get(d.name.name)?.value;
          out.push({ name: d.name.name, detail: v !== undefined ? `dim = ${v}` : "dim", kind: SymbolKind.TypeParameter, range: toRange(d.span), selectionRange: toRange(d.name.span) });
        }
        break;
      case "block": {
        if (!item.name.name) break;
        const children: DocumentSymbol[] = [];
        for (const m of item.members) {
          if (m.kind === "fn") {
            const name = m.name?.name || "forward";
            children.push({ name, detail: fnShape(a.checked.fns.get(m), m, (s) => a.textOf(s)), kind: SymbolKind.Method, range: toRange(m.span), selectionRange: toRange(m.name?.span ?? m.span) });
          } else if (m.name.name) {
            const t = types.get(m.name);
            children.push({ name: m.name.name, detail: t ? printType(t) : "", kind: m.kind === "param" ? SymbolKind.Field : SymbolKind.Property, range: toRange(m.span), selectionRange: toRange(m.name.span) });
          }
        }
        const dims = item.dims.map((d) => d.name).join(", ");
        out.push({ name: item.name.name, detail: dims ? `block(${dims})` : "block", kind: SymbolKind.Class, range: toRange(item.span), selectionRange: toRange(item.name.span), children });
        break;
      }
      case "fn":
        if (item.name?.name)
          out.push({ name: item.name.name, detail: fnShape(a.checked.fns.get(item), item, (s) => a.textOf(s)), kind: SymbolKind.Function, range: toRange(item.span), selectionRange: toRange(item.name.span) });
        break;
      case "train":
        if (item.name.name)
          out.push({
            name: item.name.name,
            detail: "train",
            kind: SymbolKind.Event,
            range: toRange(item.span),
            selectionRange: toRange(item.name.span),
            children: item.fields.filter((f) => f.name.name).map((f) => ({ name: f.name.name, kind: SymbolKind.Property, range: toRange(f.span), selectionRange: toRange(f.name.span) })),
          });
        break;
    }
  }
  return out;
}

/** Items of a program as flat symbols, for the workspace search. */
function itemSymbols(program: Program, uri: string): SymbolInformation[] {
  const out: SymbolInformation[] = [];
  const add = (name: string, kind: SymbolKind, span: Parameters<typeof toRange>[0], container?: string) => {
    if (name) out.push({ name, kind, location: { uri, range: toRange(span) }, ...(container ? { containerName: container } : {}) });
  };
  for (const item of program.items) {
    if (item.kind === "dim") item.decls.forEach((d) => add(d.name.name, SymbolKind.TypeParameter, d.name.span));
    else if (item.kind === "block") {
      add(item.name.name, SymbolKind.Class, item.name.span);
      for (const m of item.members) {
        if (m.kind === "fn") {
          if (m.name) add(m.name.name, SymbolKind.Method, m.name.span, item.name.name);
        } else add(m.name.name, m.kind === "param" ? SymbolKind.Field : SymbolKind.Property, m.name.span, item.name.name);
      }
    } else if (item.kind === "fn" && item.name) add(item.name.name, SymbolKind.Function, item.name.span);
    else if (item.kind === "train") add(item.name.name, SymbolKind.Event, item.name.span);
  }
  return out;
}

/** Does `query` match `name` as a case-insensitive subsequence (`lnb` matches `LinearNoBias`)? */
export function fuzzy(query: string, name: string): boolean {
  const q = query.toLowerCase();
  const n = name.toLowerCase();
  let i = 0;
  for (const c of n) if (c === q[i]) i++;
  return i === q.length;
}

export interface SymbolSource {
  files(): string[];
  text(file: string): string | undefined;
  uriOf(file: string): string;
}

const parsed = new Map<string, { text: string; program: Program }>();

export function workspaceSymbols(query: string, src: SymbolSource): SymbolInformation[] {
  const out: SymbolInformation[] = [];
  for (const file of src.files()) {
    const text = src.text(file);
    if (text === undefined) continue;
    let hit = parsed.get(file);
    if (!hit || hit.text !== text) parsed.set(file, (hit = { text, program: parse(text, file).program }));
    for (const s of itemSymbols(hit.program, src.uriOf(file))) if (fuzzy(query, s.name)) out.push(s);
  }
  return out;
}
