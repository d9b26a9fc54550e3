import { parse } from "./grammar/index.ts";
parse("", "t");
for (const n of [40, 50, 60, 100, 150]) {
  for (const src of [`fn f() { ${"{".repeat(n)}${"}".repeat(n)} }`, `fn f() { ${"{".repeat(n)} }`, `fn f() = ${"[".repeat(n)}${"]".repeat(n)}`, `fn f() = ${"[".repeat(n)}`]) {
  const t0 = performance.now();
  const r = parse(src, "t");
  console.log(n, src.slice(9, 11), (performance.now() - t0).toFixed(0) + "ms", r.diagnostics.map((d) => d.code + " " + d.span.col + " " + d.message).join(" | ").slice(0, 100));
  }
}
