// Code actions: fixes for diagnostics (the hint's "did you mean", declaring a missing dim,
// importing the file that defines a missing name, a new axis to broadcast) and writing in an
// inferred annotation.
import { readdirSync } from "node:fs";
import * as path from "node:path";
import type { CodeAction, TextEdit } from "vscode-languageserver";
import { CodeActionKind } from "vscode-languageserver";
import type { CallExpr, Expr, Item, Program } from "../grammar/ast.ts";
import { parse } from "../grammar/index.ts";
import type { Diagnostic } from "../compiler/diagnostics.ts";
import { Code } from "../compiler/check/codes.ts";
import { printType } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { positionAt, toLspDiagnostic, toRange } from "./convert.ts";
import { annotationEdit, unannotated } from "./inlay.ts";
import { walk } from "./syntax.ts";

export interface ActionEnv {
  uriOf(file: string): string;
  modelsDir: string;
  /** `.weft` files a missing name may be imported from (besides the models folder) */
  files(): string[];
  text(file: string): string | undefined;
}

export function codeActions(a: Analysis, from: number, to: number, env: ActionEnv): CodeAction[] {
  const uri = env.uriOf(a.file);
  const out: CodeAction[] = [];
  const fix = (title: string, d: Diagnostic, edits: TextEdit[], preferred = false) => {
    const action: CodeAction = { title, kind: CodeActionKind.QuickFix, diagnostics: [toLspDiagnostic(d, env.uriOf)], edit: { changes: { [uri]: edits } } };
    if (preferred) action.isPreferred = true;
    out.push(action);
  };
  for (const d of a.checked.diagnostics) {
    if (d.span.file !== a.file || d.span.end < from || d.span.start > to) continue;
    const hint = d.hint ?? "";
    const mean = /did you mean `([^`]+)`\?/.exec(hint);
    if (mean) fix(`Change to \`${mean[1]}\``, d, [{ range: toRange(d.span), newText: mean[1] }], true);
    const name = a.text.slice(d.span.start, d.span.end);
    if (d.code === Code.UnknownDim || (d.code === Code.UnknownName && /declare it: `dim /.test(hint))) {
      fix(`Declare \`dim ${name}\``, d, [declareDim(a, name)], !mean);
    }
    if (d.code === Code.UnknownName && /^[A-Za-z_]\w*$/.test(name)) {
      for (const spec of importsDefining(a, name, env)) fix(`Import "${spec}" (defines \`${name}\`)`, d, [insertImport(a, spec)], !mean);
    }
    if (d.code === Code.DimMismatch && /insert `None` to broadcast/.test(hint)) {
      const edits = newAxis(a, d);
      if (edits) fix(`Insert \`None\` to broadcast: ${hint.replace(/^.*broadcast: /, "")}`, d, edits, true);
    }
  }
  // an annotation for the `let`/`var` under the cursor, and for a fn whose return type is inferred
  for (const b of unannotated(a, from, to)) {
    const edit = annotationEdit(a, b);
    if (edit && b.name) out.push({ title: `Annotate \`${b.name.name}${edit.newText}\``, kind: CodeActionKind.RefactorRewrite, edit: { changes: { [uri]: [edit] } } });
  }
  for (const item of a.program.items) {
    const fns = item.kind === "fn" ? [item] : item.kind === "block" ? item.members.filter((m) => m.kind === "fn") : [];
    for (const fn of fns) {
      if (fn.ret || fn.span.start > to || fn.span.end < from || !fn.body) continue;
      const header = fn.name ? fn.name.span.start <= to && from <= fn.body.span.start : fn.span.start <= to && from <= fn.body.span.start;
      const ret = a.checked.fns.get(fn)?.inferredRet;
      if (!header || !ret || ret.kind !== "tensor") continue;
      const close = a.text.lastIndexOf(")", fn.body.span.start);
      if (close < fn.span.start) continue;
      const at = positionAt(a.text, close + 1);
      out.push({ title: `Annotate the return type: -> ${printType(ret)}`, kind: CodeActionKind.RefactorRewrite, edit: { changes: { [uri]: [{ range: { start: at, end: at }, newText: ` -> ${printType(ret)}` }] } } });
    }
  }
  return out;
}

