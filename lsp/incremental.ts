// Incremental parsing for the editor. A keystroke changes one item of a file; re-parsing a
// 1,000-line file for it costs most of the time from edit to diagnostics. So the text is cut
// into chunks at top-level item boundaries, each chunk is parsed on its own, and a chunk whose
// text did not change is reused, its spans shifted to where it now starts (the very same AST
// nodes come back, which is how compiler/check/incremental.ts knows an item is unchanged).
// A chunk is parsed alone and its spans moved into place; a chunk with syntax errors is
// parsed again with the text before it blanked out, so that the positions its messages
// name come out right too.
//
// A chunk ends where a top-level item begins at column 0 outside any bracket, comment or
// string, so the parser, reading the whole file, would start a new item there too. Two
// things make a chunk's parse depend on what follows it: an item cut short ("expected an
// expression, found 'fn'") and the parser's end-of-file messages. So each chunk is parsed
// with the first token of the next chunk after it, and what that token starts is dropped.
// test/lsp/incremental.test.ts checks the result against a whole-file `parse` on every
// `.weft` file of the repository and on random edits of them.
import type { Item, Program, Span } from "../grammar/ast.ts";
import { parse } from "../grammar/index.ts";
import type { Diagnostic } from "../compiler/diagnostics.ts";

export interface Parsed {
  program: Program;
  diagnostics: Diagnostic[];
}

interface Chunk {
  start: number;
  end: number;
  /** the end of the next chunk's first token (after any comments), or `end` at the end of the file */
  lookahead: number;
  /**
   * the end of its second token: the parser's recovery looks one token past the one it
   * stumbles on (`block` `fn g` reads as a block named g), so a chunk is parsed up to here
   */
  parseTo: number;
}

const SYNTAX = new Set(["W0001", "W0003"]);
const ITEM_START = /^(import|dim|block|fn|train)\b/;

/** Where top-level items begin (at column 0, outside brackets, comments and strings). */
export function chunksOf(text: string): Chunk[] {
  const starts: number[] = [0];
  const open: string[] = [];
  let depth = 0;
  let unpaired = false;
  // a doc comment belongs to what follows it: cut before a run of them, never after one
  let docPending = false;
  const lineStart = (k: number) => {
    const rest = text.slice(k, k + 8);
    const doc = rest.startsWith("///") && !rest.startsWith("////");
    if (k > 0 && depth === 0 && !docPending && (doc || ITEM_START.test(rest))) starts.push(k);
  };
  lineStart(0);
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      lineStart(++i);
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "/" && text[i + 1] === "/") {
      docPending = text.startsWith("///", i) && !text.startsWith("////", i);
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? text.length : nl;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
      docPending = false;
    } else if (c === "#") {
      // the lexer's "comments start with //" slip: the rest of the line is a comment
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? text.length : nl;
      docPending = false;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      // a single-quoted string only when closed on its line (else the quote is a stray character)
      i = j < text.length && text[j] === c ? j + 1 : c === '"' ? j : i + 1;
      docPending = false;
    } else {
      // as the lexer pairs brackets: a closer pops to its own opener, a stray one is ignored
      if (c === "(" || c === "[" || c === "{") open.push(c);
      else if (c === ")" || c === "]" || c === "}") {
        const at = open.lastIndexOf(c === ")" ? "(" : c === "]" ? "[" : "{");
        if (at >= 0) {
          if (at < open.length - 1) unpaired = true;
          open.length = at;
        }
      }
      depth = open.length;
      docPending = false;
      i++;
    }
  }
  // an opener that is never closed makes the parser drop every later error (grammar/index.ts,
  // `consequential`), wherever it is: then the file is one chunk
  if (unpaired || open.length) return [{ start: 0, end: text.length, lookahead: text.length, parseTo: text.length }];
  // a cut is clean only where an item keyword follows (a doc comment may be followed by anything)
  const clean = starts.filter((s, k) => k === 0 || ITEM_START.test(text.slice(firstTokenStart(text, s), firstTokenStart(text, s) + 8)));
  return clean.map((s, k) => {
    const end = clean[k + 1] ?? text.length;
    if (end === text.length) return { start: s, end, lookahead: end, parseTo: end };
    const lookahead = firstTokenEnd(text, end);
    return { start: s, end, lookahead, parseTo: firstTokenEnd(text, lookahead) };
  });
}

