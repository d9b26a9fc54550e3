// What the text around the cursor says when the tree cannot: a half-written line parses
// into error nodes, but a scan of the characters still tells whether the cursor is in a
// comment, a string, an argument list or a type annotation. One forward scan from the
// start of the file keeps strings and comments straight.

export interface OpenBracket {
  char: "(" | "[" | "{";
  /** offset of the bracket */
  at: number;
  /** offsets of the commas directly inside it, before the cursor */
  commas: number[];
}

export interface TextContext {
  where: "code" | "comment" | "string";
  /** for a string: where it starts (the quote) */
  stringStart?: number;
  /** brackets open at the cursor, outermost first */
  open: OpenBracket[];
}

const closers: Record<string, "(" | "[" | "{"> = { ")": "(", "]": "[", "}": "{" };

export function textContext(text: string, offset: number): TextContext {
  const open: OpenBracket[] = [];
  let i = 0;
  while (i < offset) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      const nl = text.indexOf("\n", i);
      if (nl < 0 || nl >= offset) return { where: "comment", open };
      i = nl + 1;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0 || end + 2 > offset) return { where: "comment", open };
      i = end + 2;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      if (j >= offset) return { where: "string", stringStart: i, open };
      i = j + 1;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") open.push({ char: c, at: i, commas: [] });
    else if (c in closers) {
      // drop back to the matching bracket; a stray closer is ignored
      const want = closers[c];
      const k = open.map((o) => o.char).lastIndexOf(want);
      if (k >= 0) open.length = k;
    } else if (c === "," && open.length) open[open.length - 1].commas.push(i);
    i++;
  }
  return { where: "code", open };
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** The word being typed at `offset` (possibly empty) and where it starts. */
export function wordBefore(text: string, offset: number): { word: string; start: number } {
  let s = offset;
  while (s > 0 && /[A-Za-z0-9_]/.test(text[s - 1])) s--;
  return { word: text.slice(s, offset), start: s };
}

/**
 * The name chain just before `end` (`m.layers[i].ff`), as names with index marks, or
 * undefined. Used for `x.` member completion and for the callee of `f(`.
 */
export function chainBefore(text: string, end: number): { parts: { name: string; indexed: number }[]; start: number } | undefined {
  const parts: { name: string; indexed: number }[] = [];
  let i = end;
  const skipSpace = () => {
    while (i > 0 && (text[i - 1] === " " || text[i - 1] === "\t")) i--;
  };
  for (;;) {
    skipSpace();
    let indexed = 0;
    // `[...]` suffixes: skip balanced brackets
    while (i > 0 && text[i - 1] === "]") {
      let depth = 0;
      let j = i - 1;
      for (; j >= 0; j--) {
        if (text[j] === "]") depth++;
        else if (text[j] === "[" && --depth === 0) break;
      }
      if (j < 0) return undefined;
      i = j;
      indexed++;
      skipSpace();
    }
    let s = i;
    while (s > 0 && /[A-Za-z0-9_]/.test(text[s - 1])) s--;
    if (s === i) return undefined;
    IDENT.lastIndex = s;
    const m = IDENT.exec(text);
    if (!m || m[0].length !== i - s) return undefined;
    parts.unshift({ name: m[0], indexed });
    i = s;
    skipSpace();
    if (i > 0 && text[i - 1] === "." && text[i - 2] !== ".") {
      i--;
      continue;
    }
    return { parts, start: i };
  }
}

/** The line's text before `offset`. */
export function linePrefix(text: string, offset: number): string {
  return text.slice(text.lastIndexOf("\n", offset - 1) + 1, offset);
}
