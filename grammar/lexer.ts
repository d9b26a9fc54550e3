// Tokens of Weft and the lexing pass. Line breaks are whitespace to the grammar; where
// one matters (see parser.ts) it is read from `lineStarts` / `firstOnLine`, computed here.
import { createToken, Lexer, type IToken, type TokenType } from "chevrotain";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: "a name" });

function keyword(word: string, extra: { categories?: TokenType[] } = {}): TokenType {
  const name = word[0].toUpperCase() + word.slice(1);
  return createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'`, ...extra });
}

export const Import = keyword("import");
export const As = keyword("as");
export const Dim = keyword("dim");
export const Block = keyword("block");
export const Param = keyword("param");
export const Fn = keyword("fn");
export const Let = keyword("let");
export const Var = keyword("var");
export const Return = keyword("return");
export const For = keyword("for");
export const In = keyword("in");
export const If = keyword("if");
export const Else = keyword("else");
export const Train = keyword("train");
export const Frozen = keyword("frozen");
export const Repeat = keyword("repeat");
export const True = keyword("true");
export const False = keyword("false");
export const None = keyword("None");
/** Contextual: an Identifier everywhere except right after an expression and before a string. */
export const From = keyword("from", { categories: [Identifier] });

export const NumberLit = createToken({ name: "NumberLit", pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/, label: "a number" });
export const StringLit = createToken({ name: "StringLit", pattern: /"(?:[^"\\\n]|\\.)*"/, label: "a string" });
/** Reported by `lex`, then parsed as a string so one missing quote costs one diagnostic. */
export const UnterminatedString = createToken({
  name: "UnterminatedString",
  pattern: /"(?:[^"\\\n]|\\.)*/,
  categories: [StringLit],
  label: "a string",
});

// Common slips from other languages. Each is reported by `lex` and then parsed as what
// was meant, so one slip costs one diagnostic and the tree stays whole.
const SingleQuoted = createToken({ name: "SingleQuoted", pattern: /'(?:[^'\\\n]|\\.)*'/, categories: [StringLit], label: "a string" });
const HashComment = createToken({ name: "HashComment", pattern: /#[^\n]*/, group: "slips" });

function punct(name: string, text: string, categories: TokenType[] = []): TokenType {
  return createToken({ name, pattern: text, label: `'${text}'`, categories });
}
// Every binary operator but `**` is a BinOp: the grammar reads `a op b op c` as one flat
// list and build.ts applies precedence, which keeps the parser's rule stack shallow.
export const BinOp = createToken({ name: "BinOp", pattern: Lexer.NA, label: "an operator" });
export const UnaryOp = createToken({ name: "UnaryOp", pattern: Lexer.NA, label: "'-' or '!'" });

export const Arrow = punct("Arrow", "->");
export const DotDot = punct("DotDot", "..");
export const Dot = punct("Dot", ".");
export const Comma = punct("Comma", ",");
export const Colon = punct("Colon", ":");
export const Semicolon = punct("Semicolon", ";");
export const LParen = punct("LParen", "(");
export const RParen = punct("RParen", ")");
export const LBracket = punct("LBracket", "[");
export const RBracket = punct("RBracket", "]");
export const LBrace = punct("LBrace", "{");
export const RBrace = punct("RBrace", "}");
export const Pow = punct("Pow", "**");
export const Star = punct("Star", "*", [BinOp]);
export const Slash = punct("Slash", "/", [BinOp]);
export const Percent = punct("Percent", "%", [BinOp]);
export const At = punct("At", "@", [BinOp]);
export const Plus = punct("Plus", "+", [BinOp]);
export const Minus = punct("Minus", "-", [BinOp, UnaryOp]);
export const EqEq = punct("EqEq", "==", [BinOp]);
export const NotEq = punct("NotEq", "!=", [BinOp]);
export const LtEq = punct("LtEq", "<=", [BinOp]);
export const GtEq = punct("GtEq", ">=", [BinOp]);
export const Lt = punct("Lt", "<", [BinOp]);
export const Gt = punct("Gt", ">", [BinOp]);
export const Equals = punct("Equals", "=");
export const Bang = punct("Bang", "!", [UnaryOp]);
export const AndAnd = punct("AndAnd", "&&", [BinOp]);
export const OrOr = punct("OrOr", "||", [BinOp]);
const SingleAnd = punct("SingleAnd", "&", [BinOp]);
const SingleOr = punct("SingleOr", "|", [BinOp]);

const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\f\v\uFEFF]+/, group: Lexer.SKIPPED });
/** `///` doc comments go to their own group; `attachDocs` in index.ts reads them. */
export const DocComment = createToken({ name: "DocComment", pattern: /\/\/\/[^\n]*/, group: "docs" });
const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
const BlockComment = createToken({ name: "BlockComment", pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED, line_breaks: true });
const UnterminatedComment = createToken({ name: "UnterminatedComment", pattern: /\/\*[\s\S]*/, group: "unterminated", line_breaks: true });

const keywords = [Import, As, Dim, Block, Param, Fn, Let, Var, Return, For, In, If, Else, Train, Frozen, Repeat, True, False, None, From];
// Longer keywords first, so `in` never wins over `import` (longer_alt only falls back to Identifier).
keywords.sort((a, b) => String(b.PATTERN).length - String(a.PATTERN).length);
/** Reserved words (`from` is contextual, so not among them). */
export const keywordNames = new Set(keywords.filter((k) => k !== From).map((k) => String(k.PATTERN).slice(1, -1)));

