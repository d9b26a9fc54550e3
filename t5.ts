import { parse } from "./grammar/index.ts";
const src = `/// A linear layer.
/// Two lines.
block Linear(I, O) {
  /// weights
  param w: f32[I, O] = glorot
  //// not a doc
  param b: f32[O] = zeros
  /// forward
  fn (x: f32[.., I]) -> f32[.., O] = x @ w + b
}
/// import doc

import "x"
fn f() {
  let a = b
  (c)
  let d = e
  - f
  let g = h
  [1]
  let i = j
    .k
  let l = m +
    n
  let o = p(
    q)
  let r = s
    from "t"
}`;
const r = parse(src, "t.weft");
for (const it of r.program.items) {
  console.log(it.kind, JSON.stringify(it.doc));
  if (it.kind === "block") for (const m of it.members) console.log("  ", m.kind, JSON.stringify(m.doc));
  if (it.kind === "fn" && it.body?.kind === "block") for (const s of it.body.stmts) console.log("  ", s.kind, s.span.line, s.kind === "exprStmt" ? s.expr.kind : s.kind === "let" ? s.value.kind : "");
}
console.log(r.diagnostics);
