import { parse } from "./grammar/index.ts";
for (const n of [50, 100, 200, 1000, 5000]) {
  for (const src of [`fn f() = ${"(".repeat(n)}1${")".repeat(n)}`, `fn f() = ${"(".repeat(n)}`, `fn f() = ${"-".repeat(n)}1`, `fn f() { ${"{".repeat(n)} }`, `fn f() = a${"[0]".repeat(n)}`, `fn f() = ${"a + ".repeat(n*10)} 1`]) {
    const t0 = performance.now();
    const r = parse(src, "t");
    console.log(n, src.slice(0, 12), (performance.now() - t0).toFixed(0) + "ms", r.diagnostics.length, r.diagnostics[0]?.code, r.diagnostics[0]?.message.slice(0, 60));
  }
}
