// CST → AST. After error recovery any child of a CST node may be missing, so every
// accessor here tolerates absence: a missing expression becomes an ErrorExpr, a missing
// statement an ErrorStmt, a missing name an Ident with name "" and a zero-width span.
import type { CstElement, CstNode, IToken } from "chevrotain";
import type * as A from "./ast.ts";
import { error, type Diagnostic } from "../compiler/diagnostics.ts";
import { dtypeNames, stringValue } from "./lexer.ts";

function isToken(e: CstElement): e is IToken {
  return "image" in e;
}
function toks(n: CstNode | undefined, key: string): IToken[] {
  return (n?.children[key] ?? []).filter(isToken);
}
function tok(n: CstNode | undefined, key: string, i = 0): IToken | undefined {
  return toks(n, key)[i];
}
function subs(n: CstNode | undefined, key: string): CstNode[] {
  return (n?.children[key] ?? []).filter((e): e is CstNode => !isToken(e));
}
function sub(n: CstNode | undefined, key: string, i = 0): CstNode | undefined {
  return subs(n, key)[i];
}
/** The one sub-rule of a rule that is a choice (`item`, `member`, `stmt`, `suffix`). */
function choice(n: CstNode | undefined): CstNode | undefined {
  for (const key in n?.children ?? {}) {
    const found = sub(n, key);
    if (found) return found;
  }
  return undefined;
}

/** Loosest first, as in LANGUAGE.md; `**` binds tighter than unary minus and is parsed by powExpr. */
const precedenceOf: Record<string, number> = {
  "||": 0, "|": 0,
  "&&": 1, "&": 1,
  "==": 2, "!=": 2, "<": 2, "<=": 2, ">": 2, ">=": 2,
  "+": 3, "-": 3,
  "*": 4, "/": 4, "%": 4,
  "@": 5,
};
function precedence(op: string): number {
  return precedenceOf[op] ?? 0;
}
/** `&` and `|` were reported by the lexer and stand for `&&` and `||`. */
function binaryOp(image: string): A.BinaryOp {
  switch (image) {
    case "|": return "||";
    case "&": return "&&";
    case "||": case "&&": case "==": case "!=": case "<": case "<=": case ">": case ">=":
    case "+": case "-": case "*": case "/": case "%": case "@":
      return image;
    default: return "||";
  }
}

