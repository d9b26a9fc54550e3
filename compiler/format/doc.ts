// A small Wadler/Prettier-style document printer for `weft fmt`.
//
// A Doc is text, a concatenation (array), or one of the nodes below. `render` lays it out
// within a line width: a `group` prints flat (its `line`s as spaces) when it fits on the
// rest of the line, else broken (its `line`s as newlines); a `fill` breaks only the
// separators it must, packing as many parts per line as fit. Comments at the end of a line
// are `slot`s: their text is deferred to the end of the line (a line suffix), and a `//`
// comment pending there forbids any further flat `line` on that line.

export type Doc = string | Doc[] | DocNode;

export type DocNode = Group | Indent | Line | Fill | Split | IfBreak | Slot | Space | InlineComment;

export interface Group {
  kind: "group";
  contents: Doc;
  /** forced broken: set by `propagate` when it contains a hard line or a `//` comment slot */
  broken: boolean;
}
export interface Indent {
  kind: "indent";
  n: number;
  contents: Doc;
}
export interface Line {
  kind: "line";
  /** a space when flat (soft: nothing) */
  soft: boolean;
  /** always a newline; breaks every enclosing group */
  hard: boolean;
}
/** `[content, separator, content, separator, ..., content]`, separators being lines */
export interface Fill {
  kind: "fill";
  parts: Doc[];
}
/**
 * A fill that prefers to break at one separator: flat when it all fits; else, when `head`
 * fits on the line, `head`, a new line, then `tail` filling; else one fill of everything.
 * (A fn's parameters, with its defaulted ones on a line of their own.)
 */
export interface Split {
  kind: "split";
  head: Doc[];
  sep: Doc;
  tail: Doc[];
  /** forced broken, as a group */
  broken: boolean;
}
export interface IfBreak {
  kind: "ifBreak";
  broken: Doc;
  flat: Doc;
}
/**
 * A block comment before a token on the same line. When end-of-line comments are pending
 * on the line already, it joins them, so that comments never change order.
 */
export interface InlineComment {
  kind: "inlineComment";
  text: string;
}
/** A space, unless the line is empty so far or already ends with one. */
export interface Space {
  kind: "space";
}
export interface SlotComment {
  text: string;
  /** a `//` comment: nothing may follow it on its line */
  line: boolean;
}
/**
 * End-of-line comments after a token. Mutable: comments of a dropped separator are added
 * after the token's doc was built, and `unitEnd` is set when the token turns out to end a
 * statement, member, field or item (which a newline follows anyway, so its comments need not
 * break the groups around the token).
 */
export interface Slot {
  kind: "slot";
  comments: SlotComment[];
  unitEnd: boolean;
}

export const line: Line = { kind: "line", soft: false, hard: false };
export const softline: Line = { kind: "line", soft: true, hard: false };
export const hardline: Line = { kind: "line", soft: false, hard: true };
export const space: Space = { kind: "space" };

export function group(contents: Doc): Group {
  return { kind: "group", contents, broken: false };
}
export function indent(n: number, contents: Doc): Indent {
  return { kind: "indent", n, contents };
}
export function fill(parts: Doc[]): Fill {
  return { kind: "fill", parts };
}
export function split(head: Doc[], sep: Doc, tail: Doc[]): Split {
  return { kind: "split", head, sep, tail, broken: false };
}
export function ifBreak(broken: Doc, flat: Doc): IfBreak {
  return { kind: "ifBreak", broken, flat };
}
export function slot(comments: SlotComment[]): Slot {
  return { kind: "slot", comments, unitEnd: false };
}

/**
 * Marks every group that contains (at any depth) a hard line, or a `//` comment that does
 * not end its statement (the line must break after it), as broken.
 */
export function propagate(doc: Doc): boolean {
  if (typeof doc === "string") return false;
  if (Array.isArray(doc)) {
    let any = false;
    for (const d of doc) if (propagate(d)) any = true;
    return any;
  }
  switch (doc.kind) {
    case "group":
      if (propagate(doc.contents)) doc.broken = true;
      return doc.broken;
    case "indent":
      return propagate(doc.contents);
    case "fill": {
      let any = false;
      for (const d of doc.parts) if (propagate(d)) any = true;
      return any;
    }
    case "split":
      if (propagate([...doc.head, doc.sep, ...doc.tail])) doc.broken = true;
      return doc.broken;
    case "ifBreak": {
      const a = propagate(doc.broken);
      const b = propagate(doc.flat);
      return a || b;
    }
    case "line":
      return doc.hard;
    case "space":
    case "inlineComment":
      return false;
    case "slot":
      return !doc.unitEnd && doc.comments.some((c) => c.line);
  }
}

