// `weft fmt`: the canonical layout of a Weft file.
//
//   const { text, diagnostics } = format(source, "model.weft");
//
// A file with syntax errors comes back unchanged, with the parser's diagnostics: a broken
// file is never rewritten. A formatted file parses to the same tree (spans aside) and keeps
// every comment, in order; `format` checks both before returning, and should the check ever
// fail (a formatter bug) it returns the file unchanged with an internal diagnostic (W0999).
//
// The style:
// - 2-space indentation inside `{ }`; lines of at most 100 columns wherever the code can
//   break (comments, strings and names are never split); LF line ends, one final newline.
// - Top-level items are separated by one blank line, except that consecutive one-line
//   items written without a blank line between them (a run of short fns) stay together.
//   Between statements, members and fields the author's blank lines are kept, at most one.
// - One statement, member or train field per line; `;` separators (and `,` between train
//   or record fields) are dropped.
// - Spaces around every binary operator, `**` included (`a ** 2`, `x * 2 + 1`), except in
//   dim arithmetic where dims are written, which is tight as LANGUAGE.md writes it: a type's
//   dims (`f32[B, S*S]`), slice and loop bounds (`x[:, 1:T+1]`, `0..L-1`) and a block's
//   constructor arguments (`Linear(2*D, 1)`, `repeat(L-1)`), when the operands are names,
//   numbers, calls, members or parentheses. None after a unary `-` or `!` (but `- -x`), none
//   around `.`, `..` (`0..L`) or a slice's `:`, none inside brackets; `, ` between items;
//   `name: type`; ` = ` in every binding, default, field and named argument
//   (`adamw(lr = 3e-4)`); ` -> `.
// - Parentheses are the author's, exactly: the tree keeps them (ParenExpr) and none are
//   added or removed. Numbers and strings are printed as written.
// - A record stays on one line (`{ every = 100, data = jsonl("v.jsonl") }`) if it was written
//   with its first field on the `{` line, has no comments and fits; else one field per line.
//   A `{ }` body with at most one statement (an `if` branch, a `for` body) stays `{ stmt }`
//   if it was written on one line, has no comments and fits; an `if` chain breaks all its
//   branches or none.
// - A fn's expression body follows ` = ` when it fits, else goes on the next line, 2 columns
//   in (`fn f(...) -> T =` / `  body`); a body that spans lines anyway (a block, an `if`
//   written over lines) stays on the `=` line.
// - A long line breaks inside `( )` or `[ ]` (argument, index, dim and list items fill the
//   line and continue 4 columns in; a fn's parameters continue under its first parameter,
//   and its defaulted parameters start a line of their own when the others fit on the first)
//   or after a binary operator (loosest first, continuing 4 columns in). It never breaks before `(`, `[` or `-`, where a new
//   line would start a new statement.
// - Comments: every comment is kept, in order, with its text (trailing spaces aside). An
//   end-of-line comment stays at the end of its token's line (if the code joins lines, the
//   end of the joined line); runs of consecutive lines ending in comments have them aligned
//   one column after the longest code, as gofmt does. Comments on lines of their own stay
//   on lines of their own, before the token that follows them, with the blank lines around
//   them (at most one); where no line may break there (between `name` and `.field`, a callee
//   and its `(`, a `:` and its type), they move to the end of the line. `/* */` comments
//   within a line stay there. `///` doc comments stay attached to what they document.
import { error, hasErrors, noSpan, type Diagnostic } from "./diagnostics.ts";
import { parse } from "../grammar/index.ts";
import type { Program } from "../grammar/ast.ts";
import { alignComments, type Doc, hardline, render } from "./format/doc.ts";
import { commentsOf, ScanError, scanTokens } from "./format/comments.ts";
import { Cursor, PrintError, Printer, WIDTH } from "./format/print.ts";

export { WIDTH } from "./format/print.ts";

export interface FormatResult {
  /** the formatted file; the source itself when it has syntax errors */
  text: string;
  diagnostics: Diagnostic[];
}

export function format(source: string, file: string): FormatResult {
  const parsed = parse(source, file);
  if (hasErrors(parsed.diagnostics)) return { text: source, diagnostics: parsed.diagnostics };
  const unchanged = (why: string): FormatResult => ({
    text: source,
    diagnostics: [
      ...parsed.diagnostics,
      error("W0999", noSpan(file), `weft fmt left this file unchanged: formatting it would have ${why} (a bug in weft fmt, please report it)`),
    ],
  });
  let text: string;
  try {
    text = printProgram(parsed.program, source);
  } catch (e) {
    if (e instanceof PrintError || e instanceof ScanError) return unchanged(`failed (${e.message})`);
    throw e;
  }
  const again = parse(text, file);
  if (hasErrors(again.diagnostics)) return unchanged(`made a syntax error (${again.diagnostics[0].message})`);
  if (astKey(again.program) !== astKey(parsed.program)) return unchanged("changed the program");
  const before = commentsOf(source);
  const after = commentsOf(text);
  if (before.length !== after.length || before.some((c, i) => c !== after[i])) return unchanged("lost or moved a comment");
  return { text, diagnostics: parsed.diagnostics };
}

/** A program's tree without positions: two programs are the same iff their keys are equal. */
export function astKey(program: Program): string {
  const positions = new Set(["span", "opSpan", "argsSpan", "pathSpan", "file"]);
  return JSON.stringify(program, (k, v: unknown) => (positions.has(k) ? undefined : v));
}

const MARK = "\u0001";

function printProgram(program: Program, source: string): string {
  const { toks, comments } = scanTokens(source);
  // marks where end-of-line comments start, for aligning them (not when the file holds it)
  const mark = source.includes(MARK) ? undefined : MARK;
  const cur = new Cursor(toks);
  const printer = new Printer(source, cur, comments.map((c) => c.start));
  const out: string[] = [];
  let prevMultiline = false;
  program.items.forEach((item, k) => {
    cur.lineBreak();
    const blank = cur.blankBefore();
    const lead = cur.leading();
    const head = lead.comments.length ? renderLines(lead.comments, lead.blankAfter) : "";
    const doc = printer.item(item);
    cur.endUnit();
    const code = render(doc, WIDTH, mark);
    const multiline = code.includes("\n");
    if (k > 0) out.push(blank || multiline || prevMultiline ? "\n\n" : "\n");
    out.push(head, code);
    prevMultiline = multiline;
  });
  cur.lineBreak();
  if (!cur.atEnd()) throw new PrintError(`'${cur.peek().image}' at offset ${cur.peek().start} was not printed`);
  const tail = cur.leading();
  if (tail.comments.length) {
    if (out.length) out.push(tail.comments[0].blankBefore ? "\n\n" : "\n");
    out.push(renderLines(tail.comments, false).replace(/\n$/, ""));
  }
  const text = mark === undefined ? out.join("") : alignComments(out.join(""), mark);
  return text === "" ? "" : text + "\n";
}

/** Own-line comments at the top level, each on its own line (a trailing newline included). */
function renderLines(comments: { text: string; blankBefore: boolean; nlAfter: boolean }[], blankAfter: boolean): string {
  const parts: Doc[] = [];
  comments.forEach((c, k) => {
    if (k > 0 && c.blankBefore) parts.push(hardline);
    parts.push(c.text, c.nlAfter || k === comments.length - 1 ? hardline : " ");
  });
  if (blankAfter) parts.push(hardline);
  return render(parts, WIDTH);
}
