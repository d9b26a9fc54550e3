import { it } from "vitest";
import { runFn, uniforms } from "/work/main/test/util/weft.ts";
it("try", async () => {
  const T = 3, V = 5, D = 2;
  try {
    const r = await runFn("models/seeds/gradmatch.weft", "grad_match", { g: { shape: [8, 3], data: uniforms(24, 5) } }, { dims: { N: 8, T, V, D, P: 3, K: 3 }, backend: "reference" });
    console.log(r.outputs);
  } catch (err) { console.log(String(err)); }
});
