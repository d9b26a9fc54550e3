// Broken programs: which diagnostic, where, what it says, and what survives of the tree.
import { describe, expect, it } from "vitest";
import { parse, type BlockItem, type FnItem } from "../../grammar/index.ts";
import { badSpans, show, showStmt } from "./show.ts";

interface Case {
  name: string;
  source: string;
  /** code, "line:col" of the span start, fragments the message must contain */
  expect: [string, string, ...string[]];
  hint?: string;
}

const cases: Case[] = [
  { name: "missing ')' in a parameter list", source: "fn f(x: f32 {\n}", expect: ["W0001", "1:13", "expected ')' to close the parameter list", "found '{'"] },
  { name: "missing ':' after a parameter name", source: "fn f(x f32) -> f32 = x", expect: ["W0001", "1:8", "expected ')'", "found 'f32'"], hint: "write 'x: f32'" },
  { name: "missing ':' in a param declaration", source: "block B(D) {\n  param w f32[D]\n}", expect: ["W0001", "2:11", "expected ':' and a type", "found 'f32'"] },
  { name: "unclosed argument list before the next statement", source: "fn f() {\n  let a = g(x, 2\n  let b = 3\n}", expect: ["W0001", "3:3", "expected ')' to close the argument list", "found 'let'"] },
  { name: "'=' where '==' was meant in an if", source: "fn f() -> f32 {\n  if a = b { 1 } else { 2 }\n}", expect: ["W0001", "2:8", "expected '{' after the condition", "found '='"], hint: "'=='" },
  { name: "a statement at the top level", source: "let x = 3\nfn g() = 1", expect: ["W0003", "1:1", "'let' is not allowed at the top level"] },
  { name: "a statement in a block body", source: "block B {\n  let x = 1\n}", expect: ["W0003", "2:3", "'let' is not allowed in a block body"] },
  { name: "a param in a function body", source: "fn f() {\n  param w: f32\n}", expect: ["W0003", "2:3", "'param' is not allowed in a function body"] },
  { name: "an import path that is not a string", source: "import std", expect: ["W0001", "1:8", "expected a path string after 'import'", "found 'std'"], hint: 'import "std"' },
  { name: "two operators in a row", source: "fn f() = a +* b", expect: ["W0001", "1:13", "expected an expression", "found '*'"] },
  { name: "dims on a block type", source: "fn f(x: Foo[3]) = x", expect: ["W0001", "1:12", "expected a tensor dtype", "found 'Foo'"] },
  { name: "unterminated string", source: 'fn f() = "abc\nfn g() = 1', expect: ["W0002", "1:10", "unterminated string"] },
  { name: "unterminated block comment", source: "fn f() = 1 /* no end\nfn g() = 2", expect: ["W0002", "1:12", "unterminated block comment"] },
  { name: "an unexpected character", source: "fn f() = a $ b", expect: ["W0002", "1:12", "unexpected character '$'"] },
  { name: "'&' for '&&'", source: "fn f() = a & b", expect: ["W0002", "1:12", "unexpected '&'"], hint: "'&&'" },
  { name: "a stray ')' at the top level", source: ")\nfn g() = 1", expect: ["W0001", "1:1", "expected an item (import, dim, block, fn or train)", "found ')'"] },
  { name: "a keyword as a name", source: "fn f() {\n  let in = 3\n}", expect: ["W0001", "2:7", "expected a name", "found 'in'"], hint: "'in' is a keyword" },
  { name: "a missing ']' in dims", source: "fn f(x: f32[B, T) -> f32 = x", expect: ["W0001", "1:17", "expected ']' to close the dims", "found ')'"] },
  { name: "a missing ',' between arguments", source: "fn f() = g(a b)", expect: ["W0001", "1:14", "expected ')' to close the argument list", "found 'b'"], hint: "separate arguments with ','" },
  { name: "a missing '..' in a for range", source: "fn f() {\n  for i in 0 { }\n}", expect: ["W0001", "2:14", "expected '..' in the loop range", "found '{'"] },
  { name: "an unclosed block at the end of the file", source: "fn f() {\n  let a = 1\n", expect: ["W0001", "2:12", "expected a statement or '}'", "found the end of the file"], hint: "'{' at 1:8 is never closed" },
  { name: "two statements on one line", source: "fn f() {\n  return x + g  k1\n}", expect: ["W0001", "2:17", "expected a line break or ';' between statements", "found 'k1'"], hint: "operator missing" },
  { name: "two fields on one line", source: "train t { a = 1 b = 2 }", expect: ["W0001", "1:17", "expected a line break, ',' or ';' between fields", "found 'b'"] },
  { name: "a '(' on a new line in a train job", source: "train t {\n  loss = f(x)\n  (y)\n}", expect: ["W0001", "3:3", "found '('"], hint: "start of a line begins a new statement" },
  { name: "a missing expression", source: "block B {\n  ln =\n}", expect: ["W0001", "3:1", "expected an expression", "found '}'"] },
  { name: "single-quoted string", source: "import 'std/nn'", expect: ["W0002", "1:8", "double quotes"] },
];

