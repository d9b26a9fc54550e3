import { WeftParser } from "./grammar/parser.ts";
import { lex } from "./grammar/lexer.ts";
const p = new WeftParser();
const l = lex("fn f(x: f32) = x");
p.input = l.tokens;
const cst = p.program();
console.log(JSON.stringify(cst, (k, v) => k === "tokenType" ? v.name : v, 1).slice(0, 3000));
