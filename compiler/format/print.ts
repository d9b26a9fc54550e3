// AST → Doc for `weft fmt`. The printer walks the tree in source order and takes every
// token from a cursor over the file's tokens as it prints it, so each comment is printed
// with the token it is attached to (comments.ts) and a token the tree forgot is caught at
// once. Only separators are dropped: `;` everywhere and `,` between train or record fields.
//
// Layout rules (see format.ts for the style as a whole):
// - statements, members, fields and items end with a line break, so only their first
//   tokens start lines, and line breaks inside an expression are placed only where the
//   grammar reads on: inside `(` and `[`, after a binary operator, after a fn's `=`, and
//   inside `{ }`;
// - a comma list (`(...)`, `[...]`) fills lines: it breaks only before the item that
//   would cross the width, continuing 4 columns in;
// - a chain of binary operators of one precedence does the same, breaking after an operator.
import type * as A from "../../grammar/ast.ts";
import { type Doc, fill, group, hardline, ifBreak, indent, line, type Slot, slot, space, split } from "./doc.ts";
import type { Comment, Tok } from "./comments.ts";

export const WIDTH = 100;
/** continuation indent inside brackets and after a broken binary operator */
const CONT = 4;
/** body indent inside `{ }`, and of a fn's expression body put on the next line */
const BODY = 2;

/** The tree and the tokens disagree: a formatter bug, reported as such by `format`. */
export class PrintError extends Error {
  override name = "PrintError";
}

const precedenceOf: Record<string, number> = {
  "||": 0,
  "&&": 1,
  "==": 2, "!=": 2, "<": 2, "<=": 2, ">": 2, ">=": 2,
  "+": 3, "-": 3,
  "*": 4, "/": 4, "%": 4,
  "@": 5,
};

interface Leading {
  comments: Comment[];
  /** a blank line between the last comment and the token */
  blankAfter: boolean;
}

export class Cursor {
  private i = 0;
  private lastSlot: Slot | undefined;
  /** whether the printer placed a possible line break since the last token */
  private broke = true;

  constructor(private readonly toks: Tok[]) {}

  peek(): Tok {
    return this.toks[Math.min(this.i, this.toks.length - 1)];
  }

  atEnd(): boolean {
    return this.i >= this.toks.length - 1;
  }

  /** Prints the next token, which must read `image` (any token when undefined). */
  take(image?: string): Doc {
    const t = this.toks[this.i];
    if (!t || t.image === "" || (image !== undefined && t.image !== image)) {
      throw new PrintError(`expected '${image ?? "a token"}' at offset ${t?.start ?? -1}, found '${t?.image ?? "the end"}'`);
    }
    this.i++;
    const parts: Doc[] = [];
    // Nothing can break the line between the previous token and this one, so the previous
    // one's end-of-line comments end up after this one: attach them here. Own-line comments
    // left here (where no line may break) move to the end of the line too, and so do
    // inline ones after carried comments (comments never change order).
    const carried = !this.broke && this.lastSlot ? this.lastSlot.comments.splice(0) : [];
    const deferred = carried.length ? t.inline : [];
    if (!deferred.length) {
      // `f(a, /* b */ c)`, `(/* x */ a)`, `[a /* last */]`
      const prev = this.toks[this.i - 2];
      t.inline.forEach((c, k) => {
        if (k > 0 || (prev && prev.image !== "(" && prev.image !== "[")) parts.push(space);
        parts.push({ kind: "inlineComment", text: c.text });
      });
      if (t.inline.length && t.image !== ")" && t.image !== "]" && t.image !== ",") parts.push(space);
    }
    parts.push(t.image);
    const s = slot([...carried, ...[...deferred, ...t.own, ...t.trailing].map((c) => ({ text: c.text, line: c.line }))]);
    parts.push(s);
    this.lastSlot = s;
    this.broke = false;
    this.spill(s);
    return parts;
  }

  /**
   * A `//` comment ends its line, so end-of-line comments after the first `//` one cannot
   * stay on that line: they become own-line comments before the next token, printed where
   * that token's are (as they would be when the output is formatted again).
   */
  private spill(s: Slot): void {
    const first = s.comments.findIndex((c) => c.line);
    if (first < 0 || first === s.comments.length - 1) return;
    const extra = s.comments.splice(first + 1);
    const next = this.toks[this.i];
    const own: Comment[] = extra.map((c) => ({ text: c.text, line: c.line, start: -1, end: -1, nlBefore: true, nlAfter: true, blankBefore: false }));
    next.own = [...own, ...next.own];
  }

