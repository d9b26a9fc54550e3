// Completion that works in a half-written line: the text around the cursor decides what is
// wanted (a member after `.`, a dim inside `f32[...]`, a type after `:`, an import path),
// the analysis of the last parse supplies the names and their types.
import { readdirSync } from "node:fs";
import * as path from "node:path";
import type { CompletionItem } from "vscode-languageserver";
import { CompletionItemKind, InsertTextFormat, MarkupKind } from "vscode-languageserver";
import type { Expr, MemberExpr } from "../grammar/ast.ts";
import { BUILTINS, OPTIMIZERS, SCHEDULES, INITS } from "../compiler/check/builtins.ts";
import { DTYPES } from "../compiler/check/types.ts";
import type { Analysis } from "./analysis.ts";
import { type NameKind, type Visible, chainType, memberList, visibleAt } from "./scope.ts";
import { positionAt } from "./convert.ts";
import { enclosing, walk } from "./syntax.ts";
import { chainBefore, linePrefix, textContext, wordBefore } from "./text.ts";

const ITEM_KEYWORDS = ["import", "dim", "block", "fn", "train"];
const STATEMENT_KEYWORDS = ["let", "var", "for", "in", "return", "if", "else", "true", "false", "None", "repeat", "frozen"];
// the fields train.ts knows (it does not export its list)
const TRAIN_FIELDS = ["model", "loss", "data", "batch", "steps", "optimizer", "schedule", "trainable", "eval", "clip", "accumulate", "decay", "loss_scale"];

const kindOf: Record<NameKind, CompletionItemKind> = {
  local: CompletionItemKind.Variable,
  parameter: CompletionItemKind.Variable,
  loop: CompletionItemKind.Variable,
  member: CompletionItemKind.Property,
  param: CompletionItemKind.Field,
  method: CompletionItemKind.Method,
  blockDim: CompletionItemKind.TypeParameter,
  field: CompletionItemKind.Property,
  block: CompletionItemKind.Class,
  fn: CompletionItemKind.Function,
  dim: CompletionItemKind.TypeParameter,
  train: CompletionItemKind.Event,
  alias: CompletionItemKind.Module,
  builtin: CompletionItemKind.Function,
  dtype: CompletionItemKind.Struct,
  flag: CompletionItemKind.Constant,
};

/** Sorted: what is closest to the cursor first. */
const rankOf: Record<NameKind, number> = {
  local: 0, parameter: 0, loop: 0, member: 1, param: 1, method: 1, blockDim: 1, field: 1,
  fn: 2, block: 2, dim: 2, alias: 2, train: 3, builtin: 4, flag: 4, dtype: 5,
};

function item(v: Visible): CompletionItem {
  const out: CompletionItem = { label: v.name, kind: kindOf[v.kind], sortText: `${rankOf[v.kind]}${v.name}` };
  if (v.detail) out.detail = v.detail;
  if (v.doc) out.documentation = { kind: MarkupKind.Markdown, value: v.doc };
  return out;
}

function keyword(k: string, rank = 6): CompletionItem {
  return { label: k, kind: CompletionItemKind.Keyword, sortText: `${rank}${k}` };
}

export interface CompletionEnv {
  modelsDir: string;
}

