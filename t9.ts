import { parse } from "./grammar/index.ts";
import { lex } from "./grammar/lexer.ts";
import { languageExamples } from "./test/grammar/fixtures.ts";
let seed = 7;
const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const hist: Record<number, number> = {};
const shown: string[] = [];
for (const src of Object.values(languageExamples)) {
  const toks = lex(src).tokens;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    const mutated = src.slice(0, t.startOffset) + src.slice(t.startOffset + t.image.length);
    const r = parse(mutated, "m");
    const n = r.diagnostics.length;
    hist[n] = (hist[n] ?? 0) + 1;
    if (n === 0) shown.push(`NO ERROR deleting '${t.image}' at ${t.startOffset}: ${mutated.slice(Math.max(0, t.startOffset - 30), t.startOffset + 30).replace(/\n/g, "⏎")}`);
    if (n >= 3) shown.push(`${n} errs deleting '${t.image}': ${mutated.slice(Math.max(0, t.startOffset - 30), t.startOffset + 30).replace(/\n/g, "⏎")}\n    ` + r.diagnostics.map((d) => `${d.span.line}:${d.span.col} ${d.message}`).join("\n    "));
  }
}
console.log(hist);
console.log(shown.filter(s=>!s.startsWith("NO")).slice(0, 40).join("\n"));
console.log(shown.filter(s=>s.startsWith("NO")).map(s=>s.slice(0,110)).join("\n"));
