// Signature help: which parameter the cursor is on in `f(a, |`, for built-ins, fns, block
// constructors and instance calls. The argument list is found in the text (it is usually
// unfinished); what it calls comes from the checker when the call parsed, else from the names
// in scope.
import type { ParameterInformation, SignatureHelp, SignatureInformation } from "vscode-languageserver";
import { MarkupKind } from "vscode-languageserver";
import type { CallExpr, FnItem } from "../grammar/ast.ts";
import { BUILTINS, type Builtin } from "../compiler/check/builtins.ts";
import type { CallTarget } from "../compiler/check/index.ts";
import { printType } from "../compiler/check/types.ts";
import type { BlockInfo, FnInfo } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { chainType, visibleAt } from "./scope.ts";
import { enclosing, walk } from "./syntax.ts";
import { chainBefore, textContext } from "./text.ts";

interface Shape {
  name: string;
  params: { label: string; name: string; variadic?: boolean }[];
  result?: string;
  doc?: string;
}

export function signatureHelp(a: Analysis, offset: number): SignatureHelp | undefined {
  const ctx = textContext(a.text, offset);
  if (ctx.where !== "code") return undefined;
  const open = [...ctx.open].reverse().find((o) => o.char === "(");
  if (!open) return undefined;
  const chain = chainBefore(a.text, open.at);
  if (!chain || /\bfn\s*$/.test(a.text.slice(0, chain.start))) return undefined;
  const shape = shapeOfCall(a, open.at, chain.parts, offset);
  if (!shape) return undefined;

  const argStart = open.commas.length ? open.commas[open.commas.length - 1] + 1 : open.at + 1;
  const named = /^\s*([A-Za-z_]\w*)\s*=(?!=)/.exec(a.text.slice(argStart, offset));
  let active = named ? shape.params.findIndex((p) => p.name === named[1]) : open.commas.length;
  const variadic = shape.params.findIndex((p) => p.variadic);
  if (!named && variadic >= 0 && active > variadic) {
    // arguments after a variadic one go to it, except the trailing named ones
    active = variadic;
  }
  const parameters: ParameterInformation[] = [];
  let label = `${shape.name}(`;
  shape.params.forEach((p, i) => {
    if (i) label += ", ";
    parameters.push({ label: [label.length, label.length + p.label.length] });
    label += p.label;
  });
  label += ")";
  if (shape.result) label += ` -> ${shape.result}`;
  const sig: SignatureInformation = { label, parameters };
  if (shape.doc) sig.documentation = { kind: MarkupKind.Markdown, value: shape.doc };
  return { signatures: [sig], activeSignature: 0, activeParameter: active >= 0 && active < parameters.length ? active : parameters.length ? parameters.length - 1 : 0 };
}

function shapeOfCall(a: Analysis, open: number, parts: { name: string; indexed: number }[], offset: number): Shape | undefined {
  const where = enclosing(a.program, offset, a.text);
  let call: CallExpr | undefined;
  if (where.item)
    for (const n of walk(where.item))
      if ("kind" in n && n.kind === "call" && (n as CallExpr).argsSpan.start === open) {
        call = n as CallExpr;
        break;
      }
  const target = call ? a.checked.calls.get(call) : undefined;
  const callee = parts.map((p) => p.name + "[i]".repeat(p.indexed)).join(".");
  if (target) return fromTarget(a, target, callee);
  // the call did not parse: resolve the callee from the names in scope
  if (parts.length === 1 && parts[0].indexed === 0) {
    const v = visibleAt(a, offset).find((x) => x.name === parts[0].name);
    if (v?.kind === "builtin") return fromBuiltin(BUILTINS.get(v.name)!);
    if (v?.type?.kind === "fn") return fromFn(a, v.type.fn, callee);
    if (v?.type?.kind === "block") return fromConstructor(v.type.block);
  }
  const t = chainType(a, parts, offset);
  if (t?.kind === "fn") return fromFn(a, t.fn, callee);
  if (t?.kind === "instance" && t.block.forward) return fromFn(a, t.block.forward, callee);
  return undefined;
}

function fromTarget(a: Analysis, t: CallTarget, callee: string): Shape | undefined {
  switch (t.kind) {
    case "builtin": {
      const b = BUILTINS.get(t.name);
      return b && fromBuiltin(b);
    }
    case "fn":
      return fromFn(a, t.fn, callee);
    case "forward":
      return t.block.forward ? fromFn(a, t.block.forward, callee) : undefined;
    case "construct":
      return fromConstructor(t.block);
  }
}

function fromBuiltin(b: Builtin): Shape {
  const arrow = b.signature.indexOf("->");
  const result = arrow >= 0 ? b.signature.slice(arrow + 2).split("  |")[0].trim() : undefined;
  return {
    name: b.name,
    params: b.params.map((p) => ({ name: p.name, label: p.variadic ? `${p.name}..` : p.optional ? `${p.name}?` : p.name, variadic: p.variadic })),
    result,
    doc: `\`${b.signature}\`\n\n${b.doc}`,
  };
}

function fromFn(a: Analysis, info: FnInfo, callee: string): Shape {
  const node: FnItem = info.node;
  const ret = node.ret ? a.textOf(node.ret.span) : info.inferredRet && info.inferredRet.kind !== "error" ? printType(info.inferredRet) : undefined;
  return {
    name: callee,
    params: node.params.map((p) => ({
      name: p.name.name,
      label: `${p.name.name}${p.type ? `: ${a.textOf(p.type.span)}` : ""}${p.default ? ` = ${a.textOf(p.default.span)}` : ""}`,
    })),
    result: ret,
    doc: node.doc,
  };
}

function fromConstructor(b: BlockInfo): Shape {
  return { name: b.name, params: b.node.dims.map((d) => ({ name: d.name, label: d.name })), result: `instance of ${b.name}`, doc: b.node.doc };
}
