import { parse } from "./grammar/index.ts";
const src = process.argv[2] ?? "";
const r = parse(src, "t.weft");
console.log(JSON.stringify(r.program, (k, v) => (k === "span" || k === "opSpan" || k==="argsSpan" || k==="pathSpan") ? undefined : v, 1).replace(/\n\s*/g, " "));
for (const d of r.diagnostics) console.log(d.code, d.span.line + ":" + d.span.col, d.message, d.hint ?? "");
