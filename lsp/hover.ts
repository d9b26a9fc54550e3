// Hover: the inferred type (with its shape) of whatever is under the cursor; for a block its
// dims, parameter count and doc; for a fn its signature; for a built-in its signature and doc.
import type { Hover } from "vscode-languageserver";
import { MarkupKind } from "vscode-languageserver";
import type { BlockItem, CallExpr, DimDecl, FnItem, Ident, ImportItem, InstanceDecl, ParamDecl, TensorTypeExpr } from "../grammar/ast.ts";
import { BUILTINS } from "../compiler/check/builtins.ts";
import { printDim } from "../compiler/check/dims.ts";
import { printType, type Type } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { toRange } from "./convert.ts";
import { blockHeader, fnSignature, paramCount, shapeNote } from "./show.ts";
import { type Declaration, type Node, contains, isIdent, pathAt } from "./syntax.ts";

interface Card {
  code: string;
  notes?: string[];
  doc?: string;
}

export function hover(a: Analysis, offset: number): Hover | undefined {
  const path = pathAt(a.program, offset);
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  let card: Card | undefined;
  let at: Node = last;
  const item = path[1];
  if (item && "kind" in item && item.kind === "import" && contains((item as ImportItem).pathSpan, offset)) {
    const imp = a.modules.modules.get(a.file)?.imports.find((i) => i.item === item);
    card = { code: `import "${(item as ImportItem).path}"`, notes: [imp?.file ? `loads \`${imp.file}\`` : "not found"] };
  } else if (isIdent(last) && last.name !== "") card = identCard(a, last, parent);
  else if ("kind" in last && last.kind === "inferDim" && parent && "kind" in parent && parent.kind === "tensorType") {
    const t = a.checked.types.get(parent);
    const dims: readonly Node[] = (parent as TensorTypeExpr).dims ?? [];
    const written = dims.indexOf(last);
    const i = written - (dims[0] && "kind" in dims[0] && dims[0].kind === "restDim" ? 1 : 0);
    if (t?.kind === "tensor" && written >= 0) {
      const d = t.dims[i];
      card = { code: `_ = ${d ? printDim(d) : "?"}`, notes: [`inferred dim of \`${printType(t)}\``] };
    }
  }
  if (!card) {
    for (let i = path.length - 1; i > 0 && !card; i--) {
      const t = a.checked.types.get(path[i]);
      if (t && t.kind !== "error") {
        card = { code: typeLine(a, t) };
        at = path[i];
      }
    }
  }
  if (!card) return undefined;
  return { contents: { kind: MarkupKind.Markdown, value: render(card) }, range: toRange(at.span) };
}

function render(c: Card): string {
  const parts = ["```weft\n" + c.code + "\n```"];
  if (c.notes?.length) parts.push(c.notes.join("  \n"));
  if (c.doc) parts.push("---\n" + c.doc);
  return parts.join("\n\n");
}

function typeLine(a: Analysis, t: Type, prefix = ""): string {
  const note = shapeNote(t, a.checked);
  return `${prefix}${printType(t)}${note ? `  // ${note}` : ""}`;
}

function identCard(a: Analysis, ident: Ident, parent: Node | undefined): Card | undefined {
  const types = a.checked.types;
  // the dtype of an annotation: the whole annotation's type
  if (parent && "kind" in parent && parent.kind === "tensorType" && (parent as TensorTypeExpr).dtype === ident) {
    const t = types.get(parent);
    return t ? { code: typeLine(a, t) } : undefined;
  }
  const memberOf = parent && "kind" in parent && parent.kind === "member" && "name" in parent && parent.name === ident ? parent : undefined;
  const useType = types.get(ident) ?? (memberOf ? types.get(memberOf) : undefined);
  const call = parent && "kind" in parent && parent.kind === "call" && (parent as CallExpr).callee === ident ? (parent as CallExpr) : undefined;
  const callType = call ? types.get(call) : undefined;
  if (useType?.kind === "batch") return { code: "batch", doc: "The current batch of the train job's data: `batch.<field>` is a field of each record." };
  const target = a.targetOf(ident);
  const decl = target ? a.declarationAt(target) : undefined;
  if (decl) return declCard(a, decl, useType, callType);
  if (useType?.kind === "builtin" || (!useType && BUILTINS.has(ident.name))) {
    const b = BUILTINS.get(ident.name);
    if (!b) return undefined;
    return { code: b.signature, notes: callType && callType.kind !== "error" ? [`here: \`${typeLine(a, callType)}\``] : [], doc: b.doc };
  }
  if (ident.name === "training") return { code: "training: flag", doc: "true inside a train job's loss, false in `run` and evaluation." };
  if (useType && useType.kind !== "error") return { code: typeLine(a, useType, `${ident.name}: `) };
  return undefined;
}

