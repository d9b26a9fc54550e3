// Indexing with i32 tensors lowers to gathers (the index's dims replace the axis, as the
// checker types it); expected values computed here by plain loops over the inputs.
import { describe, expect, it } from "vitest";
import { runFn } from "../util/weft.ts";

const FILE = "test/fixtures/e2e/tensor_index.weft";
const V = 5;
const D = 3;
const w = Array.from({ length: V * D }, (_, k) => Math.round((Math.sin(k + 1) * 100)) / 8);
const at = (r: number, c: number) => w[r * D + c];
const x = [0, 4, 2, 2, 1, 3, 0, 4]; // [B=2, T=4]
const j = [2, 0, 1, 2]; // [T]
const i = [3, 1]; // [B]

describe("indexing with i32 tensors", () => {
  for (const backend of ["reference", "webgpu"] as const) {
    it(`emb[x], w[:, j], w[i, j], w[i, 1] (${backend})`, async () => {
      const run = async (entry: string, inputs: Parameters<typeof runFn>[2]) => [...(await runFn(FILE, entry, inputs, { backend })).outputs.values()][0];
      const emb = { shape: [V, D], data: w };
      const rows = await run("rows", { emb, x: { shape: [2, 4], data: x, dtype: "i32" } });
      expect([...rows]).toEqual(x.flatMap((r) => [0, 1, 2].map((c) => at(r, c))));
      const cols = await run("cols", { w: emb, j: { shape: [4], data: j, dtype: "i32" } });
      expect([...cols]).toEqual([0, 1, 2, 3, 4].flatMap((r) => j.map((c) => at(r, c))));
      const both = await run("both", { w: emb, i: { shape: [2], data: i, dtype: "i32" }, j: { shape: [4], data: j, dtype: "i32" } });
      expect([...both]).toEqual(i.flatMap((r) => j.map((c) => at(r, c))));
      const picked = await run("picked", { w: emb, i: { shape: [2], data: i, dtype: "i32" } });
      expect([...picked]).toEqual(i.map((r) => at(r, 1)));
    });
  }
});