type Mode = "flat" | "break";
interface Cmd {
  ind: number;
  mode: Mode;
  doc: Doc;
  /** for a fill: the index of its next part */
  from?: number;
}

/** Measures whether `next` fits in `width` columns: up to the first newline (in `rest` too). */
function fits(next: Cmd[], rest: Cmd[], width: number, pendingLineComment: boolean, mustBeFlat: boolean): boolean {
  let rem = width;
  let lineComment = pendingLineComment;
  let restIdx = rest.length;
  const stack: { mode: Mode; doc: Doc; own: boolean; from: number }[] = [];
  for (let i = next.length - 1; i >= 0; i--) stack.push({ mode: next[i].mode, doc: next[i].doc, own: true, from: next[i].from ?? 0 });
  while (rem >= 0) {
    let top = stack.pop();
    if (!top) {
      if (restIdx === 0) return true;
      const r = rest[--restIdx];
      top = { mode: r.mode, doc: r.doc, own: false, from: r.from ?? 0 };
    }
    const { mode, doc, own } = top;
    if (typeof doc === "string") {
      const nl = doc.indexOf("\n");
      if (nl >= 0) return rem - nl >= 0;
      rem -= doc.length;
      continue;
    }
    if (Array.isArray(doc)) {
      for (let i = doc.length - 1; i >= 0; i--) stack.push({ mode, doc: doc[i], own, from: 0 });
      continue;
    }
    switch (doc.kind) {
      case "group": {
        if (mustBeFlat && own && doc.broken) return false;
        stack.push({ mode: doc.broken ? "break" : mode, doc: doc.contents, own, from: 0 });
        break;
      }
      case "indent":
        stack.push({ mode, doc: doc.contents, own, from: 0 });
        break;
      case "fill":
        for (let i = doc.parts.length - 1; i >= top.from; i--) stack.push({ mode, doc: doc.parts[i], own, from: 0 });
        break;
      case "split": {
        if (mustBeFlat && own && doc.broken) return false;
        stack.push({ mode: doc.broken ? "break" : mode, doc: fill([...doc.head, doc.sep, ...doc.tail]), own, from: 0 });
        break;
      }
      case "ifBreak":
        stack.push({ mode, doc: mode === "break" ? doc.broken : doc.flat, own, from: 0 });
        break;
      case "line":
        if (mode === "break" || doc.hard) return true;
        if (lineComment) return false;
        if (!doc.soft) rem -= 1;
        break;
      case "slot":
        if (doc.comments.some((c) => c.line)) lineComment = true;
        break;
      case "space":
        rem -= 1;
        break;
      case "inlineComment": {
        const nl = doc.text.indexOf("\n");
        if (nl >= 0) return rem - nl >= 0;
        rem -= doc.text.length;
        break;
      }
    }
  }
  return false;
}

/**
 * Lays `doc` out within `width` columns. Lines carry no trailing whitespace. With `mark`,
 * the space before the first end-of-line comment of a line is written as `mark`, for
 * `alignComments`.
 */