/** The start of the first token at or after `from`, skipping whitespace and comments. */
function firstTokenStart(text: string, from: number): number {
  const re = /\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\//y;
  let k = from;
  for (;;) {
    re.lastIndex = k;
    const m = re.exec(text);
    if (!m || m[0].length === 0) return k;
    k += m[0].length;
  }
}

/** The end of the first token at or after `from`. */
function firstTokenEnd(text: string, from: number): number {
  const k = firstTokenStart(text, from);
  const word = /[A-Za-z_]\w*|\S/y;
  word.lastIndex = k;
  const m = word.exec(text);
  return m ? k + m[0].length : text.length;
}

interface Cached {
  /** where the chunk was when parsed or last shifted */
  start: number;
  line: number;
  items: Item[];
  diagnostics: Diagnostic[];
  /** the parse ended at the top level, where the next chunk begins */
  clean: boolean;
  /** every span object of its items and diagnostics, once each (what a move shifts) */
  spans: Span[];
}

/** Parses of one file's chunks, reused across versions of its text. */
export class IncrementalParser {
  private cache = new Map<string, Cached>();
  /** how many chunks the last parse re-parsed, and how many it had */
  stats = { parsed: 0, chunks: 0 };

  private last?: { text: string; parsed: Parsed };

  constructor(readonly file: string) {}

  parse(text: string): Parsed {
    // an import that did not change (the common case: only the edited file did)
    if (this.last?.text === text) {
      this.stats = { parsed: 0, chunks: this.stats.chunks };
      return this.last.parsed;
    }
    const parsed = this.parseText(text);
    this.last = { text, parsed };
    return parsed;
  }

  private parseText(text: string): Parsed {
    const chunks = chunksOf(text);
    const lineAt = lineCounter(text);
    const next = new Map<string, Cached>();
    const items: Item[] = [];
    const diagnostics: Diagnostic[] = [];
    let parsed = 0;
    this.stats = { parsed: 0, chunks: chunks.length };
    let lastSyntax: Diagnostic | undefined;
    for (const c of chunks) {
      const key = `${text.slice(c.start, c.end)}\u0000${text.slice(c.end, c.parseTo)}`;
      const line = lineAt(c.start);
      let hit = this.cache.get(key);
      this.cache.delete(key);
      if (hit && next.has(key)) hit = undefined; // the same text twice in one file: parse the second
      if (hit) moveTo(hit, c.start, line);
      if (!hit) {
        hit = this.parseChunk(text, c, line);
        parsed++;
        // a part the parser had to invent is placed after the last real token before it, which
        // can be in an earlier chunk; an item cut short may swallow the next (`= block @ b`
        // before `fn g`): then only the whole file gives the same tree
        if (!hit.clean || reachesBack(hit, c.start)) return this.whole(text);
      }
      // diagnostics may name positions in their text: a chunk with any is never reused
      if (!hit.diagnostics.length) next.set(key, hit);
      items.push(...hit.items);
      // the parser's cascade rules (grammar/index.ts, `syntaxErrors`: after a syntax error none
      // more on its line; one report for a run of misplaced statements) would act across the cut
      // here; they cannot be replayed exactly (the builder's own errors are exempt): parse whole
      const first = hit.diagnostics.find((d) => SYNTAX.has(d.code));
      if (first && lastSyntax && cascades(lastSyntax, first, text.length)) return this.whole(text);
      for (const d of hit.diagnostics) {
        diagnostics.push(d);
        if (SYNTAX.has(d.code)) lastSyntax = d;
      }
    }
    diagnostics.sort((x, y) => x.span.start - y.span.start);
    this.cache = next;
    this.stats = { parsed, chunks: chunks.length };
    const span: Span = { file: this.file, start: 0, end: text.length, line: 1, col: 1, ...endOf(text) };
    return { program: { kind: "program", file: this.file, items, span }, diagnostics };
  }