  /** The printer placed a line (or a possible line break) before the next token. */
  lineBreak(): void {
    this.broke = true;
  }

  /**
   * Takes the own-line comments before the next token, for the caller to print on lines of
   * their own (and its inline ones too when `inline`: before a `}` on a line of its own).
   */
  leading(inline = false): Leading {
    const t = this.peek();
    const comments = inline ? [...t.own, ...t.inline] : t.own;
    t.own = [];
    if (inline) t.inline = [];
    return { comments, blankAfter: comments.length > 0 && t.blankBefore };
  }

  /** Whether a blank line precedes the next token (or its first own-line comment). */
  blankBefore(): boolean {
    const t = this.peek();
    return t.own.length ? t.own[0].blankBefore : t.blankBefore;
  }

  hasTrailing(): boolean {
    return this.peek().trailing.length > 0;
  }

  /** Whether the last token printed is followed by a `//` comment (which ends its line). */
  lineCommentAfterLast(): boolean {
    return this.lastSlot?.comments.some((c) => c.line) ?? false;
  }

  /** Drops `;` (and `,` where `commas`) separators, moving their comments to their neighbours. */
  dropSeparators(commas: boolean): void {
    for (;;) {
      const t = this.toks[this.i];
      if (!t || !(t.image === ";" || (commas && t.image === ","))) return;
      this.i++;
      const next = this.toks[this.i];
      next.own = [...t.own, ...next.own];
      const after = [...t.inline, ...t.trailing].map((c) => ({ text: c.text, line: c.line }));
      if (after.length) {
        if (!this.lastSlot) throw new PrintError("a separator with nothing before it");
        this.lastSlot.comments.push(...after);
        this.spill(this.lastSlot);
      }
    }
  }

  /** The last token printed ends a statement, member, field or item: a line break follows it. */
  endUnit(): void {
    if (this.lastSlot) this.lastSlot.unitEnd = true;
  }
}

/** Own-line comments before a token: each on its own line, blank lines kept (at most one). */
function leadingLines(l: Leading): Doc {
  const parts: Doc[] = [];
  l.comments.forEach((c, k) => {
    if (k > 0 && c.blankBefore) parts.push(hardline);
    parts.push(c.text, c.nlAfter ? hardline : " ");
  });
  if (l.blankAfter) parts.push(hardline);
  return parts;
}

/** Comments before a closing bracket, on lines of their own (the closer's line break is the caller's). */
function closingLines(comments: Comment[]): Doc {
  return comments.map((c, k) => (k === 0 ? c.text : [c.blankBefore ? [hardline, hardline] : comments[k - 1].nlAfter ? hardline : " ", c.text]));
}

/** Operands that may sit tight against an operator in dim arithmetic (`2*D`, `T-1`, `S*S`). */
function tightOperand(e: A.Expr): boolean {
  switch (e.kind) {
    case "number":
    case "ident":
    case "member":
    case "call":
    case "paren":
      return true;
    case "binary":
      return tightOperand(e.left) && tightOperand(e.right);
    default:
      return false;
  }
}

export class Printer {
  /** inside dim arithmetic: a type's dims, slice bounds, loop bounds, a block's constructor arguments */
  private dimContext = 0;

  constructor(
    private readonly source: string,
    private readonly cur: Cursor,
    /** start offsets of every comment, ascending */
    private readonly commentStarts: number[],
  ) {}

  // ------------------------------------------------------------ helpers

  /** Prints dim arithmetic tight, as dims are written: `f32[B, 2*D]`, `x[:, 0:T-1]`, `Linear(D, 4*D)`. */
  private dims<T>(f: () => T): T {
    this.dimContext++;
    try {
      return f();
    } finally {
      this.dimContext--;
    }
  }

  private t(image?: string): Doc {
    return this.cur.take(image);
  }

  /** A line break (or a place where one may go) before the next token. */
  private br<D extends Doc>(d: D): D {
    this.cur.lineBreak();
    return d;
  }