/** `, X` after the last dim of the first `dim` line, or a new `dim X` line. */
function declareDim(a: Analysis, name: string): TextEdit {
  const dimItem = a.program.items.find((i) => i.kind === "dim" && i.decls.length > 0);
  if (dimItem && dimItem.kind === "dim") {
    const last = dimItem.decls[dimItem.decls.length - 1];
    const at = toRange(last.span).end;
    return { range: { start: at, end: at }, newText: `, ${name}` };
  }
  return insertLine(a, `dim ${name}`);
}

function insertImport(a: Analysis, spec: string): TextEdit {
  return insertLine(a, `import "${spec}"`);
}

/** A new line after the last import, else before the first item (and its doc comment). */
function insertLine(a: Analysis, line: string): TextEdit {
  const imports = a.program.items.filter((i) => i.kind === "import");
  if (imports.length) {
    const last = imports[imports.length - 1];
    const pos = { line: last.span.endLine, character: 0 };
    return { range: { start: pos, end: pos }, newText: `${line}\n` };
  }
  const first: Item | undefined = a.program.items[0];
  const lines = a.text.split("\n");
  let at = first ? first.span.line - 1 : lines.length;
  // above the first item's doc comment, which stays attached to it
  while (at > 0 && /^\s*\/\/\//.test(lines[at - 1])) at--;
  const pos = { line: at, character: 0 };
  return { range: { start: pos, end: pos }, newText: `${line}\n` };
}

const parsed = new Map<string, { text: string; program: Program }>();

/** Import paths of files that define `name` at the top level: the models folder first. */
function importsDefining(a: Analysis, name: string, env: ActionEnv): string[] {
  const out: string[] = [];
  const already = new Set(a.modules.modules.keys());
  const candidates = [...weftFiles(env.modelsDir), ...env.files()];
  for (const file of new Set(candidates)) {
    if (file === a.file || already.has(file)) continue;
    const text = env.text(file);
    if (text === undefined) continue;
    let hit = parsed.get(file);
    if (!hit || hit.text !== text) parsed.set(file, (hit = { text, program: parse(text, file).program }));
    const defines = hit.program.items.some((i) => (i.kind === "block" || i.kind === "fn") && i.name?.name === name);
    if (!defines) continue;
    const inModels = !path.relative(env.modelsDir, file).startsWith("..");
    const spec = inModels ? path.relative(env.modelsDir, file).replace(/\.weft$/, "").split(path.sep).join("/") : relativeSpec(a.file, file);
    if (!out.includes(spec)) out.push(spec);
  }
  return out.slice(0, 5);
}

function relativeSpec(from: string, to: string): string {
  const rel = path.relative(path.dirname(from), to).split(path.sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

function weftFiles(dir: string, depth = 3): string[] {
  if (depth < 0) return [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? weftFiles(path.join(dir, e.name), depth - 1) : e.name.endsWith(".weft") ? [path.join(dir, e.name)] : []));
}

/** The operand of a failed broadcast that has fewer dims, indexed with the hint's new axis. */
function newAxis(a: Analysis, d: Diagnostic): TextEdit[] | undefined {
  const m = /broadcast: (.*?)(\[[^\]]*None[^\]]*\])\s*$/.exec(d.hint ?? "");
  if (!m) return undefined;
  const [, name, index] = m;
  let operands: Expr[] = [];
  for (const n of walk(a.program)) {
    if (!("kind" in n) || n.span.start !== d.span.start || n.span.end !== d.span.end) continue;
    if (n.kind === "binary" && "left" in n) operands = [(n as Expr & { kind: "binary" }).left, (n as Expr & { kind: "binary" }).right];
    else if (n.kind === "call") operands = (n as CallExpr).args.map((x) => x.value);
    if (operands.length) break;
  }
  const rank = (e: Expr) => {
    const t = a.checked.types.get(e);
    return t?.kind === "tensor" ? t.dims.length : Infinity;
  };
  const byName = operands.find((e) => a.text.slice(e.span.start, e.span.end) === name);
  const target = byName ?? [...operands].sort((x, y) => rank(x) - rank(y))[0];
  if (!target) return undefined;
  const simple = ["ident", "member", "call", "index", "paren", "number"].includes(target.kind);
  const end = toRange(target.span).end;
  if (simple) return [{ range: { start: end, end }, newText: index }];
  const start = toRange(target.span).start;
  return [
    { range: { start, end: start }, newText: "(" },
    { range: { start: end, end }, newText: `)${index}` },
  ];
}
