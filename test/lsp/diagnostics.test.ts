// Diagnostics through a spawned `weft lsp`: published on open and after every edit (for that
// version), with the compiler's code, related spans and hint; importers re-checked when an
// imported file changes; an edit re-checks what depends on the edited item, and the
// diagnostics of items that only moved move with them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LspClient, textOf, uriOf } from "./client.ts";

let lsp: LspClient;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

describe("diagnostics", () => {
  it("reports a shape error with its code, related spans and hint", async () => {
    const doc = await lsp.open("/virtual/diag/grpo.weft", `dim G, T
fn f(ratio: f32[G, T], a: f32[G]) -> f32[G, T] = ratio * a
`);
    const [d] = await lsp.diagnostics(doc);
    expect(d.code).toBe("W0203");
    expect(d.source).toBe("weft");
    expect(textOf(doc.text, d.range)).toBe("ratio * a");
    expect(d.message).toContain("cannot broadcast f32[G, T] with f32[G]");
    expect(d.message).toContain("hint: insert `None` to broadcast: a[:, None]");
    expect(d.data).toEqual({ hint: "insert `None` to broadcast: a[:, None]" });
    expect(d.relatedInformation?.map((r) => [textOf(doc.text, r.location.range), r.message])).toEqual([
      ["ratio", "`ratio` is f32[G, T], declared here"],
      ["a", "`a` is f32[G], declared here"],
    ]);
    expect(d.codeDescription?.href).toMatch(/docs\/errors\.md#w0203/);
  });

  it("re-publishes after each incremental edit, for that version", async () => {
    const doc = await lsp.open("/virtual/diag/edit.weft", `dim B, D
fn f(x: f32[B, D]) -> f32[B] = sum(x, D)
`);
    expect(await lsp.diagnostics(doc)).toEqual([]);
    // `sum(x, D)` → `sum(x, Q)`: an unknown dim
    await lsp.edit(doc, { start: { line: 1, character: 38 }, end: { line: 1, character: 39 } }, "Q");
    const after = await lsp.diagnostics(doc);
    expect(after.map((d) => [d.code, textOf(doc.text, d.range)])).toEqual([["W0101", "Q"]]);
    await lsp.edit(doc, { start: { line: 1, character: 38 }, end: { line: 1, character: 39 } }, "D");
    expect(await lsp.diagnostics(doc)).toEqual([]);
  });

  it("re-checks what depends on an edited item, and moves the diagnostics of items that only moved", async () => {
    const doc = await lsp.open("/virtual/diag/deps.weft", `dim B, D, F
fn widen(x: f32[B, D], w: f32[D, F]) -> f32[B, F] = x @ w
fn up(x: f32[B, D], w: f32[D, F]) -> f32[B, F] = widen(x, w)
fn keep(x: f32[B, D]) -> f32[B, D] {
  let spare = x
  return x
}
`);
    const shown = async () => (await lsp.diagnostics(doc)).map((d) => [d.code, d.range.start.line, textOf(doc.text, d.range)]);
    expect(await shown()).toEqual([["W0401", 4, "spare"]]);
    // widen now maps D to D: `up`, whose text did not change, passes it a w of the old shape
    const sig = { start: { line: 1, character: 26 }, end: { line: 1, character: 49 } };
    expect(textOf(doc.text, sig)).toBe("f32[D, F]) -> f32[B, F]");
    await lsp.edit(doc, sig, "f32[D, D]) -> f32[B, D]");
    expect(await shown()).toEqual([["W0203", 2, "w"], ["W0401", 4, "spare"]]);
    // a line inserted above everything: both move down with their fns
    await lsp.edit(doc, { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, "// shapes\n");
    expect(await shown()).toEqual([["W0203", 3, "w"], ["W0401", 5, "spare"]]);
    await lsp.edit(doc, { start: { line: 2, character: 26 }, end: { line: 2, character: 49 } }, "f32[D, F]) -> f32[B, F]");
    expect(await shown()).toEqual([["W0401", 5, "spare"]]);
  });

  it("keeps checking a file with a syntax error, without follow-on noise", async () => {
    const doc = await lsp.open("/virtual/diag/broken.weft", `dim B, D
fn f(m: f32[B, D]) -> f32[B, D] {
  let y = m.
  return y + zz
}
`);
    const ds = await lsp.diagnostics(doc);
    expect(ds.map((d) => d.code)).toEqual(["W0001", "W0101"]);
    expect(ds[1].message).toContain("unknown name `zz`");
  });

  it("re-checks an importer when the imported document changes", async () => {
    const lib = await lsp.open("/virtual/diag/lib.weft", `dim D
fn double(x: f32[.., D]) -> f32[.., D] = 2.0 * x
`);
    const main = await lsp.open("/virtual/diag/main.weft", `import "./lib.weft"
dim B
fn g(x: f32[B, D]) -> f32[B, D] = double(x)
`);
    expect(await lsp.diagnostics(main)).toEqual([]);
    await lsp.edit(lib, { start: { line: 1, character: 3 }, end: { line: 1, character: 9 } }, "twice");
    await lsp.diagnostics(lib);
    const next = await lsp.waitDiagnostics(main.uri);
    expect(next.diagnostics.map((d) => d.code)).toEqual(["W0101"]);
    expect(next.diagnostics[0].message).toContain("`double`");
  });

  it("clears a closed document's diagnostics", async () => {
    const doc = await lsp.open("/virtual/diag/closed.weft", "fn f() -> f32 = nope\n");
    expect((await lsp.diagnostics(doc)).length).toBe(1);
    const cleared = lsp.waitDiagnostics(uriOf("/virtual/diag/closed.weft"));
    await lsp.close(doc);
    expect((await cleared).diagnostics).toEqual([]);
  });
});