export const allTokens: TokenType[] = [
  WhiteSpace, DocComment, LineComment, BlockComment, UnterminatedComment,
  HashComment, NumberLit, StringLit, UnterminatedString, SingleQuoted,
  ...keywords, Identifier,
  Arrow, DotDot, Dot, Comma, Colon, Semicolon, LParen, RParen, LBracket, RBracket, LBrace, RBrace,
  Pow, Star, Slash, Percent, At, Plus, Minus, EqEq, NotEq, LtEq, GtEq, Lt, Gt, Equals, Bang, AndAnd, OrOr, SingleAnd, SingleOr,
  BinOp, UnaryOp,
];

export const dtypeNames = new Set(["f32", "f16", "bf16", "i32", "u32", "bool"]);

const lexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });

export interface LexProblem {
  start: number;
  end: number;
  message: string;
  hint?: string;
}

const slips = new Map<TokenType, { message: string; hint: string }>([
  [SingleAnd, { message: "unexpected '&'", hint: "logical and is written '&&'" }],
  [SingleOr, { message: "unexpected '|'", hint: "logical or is written '||'" }],
  [SingleQuoted, { message: "strings are written with double quotes", hint: "write \"...\" instead of '...'" }],
  [HashComment, { message: "unexpected '#'", hint: "comments start with '//'" }],
]);

export interface LexResult {
  tokens: IToken[];
  docs: IToken[];
  /**
   * Tokens that begin a line while the innermost open bracket is `{` (or none). A `(`, `[`
   * or `-` there starts a new statement instead of continuing the previous expression.
   */
  lineStarts: Set<IToken>;
  /** Tokens that are the first on their line, whatever the brackets (statement separation). */
  firstOnLine: Set<IToken>;
  /** Opening brackets with no closer, innermost last. */
  unclosed: IToken[];
  /** Each opening bracket → the index of its closer in `tokens` (`tokens.length` if none). */
  partner: Map<IToken, number>;
  problems: LexProblem[];
}

export function lex(source: string): LexResult {
  const r = lexer.tokenize(source);
  const problems: LexProblem[] = [];
  for (const e of r.errors) {
    const text = source.slice(e.offset, e.offset + e.length);
    const what = text.length === 1 ? `character ${describeChar(text)}` : `characters '${text.length > 20 ? text.slice(0, 20) + "…" : text}'`;
    problems.push({ start: e.offset, end: e.offset + e.length, message: `unexpected ${what}` });
  }
  for (const t of r.groups.unterminated ?? []) {
    problems.push({ start: t.startOffset, end: t.startOffset + 2, message: "unterminated block comment: '/*' has no matching '*/'" });
  }
  for (const t of [...r.tokens, ...(r.groups.slips ?? [])]) {
    const slip = slips.get(t.tokenType);
    if (slip) problems.push({ start: t.startOffset, end: t.startOffset + t.image.length, ...slip });
  }
  for (const t of r.tokens) {
    if (t.tokenType === UnterminatedString) {
      problems.push({ start: t.startOffset, end: t.startOffset + t.image.length, message: "unterminated string: missing closing '\"' before the end of the line" });
    }
    if (t.tokenType === StringLit || t.tokenType === UnterminatedString || t.tokenType === SingleQuoted) {
      for (const m of t.image.matchAll(/\\(.)/g)) {
        if (!'n"\\t'.includes(m[1])) {
          const at = t.startOffset + (m.index ?? 0);
          problems.push({ start: at, end: at + 2, message: `unknown escape '\\${m[1]}' in string (use \\n, \\t, \\" or \\\\)` });
        }
      }
    }
  }
  return { tokens: r.tokens, docs: r.groups.docs ?? [], ...scanLines(source, r.tokens), problems };
}

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (code < 32 || code > 126) return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return c === "'" ? `"'"` : `'${c}'`;
}

function scanLines(source: string, tokens: IToken[]): Pick<LexResult, "lineStarts" | "firstOnLine" | "unclosed" | "partner"> {
  const starts = new Set<IToken>();
  const firstOnLine = new Set<IToken>();
  const partner = new Map<IToken, number>();
  const open: IToken[] = [];
  let prevEnd = -1;
  tokens.forEach((t, i) => {
    const inBraces = open.length === 0 || open[open.length - 1].image === "{";
    if (prevEnd >= 0 && source.slice(prevEnd, t.startOffset).includes("\n")) {
      firstOnLine.add(t);
      if (inBraces) starts.add(t);
    }
    prevEnd = t.startOffset + t.image.length;
    const c = t.image;
    if (c === "(" || c === "[" || c === "{") {
      open.push(t);
      partner.set(t, tokens.length);
    }
    else if (c === ")" || c === "]" || c === "}") {
      // Pop to the matching opener if there is one; a stray closer leaves the stack alone.
      const want = c === ")" ? "(" : c === "]" ? "[" : "{";
      let at = open.length - 1;
      while (at >= 0 && open[at].image !== want) at--;
      if (at >= 0) {
        partner.set(open[at], i);
        open.length = at;
      }
    }
  });
  return { lineStarts: starts, firstOnLine, unclosed: open, partner };
}

/** Decode a string token: `\n`, `\t`, `\"`, `\\`; unknown escapes keep the character. */
export function stringValue(t: IToken): string {
  const body = t.tokenType === UnterminatedString ? t.image.slice(1) : t.image.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}