function declCard(a: Analysis, d: Declaration, useType: Type | undefined, callType: Type | undefined): Card {
  const { checked } = a;
  const name = d.name.name;
  const declared = checked.types.get(d.name);
  const type = useType && useType.kind !== "error" ? useType : declared && declared.kind !== "error" ? declared : undefined;
  const typed = (prefix: string) => (type ? typeLine(a, type, prefix) : prefix.replace(/: $/, ""));
  const here = callType && callType.kind !== "error" ? [`here: \`${typeLine(a, callType)}\``] : [];
  switch (d.kind) {
    case "block": {
      const info = checked.blocks.get(d.node as BlockItem);
      if (!info) return { code: `block ${name}`, doc: d.doc };
      const n = paramCount(info);
      const notes = [
        info.node.dims.length ? `dims: ${info.node.dims.map((x) => `\`${x.name}\``).join(", ")}` : "no dims",
        n ? `parameters: \`${printDim(n)}\`` : "parameters: unknown",
        `${info.params.size} param${info.params.size === 1 ? "" : "s"}, ${info.subs.size} sub-instance${info.subs.size === 1 ? "" : "s"}`,
        ...(callType?.kind === "instance" ? [`here: \`${printType(callType)}\``] : []),
      ];
      return { code: blockHeader(info), notes, doc: d.doc };
    }
    case "fn":
    case "method": {
      const node = d.node as FnItem;
      return { code: fnSignature(checked.fns.get(node), node, (s) => a.textOf(s)), notes: here, doc: d.doc };
    }
    case "dim": {
      const decl = d.node as DimDecl;
      const info = checked.dims.get(name);
      const dflt = decl.default ? ` = ${a.textOf(decl.default.span)}` : "";
      const value = info?.value !== undefined && `${info.value}` !== dflt.slice(3) ? [`value: \`${info.value}\``] : [];
      return { code: `dim ${name}${dflt}`, notes: value, doc: d.doc };
    }
    case "blockDim":
      return { code: `dim ${name}`, notes: [`constructor dim of block \`${(d.container as BlockItem).name.name}\``] };
    case "param": {
      const p = d.node as ParamDecl;
      return { code: `${typed(`param ${name}: `)}${p.init ? ` = ${a.textOf(p.init.span)}` : ""}`, doc: d.doc };
    }
    case "member":
      return { code: typed(`${name}: `), notes: [`member of block \`${(d.container as BlockItem).name.name}\``], doc: (d.node as InstanceDecl).doc };
    case "parameter":
      return { code: typed(`${name}: `), notes: [`parameter of \`${(d.container as FnItem).name?.name ?? "forward"}\``, ...here] };
    case "let":
    case "var":
      return { code: typed(`${d.kind} ${name}: `), notes: here };
    case "loop":
      return { code: `${name}: int`, notes: ["loop variable (compile time)"] };
    case "field":
      return { code: typed(`${name}: `), notes: ["train field"] };
    case "alias": {
      const imp = d.node as ImportItem;
      const file = checked.scopes.get(d.name.span.file)?.aliases.get(name)?.file;
      return { code: `import "${imp.path}" as ${name}`, notes: [file ? `loads \`${file}\`` : "not found"], doc: d.doc };
    }
    case "train":
      return { code: `train ${name}`, doc: d.doc };
  }
}
