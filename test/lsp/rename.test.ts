// Rename: every occurrence, across files (open or not); refused when the new name would
// clash with or capture another name, or when the name is built in.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LspClient, applyEdits, editsFor, marked, uriOf } from "./client.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-lsp-rename-"));
const LIB = `dim D
fn double(x: f32[.., D]) -> f32[.., D] = 2.0 * x
`;
const OTHER = `import "./lib.weft"
dim B
fn g(x: f32[B, D]) -> f32[B, D] = double(double(x))
`;
const MAIN = `import "./lib.weft" as L
dim B
fn f(x<|>: f32[B, D]) -> f32[B, D] {
  let y<|> = L.dou<|>ble(x)
  let z = tanh(y)
  return z + y
}
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

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  return "(not refused)";
}

describe("rename", () => {
  it("renames a local everywhere in its fn", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    expect(await lsp.prepareRename(doc, doc.at[1])).toEqual({ range: { start: { line: 3, character: 6 }, end: { line: 3, character: 7 } }, placeholder: "y" });
    const edit = await lsp.rename(doc, doc.at[1], "h");
    expect(applyEdits(doc.text, editsFor(edit, doc.uri))).toContain("let h = L.double(x)\n  let z = tanh(h)\n  return z + h");
  });

  it("renames a fn across files, open and closed", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    const edit = await lsp.rename(doc, doc.at[2], "twice");
    expect(Object.keys(edit?.changes ?? {}).sort()).toEqual([uriOf(join(dir, "lib.weft")), uriOf(join(dir, "main.weft")), uriOf(join(dir, "other.weft"))]);
    expect(applyEdits(OTHER, editsFor(edit, uriOf(join(dir, "other.weft"))))).toContain("= twice(twice(x))");
    expect(applyEdits(LIB, editsFor(edit, uriOf(join(dir, "lib.weft"))))).toContain("fn twice(x");
    expect(applyEdits(doc.text, editsFor(edit, doc.uri))).toContain("L.twice(x)");
  });

  it("refuses a name already declared in the same fn", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    expect(await refusal(lsp.rename(doc, doc.at[1], "z"))).toMatch(/cannot rename `y` to `z`: `z` is already declared at main.weft:5:7/);
  });

  it("refuses a name that a use would then mean something else by", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN);
    // the param `x` renamed to `y`: `L.double(x)` is inside y's own let, `tanh(y)` would change meaning
    expect(await refusal(lsp.rename(doc, doc.at[0], "y"))).toMatch(/cannot rename `x` to `y`/);
    // `double` renamed to `g`: other.weft, which imports lib.weft unqualified, has its own `g`
    expect(await refusal(lsp.rename(doc, doc.at[2], "g"))).toMatch(/cannot rename `double` to `g`/);
  });

  it("refuses built-ins, keywords and non-names", async () => {
    const doc = await lsp.open(join(dir, "main.weft"), MAIN.replace("tanh(y)", "ta<|>nh(y)"));
    expect(await refusal(lsp.prepareRename(doc, doc.at[3]))).toMatch(/`tanh` is built in/);
    expect(await refusal(lsp.rename(doc, doc.at[1], "let"))).toMatch(/`let` is a keyword/);
    expect(await refusal(lsp.rename(doc, doc.at[1], "2x"))).toMatch(/`2x` is not a name/);
    expect(await refusal(lsp.rename(doc, doc.at[1], "softmax"))).toMatch(/would hide the built-in `softmax`/);
  });
});
