// The grammar's one entry point: source text → (partial) AST + syntax diagnostics.
// Codes: W0001 "expected X, found Y" parse errors, W0002 lexical errors, W0003 a
// construct in a place where it is not allowed, W0004 the parser itself failed
// (input nested too deeply for the stack, or a parser bug); never thrown.
import { EOF, MismatchedTokenException, tokenMatcher, type CstNode, type IRecognitionException, type IToken } from "chevrotain";
import type { Diagnostic, Related } from "../compiler/diagnostics.ts";
import { error } from "../compiler/diagnostics.ts";
import type { BlockMember, Item, Program, Span } from "./ast.ts";
import { AstBuilder } from "./build.ts";
import * as T from "./lexer.ts";
import { WeftParser } from "./parser.ts";

export type * from "./ast.ts";

let parser: WeftParser | undefined;

export function parse(source: string, file: string): { program: Program; diagnostics: Diagnostic[] } {
  const builder = new AstBuilder(file, source);
  const diagnostics: Diagnostic[] = [];
  let program: Program = { kind: "program", file, items: [], span: builder.span(0, source.length) };
  try {
    const lexed = T.lex(source);
    for (const p of lexed.problems) diagnostics.push(error("W0002", builder.span(p.start, p.end), p.message, p.hint ? { hint: p.hint } : {}));
    parser ??= new WeftParser();
    parser.lineStarts = lexed.lineStarts;
    parser.firstOnLine = lexed.firstOnLine;
    parser.input = lexed.tokens;
    const cst = parser.program();
    const errors = parser.errors;
    parser.input = [];
    parser.lineStarts = new Set();
    parser.firstOnLine = new Set();
    // A parse error after a lexical one on the same line is its consequence (characters were dropped).
    const lexLines = new Map<number, number>();
    for (const d of diagnostics) lexLines.set(d.span.line, Math.min(d.span.start, lexLines.get(d.span.line) ?? Infinity));
    const syntax = syntaxErrors(consequential(errors, lexed, cst), lexed, builder, source);
    diagnostics.push(...syntax.filter((d) => !(d.span.start >= (lexLines.get(d.span.line) ?? Infinity))));
    program = builder.program(cst);
    diagnostics.push(...builder.diagnostics);
    attachDocs(program, lexed.docs, source);
  } catch (e) {
    const deep = e instanceof RangeError;
    const message = deep ? "the program is nested too deeply to parse" : `internal parser error: ${e instanceof Error ? e.message : String(e)}`;
    diagnostics.push(error("W0004", builder.span(0, 0), message, deep ? { hint: "split deeply nested expressions with `let`" } : {}));
  }
  diagnostics.sort((a, b) => a.span.start - b.span.start);
  return { program, diagnostics };
}

/**
 * Drops errors that are consequences of an earlier one, judged by the bracket pairs the
 * parser did not get through in place (it resumed out of context there):
 * - an opening bracket skipped by recovery: every error up to its closer goes, since the
 *   earlier error explains them (a broken fn header would otherwise flag its whole body);
 * - a closing bracket never consumed: only the first error inside the pair stays.
 */
function consequential(errors: IRecognitionException[], lexed: T.LexResult, cst: CstNode): IRecognitionException[] {
  const parsed = new Set<IToken>();
  const collect = (n: CstNode) => {
    for (const key in n.children) for (const c of n.children[key]) "image" in c ? parsed.add(c) : collect(c);
  };
  collect(cst);
  const index = new Map(lexed.tokens.map((t, i) => [t, i]));
  const at = (e: IRecognitionException) => index.get(e.token) ?? lexed.tokens.length;
  const dropped = new Set<IRecognitionException>();
  for (const [opener, close] of lexed.partner) {
    const open = index.get(opener) ?? 0;
    const closed = close < lexed.tokens.length;
    if (parsed.has(opener) && (!closed || parsed.has(lexed.tokens[close]))) continue;
    const inside = errors.filter((e) => at(e) > open && at(e) <= close);
    inside.slice(parsed.has(opener) ? 1 : 0).forEach((e) => dropped.add(e));
  }
  return errors.filter((e) => !dropped.has(e));
}

function syntaxErrors(errors: IRecognitionException[], lexed: T.LexResult, b: AstBuilder, source: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const last = lexed.tokens[lexed.tokens.length - 1];
  const lastEnd = last ? last.startOffset + last.image.length : source.length;
  for (const e of errors) {
    const t = e.token;
    const atEnd = tokenMatcher(t, EOF) || Number.isNaN(t.startOffset);
    const span = atEnd ? b.span(lastEnd, lastEnd) : b.span(t.startOffset, t.startOffset + t.image.length);
    const d = misplaced(e, span) ?? unseparated(e, span, lexed) ?? error("W0001", span, `expected ${e.message}, found ${describe(t)}`, advice(e, lexed, b));
    const prev = out[out.length - 1];
    // Cascades: one error per line (what follows on the line was parsed out of context,
    // except that an unclosed bracket at the end of the file is worth its own report), and
    // one report for a run of misplaced statements.
    if (prev && !atEnd && prev.span.line === span.line) continue;
    if (prev && d.code === "W0003" && prev.message.replace(/^'\w+'/, "") === d.message.replace(/^'\w+'/, "")) continue;
    out.push(d);
  }
  return out;
}

const listOf: Record<string, string> = { blockStmt: "statements", blockItem: "members", trainItem: "fields", recordExpr: "fields" };
const startsStatement = [T.Let, T.Var, T.For, T.Return, T.If, T.Repeat, T.Frozen, T.Identifier, T.NumberLit, T.StringLit, T.True, T.False, T.None, T.LParen, T.LBracket, T.LBrace, T.UnaryOp];

