// Document symbols (the outline), workspace symbols, folding ranges and semantic tokens (also
// after edits that move and change items: the server keeps what it found for unchanged items).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DocumentSymbol, SemanticTokensLegend } from "vscode-languageserver-protocol";
import { LspClient, decodeTokens } from "./client.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-lsp-symbols-"));
writeFileSync(join(dir, "layers.weft"), "dim D\nblock LinearNoBias2(I, O) {\n  param w: f32[I, O] = glorot\n}\nfn lnb_helper(x: f32[D]) -> f32[D] = x\n");

const SRC = `import "std/nn"
import "./layers.weft" as Lay

// A model.
// Two lines of comment.
dim B, T = 16, D = 64

/// A block.
block Mlp(D, H) {
  hidden = Linear(D, H)
  param gain: f32[H] = ones
  fn (x: f32[B, D]) -> f32[B, H] {
    let h = hidden(x)
    var acc = h
    for i in 0..2 {
      acc = acc + tanh(acc)
    }
    return acc * gain
  }
}

fn loss(m: Mlp, x: f32[B, D]) -> f32 = mean(m(x) ** 2, axis=B)

train t {
  model = Mlp(D, 32)
  loss = loss(model, batch.x)
  data = jsonl("d.jsonl")
}
`;

let lsp: LspClient;
beforeAll(async () => {
  lsp = await LspClient.start({ root: dir });
});
afterAll(async () => {
  await lsp.stop();
});

const outline = (ss: DocumentSymbol[]): unknown[] => ss.map((s) => (s.children?.length ? [s.name, s.detail, outline(s.children)] : [s.name, s.detail]));

describe("symbols", () => {
  it("outlines a document", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), SRC);
    expect(outline(await lsp.documentSymbols(doc))).toEqual([
      ["Lay", 'import "./layers.weft"'],
      ["B", "dim"],
      ["T", "dim = 16"],
      ["D", "dim = 64"],
      ["Mlp", "block(D, H)", [["hidden", "Linear(D, H)"], ["gain", "f32[H]"], ["forward", "(x: f32[B, D]) -> f32[B, H]"]]],
      ["loss", "(m: Mlp, x: f32[B, D]) -> f32"],
      ["t", "train", [["model", undefined], ["loss", undefined], ["data", undefined]]],
    ]);
  });

  it("outlines a document that does not parse", async () => {
    const doc = await lsp.open(join(dir, "broken.weft"), "dim B\nblock M {\n  param w: f32[B] = \n}\nfn f(x: f32[B]) -> f32[B] = x +\n");
    expect((await lsp.documentSymbols(doc)).map((s) => s.name)).toEqual(["B", "M", "f"]);
  });

  it("finds symbols across the workspace by a fuzzy query", async () => {
    await lsp.open(join(dir, "main.weft"), SRC);
    const found = (await lsp.workspaceSymbols("lnb")).map((s) => `${s.name} ${"uri" in s.location ? s.location.uri.split("/").pop() : ""}`);
    expect(found.sort()).toEqual(["LinearNoBias2 layers.weft", "lnb_helper layers.weft"]);
  });

  it("folds blocks, bodies, comment runs and imports", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), SRC);
    const folds = (await lsp.folding(doc)).map((f) => `${f.startLine + 1}-${f.endLine + 1}${f.kind ? ` ${f.kind}` : ""}`);
    expect(folds).toEqual(["1-2 imports", "4-5 comment", "9-19", "12-18", "15-16", "24-27"]);
  });

  it("classifies names with semantic tokens", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), SRC);
    const legend = lsp.initialized.capabilities.semanticTokensProvider?.legend as SemanticTokensLegend;
    const tokens = decodeTokens(doc.text, await lsp.semanticTokens(doc), legend);
    const kind = (text: string, nth = 0) => {
      const t = tokens.filter((x) => x.text === text)[nth];
      return t ? `${t.type}${t.mods.length ? ` ${t.mods.join(" ")}` : ""}` : "none";
    };
    expect(kind("Lay")).toBe("namespace declaration");
    expect(kind("T")).toBe("typeParameter declaration readonly");
    expect(kind("Mlp")).toBe("class declaration");
    expect(kind("D", 1)).toBe("typeParameter declaration readonly"); // block Mlp's own D
    expect(kind("hidden")).toBe("property declaration");
    expect(kind("Linear")).toBe("class");
    expect(kind("f32")).toBe("type defaultLibrary");
    expect(kind("x")).toBe("parameter declaration");
    expect(kind("h")).toBe("variable declaration readonly");
    expect(kind("acc")).toBe("variable declaration");
    expect(kind("acc", 1)).toBe("variable");
    expect(kind("tanh")).toBe("function defaultLibrary");
    expect(kind("loss")).toBe("function declaration");
    expect(kind("axis")).toBe("parameter");
    expect(kind("batch")).toBe("variable readonly defaultLibrary");
    expect(kind("t")).toBe("event declaration");
  });

  it("classifies names right after edits that move items and change one", async () => {
    const doc = await lsp.open(join(dir, "edited.weft"), SRC);
    const legend = lsp.initialized.capabilities.semanticTokensProvider?.legend as SemanticTokensLegend;
    const tokens = async (name: string) => decodeTokens(doc.text, await lsp.semanticTokens(doc), legend).filter((t) => t.text === name).map((t) => `${t.line} ${[t.type, ...t.mods].join(" ")}`);
    expect(await tokens("gain")).toEqual(["11 property declaration", "18 property"]);
    // two lines above everything: the names of the unchanged items move with them
    await lsp.edit(doc, { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, "// one\n// two\n");
    expect(await tokens("gain")).toEqual(["13 property declaration", "20 property"]);
    // the loss's parameter `m` renamed in its declaration only: its use no longer names it
    await lsp.edit(doc, { start: { line: 23, character: 8 }, end: { line: 23, character: 9 } }, "mm");
    expect(doc.text.split("\n")[23]).toBe("fn loss(mm: Mlp, x: f32[B, D]) -> f32 = mean(m(x) ** 2, axis=B)");
    expect(await tokens("mm")).toEqual(["24 parameter declaration"]);
    expect(await tokens("m")).toEqual([]);
    expect(await tokens("hidden")).toEqual(["12 property declaration", "15 property"]);
  });
});
