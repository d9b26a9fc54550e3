import { parse } from "./grammar/index.ts";
const cases = [
  `fn f(x: f32 {`,
  `fn f(x f32) -> f32 = x`,
  `fn f(x: f32, y: f32 = g(x, let`,
  `let x = 3\nfn g() = 1`,
  `fn f() { let a = (1 + 2\n let b = 3 }\nfn g() = 1`,
  `fn f() -> f32 { if a = b { 1 } else { 2 } }`,
  `block B(D) { param w f32[D] \n fn (x) = x }`,
  `dim A, B = \nfn g() = 1`,
  `train t { loss = f(x)\n (y) }`,
  `import std`,
  `fn f() = a +* b`,
  `fn f(x: Foo[3]) = x`,
  `fn f() = "abc`,
  `fn f() = 1 /* unterminated`,
  `fn f() = a & b`,
  `) fn g() = 1`,
  `fn f() { let in = 3 }`,
  `block B { let x = 1 }`,
  `fn f() { param w: f32 }`,
  `fn f() = x[1,`,
  `fn f(x: f32[B, T) -> f32 = x\nfn g() = 2`,
  `fn f() = g(a b)`,
  `fn broken( = 1\nfn good(x: f32) -> f32 = x`,
  `fn f() { let a = 1 ) let b = 2 }`,
  `block B { ln = }`,
  `fn f() = 1\n}\nfn g() = 2`,
  `fn f() { for i in 0 { } }`,
];
for (const src of cases) {
  const r = parse(src, "t.weft");
  console.log("----", JSON.stringify(src), "items:", r.program.items.map((i) => i.kind + ":" + ("name" in i && i.name ? i.name.name : "")).join(","));
  for (const d of r.diagnostics) console.log("  ", d.code, d.span.line + ":" + d.span.col + "-" + d.span.endCol, d.message, d.hint ? " | hint: " + d.hint : "");
}
