// Formatting through the server is `weft fmt` (compiler/format.ts): the edit turns the
// document into exactly the formatter's output; a file with syntax errors is left alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { format } from "../../compiler/format.ts";
import { LspClient, applyEdits } from "./client.ts";

let lsp: LspClient;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

describe("formatting", () => {
  it("gives weft fmt's layout, as one edit of the part that changed", async () => {
    const src = `dim B,D
// keep me
fn f(x:f32[B,D])->f32[B]=sum( tanh(x)*2 ,D)
`;
    const doc = await lsp.open("/virtual/format/a.weft", src);
    const edits = await lsp.formatting(doc);
    expect(edits.length).toBe(1);
    const out = applyEdits(doc.text, edits);
    expect(out).toBe(format(src, "/virtual/format/a.weft").text);
    expect(out).toContain("fn f(x: f32[B, D]) -> f32[B] = sum(tanh(x) * 2, D)");
    expect(out).toContain("// keep me");
  });

  it("changes nothing in a formatted file or in one that does not parse", async () => {
    const formatted = format("dim B\nfn f(x: f32[B]) -> f32[B] = x\n", "b.weft").text;
    expect(await lsp.formatting(await lsp.open("/virtual/format/b.weft", formatted))).toEqual([]);
    expect(await lsp.formatting(await lsp.open("/virtual/format/c.weft", "dim B\nfn f(x: f32[B]) -> f32[B] = x +\n"))).toEqual([]);
  });
});
