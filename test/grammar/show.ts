// Compact, readable renderings of AST nodes for assertions: `(+ a (* b c))`.
import type { BlockStmt, Expr, IndexItem, Pattern, Program, Span, Stmt, TypeExpr } from "../../grammar/index.ts";

export function show(e: Expr | IndexItem): string {
  switch (e.kind) {
    case "number": return e.text;
    case "string": return JSON.stringify(e.value);
    case "bool": return String(e.value);
    case "none": return "None";
    case "ident": return e.name;
    case "binary": return `(${e.op} ${show(e.left)} ${show(e.right)})`;
    case "unary": return `(${e.op} ${show(e.operand)})`;
    case "call": return `(call ${[show(e.callee), ...e.args.map((a) => (a.name ? `${a.name.name}=` : "") + show(a.value))].join(" ")})`;
    case "member": return `(. ${show(e.object)} ${e.name.name})`;
    case "index": return `(idx ${[show(e.object), ...e.indices.map(show)].join(" ")})`;
    case "slice": return `(: ${[e.start, e.end, e.step].map((p) => (p ? show(p) : "_")).join(" ")})`;
    case "restDim": return "..";
    case "if": return `(if ${show(e.cond)} ${showBlock(e.then)}${e.else ? ` else ${e.else.kind === "if" ? show(e.else) : showBlock(e.else)}` : ""})`;
    case "list": return `[${e.items.map(show).join(" ")}]`;
    case "tuple": return `(tuple ${e.items.map(show).join(" ")})`;
    case "record": return `{${e.fields.map((f) => `${f.name.name}=${show(f.value)}`).join(" ")}}`;
    case "repeat": return `(repeat ${show(e.count)} ${show(e.body)})`;
    case "frozen": return `(frozen ${show(e.body)})`;
    case "from": return `(from ${show(e.body)} ${JSON.stringify(e.path.value)})`;
    case "paren": return `(paren ${show(e.expr)})`;
    case "blockExpr": return showBlock(e.block);
    case "error": return "<error>";
  }
}

export function showBlock(b: BlockStmt): string {
  return `{${b.stmts.map(showStmt).join("; ")}}`;
}

export function showStmt(s: Stmt): string {
  switch (s.kind) {
    case "let":
    case "var": return `${s.kind} ${showPattern(s.target)}${s.type ? `: ${showType(s.type)}` : ""} = ${show(s.value)}`;
    case "assign": return `${s.target.name} = ${show(s.value)}`;
    case "for": return `for ${s.variable.name} in ${show(s.start)}..${show(s.end)} ${showBlock(s.body)}`;
    case "return": return `return ${show(s.value)}`;
    case "exprStmt": return show(s.expr);
    case "errorStmt": return "<errorStmt>";
  }
}

export function showPattern(p: Pattern): string {
  return p.kind === "ident" ? p.name : `(${p.items.map(showPattern).join(", ")})`;
}

export function showType(t: TypeExpr): string {
  switch (t.kind) {
    case "tensorType": return t.dims ? `${t.dtype.name}[${t.dims.map((d) => (d.kind === "restDim" ? ".." : d.kind === "inferDim" ? "_" : show(d))).join(", ")}]` : t.dtype.name;
    case "namedType": return `${t.repeat ? "repeat " : ""}${t.qualifier ? t.qualifier.name + "." : ""}${t.name.name}`;
    case "tupleType": return `(${t.items.map(showType).join(", ")})`;
  }
}

function isSpan(v: unknown): v is Span {
  return typeof v === "object" && v !== null && "start" in v && "end" in v && "line" in v;
}

/** Every span in the tree (node spans, opSpan, argsSpan, pathSpan) with its path. */
export function spans(root: Program): { path: string; span: Span }[] {
  const out: { path: string; span: Span }[] = [];
  const walk = (v: unknown, path: string) => {
    if (isSpan(v)) out.push({ path, span: v });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(root, "program");
  return out;
}

/** Spans outside the source, reversed, or whose line/col disagree with their offsets. */
export function badSpans(program: Program, source: string): string[] {
  const at = (offset: number) => {
    const before = source.slice(0, offset).split("\n");
    return { line: before.length, col: before[before.length - 1].length + 1 };
  };
  return spans(program)
    .filter(({ span: s }) => {
      const a = at(s.start);
      const b = at(s.end);
      return !(0 <= s.start && s.start <= s.end && s.end <= source.length && a.line === s.line && a.col === s.col && b.line === s.endLine && b.col === s.endCol);
    })
    .map(({ path, span }) => `${path} ${JSON.stringify(span)}`);
}