/** Two statements (members, fields) on one line with nothing between them. */
function unseparated(e: IRecognitionException, span: Span, lexed: T.LexResult): Diagnostic | undefined {
  const rule = e.context?.ruleStack.at(-1) ?? "";
  const list = listOf[rule];
  const t = e.token;
  const starts = rule === "blockStmt" ? startsStatement : rule === "blockItem" ? [T.Param, T.Fn, T.Identifier] : [T.Identifier];
  if (!list || lexed.firstOnLine.has(t) || !starts.some((s) => tokenMatcher(t, s))) return undefined;
  const sep = list === "fields" ? "a line break, ',' or ';'" : "a line break or ';'";
  return error("W0001", span, `expected ${sep} between ${list}, found ${describe(t)}`, {
    hint: rule === "blockStmt" ? `is an operator missing before ${describe(t)}?` : `put each of the ${list} on its own line`,
  });
}

/** Statement keywords outside a fn body, `param` outside a block: W0003 (the parser skipped them). */
function misplaced(e: IRecognitionException, span: Span): Diagnostic | undefined {
  const word = e.token.image;
  const rule = e.context?.ruleStack.at(-1);
  const statement = ["let", "var", "for", "return"].includes(word);
  const inFn = "statements belong in a fn body: fn name(...) { ... }";
  if (rule === "program" && statement) return error("W0003", span, `'${word}' is not allowed at the top level`, { hint: inFn });
  if (rule === "program" && word === "param") return error("W0003", span, "'param' is not allowed at the top level", { hint: "a param belongs in a block body" });
  if (rule === "blockItem" && statement) return error("W0003", span, `'${word}' is not allowed in a block body`, { hint: `a block holds params, instances (name = Block(...)) and fns; ${inFn}` });
  if (rule === "blockStmt" && word === "param") return error("W0003", span, "'param' is not allowed in a function body", { hint: "a param belongs directly in a block body" });
  return undefined;
}

function describe(t: IToken): string {
  if (tokenMatcher(t, EOF) || Number.isNaN(t.startOffset)) return "the end of the file";
  const text = t.image.length > 24 ? t.image.slice(0, 24) + "…" : t.image;
  if (tokenMatcher(t, T.StringLit)) return `the string ${text}`;
  return `'${text}'`;
}

const closerOf: Record<string, string> = { "(": ")", "[": "]", "{": "}" };

/** Hints for the slips people make most; `e.message` is the "expected" phrase from parser.ts. */
function advice(e: IRecognitionException, lexed: T.LexResult, b: AstBuilder): { hint?: string; related?: Related[] } {
  const t = e.token;
  const expected = e.message;
  const rules = e.context?.ruleStack ?? [];
  const rule = rules[rules.length - 1];
  const prev = e instanceof MismatchedTokenException ? e.previousToken : undefined;
  if (tokenMatcher(t, EOF)) {
    const open = [...lexed.unclosed].reverse().find((o) => expected.includes(`'${closerOf[o.image]}'`)) ?? lexed.unclosed.at(-1);
    if (!open) return {};
    const at = b.span(open.startOffset, open.startOffset + 1);
    return { hint: `the '${open.image}' at ${at.line}:${at.col} is never closed`, related: [{ span: at, message: `'${open.image}' opened here` }] };
  }
  if (T.keywordNames.has(t.image) && /\bname\b/.test(expected)) return { hint: `'${t.image}' is a keyword and cannot be used as a name` };
  if (rule === "importItem" && tokenMatcher(t, T.Identifier)) return { hint: `the path is a string: import "${t.image}"` };
  if (rule === "paramList" && expected.startsWith("')' to close the parameter list") && tokenMatcher(t, T.Identifier)) {
    const bareName = prev && tokenMatcher(prev, T.Identifier) && !T.dtypeNames.has(prev.image);
    return { hint: bareName ? `a parameter's type follows ':' — write '${prev.image}: ${t.image}'` : "separate parameters with ','" };
  }
  const newLine = lexed.lineStarts.has(t);
  if (newLine && (tokenMatcher(t, T.LParen) || tokenMatcher(t, T.LBracket) || tokenMatcher(t, T.Minus))) {
    return { hint: `a '${t.image}' at the start of a line begins a new statement; to continue the expression, end the previous line with an operator or wrap it in '( )'` };
  }
  if (rule === "callSuffix" && expected.startsWith("')'") && !newLine) return { hint: "separate arguments with ','" };
  return {};
}

/**
 * `///` lines directly above an item, member, param or fn (only whitespace in between)
 * become its `doc`, with `///` and one following space stripped. `////` is a plain comment.
 */
function attachDocs(program: Program, docs: IToken[], source: string): void {
  const byTarget = new Map<number, string>();
  let lines: string[] = [];
  for (let i = 0; i < docs.length; i++) {
    const d = docs[i];
    if (d.image.startsWith("////")) continue;
    lines.push(d.image.slice(3).replace(/^ /, "").trimEnd());
    const end = d.startOffset + d.image.length;
    let next = end;
    while (next < source.length && /\s/.test(source[next])) next++;
    const following = docs[i + 1];
    if (following && following.startOffset === next && !following.image.startsWith("////")) continue;
    byTarget.set(next, lines.join("\n"));
    lines = [];
  }
  if (byTarget.size === 0) return;
  const visit = (n: Item | BlockMember) => {
    const doc = byTarget.get(n.span.start);
    if (doc !== undefined) n.doc = doc;
    if (n.kind === "block") n.members.forEach(visit);
  };
  program.items.forEach(visit);
}