export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];
  private readonly lineOffsets: number[] = [0];
  /** End of the last real token turned into AST: where a missing part is placed. */
  private cursor = 0;

  constructor(
    readonly file: string,
    readonly source: string,
  ) {
    for (let i = 0; i < source.length; i++) if (source.charCodeAt(i) === 10) this.lineOffsets.push(i + 1);
  }

  // ------------------------------------------------------------ spans

  private position(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.lineOffsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineOffsets[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.lineOffsets[lo] + 1 };
  }

  span(start: number, end: number): A.Span {
    const s = this.position(start);
    const e = this.position(end);
    return { file: this.file, start, end, line: s.line, col: s.col, endLine: e.line, endCol: e.col };
  }

  /** undefined for tokens invented by recovery (they have no position). */
  tokenSpan(t: IToken | undefined): A.Span | undefined {
    if (!t || t.isInsertedInRecovery || Number.isNaN(t.startOffset)) return undefined;
    const end = t.startOffset + t.image.length;
    this.cursor = Math.max(this.cursor, end);
    return this.span(t.startOffset, end);
  }

  private here(): A.Span {
    return this.span(this.cursor, this.cursor);
  }

  private range(n: CstNode | undefined): [number, number] | undefined {
    const loc = n?.location;
    if (!loc || Number.isNaN(loc.startOffset) || loc.endOffset === undefined || Number.isNaN(loc.endOffset)) return undefined;
    return [loc.startOffset, loc.endOffset + 1];
  }

  private nodeSpan(n: CstNode | undefined): A.Span {
    const r = this.range(n);
    return r ? this.span(r[0], r[1]) : this.here();
  }

  /**
   * Where a missing child of `parent` goes. Recovery abandons a rule at its first error,
   * so what is missing is always at the end of what was parsed.
   */
  private missing(parent: CstNode | undefined): A.Span {
    const r = this.range(parent);
    return r ? this.span(r[1], r[1]) : this.here();
  }

  private join(a: A.Span, b: A.Span): A.Span {
    return this.span(Math.min(a.start, b.start), Math.max(a.end, b.end));
  }

  // ------------------------------------------------------------ leaves

  /** A name; `parent` places a missing one. */
  private ident(t: IToken | undefined, parent: CstNode | undefined): A.Ident {
    const span = this.tokenSpan(t);
    return span && t ? { kind: "ident", name: t.image, span } : { kind: "ident", name: "", span: this.missing(parent) };
  }

  private stringLit(t: IToken, parent: CstNode): A.StringLit {
    return { kind: "string", value: stringValue(t), span: this.tokenSpan(t) ?? this.missing(parent) };
  }

  // ------------------------------------------------------------ items

  program(n: CstNode): A.Program {
    const items: A.Item[] = [];
    for (const c of subs(n, "item")) {
      const it = this.item(choice(c));
      if (it) items.push(it);
    }
    return { kind: "program", file: this.file, items, span: this.span(0, this.source.length) };
  }

  private item(n: CstNode | undefined): A.Item | undefined {
    switch (n?.name) {
      case "importItem": return this.importItem(n);
      case "dimItem": return this.dimItem(n);
      case "blockItem": return this.blockItem(n);
      case "fnItem": return this.fnItem(n);
      case "trainItem": return this.trainItem(n);
      default: return undefined;
    }
  }

  private importItem(n: CstNode): A.ImportItem {
    const pathTok = tok(n, "StringLit");
    const path = pathTok ? this.stringLit(pathTok, n) : undefined;
    const node: A.ImportItem = { kind: "import", path: path?.value ?? "", pathSpan: path?.span ?? this.missing(n), span: this.nodeSpan(n) };
    if (tok(n, "As")) node.alias = this.ident(tok(n, "Identifier"), n);
    return node;
  }

  private dimItem(n: CstNode): A.DimItem {
    const decls = subs(n, "dimDecl").map((d): A.DimDecl => {
      const decl: A.DimDecl = { name: this.ident(tok(d, "Identifier"), d), span: this.nodeSpan(d) };
      if (tok(d, "Equals")) decl.default = this.expr(sub(d, "expr"), d);
      return decl;
    });
    return { kind: "dim", decls, span: this.nodeSpan(n) };
  }

  private blockItem(n: CstNode): A.BlockItem {
    const name = this.ident(tok(n, "Identifier"), n);
    const dimsNode = sub(n, "blockDims");
    const dims = toks(dimsNode, "Identifier").map((t) => this.ident(t, dimsNode));
    const members: A.BlockMember[] = [];
    for (const c of subs(n, "member")) {
      const m = choice(c);
      if (m?.name === "paramDecl") members.push(this.paramDecl(m));
      else if (m?.name === "fnItem") members.push(this.fnItem(m));
      else if (m?.name === "instanceDecl") members.push(this.instanceDecl(m));
    }
    return { kind: "block", name, dims, members, span: this.nodeSpan(n) };
  }

  private paramDecl(n: CstNode): A.ParamDecl {
    const name = this.ident(tok(n, "Identifier"), n);
    const node: A.ParamDecl = { kind: "param", name, type: this.typeExpr(sub(n, "typeExpr"), n), span: this.nodeSpan(n) };
    if (tok(n, "Equals")) node.init = this.expr(sub(n, "expr"), n);
    return node;
  }

  private instanceDecl(n: CstNode): A.InstanceDecl {
    const name = this.ident(tok(n, "Identifier"), n);
    return { kind: "instance", name, value: this.expr(sub(n, "expr"), n), span: this.nodeSpan(n) };
  }

  private fnItem(n: CstNode): A.FnItem {
    const node: A.FnItem = { kind: "fn", params: [], span: this.nodeSpan(n) };
    const nameTok = tok(n, "Identifier");
    if (nameTok) node.name = this.ident(nameTok, n);
    for (const p of subs(sub(n, "paramList"), "param")) {
      const param: A.Param = { name: this.ident(tok(p, "Identifier"), p), span: this.nodeSpan(p) };
      if (tok(p, "Colon")) param.type = this.typeExpr(sub(p, "typeExpr"), p);
      if (tok(p, "Equals")) param.default = this.expr(sub(p, "expr"), p);
      node.params.push(param);
    }
    if (tok(n, "Arrow")) node.ret = this.typeExpr(sub(n, "typeExpr"), n);
    const block = sub(n, "blockStmt");
    if (tok(n, "Equals")) node.body = this.expr(sub(n, "expr"), n);
    else if (block) node.body = this.blockStmt(block, n);
    return node;
  }

  private trainItem(n: CstNode): A.TrainItem {
    const name = this.ident(tok(n, "Identifier"), n);
    return { kind: "train", name, fields: this.fields(sub(n, "fields")), span: this.nodeSpan(n) };
  }

  private fields(n: CstNode | undefined): A.Field[] {
    return subs(n, "field").map((f) => {
      const name = this.ident(tok(f, "Identifier"), f);
      return { name, value: this.expr(sub(f, "expr"), f), span: this.nodeSpan(f) };
    });
  }

  // ------------------------------------------------------------ types

  /** A missing type becomes a named type with name "" (TypeExpr has no error variant). */
  private typeExpr(n: CstNode | undefined, parent: CstNode): A.TypeExpr {
    const c = choice(n);
    if (c?.name === "tupleType") {
      return { kind: "tupleType", items: subs(c, "typeExpr").map((t) => this.typeExpr(t, c)), span: this.nodeSpan(c) };
    }
    if (!c || !this.range(c)) return { kind: "namedType", name: this.ident(undefined, parent), repeat: false, span: this.missing(parent) };
    const span = this.nodeSpan(c);
    const repeatTok = tok(c, "Repeat");
    const first = this.ident(tok(c, "Identifier"), c);
    const second = tok(c, "Identifier", 1);
    const dimsNode = sub(c, "dims");
    if (!repeatTok && !second && dtypeNames.has(first.name)) {
      const node: A.TensorTypeExpr = { kind: "tensorType", dtype: first, span };
      if (dimsNode) node.dims = subs(dimsNode, "dim").map((d) => this.dim(d));
      return node;
    }
    const node: A.NamedTypeExpr = second
      ? { kind: "namedType", qualifier: first, name: this.ident(second, c), repeat: !!repeatTok, span }
      : { kind: "namedType", name: first, repeat: !!repeatTok, span };
    if (dimsNode) {
      const shown = second ? `${first.name}.${second.image}` : first.name;
      this.diagnostics.push(
        error("W0001", this.nodeSpan(dimsNode), `expected a tensor dtype (f32, f16, bf16, i32, u32 or bool) before '[', found '${shown}'`, {
          hint: `'${shown}' is a block type; only tensor types take dims`,
        }),
      );
    }
    return node;
  }

  private dim(n: CstNode): A.DimExpr {
    const rest = tok(n, "DotDot");
    const restSpan = this.tokenSpan(rest);
    if (restSpan) return { kind: "restDim", span: restSpan };
    const e = this.expr(sub(n, "expr"), n);
    return e.kind === "ident" && e.name === "_" ? { kind: "inferDim", span: e.span } : e;
  }

  // ------------------------------------------------------------ statements

  private blockStmt(n: CstNode | undefined, parent: CstNode): A.BlockStmt {
    if (!n || !this.range(n)) return { kind: "block", stmts: [], span: this.missing(parent) };
    return { kind: "block", stmts: subs(n, "stmt").map((s) => this.stmt(s)), span: this.nodeSpan(n) };
  }

  private stmt(wrapper: CstNode): A.Stmt {
    const n = choice(wrapper);
    switch (n?.name) {
      case "bindStmt": {
        const target = this.pattern(sub(n, "pattern"), n);
        const type = tok(n, "Colon") ? this.typeExpr(sub(n, "typeExpr"), n) : undefined;
        const value = this.expr(sub(n, "expr"), n);
        const kind = tok(n, "Var") ? "var" : "let";
        const span = this.nodeSpan(n);
        return type ? { kind, target, type, value, span } : { kind, target, value, span };
      }
      case "forStmt":
        return {
          kind: "for",
          variable: this.ident(tok(n, "Identifier"), n),
          start: this.expr(sub(n, "start"), n),
          end: this.expr(sub(n, "end"), n),
          body: this.blockStmt(sub(n, "blockStmt"), n),
          span: this.nodeSpan(n),
        };
      case "returnStmt":
        return { kind: "return", value: this.expr(sub(n, "expr"), n), span: this.nodeSpan(n) };
      case "assignStmt": {
        const target = this.ident(tok(n, "Identifier"), n);
        return { kind: "assign", target, value: this.expr(sub(n, "expr"), n), span: this.nodeSpan(n) };
      }
      case "exprStmt": {
        const expr = this.expr(sub(n, "expr"), n);
        return { kind: "exprStmt", expr, span: expr.span };
      }
      default:
        return { kind: "errorStmt", span: this.nodeSpan(wrapper) };
    }
  }

  private pattern(n: CstNode | undefined, parent: CstNode): A.Pattern {
    const t = sub(n, "tuplePattern");
    if (t) return { kind: "tuplePattern", items: subs(t, "pattern").map((p) => this.pattern(p, t)), span: this.nodeSpan(t) };
    return this.ident(tok(n, "Identifier"), parent);
  }

  // ------------------------------------------------------------ expressions

  /** `parent` places the ErrorExpr that stands for a missing or unparseable expression. */
  private expr(n: CstNode | undefined, parent: CstNode): A.Expr {
    if (!n || !this.range(n)) return { kind: "error", span: this.missing(parent) };
    const body = this.binary(sub(n, "binaryExpr"), n);
    const from = sub(n, "fromSuffix");
    const pathTok = tok(from, "StringLit");
    if (!from || !pathTok) return body;
    const path = this.stringLit(pathTok, from);
    return { kind: "from", body, path, span: this.join(body.span, path.span) };
  }

  /** Precedence climbing over the flat `operand (op operand)*` list; every level is left-associative. */
  private binary(n: CstNode | undefined, parent: CstNode): A.Expr {
    const operands = subs(n, "unaryExpr").map((u) => (this.range(u) ? this.unary(u) : undefined));
    const ops = toks(n, "BinOp");
    let next = 0;
    const operand = (): A.Expr => operands[next] ?? { kind: "error", span: this.missing(n ?? parent) };
    const climb = (minPrec: number): A.Expr => {
      let left = operand();
      while (next < ops.length && precedence(ops[next].image) >= minPrec) {
        const op = ops[next];
        const prec = precedence(op.image);
        next++;
        const right = climb(prec + 1);
        const opSpan = this.tokenSpan(op) ?? this.missing(n);
        left = { kind: "binary", op: binaryOp(op.image), left, right, opSpan, span: this.join(left.span, right.span) };
      }
      return left;
    };
    return climb(0);
  }

  private unary(n: CstNode): A.Expr {
    const op = tok(n, "UnaryOp");
    const opSpan = this.tokenSpan(op);
    if (op && opSpan) {
      const operandNode = sub(n, "unaryExpr");
      const operand: A.Expr = operandNode && this.range(operandNode) ? this.unary(operandNode) : { kind: "error", span: this.missing(n) };
      return { kind: "unary", op: op.image === "!" ? "!" : "-", operand, span: this.join(opSpan, operand.span) };
    }
    const pow = sub(n, "powExpr");
    const base = this.postfix(sub(pow, "postfixExpr"), n);
    const powSpan = this.tokenSpan(tok(pow, "Pow"));
    if (!pow || !powSpan) return base;
    const expNode = sub(pow, "unaryExpr");
    const right: A.Expr = expNode && this.range(expNode) ? this.unary(expNode) : { kind: "error", span: this.missing(pow) };
    return { kind: "binary", op: "**", left: base, right, opSpan: powSpan, span: this.join(base.span, right.span) };
  }

  private postfix(n: CstNode | undefined, parent: CstNode): A.Expr {
    let e = this.primary(sub(n, "primary"), n ?? parent);
    for (const s of subs(n, "suffix")) {
      const c = choice(s);
      if (c?.name === "callSuffix") {
        const args = subs(c, "arg").map((a): A.Arg => {
          const nameTok = tok(a, "name");
          const name = nameTok ? this.ident(nameTok, a) : undefined;
          const value = this.expr(sub(a, "expr"), a);
          return name ? { name, value, span: this.join(name.span, value.span) } : { value, span: value.span };
        });
        const argsSpan = this.nodeSpan(c);
        e = { kind: "call", callee: e, args, argsSpan, span: this.join(e.span, argsSpan) };
      } else if (c?.name === "memberSuffix") {
        const name = this.ident(tok(c, "Identifier"), c);
        e = { kind: "member", object: e, name, span: this.join(e.span, this.nodeSpan(c)) };
      } else if (c?.name === "indexSuffix") {
        const indices = subs(c, "indexItem").map((i) => this.indexItem(i));
        e = { kind: "index", object: e, indices, span: this.join(e.span, this.nodeSpan(c)) };
      }
    }
    return e;
  }

  private indexItem(n: CstNode): A.IndexItem {
    const restSpan = this.tokenSpan(tok(n, "DotDot"));
    if (restSpan) return { kind: "restDim", span: restSpan };
    const startNode = sub(n, "start");
    const start = startNode ? this.expr(startNode, n) : undefined;
    if (!tok(n, "Colon")) return start ?? { kind: "error", span: this.nodeSpan(n) };
    const rest = sub(n, "sliceRest");
    const slice: A.SliceItem = { kind: "slice", span: this.nodeSpan(n) };
    if (start) slice.start = start;
    const end = sub(rest, "end");
    const step = sub(rest, "step");
    if (end && rest) slice.end = this.expr(end, rest);
    if (step && rest) slice.step = this.expr(step, rest);
    return slice;
  }

  private primary(n: CstNode | undefined, parent: CstNode): A.Expr {
    const key = Object.keys(n?.children ?? {})[0];
    const t = key ? tok(n, key) : undefined;
    const span = this.tokenSpan(t);
    if (t && span) {
      switch (key) {
        case "NumberLit": return { kind: "number", value: Number(t.image), isInt: !/[.eE]/.test(t.image), text: t.image, span };
        case "StringLit": return { kind: "string", value: stringValue(t), span };
        case "True": return { kind: "bool", value: true, span };
        case "False": return { kind: "bool", value: false, span };
        case "None": return { kind: "none", span };
        case "Identifier": return { kind: "ident", name: t.image, span };
      }
    }
    const c = key ? sub(n, key) : undefined;
    if (!c || !this.range(c)) return { kind: "error", span: this.range(n) ? this.nodeSpan(n) : this.missing(parent) };
    switch (c.name) {
      case "parenExpr": {
        const items = subs(c, "expr").map((e) => this.expr(e, c));
        if (items.length === 1 && !tok(c, "Comma")) return { kind: "paren", expr: items[0], span: this.nodeSpan(c) };
        return { kind: "tuple", items, span: this.nodeSpan(c) };
      }
      case "listExpr":
        return { kind: "list", items: subs(c, "expr").map((e) => this.expr(e, c)), span: this.nodeSpan(c) };
      case "recordExpr":
        return { kind: "record", fields: this.fields(sub(c, "fields")), span: this.nodeSpan(c) };
      case "blockStmt": {
        const block = this.blockStmt(c, c);
        return { kind: "blockExpr", block, span: block.span };
      }
      case "ifExpr":
        return this.ifExpr(c);
      case "repeatExpr": {
        const count = this.expr(sub(c, "expr"), c);
        return { kind: "repeat", count, body: this.postfix(sub(c, "postfixExpr"), c), span: this.nodeSpan(c) };
      }
      case "frozenExpr":
        return { kind: "frozen", body: this.postfix(sub(c, "postfixExpr"), c), span: this.nodeSpan(c) };
    }
    return { kind: "error", span: this.nodeSpan(c) };
  }

  private ifExpr(n: CstNode): A.IfExpr {
    let cond = this.expr(sub(n, "expr"), n);
    const eq = tok(n, "badEquals");
    const eqSpan = this.tokenSpan(eq);
    if (eqSpan) {
      const right = this.expr(sub(n, "badRhs"), n);
      this.diagnostics.push(
        error("W0001", eqSpan, "expected '{' after the condition, found '='", { hint: "to compare two values write '==' ('=' binds a name)" }),
      );
      cond = { kind: "binary", op: "==", left: cond, right, opSpan: eqSpan, span: this.join(cond.span, right.span) };
    }
    const node: A.IfExpr = { kind: "if", cond, then: this.blockStmt(sub(n, "blockStmt"), n), span: this.nodeSpan(n) };
    if (tok(n, "Else")) {
      const elseIf = sub(n, "ifExpr");
      node.else = elseIf ? this.ifExpr(elseIf) : this.blockStmt(sub(n, "blockStmt", 1), n);
    }
    return node;
  }
}
