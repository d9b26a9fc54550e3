import { WeftParser } from "./grammar/parser.ts";
import { lex } from "./grammar/lexer.ts";
const p = new WeftParser();
for (const src of ["let x = 3\nfn g() = 1", "block B { let x = 1 }", "fn f() { param w: f32 }"]) {
  p.input = lex(src).tokens;
  p.program();
  for (const e of p.errors) console.log(e.name, e.token.image, e.context.ruleStack, e.resyncedTokens?.map((t) => t.image));
}
