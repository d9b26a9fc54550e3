import { parse } from "./grammar/index.ts";
import { languageExamples } from "./test/grammar/fixtures.ts";
for (const [k, src] of Object.entries(languageExamples)) {
  const t0 = performance.now();
  const r = parse(src, k);
  console.log(k, r.program.items.length, (performance.now() - t0).toFixed(1) + "ms");
  for (const d of r.diagnostics) console.log("  ", d.code, d.span.line + ":" + d.span.col, d.message, d.hint ?? "");
}