export function complete(a: Analysis, offset: number, env: CompletionEnv): CompletionItem[] {
  const text = a.text;
  const ctx = textContext(text, offset);
  const line = linePrefix(text, offset);
  if (ctx.where === "comment") return [];
  if (ctx.where === "string") {
    const imp = /^\s*import\s+"([^"]*)$/.exec(line);
    if (!imp) return [];
    const range = { start: positionAt(text, offset - imp[1].length), end: positionAt(text, offset) };
    return importPaths(a.file, imp[1], env.modelsDir).map((c) => ({ ...c, filterText: c.label, textEdit: { range, newText: c.label } }));
  }
  const { word, start } = wordBefore(text, offset);
  const before = text.slice(0, start).replace(/[ \t]+$/, "");
  // `value.` — members
  if (before.endsWith(".") && !before.endsWith("..")) return members(a, before.length - 1, offset);

  const inner = ctx.open[ctx.open.length - 1];
  // `f32[B, |` — dims
  if (inner?.char === "[" && /\b(f32|f16|i32|bool)\s*$/.test(text.slice(0, inner.at))) return dims(a, offset);
  // `x: |`, `-> |` — types
  const head = line.slice(0, line.length - word.length);
  const inParams = inner?.char === "(" && /\bfn\s*[A-Za-z_0-9]*\s*$/.test(text.slice(0, inner.at));
  if (/->\s*$/.test(head) || /\b(let|var)\s+[A-Za-z_]\w*\s*:\s*$/.test(head) || (inParams && /[A-Za-z_]\w*\s*:\s*(repeat\s+)?$/.test(head)))
    return types(a, offset, /repeat\s+$/.test(head));
  if (inParams) return [];

  const where = enclosing(a.program, offset, a.text);
  const out: CompletionItem[] = [];
  const atLineStart = /^\s*$/.test(head);
  // directly in an item's `{ }`: where members (or train fields) go
  const depth = where.item ? ctx.open.filter((o) => o.at >= where.item!.span.start).length : ctx.open.length;
  const inBody = depth === 1 && inner?.char === "{";
  if (!where.item || (!where.fn && !where.block && !where.train && atLineStart && !inner)) {
    if (atLineStart) return ITEM_KEYWORDS.map((k) => keyword(k, 0));
  }
  if (where.train && inBody && atLineStart) {
    const have = new Set(where.train.fields.map((f) => f.name.name));
    // a new field: the known ones not yet given (any other name declares an instance the loss needs)
    return TRAIN_FIELDS.filter((f) => !have.has(f) || f === word).map((f) => ({ label: f, kind: CompletionItemKind.Property, sortText: `0${f}`, insertText: `${f} = ` }));
  }
  const field = /^\s*(optimizer|schedule)\s*=\s*$/.exec(head);
  if (field) {
    const table = field[1] === "optimizer" ? OPTIMIZERS : SCHEDULES;
    return [...table].map(([name, spec]) => ({ label: name, kind: CompletionItemKind.Function, detail: `${name}(${spec.args.join(", ")})`, documentation: spec.doc }));
  }
  if (where.block && !where.fn && /^\s*param\s+\w+\s*:[^=]*=\s*$/.test(head))
    return [...INITS].map(([name, spec]) => ({ label: name, kind: CompletionItemKind.Function, detail: spec.args.length ? `${name}(${spec.args.join(", ")})` : name, documentation: spec.doc }));
  if (where.block && !where.fn && atLineStart && inBody) out.push(keyword("param", 0), keyword("fn", 0));
  for (const v of visibleAt(a, offset)) out.push(item(v));
  out.push(...STATEMENT_KEYWORDS.map((k) => keyword(k)));
  if (inner?.char === "(") out.push(...namedArgs(a, inner.at));
  return out;
}

/** `name=` for the optional parameters of the built-in being called. */
function namedArgs(a: Analysis, open: number): CompletionItem[] {
  const callee = chainBefore(a.text, open);
  const b = callee?.parts.length === 1 ? BUILTINS.get(callee.parts[0].name) : undefined;
  if (!b) return [];
  return b.params
    .filter((p) => p.optional)
    .map((p) => ({ label: `${p.name}=`, kind: CompletionItemKind.Variable, sortText: `0${p.name}`, detail: `argument of ${b.name}`, insertText: `${p.name}=` }));
}