export function render(doc: Doc, width: number, mark?: string): string {
  propagate(doc);
  const out: string[] = [];
  let pos = 0;
  /** the indentation the current line started with */
  let lineIndent = 0;
  let pending: SlotComment[] = [];
  const trimTrailing = () => {
    while (out.length) {
      const last = out[out.length - 1];
      const trimmed = last.replace(/[ \t]+$/, "");
      if (trimmed === last) return;
      if (trimmed === "") out.pop();
      else {
        out[out.length - 1] = trimmed;
        return;
      }
    }
  };
  const write = (s: string) => {
    out.push(s);
    const nl = s.lastIndexOf("\n");
    pos = nl >= 0 ? s.length - nl - 1 : pos + s.length;
  };
  /**
   * Writes the pending end-of-line comments; a `//` one ends its line, so any after it go on
   * lines of their own (indented as the line they come from).
   */
  const flush = () => {
    pending.forEach((c, i) => {
      if (i > 0 && pending[i - 1].line) {
        trimTrailing();
        write("\n" + " ".repeat(lineIndent));
      } else if (out.length && !/\s$/.test(out[out.length - 1])) {
        write(i === 0 && mark !== undefined ? mark : " ");
      }
      write(c.text);
    });
    pending = [];
  };
  const stack: Cmd[] = [{ ind: 0, mode: "break", doc }];
  while (stack.length) {
    const cmd = stack.pop() as Cmd;
    const { ind, mode, doc: d } = cmd;
    if (typeof d === "string") {
      write(d);
      continue;
    }
    if (Array.isArray(d)) {
      for (let i = d.length - 1; i >= 0; i--) stack.push({ ind, mode, doc: d[i] });
      continue;
    }
    const lineComment = pending.some((c) => c.line);
    switch (d.kind) {
      case "group": {
        if (mode === "flat" && !d.broken) {
          stack.push({ ind, mode: "flat", doc: d.contents });
          break;
        }
        const flat: Cmd = { ind, mode: "flat", doc: d.contents };
        stack.push(!d.broken && fits([flat], stack, width - pos, lineComment, false) ? flat : { ind, mode: "break", doc: d.contents });
        break;
      }
      case "indent":
        stack.push({ ind: ind + d.n, mode, doc: d.contents });
        break;
      case "split": {
        const all = fill([...d.head, d.sep, ...d.tail]);
        const flat: Cmd = { ind, mode: "flat", doc: all };
        if (mode === "flat" && !d.broken) stack.push(flat);
        else if (!d.broken && fits([flat], stack, width - pos, lineComment, false)) stack.push(flat);
        else if (fits([{ ind, mode: "flat", doc: fill(d.head) }], [], width - pos, lineComment, true)) {
          stack.push({ ind, mode: "break", doc: [fill(d.head), d.sep, fill(d.tail)] });
        } else stack.push({ ind, mode: "break", doc: all });
        break;
      }
      case "ifBreak":
        stack.push({ ind, mode, doc: mode === "break" ? d.broken : d.flat });
        break;
      case "fill": {
        // Parts alternate content, separator, content... A content prints flat if it fits;
        // a separator is decided once the content before it is printed: flat when the next
        // content fits after it on the same line (the rest of the line too, for the last one).
        const from = cmd.from ?? 0;
        const parts = d.parts;
        if (from >= parts.length) break;
        const isLast = from + 1 >= parts.length;
        if (from % 2 === 0) {
          const content = parts[from];
          const flat: Cmd = { ind, mode: "flat", doc: content };
          const contentFits = fits([flat], isLast ? stack : [], width - pos, lineComment, true);
          if (!isLast) stack.push({ ind, mode, doc: d, from: from + 1 });
          stack.push(contentFits ? flat : { ind, mode: "break", doc: content });
        } else {
          const sep = parts[from];
          const nextIsLast = from + 2 >= parts.length;
          const pair: Cmd = { ind, mode: "flat", doc: [sep, parts[from + 1]] };
          const pairFits = fits([pair], nextIsLast ? stack : [], width - pos, lineComment, true);
          stack.push({ ind, mode, doc: d, from: from + 1 });
          stack.push({ ind, mode: pairFits ? "flat" : "break", doc: sep });
        }
        break;
      }
      case "line":
        if (mode === "flat" && !d.hard) {
          if (!d.soft) write(" ");
          break;
        }
        flush();
        trimTrailing();
        write("\n" + " ".repeat(ind));
        lineIndent = ind;
        break;
      case "slot":
        pending.push(...d.comments);
        break;
      case "space":
        if (out.length && !/\s$/.test(out[out.length - 1])) write(" ");
        break;
      case "inlineComment":
        if (pending.length) pending.push({ text: d.text, line: false });
        else write(d.text);
        break;
    }
  }
  flush();
  trimTrailing();
  return out.join("");
}

/**
 * Aligns end-of-line comments, as gofmt does: in each run of consecutive lines that end with
 * one (lines marked by `render` with `mark`), the comments start one column after the
 * longest code.
 */
export function alignComments(text: string, mark: string): string {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; ) {
    if (!lines[i].includes(mark)) {
      i++;
      continue;
    }
    let j = i;
    while (j < lines.length && lines[j].includes(mark)) j++;
    const column = Math.max(...lines.slice(i, j).map((l) => l.indexOf(mark))) + 1;
    for (let k = i; k < j; k++) {
      const at = lines[k].indexOf(mark);
      lines[k] = lines[k].slice(0, at) + " ".repeat(column - at) + lines[k].slice(at + mark.length);
    }
    i = j;
  }
  return lines.join("\n");
}