  private hasComments(from: number, to: number): boolean {
    const cs = this.commentStarts;
    let lo = 0;
    let hi = cs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cs[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < cs.length && cs[lo] < to;
  }

  private multiline(from: number, to: number): boolean {
    return this.source.slice(from, to).includes("\n");
  }

  /**
   * `open item, item, ... close`, filling lines; an item after own-line comments starts a line.
   * Continuation lines go `layout.indent` columns in (CONT by default). With `layout.split`,
   * a list that breaks starts a line at that item when what comes before it fits on the
   * first line (a fn's defaulted parameters).
   */
  private commaList<T>(open: string, items: T[], each: (x: T) => Doc, close: string, layout: { indent?: number; split?: number } = {}): Doc {
    const breakFirst = this.cur.hasTrailing();
    const o = this.t(open);
    const parts: Doc[] = [];
    let splitAt = -1;
    items.forEach((item, k) => {
      const lead = this.cur.leading();
      const own = lead.comments.length > 0;
      const content: Doc[] = [];
      if (k > 0) {
        if (k === layout.split && !own) splitAt = parts.length;
        parts.push(this.br(own ? hardline : line));
      } else if (own || breakFirst) content.push(this.br(hardline));
      content.push(leadingLines(lead), each(item));
      if (k < items.length - 1) content.push(this.t(","));
      parts.push(content);
    });
    // Comments after the last item keep the closer off their line: `b // why` / `)`.
    const tail = this.cur.leading();
    const list: Doc = splitAt < 0 ? fill(parts) : split(parts.slice(0, splitAt), parts[splitAt], parts.slice(splitAt + 1));
    const inner: Doc[] = [list];
    const n = layout.indent ?? CONT;
    if (tail.comments.length) inner.push(this.br(hardline), closingLines(tail.comments));
    if (tail.comments.length || (items.length > 0 && this.cur.lineCommentAfterLast())) {
      return [o, indent(n, inner), this.br(hardline), this.t(close)];
    }
    return [o, indent(n, inner), this.t(close)];
  }

  /**
   * `{` items, one per line `}`: block bodies, train jobs, expanded records. Blank lines
   * between items are kept (at most one); comments before the `}` stay inside.
   */
  private lines<T>(items: T[], each: (x: T) => Doc, commas: boolean): Doc {
    const open = this.t("{");
    const inner: Doc[] = [];
    this.cur.dropSeparators(commas);
    items.forEach((item, k) => {
      const blank = k > 0 && this.cur.blankBefore();
      inner.push(this.br(hardline));
      if (blank) inner.push(hardline);
      inner.push(leadingLines(this.cur.leading()), each(item));
      this.cur.endUnit();
      this.cur.dropSeparators(commas);
    });
    const tail = this.cur.leading(true);
    if (tail.comments.length) {
      inner.push(hardline);
      if (items.length > 0 && tail.comments[0].blankBefore) inner.push(hardline);
      inner.push(closingLines(tail.comments));
    }
    if (!inner.length) return [open, this.t("}")];
    const br = this.br(hardline);
    return [open, indent(BODY, inner), br, this.t("}")];
  }

  /**
   * ` = value`. A comment after the `=`, or on lines before the value, puts the value on the
   * next line, 4 columns in. A fn's expression body (`fnBody`) goes there, 2 columns in,
   * whenever it does not fit on the `=` line, unless it `hugs` the `=`.
   */
  private assign(value: () => Doc, fnBody: "next line" | "hug" | undefined = undefined): Doc {
    const commentAfter = this.cur.hasTrailing();
    const eq = this.t("=");
    const lead = this.cur.leading();
    const forced = commentAfter || lead.comments.length > 0;
    const n = fnBody ? BODY : CONT;
    if (fnBody === "next line") return group([" ", eq, indent(n, [this.br(forced ? hardline : line), leadingLines(lead), value()])]);
    if (forced) return [" ", eq, indent(n, [this.br(hardline), leadingLines(lead), value()])];
    return [" ", eq, " ", value()];
  }

  // ------------------------------------------------------------ items

  item(it: A.Item): Doc {
    switch (it.kind) {
      case "import": {
        const parts: Doc[] = [this.t("import"), " ", this.t()];
        if (it.alias) parts.push(" ", this.t("as"), " ", this.t(it.alias.name));
        return parts;
      }
      case "dim": {
        const breakFirst = this.cur.hasTrailing();
        const dim = this.t("dim");
        return [dim, " ", this.fillDecls(it.decls, breakFirst)];
      }
      case "block": {
        const parts: Doc[] = [this.t("block"), " ", this.t(it.name.name)];
        if (this.cur.peek().image === "(") parts.push(this.commaList("(", it.dims, (d) => this.t(d.name), ")"));
        parts.push(" ", this.lines(it.members, (m) => this.member(m), false));
        return parts;
      }
      case "fn":
        return this.fn(it);
      case "train":
        return [this.t("train"), " ", this.t(it.name.name), " ", this.lines(it.fields, (f) => this.field(f), true)];
    }
  }

  /** `dim B, T = 64, D`: a fill after `dim `, like a comma list without brackets. */
  private fillDecls(decls: A.DimDecl[], breakFirst: boolean): Doc {
    const parts: Doc[] = [];
    decls.forEach((d, k) => {
      const lead = this.cur.leading();
      const own = lead.comments.length > 0;
      const content: Doc[] = [];
      if (k > 0) parts.push(this.br(own ? hardline : line));
      else if (own || breakFirst) content.push(this.br(hardline));
      content.push(leadingLines(lead), this.t(d.name.name));
      if (d.default) {
        const def = d.default;
        content.push(this.assign(() => this.expr(def)));
      }
      if (k < decls.length - 1) content.push(this.t(","));
      parts.push(content);
    });
    return indent(CONT, fill(parts));
  }

  private member(m: A.BlockMember): Doc {
    switch (m.kind) {
      case "param": {
        const parts: Doc[] = [this.t("param"), " ", this.t(m.name.name), this.t(":"), " ", this.type(m.type)];
        if (m.init) {
          const init = m.init;
          parts.push(this.assign(() => this.expr(init)));
        }
        return parts;
      }
      case "instance":
        return [this.t(m.name.name), this.assign(() => this.instance(m.value))];
      case "fn":
        return this.fn(m);
    }
  }

  /** A block member's value: a constructor call's arguments are dims (`Linear(2*D, 1)`). */
  private instance(e: A.Expr): Doc {
    switch (e.kind) {
      case "call": {
        const callee = this.expr(e.callee);
        return [callee, this.dims(() => this.commaList("(", e.args, (a) => this.arg(a), ")"))];
      }
      case "repeat":
        return [this.t("repeat"), this.t("("), this.dims(() => this.expr(e.count)), this.t(")"), " ", this.instance(e.body)];
      case "frozen":
        return [this.t("frozen"), " ", this.instance(e.body)];
      case "from": {
        const body = this.instance(e.body);
        return [body, " ", this.t("from"), " ", this.t()];
      }
      case "paren":
        return [this.t("("), this.instance(e.expr), this.t(")")];
      default:
        return this.expr(e);
    }
  }

  private fn(f: A.FnItem): Doc {
    const parts: Doc[] = [this.t("fn"), " "];
    if (f.name) parts.push(this.t(f.name.name));
    // a broken parameter list continues under its first parameter (`fn` starts its line), and
    // the defaulted parameters, the fn's options, go together on a line of their own
    const align = `fn ${f.name?.name ?? ""}(`.length;
    const split = f.params.findIndex((p) => p.default);
    parts.push(this.commaList("(", f.params, (p) => this.param(p), ")", { indent: align, split: split > 0 ? split : undefined }));
    if (f.ret) parts.push(" ", this.t("->"), " ", this.type(f.ret));
    const body = f.body;
    if (body?.kind === "block") parts.push(" ", group(this.block(body)));
    else if (body) parts.push(this.assign(() => this.expr(body), this.hugs(body) ? "hug" : "next line"));
    return parts;
  }

  /**
   * A fn body that will be laid out over lines anyway (a block, an `if` written over lines)
   * starts on the `=` line: `fn f() -> T = if c {` rather than `=` / `  if c {`.
   */
  private hugs(e: A.Expr): boolean {
    const expanded = (b: A.BlockStmt) => b.stmts.length > 1 || this.multiline(b.span.start, b.span.end) || this.hasComments(b.span.start, b.span.end);
    if (e.kind === "blockExpr") return expanded(e.block);
    if (e.kind !== "if") return false;
    for (let x: A.IfExpr | A.BlockStmt | undefined = e; x; x = x.kind === "if" ? x.else : undefined) {
      if (expanded(x.kind === "if" ? x.then : x)) return true;
    }
    return false;
  }

  private param(p: A.Param): Doc {
    const parts: Doc[] = [this.t(p.name.name)];
    if (p.type) parts.push(this.t(":"), " ", this.type(p.type));
    if (p.default) {
      const def = p.default;
      parts.push(this.assign(() => this.expr(def)));
    }
    return parts;
  }

  private field(f: A.Field): Doc {
    return [this.t(f.name.name), this.assign(() => this.expr(f.value))];
  }

  // ------------------------------------------------------------ types

  private type(t: A.TypeExpr): Doc {
    switch (t.kind) {
      case "tensorType": {
        const dtype = this.t(t.dtype.name);
        return t.dims ? [dtype, this.commaList("[", t.dims, (d) => this.dim(d), "]")] : dtype;
      }
      case "namedType": {
        const parts: Doc[] = [];
        if (t.repeat) parts.push(this.t("repeat"), " ");
        if (t.qualifier) parts.push(this.t(t.qualifier.name), this.t("."));
        parts.push(this.t(t.name.name));
        return parts;
      }
      case "tupleType":
        return this.commaList("(", t.items, (x) => this.type(x), ")");
    }
  }

  private dim(d: A.DimExpr): Doc {
    if (d.kind === "restDim") return this.t("..");
    if (d.kind === "inferDim") return this.t("_");
    return this.dims(() => this.expr(d));
  }

  // ------------------------------------------------------------ statements

  /**
   * A `{ }` body. One statement (or none) with no line break and no comment inside stays
   * `{ stmt }` while it fits (the caller's group decides); anything else is one statement
   * per line.
   */
  private block(b: A.BlockStmt): Doc {
    const inline = b.stmts.length <= 1 && !this.multiline(b.span.start, b.span.end) && !this.hasComments(b.span.start, b.span.end);
    if (!inline) return this.lines(b.stmts, (s) => this.stmt(s), false);
    const open = this.t("{");
    this.cur.dropSeparators(false);
    if (!b.stmts.length) return [open, this.t("}")];
    const first = this.br(line);
    const body = this.stmt(b.stmts[0]);
    this.cur.dropSeparators(false);
    const last = this.br(line);
    return [open, indent(BODY, [first, body]), last, this.t("}")];
  }

  private stmt(s: A.Stmt): Doc {
    switch (s.kind) {
      case "let":
      case "var": {
        const parts: Doc[] = [this.t(s.kind), " ", this.pattern(s.target)];
        if (s.type) parts.push(this.t(":"), " ", this.type(s.type));
        parts.push(this.assign(() => this.expr(s.value)));
        return parts;
      }
      case "assign":
        return [this.t(s.target.name), this.assign(() => this.expr(s.value))];
      case "for":
        return [
          this.t("for"), " ", this.t(s.variable.name), " ", this.t("in"), " ",
          this.dims(() => [this.expr(s.start), this.t(".."), this.expr(s.end)]), " ", group(this.block(s.body)),
        ];
      case "return":
        return [this.t("return"), " ", this.expr(s.value)];
      case "exprStmt":
        return this.expr(s.expr);
      case "errorStmt":
        throw new PrintError("a statement the parser could not read");
    }
  }

  private pattern(p: A.Pattern): Doc {
    if (p.kind === "ident") return this.t(p.name);
    return this.commaList("(", p.items, (x) => this.pattern(x), ")");
  }

  // ------------------------------------------------------------ expressions

  expr(e: A.Expr): Doc {
    switch (e.kind) {
      case "number":
        return this.t(e.text);
      case "string":
        return this.t();
      case "bool":
        return this.t(e.value ? "true" : "false");
      case "none":
        return this.t("None");
      case "ident":
        return this.t(e.name);
      case "binary":
        if (this.dimContext > 0 && tightOperand(e)) return [this.expr(e.left), this.t(e.op), this.expr(e.right)];
        return e.op === "**" ? [this.expr(e.left), " ", this.t("**"), " ", this.expr(e.right)] : this.chain(e);
      case "unary": {
        // `- -x`, not `--x`
        const op = this.t(e.op);
        return [op, e.operand.kind === "unary" && e.operand.op === "-" ? " " : "", this.expr(e.operand)];
      }
      case "call": {
        const callee = this.expr(e.callee);
        return [callee, this.commaList("(", e.args, (a) => this.arg(a), ")")];
      }
      case "member": {
        const object = this.expr(e.object);
        return [object, this.t("."), this.t(e.name.name)];
      }
      case "index": {
        const object = this.expr(e.object);
        return [object, this.commaList("[", e.indices, (i) => this.indexItem(i), "]")];
      }
      case "if":
        return group(this.ifChain(e));
      case "list":
        return this.commaList("[", e.items, (x) => this.expr(x), "]");
      case "tuple":
        return this.commaList("(", e.items, (x) => this.expr(x), ")");
      case "record":
        return this.record(e);
      case "repeat":
        return [this.t("repeat"), this.t("("), this.expr(e.count), this.t(")"), " ", this.expr(e.body)];
      case "frozen":
        return [this.t("frozen"), " ", this.expr(e.body)];
      case "from": {
        const body = this.expr(e.body);
        return [body, " ", this.t("from"), " ", this.t()];
      }
      case "paren":
        return [this.t("("), this.expr(e.expr), this.t(")")];
      case "blockExpr":
        return group(this.block(e.block));
      case "error":
        throw new PrintError("an expression the parser could not read");
    }
  }

  /** `a + b - c`: one precedence level, left-associative, broken after an operator. */
  private chain(e: A.BinaryExpr): Doc {
    const prec = precedenceOf[e.op];
    const operands: A.Expr[] = [];
    const ops: string[] = [];
    let x: A.Expr = e;
    while (x.kind === "binary" && x.op !== "**" && precedenceOf[x.op] === prec) {
      operands.push(x.right);
      ops.push(x.op);
      x = x.left;
    }
    operands.push(x);
    operands.reverse();
    ops.reverse();
    const parts: Doc[] = [];
    operands.forEach((operand, k) => {
      const lead = k > 0 ? this.cur.leading() : { comments: [], blankAfter: false };
      if (k > 0) parts.push(this.br(lead.comments.length ? hardline : line));
      const content: Doc[] = [leadingLines(lead), this.expr(operand)];
      if (k < operands.length - 1) {
        content.push(" ", this.t(ops[k]));
      }
      parts.push(content);
    });
    return indent(CONT, fill(parts));
  }

  private arg(a: A.Arg): Doc {
    if (!a.name) return this.expr(a.value);
    return [this.t(a.name.name), this.assign(() => this.expr(a.value))];
  }

  private indexItem(i: A.IndexItem): Doc {
    if (i.kind === "restDim") return this.t("..");
    if (i.kind !== "slice") return this.expr(i);
    return this.dims(() => {
      const parts: Doc[] = [];
      if (i.start) parts.push(this.expr(i.start));
      parts.push(this.t(":"));
      if (i.end) parts.push(this.expr(i.end));
      const next = this.cur.peek();
      if (next.image === ":" && next.start < i.span.end) {
        parts.push(this.t(":"));
        if (i.step) parts.push(this.expr(i.step));
      }
      return parts;
    });
  }

  /** `if c { a } else if d { b } else { c }`: one group, so every branch breaks or none. */
  private ifChain(e: A.IfExpr): Doc {
    const parts: Doc[] = [this.t("if"), " ", this.expr(e.cond), " ", this.block(e.then)];
    if (e.else) {
      const alt = e.else;
      parts.push(" ", this.t("else"), " ", alt.kind === "if" ? this.ifChain(alt) : this.block(alt));
    }
    return parts;
  }

  /**
   * `{ every = 100, data = jsonl("v.jsonl") }` while it fits and was written on one line
   * (no line break before its first field) with no comments; else one field per line.
   */
  private record(r: A.RecordExpr): Doc {
    const first = r.fields[0];
    const expanded = first !== undefined && (this.multiline(r.span.start, first.span.start) || this.hasComments(r.span.start, r.span.end));
    if (expanded || (!first && this.hasComments(r.span.start, r.span.end))) return this.lines(r.fields, (f) => this.field(f), true);
    const open = this.t("{");
    this.cur.dropSeparators(true);
    if (!first) return [open, this.t("}")];
    const inner: Doc[] = [];
    r.fields.forEach((f, k) => {
      if (k > 0) inner.push(ifBreak("", ","));
      inner.push(this.br(line), this.field(f));
      this.cur.dropSeparators(true);
    });
    const last = this.br(line);
    return group([open, indent(BODY, inner), last, this.t("}")]);
  }
}