describe("syntax diagnostics", () => {
  it.each(cases)("$name", ({ source, expect: [code, at, ...fragments], hint }) => {
    const { program, diagnostics } = parse(source, "broken.weft");
    expect(diagnostics.length, JSON.stringify(diagnostics, null, 1)).toBeGreaterThan(0);
    const d = diagnostics[0];
    expect(d.code).toBe(code);
    expect(d.severity).toBe("error");
    expect(`${d.span.line}:${d.span.col}`).toBe(at);
    expect(d.span.file).toBe("broken.weft");
    for (const f of fragments) expect(d.message).toContain(f);
    if (hint) expect(d.hint).toContain(hint);
    expect(badSpans(program, source)).toEqual([]);
  });

  it("a single slip costs a single diagnostic", () => {
    for (const { source } of cases) {
      const { diagnostics } = parse(source, "broken.weft");
      expect(diagnostics.length, `${source}\n${diagnostics.map((d) => d.message).join("\n")}`).toBeLessThanOrEqual(2);
    }
  });

  it("reports every independent error in a file, in source order", () => {
    const source = [
      "fn a(x: f32 y: f32) -> f32 = x", // missing ','
      "fn b() {",
      "  let p = (1 + 2",               // missing ')'
      "  let q = 3 *",                  // missing operand
      "}",
      "block C {",
      "  param w f32",                  // missing ':'
      "}",
      "train t { loss = }",             // missing value
      "fn d() = ok(1)",
    ].join("\n");
    const { program, diagnostics } = parse(source, "many.weft");
    expect(diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col}`)).toEqual(["W0001 1:13", "W0001 4:3", "W0001 5:1", "W0001 7:11", "W0001 9:18"]);
    expect(program.items.map((i) => i.kind)).toEqual(["fn", "fn", "block", "train", "fn"]);
  });

  it("keeps the good items around a broken one", () => {
    const { program, diagnostics } = parse("fn good1() = 1\nfn broken(x: f32 -> f32 = x +\nfn good2(x: f32) -> f32 = x * 2\n", "partial.weft");
    expect(diagnostics.length).toBeGreaterThan(0);
    const names = program.items.map((i) => (i.kind === "fn" ? i.name?.name : i.kind));
    expect(names).toEqual(["good1", "broken", "good2"]);
    const good2 = program.items[2] as FnItem;
    expect(good2.body && good2.body.kind !== "block" && show(good2.body)).toBe("(* x 2)");
  });

  it("marks unparseable parts with ErrorExpr / ErrorStmt and keeps the rest of the body", () => {
    const { program } = parse("fn f() {\n  let a = \n  let b = 2\n  ) \n  b\n}", "partial.weft");
    const f = program.items[0] as FnItem;
    expect(f.body?.kind === "block" && f.body.stmts.map(showStmt)).toEqual(["let a = <error>", "let b = 2", "b"]);
  });

  it("keeps a broken member's siblings and its partial header", () => {
    const { program } = parse("block B(D) {\n  param w: f32[D] = glorot\n  fn (x: f32[D] -> f32[D] = x @ w\n  ln = LayerNorm(D)\n}", "partial.weft");
    const b = program.items[0] as BlockItem;
    expect(b.members.map((m) => m.kind)).toEqual(["param", "fn", "instance"]);
    const fn = b.members[1] as FnItem;
    expect(fn.params.map((p) => p.name.name)).toEqual(["x"]);
  });

  it("an ErrorExpr stands where the missing operand would be", () => {
    const { program } = parse("fn f() = a +", "e.weft");
    const f = program.items[0] as FnItem;
    const body = f.body && f.body.kind !== "block" ? f.body : undefined;
    expect(body && show(body)).toBe("(+ a <error>)");
    expect(body?.kind === "binary" && body.right.span).toMatchObject({ start: 12, end: 12 });
  });

  it("an unclosed bracket at the end of the file points back at where it was opened", () => {
    const { diagnostics } = parse("block B {\n  fn (x) = g(x,\n", "open.weft");
    const last = diagnostics[diagnostics.length - 1];
    expect(last.message).toContain("found the end of the file");
    expect(last.related?.[0].span).toMatchObject({ line: 2, col: 13 });
  });

  it("never throws on absurd nesting; reports it instead", () => {
    const deep = `fn f() = ${"(".repeat(5000)}1${")".repeat(5000)}`;
    const { diagnostics } = parse(deep, "deep.weft");
    expect(diagnostics.map((d) => d.code)).toEqual(["W0004"]);
  });
});
