// The shape of the tree: precedence, postfix forms, types, statements, spans and docs.
import { describe, expect, it } from "vitest";
import { parse, type BlockItem, type Expr, type FnItem, type Program, type TrainItem } from "../../grammar/index.ts";
import { badSpans, show, showStmt, showType } from "./show.ts";

function clean(source: string): Program {
  const { program, diagnostics } = parse(source, "t.weft");
  expect(diagnostics).toEqual([]);
  return program;
}

/** The expression `source` as the body of `fn f() = ...`. */
function expr(source: string): Expr {
  const f = clean(`fn f() = ${source}`).items[0];
  if (f.kind !== "fn" || !f.body || f.body.kind === "block") throw new Error("no expression body");
  return f.body;
}

function fnBody(source: string): string[] {
  const f = clean(source).items[0];
  if (f.kind !== "fn" || f.body?.kind !== "block") throw new Error("no block body");
  return f.body.stmts.map(showStmt);
}

describe("operator precedence", () => {
  it.each([
    ["a + b * c", "(+ a (* b c))"],
    ["a * b + c", "(+ (* a b) c)"],
    ["a - b - c", "(- (- a b) c)"],
    ["a @ b + c", "(+ (@ a b) c)"],
    ["a * b @ c", "(* a (@ b c))"],
    ["-x ** 2", "(- (** x 2))"],
    ["2 ** -x", "(** 2 (- x))"],
    ["a ** b ** c", "(** a (** b c))"],
    ["-a @ b", "(@ (- a) b)"],
    ["!a && b || c", "(|| (&& (! a) b) c)"],
    ["a || b && c", "(|| a (&& b c))"],
    ["a + 1 > b * 2 == c", "(== (> (+ a 1) (* b 2)) c)"],
    ["a % b / c", "(/ (% a b) c)"],
    ["(a + b) * c", "(* (paren (+ a b)) c)"],
    ["- - x", "(- (- x))"],
  ])("%s", (source, expected) => {
    expect(show(expr(source))).toBe(expected);
  });
});

describe("postfix forms and primaries", () => {
  it.each([
    ["f(x, axis=T)", "(call f x axis=T)"],
    ["adamw(lr = 3e-4, weight_decay = 0.01)", "(call adamw lr=3e-4 weight_decay=0.01)"],
    ["stack.layers[3].ff.w1", "(. (. (idx (. stack layers) 3) ff) w1)"],
    ["layers[i](h)", "(call (idx layers i) h)"],
    ["x[:, None]", "(idx x (: _ _ _) None)"],
    ["x[:, 0:T-1]", "(idx x (: _ _ _) (: 0 (- T 1) _))"],
    ["x[::2]", "(idx x (: _ _ 2))"],
    ["x[1:]", "(idx x (: 1 _ _))"],
    ["x[:n:k]", "(idx x (: _ n k))"],
    ["x[.., 0]", "(idx x .. 0)"],
    ["x[0, .., 1:, None]", "(idx x 0 .. (: 1 _ _) None)"],
    ["repeat(L) Layer(D, F)", "(repeat L (call Layer D F))"],
    ["frozen Enc(D)", "(frozen (call Enc D))"],
    ['Lm(V, D) from "x"', '(from (call Lm V D) "x")'],
    ['frozen Lm(V, D) from "sft.safetensors"', '(from (frozen (call Lm V D)) "sft.safetensors")'],
    ["[a, b]", "[a b]"],
    ["[]", "[]"],
    ["(a, b)", "(tuple a b)"],
    ["{ every = 100, data = jsonl(\"v\") }", '{every=100 data=(call jsonl "v")}'],
    ["{}", "{}"],
    ["{ let a = 1; a * 2 }", "{let a = 1; (* a 2)}"],
    ["if a { 1 } else if b { 2 } else { 3 }", "(if a {1} else (if b {2} else {3}))"],
    ["if training { dropout(h, 0.1) } else { h }", "(if training {(call dropout h 0.1)} else {h})"],
    ["from(x)", "(call from x)"],
    ["true && false", "(&& true false)"],
  ])("%s", (source, expected) => {
    expect(show(expr(source))).toBe(expected);
  });

  it("numbers keep their text and know whether they are integers", () => {
    const lits = ["3", "0.5", "1e-4", "2.5E+3", "10"].map((t) => expr(t));
    expect(lits.map((l) => (l.kind === "number" ? [l.value, l.isInt, l.text] : l.kind))).toEqual([
      [3, true, "3"],
      [0.5, false, "0.5"],
      [1e-4, false, "1e-4"],
      [2500, false, "2.5E+3"],
      [10, true, "10"],
    ]);
  });

  it("strings decode \\\" \\\\ \\n and \\t", () => {
    const s = expr(String.raw`"a\"b\\c\nd\te"`);
    expect(s.kind === "string" && s.value).toBe('a"b\\c\nd\te');
  });

  it("`from` is an ordinary name unless a string follows it", () => {
    expect(fnBody("fn f() {\n let from = 1\n from + 2\n}")).toEqual(["let from = 1", "(+ from 2)"]);
    const train = clean('train t {\n from = 1\n to = M(D) from "ckpt"\n}').items[0] as TrainItem;
    expect(train.fields.map((f) => `${f.name.name}=${show(f.value)}`)).toEqual(["from=1", 'to=(from (call M D) "ckpt")']);
  });
});