function members(a: Analysis, dot: number, offset: number): CompletionItem[] {
  // the parser keeps `m.` as a member access with an empty name: its object has a type
  let best: MemberExpr | undefined;
  const where = enclosing(a.program, offset, a.text);
  if (where.item) {
    for (const n of walk(where.item)) {
      if (!("kind" in n) || n.kind !== "member") continue;
      const m = n as MemberExpr;
      if (m.object.span.end <= dot && m.name.span.start > dot && m.name.span.start <= offset && a.text.slice(m.object.span.end, dot).trim() === "")
        if (!best || m.object.span.start > best.object.span.start) best = m;
    }
  }
  let t = best ? a.checked.types.get(best.object as Expr) : undefined;
  if (!t || t.kind === "error") {
    const chain = chainBefore(a.text, dot);
    t = chain ? chainType(a, chain.parts, offset) : undefined;
  }
  if (!t) return [];
  if (t.kind === "batch") return [];
  return memberList(a, t).map(item);
}

function dims(a: Analysis, offset: number): CompletionItem[] {
  const out: CompletionItem[] = [
    { label: "_", kind: CompletionItemKind.Keyword, detail: "a dim to infer", sortText: "3_" },
    { label: "..", kind: CompletionItemKind.Keyword, detail: "any leading dims", sortText: "3.." },
  ];
  const where = enclosing(a.program, offset, a.text);
  if (where.block) for (const d of where.block.dims) out.push({ label: d.name, kind: CompletionItemKind.TypeParameter, detail: `dim of block ${where.block.name.name}`, sortText: `0${d.name}` });
  if (where.fn)
    for (const p of where.fn.params) {
      const t = a.checked.types.get(p.name);
      if (t?.kind === "int") out.push({ label: p.name.name, kind: CompletionItemKind.TypeParameter, detail: "compile-time int parameter", sortText: `0${p.name.name}` });
    }
  for (const [name, d] of a.checked.dims)
    out.push({ label: name, kind: CompletionItemKind.TypeParameter, detail: d.value !== undefined ? `dim ${name} = ${d.value}` : `dim ${name}`, sortText: `1${name}` });
  out.push({ label: "sizeof", kind: CompletionItemKind.Function, detail: "sizeof(instance) -> int", sortText: "4sizeof" });
  return out;
}

function types(a: Analysis, offset: number, afterRepeat: boolean): CompletionItem[] {
  const out: CompletionItem[] = [];
  if (!afterRepeat)
    for (const d of DTYPES)
      out.push({ label: d, kind: CompletionItemKind.Struct, detail: `${d}[dims]`, sortText: `0${d}`, insertText: `${d}[$1]`, insertTextFormat: InsertTextFormat.Snippet });
  for (const v of visibleAt(a, offset)) if (v.kind === "block" || v.kind === "alias") out.push(item(v));
  if (!afterRepeat) out.push(keyword("repeat"));
  return out;
}

function importPaths(file: string, typed: string, modelsDir: string): CompletionItem[] {
  const out = new Map<string, CompletionItem>();
  const add = (label: string, detail: string) => {
    if (!out.has(label)) out.set(label, { label, kind: CompletionItemKind.File, detail, sortText: label.startsWith(".") ? `1${label}` : `0${label}` });
  };
  for (const f of weftFilesUnder(modelsDir, 4)) add(f.replace(/\.weft$/, ""), path.join(modelsDir, f));
  const here = path.dirname(file);
  if (path.isAbsolute(here))
    for (const f of weftFilesUnder(here, 3)) if (path.join(here, f) !== file) add(`./${f}`, path.join(here, f));
  // the client filters by what was typed; keep only the entries that can still match
  return [...out.values()].filter((c) => c.label.startsWith(typed.replace(/[^/]*$/, "")) || typed === "");
}

function weftFilesUnder(dir: string, depth: number, prefix = ""): string[] {
  if (depth < 0) return [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules") out.push(...weftFilesUnder(path.join(dir, e.name), depth - 1, `${prefix}${e.name}/`));
    else if (e.isFile() && e.name.endsWith(".weft")) out.push(`${prefix}${e.name}`);
  }
  return out;
}
