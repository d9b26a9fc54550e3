// Tokens with their comments, for `weft fmt`. The lexer skips `//` and `/* */` comments (and
// puts `///` ones in a group of their own), so they are read back here from the text
// between consecutive tokens, which holds nothing but whitespace and comments in a file
// that lexed without problems.
//
// Each comment is attached to one token:
// - trailing: it starts on the line where the previous token ends (an end-of-line comment);
// - leading, own-line: it follows a line break; it is printed on its own line before the
//   next token (or, where no line may break, moved to the end of the line);
// - leading, inline: no line break anywhere between the two tokens (`f(a, /* b */ c)`).
import { lex } from "../../grammar/lexer.ts";

export interface Comment {
  /** the comment as written, trailing whitespace removed (`\r\n` read as `\n`) */
  text: string;
  start: number;
  end: number;
  /** a `//` comment (nothing may follow it on its line) */
  line: boolean;
  /** a line break separates it from what precedes it */
  nlBefore: boolean;
  /** a line break separates it from what follows it */
  nlAfter: boolean;
  /** a blank line separates it from what precedes it */
  blankBefore: boolean;
}

export interface Tok {
  /** the token's text; "" for the end of the file */
  image: string;
  start: number;
  end: number;
  trailing: Comment[];
  own: Comment[];
  inline: Comment[];
  /** a blank line separates it from the comment or token before it */
  blankBefore: boolean;
}

export class ScanError extends Error {
  override name = "ScanError";
}

function normalise(text: string): string {
  return text.replace(/\r\n?/g, "\n").replace(/[ \t\f\v]+$/gm, "").trimEnd();
}

/** The comments of a gap between two tokens, and the line breaks around them. */
function scanGap(source: string, from: number, to: number): { comments: Comment[]; newlinesAtEnd: number } {
  const comments: Comment[] = [];
  let newlines = 0;
  let i = from;
  const push = (end: number, line: boolean) => {
    const prev = comments[comments.length - 1];
    if (prev) prev.nlAfter = newlines > 0;
    comments.push({ text: normalise(source.slice(i, end)), start: i, end, line, nlBefore: newlines > 0, nlAfter: false, blankBefore: newlines > 1 });
    newlines = 0;
    i = end;
  };
  while (i < to) {
    const c = source[i];
    if (c === "\n") {
      newlines++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v" || c === "\uFEFF") {
      i++;
    } else if (source.startsWith("//", i)) {
      let end = source.indexOf("\n", i);
      if (end < 0 || end > to) end = to;
      push(end, true);
    } else if (source.startsWith("/*", i)) {
      const close = source.indexOf("*/", i + 2);
      if (close < 0 || close + 2 > to) throw new ScanError(`unterminated block comment at offset ${i}`);
      push(close + 2, false);
    } else {
      throw new ScanError(`unexpected text between tokens at offset ${i}: ${JSON.stringify(source.slice(i, i + 10))}`);
    }
  }
  const last = comments[comments.length - 1];
  if (last) last.nlAfter = newlines > 0;
  return { comments, newlinesAtEnd: newlines };
}

/** The file's tokens, each with its comments, and an end-of-file token (image "") last. */
export function scanTokens(source: string): { toks: Tok[]; comments: Comment[] } {
  const lexed = lex(source);
  const toks: Tok[] = [];
  const all: Comment[] = [];
  let prevEnd = 0;
  const bounds = [...lexed.tokens.map((t) => ({ image: t.image, start: t.startOffset, end: t.startOffset + t.image.length })), { image: "", start: source.length, end: source.length }];
  for (const b of bounds) {
    const gap = scanGap(source, prevEnd, b.start);
    all.push(...gap.comments);
    const tok: Tok = { image: b.image, start: b.start, end: b.end, trailing: [], own: [], inline: [], blankBefore: false };
    const prev = toks[toks.length - 1];
    const cs = gap.comments;
    if (!prev) {
      // the head of the file: every comment is on a line of its own
      tok.own = cs;
    } else {
      const anyBreak = cs.some((c) => c.nlBefore) || gap.newlinesAtEnd > 0;
      if (!anyBreak && b.image !== "") tok.inline = cs;
      else {
        let k = 0;
        while (k < cs.length && !cs[k].nlBefore) k++;
        prev.trailing.push(...cs.slice(0, k));
        tok.own = cs.slice(k);
      }
    }
    tok.blankBefore = cs.length ? cs[cs.length - 1].nlAfter && gap.newlinesAtEnd > 1 : gap.newlinesAtEnd > 1;
    toks.push(tok);
    prevEnd = b.end;
  }
  return { toks, comments: all };
}

/** Every comment of a file, in order (for checking that formatting keeps them). */
export function commentsOf(source: string): string[] {
  return scanTokens(source).comments.map((c) => c.text);
}