describe("line breaks", () => {
  // At brace level, `(`, `[` and `-` starting a line begin a new statement (see parser.ts).
  it("a ( [ or - at the start of a line does not continue the previous expression", () => {
    expect(fnBody("fn f() {\n let a = b\n (c)\n let d = e\n [1]\n let g = h\n - k\n}")).toEqual([
      "let a = b",
      "(paren c)",
      "let d = e",
      "[1]",
      "let g = h",
      "(- k)",
    ]);
  });

  it("operators, '.' and 'from' continue the expression on the next line", () => {
    expect(fnBody('fn f() {\n let a = b +\n  c\n let d = e\n  .k\n let g = h\n  * 2\n let m = M(D)\n  from "p"\n}')).toEqual([
      "let a = (+ b c)",
      "let d = (. e k)",
      "let g = (* h 2)",
      'let m = (from (call M D) "p")',
    ]);
  });

  it("inside ( ) and [ ] line breaks are insignificant", () => {
    expect(show(expr("g(a\n  - b,\n  x\n  [0])"))).toBe("(call g (- a b) (idx x 0))");
  });

  it("statements, members and fields are separated by line breaks or ';' (fields also ',')", () => {
    expect(fnBody("fn f() { let a = 1; var b = a; b = b + 1; b }")).toEqual(["let a = 1", "var b = a", "b = (+ b 1)", "b"]);
    const t = clean("train t { a = 1, b = 2; c = 3\n d = 4 }").items[0] as TrainItem;
    expect(t.fields.map((f) => f.name.name)).toEqual(["a", "b", "c", "d"]);
  });
});

describe("items, members and types", () => {
  it("imports, dims and blocks", () => {
    const p = clean('import "std/nn"\nimport "./l.weft" as L\ndim A, B = 64, C = 2*B\nblock Foo { }\nblock Bar() { }');
    const [i1, i2, d, foo, bar] = p.items;
    expect(i1.kind === "import" && [i1.path, i1.alias]).toEqual(["std/nn", undefined]);
    expect(i2.kind === "import" && [i2.path, i2.alias?.name]).toEqual(["./l.weft", "L"]);
    expect(d.kind === "dim" && d.decls.map((x) => `${x.name.name}${x.default ? "=" + show(x.default) : ""}`)).toEqual(["A", "B=64", "C=(* 2 B)"]);
    expect(foo.kind === "block" && [foo.name.name, foo.dims, foo.members]).toEqual(["Foo", [], []]);
    expect(bar.kind === "block" && bar.dims).toEqual([]);
  });

  it("block members: params, instances and the unnamed forward fn", () => {
    const b = clean(
      "block Linear(I, O) {\n  param w: f32[I, O] = glorot\n  param b: f32[O]\n  layers = repeat(L) Layer(D, F)\n  enc = frozen Enc(D)\n  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b\n  fn helper(y) = y\n}",
    ).items[0] as BlockItem;
    expect(b.dims.map((d) => d.name)).toEqual(["I", "O"]);
    expect(
      b.members.map((m) =>
        m.kind === "param"
          ? `param ${m.name.name}: ${showType(m.type)}${m.init ? " = " + show(m.init) : ""}`
          : m.kind === "instance"
            ? `${m.name.name} = ${show(m.value)}`
            : `fn ${m.name?.name ?? "<forward>"}(${m.params.map((p) => p.name.name).join(", ")})${m.ret ? " -> " + showType(m.ret) : ""}`,
      ),
    ).toEqual([
      "param w: f32[I, O] = glorot",
      "param b: f32[O]",
      "layers = (repeat L (call Layer D F))",
      "enc = (frozen (call Enc D))",
      "fn <forward>(x) -> f32[.., O]",
      "fn helper(y)",
    ]);
  });

  it("types: scalars, dims as expressions, rest and inferred dims, block and tuple types", () => {
    const f = clean(
      "fn f(a: f32, b: f32[B, T, D], c: f32[.., I], d: i32[_], e: f32[2*D, D/H], g: f32[N, sizeof(m.head)], h: Linear, i: L.Linear, j: repeat Layer, k: (f32[B], f32), l: bool[B], m = 3, n) -> (f32, i32[2])",
    ).items[0] as FnItem;
    expect(f.params.map((p) => `${p.name.name}${p.type ? ": " + showType(p.type) : ""}${p.default ? " = " + show(p.default) : ""}`)).toEqual([
      "a: f32",
      "b: f32[B, T, D]",
      "c: f32[.., I]",
      "d: i32[_]",
      "e: f32[(* 2 D), (/ D H)]",
      "g: f32[N, (call sizeof (. m head))]",
      "h: Linear",
      "i: L.Linear",
      "j: repeat Layer",
      "k: (f32[B], f32)",
      "l: bool[B]",
      "m = 3",
      "n",
    ]);
    expect(f.params[0].type).toMatchObject({ kind: "tensorType", dtype: { name: "f32" } });
    expect(f.params[0].type?.kind === "tensorType" && f.params[0].type.dims).toBeUndefined();
    expect(f.params[3].type).toMatchObject({ kind: "tensorType", dims: [{ kind: "inferDim" }] });
    expect(f.params[7].type).toMatchObject({ kind: "namedType", qualifier: { name: "L" }, name: { name: "Linear" }, repeat: false });
    expect(f.ret && showType(f.ret)).toBe("(f32, i32[2])");
  });

  it("statements: let/var with types and tuple patterns, assignment, for, return", () => {
    expect(fnBody("fn f(x) {\n let (a, (b, c)) = x\n var h: f32[B] = a\n for i in 0..L { h = h + layers[i](h) }\n return h\n}")).toEqual([
      "let (a, (b, c)) = x",
      "var h: f32[B] = a",
      "for i in 0..L {h = (+ h (call (idx layers i) h))}",
      "return h",
    ]);
  });
});