  private whole(text: string): Parsed {
    this.cache = new Map();
    const chunks = this.stats.chunks;
    this.stats = { parsed: chunks, chunks };
    return parse(text, this.file);
  }

  private parseChunk(text: string, c: Chunk, line: number): Cached {
    const alone = this.parseAt(text, c, line, false);
    return alone.clean && !alone.diagnostics.length ? alone : this.parseAt(text, c, line, true);
  }

  /** Parse a chunk alone (its spans then moved into place), or after the text before it blanked out. */
  private parseAt(text: string, c: Chunk, line: number, blanked: boolean): Cached {
    const base = blanked ? 0 : c.start;
    const r = parse((blanked ? text.slice(0, c.start).replace(/[^\n]/g, " ") : "") + text.slice(c.start, c.parseTo), this.file);
    // what the next chunk's first token starts is that chunk's; an error *at* that token (an item
    // cut short) is this chunk's, as in a whole-file parse
    const items = r.program.items.filter((it) => it.span.start < c.end - base);
    const diagnostics = c.lookahead === c.end ? r.diagnostics : r.diagnostics.filter((d) => d.span.start < c.lookahead - base);
    // the parser must be back at the top level at the next chunk's first token: an item starts
    // there, and none of this chunk's runs into it
    const next = firstTokenStart(text, c.end) - base;
    const clean = c.lookahead === c.end || (r.program.items.some((it) => it.span.start === next) && items.every((it) => it.span.end <= c.end - base));
    const out: Cached = { start: blanked ? c.start : 0, line: blanked ? line : 0, items, diagnostics, clean, spans: spansOf(items, diagnostics) };
    if (!blanked) moveTo(out, c.start, line);
    return out;
  }
}

function cascades(prev: Diagnostic, d: Diagnostic, end: number): boolean {
  if (d.span.line === prev.span.line && d.span.start < end) return true;
  const gist = (m: string) => m.replace(/^'\w+'/, "");
  return d.code === "W0003" && prev.code === "W0003" && gist(prev.message) === gist(d.message);
}

function endOf(text: string): { endLine: number; endCol: number } {
  let lines = 1;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines++;
  return { endLine: lines, endCol: text.length - text.lastIndexOf("\n") };
}

function lineCounter(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
}

/** Does any span of a freshly parsed chunk lie before the chunk? */
function reachesBack(c: Cached, start: number): boolean {
  return c.spans.some((s) => s.start < start);
}

function isSpan(v: object): v is Span {
  return "start" in v && "end" in v && "line" in v && "col" in v && "endLine" in v && "file" in v;
}

/** Every span object under the items and diagnostics (shared ones once). */
function spansOf(items: Item[], diagnostics: Diagnostic[]): Span[] {
  const seen = new Set<object>();
  const out: Span[] = [];
  const visit = (v: unknown): void => {
    if (typeof v !== "object" || v === null || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (isSpan(v)) {
      out.push(v);
      return;
    }
    for (const x of Object.values(v)) visit(x);
  };
  visit(items);
  visit(diagnostics);
  return out;
}

/** Move a chunk's spans to where it starts now. Columns do not change: chunks start lines. */
function moveTo(c: Cached, start: number, line: number): void {
  const dOffset = start - c.start;
  const dLine = line - c.line;
  if (dOffset === 0 && dLine === 0) return;
  for (const s of c.spans) {
    s.start += dOffset;
    s.end += dOffset;
    s.line += dLine;
    s.endLine += dLine;
  }
  c.start = start;
  c.line = line;
}
