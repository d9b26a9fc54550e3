// Go to definition (locals, members, across imports, into models/std) and find references
// (in open documents and in the workspace's other files).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Location } from "vscode-languageserver-protocol";
import { LspClient, ROOT, marked, uriOf } from "./client.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-lsp-nav-"));
const LIB = `dim D
/// Doubles.
fn double(x: f32[.., D]) -> f32[.., D] = 2.0 * x
block Scale(D) {
  param s: f32[D] = ones
  fn (x: f32[.., D]) -> f32[.., D] = x * s
}
`;
const MAIN = `import "std/nn"
import "./lib.weft" as L
dim B, D
fn f(x: f32[B, D], sc: L.Sc<|>ale, lin: Lin<|>ear) -> f32[B, D] {
  let y = L.dou<|>ble(x)
  let z = sc(y) + lin(y<|>)
  return sc.<|>s * z
}
`;
const OTHER = `import "./lib.weft"
dim B
fn g(x: f32[B, D]) -> f32[B, D] = double(double(x))
`;
writeFileSync(join(dir, "lib.weft"), LIB);
writeFileSync(join(dir, "other.weft"), OTHER);
writeFileSync(join(dir, "main.weft"), marked(MAIN).text);

let lsp: LspClient;
beforeAll(async () => {
  lsp = await LspClient.start({ root: dir });
});
afterAll(async () => {
  await lsp.stop();
});

const where = (ls: Location[]) => ls.map((l) => `${l.uri.split("/").pop()}:${l.range.start.line + 1}:${l.range.start.character + 1}`);

describe("go to definition", () => {
  it("follows names across imports and into models/std", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    expect(await lsp.diagnostics(doc)).toEqual([]);
    expect(await lsp.definition(doc, doc.at[0])).toEqual([{ uri: uriOf(join(dir, "lib.weft")), range: { start: { line: 3, character: 6 }, end: { line: 3, character: 11 } } }]);
    const [lin] = await lsp.definition(doc, doc.at[1]);
    expect(lin.uri).toBe(uriOf(join(ROOT, "models/std/nn.weft")));
    expect(lin.range.start.line).toBe(3);
    expect(where(await lsp.definition(doc, doc.at[2]))).toEqual(["lib.weft:3:4"]);
    // a local, and a param reached through an instance
    expect(where(await lsp.definition(doc, doc.at[3]))).toEqual(["main.weft:5:7"]);
    expect(where(await lsp.definition(doc, doc.at[4]))).toEqual(["lib.weft:5:9"]);
  });

  it("goes from an import path to the file", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN.replace('"./lib.weft"', '"./li<|>b.weft"'));
    expect(await lsp.definition(doc, doc.at[0])).toEqual([{ uri: uriOf(join(dir, "lib.weft")), range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } }]);
  });
});

describe("find references", () => {
  it("finds a fn's uses in open and closed files", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    expect(where(await lsp.references(doc, doc.at[2]))).toEqual(["lib.weft:3:4", "main.weft:5:13", "other.weft:3:35", "other.weft:3:42"]);
    expect(where(await lsp.references(doc, doc.at[2], false))).toEqual(["main.weft:5:13", "other.weft:3:35", "other.weft:3:42"]);
  });

  it("finds a local's uses", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    expect(where(await lsp.references(doc, doc.at[3]))).toEqual(["main.weft:5:7", "main.weft:6:14", "main.weft:6:23"]);
  });

  // (block Scale's own `D` is another dim: its uses are not among these)
  it("finds a global dim declared in several files as one dim", async () => {
    const doc = await lsp.open(join(dir, "other.weft"), OTHER.replace("f32[B, D]) ->", "f32[B, <|>D]) ->"));
    const refs = where(await lsp.references(doc, doc.at[0]));
    expect(refs).toEqual(["lib.weft:1:5", "lib.weft:3:22", "lib.weft:3:37", "main.weft:3:8", "main.weft:4:16", "main.weft:4:56", "other.weft:3:16", "other.weft:3:30"]);
  });
});