describe("spans", () => {
  const source = "fn f(x: f32) -> f32 {\n  let y = a +\n    g(x, 2)\n  return y\n}\n";
  const { program } = parse(source, "spans.weft");
  const f = program.items[0] as FnItem;
  const body = f.body?.kind === "block" ? f.body : undefined;
  const letStmt = body?.stmts[0];
  const value = letStmt?.kind === "let" ? letStmt.value : undefined;

  it("cover the source text of each node, with 1-based line/col and end just past the node", () => {
    expect(program.span).toMatchObject({ file: "spans.weft", start: 0, end: source.length, line: 1, col: 1, endLine: 6, endCol: 1 });
    expect(f.span).toMatchObject({ line: 1, col: 1, endLine: 5, endCol: 2 });
    expect(source.slice(f.span.start, f.span.end)).toBe(source.trimEnd());
    expect(letStmt?.span).toMatchObject({ line: 2, col: 3, endLine: 3, endCol: 12 });
    expect(source.slice(letStmt?.span.start, letStmt?.span.end)).toBe("let y = a +\n    g(x, 2)");
  });

  it("a binary expression's opSpan is its operator; a call's argsSpan is ( ... )", () => {
    expect(value?.kind).toBe("binary");
    if (value?.kind !== "binary" || value.right.kind !== "call") throw new Error("shape");
    expect(value.opSpan).toMatchObject({ line: 2, col: 13, endLine: 2, endCol: 14 });
    expect(source.slice(value.right.argsSpan.start, value.right.argsSpan.end)).toBe("(x, 2)");
    expect(value.right.argsSpan).toMatchObject({ line: 3, col: 6, endLine: 3, endCol: 12 });
    expect(value.right.args[1].value.span).toMatchObject({ line: 3, col: 10, endCol: 11 });
  });

  it("every span in a larger tree agrees with its offsets", () => {
    const src = 'block B(D) {\n  param w: f32[D, D] = glorot\n  fn (x: f32[.., D]) -> f32[.., D] = -x @ w ** 2 + f(a=1)[0, :]\n}\ntrain t { m = frozen B(4) from "c" }';
    expect(badSpans(clean(src), src)).toEqual([]);
  });
});

describe("doc comments", () => {
  it("consecutive /// lines attach to the next item, param, instance or fn", () => {
    const p = clean(
      [
        "/// A linear layer.",
        "///   indented line",
        "block Linear(I, O) {",
        "  /// the weights",
        "  param w: f32[I, O]",
        "  //// four slashes: a plain comment",
        "  param b: f32[O]",
        "  /// a sub-block",
        "  ln = LayerNorm(O)",
        "  /// forward",
        "  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b",
        "}",
        "// plain",
        "fn g() = 1",
        "/// dims",
        "dim D",
      ].join("\n"),
    );
    const [block, g, dim] = p.items;
    expect(block.doc).toBe("A linear layer.\n  indented line");
    expect((block as BlockItem).members.map((m) => m.doc)).toEqual(["the weights", undefined, "a sub-block", "forward"]);
    expect(g.doc).toBeUndefined();
    expect(dim.doc).toBe("dims");
  });
});
