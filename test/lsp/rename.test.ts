// Rename: every occurrence, across files (open or not); refused when the new name would
// clash with or capture another name, or when the name is built in. A fn's parameter is
// renamed at the calls that set it by name too (`f(x, beta=0.5)`), in every file.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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
// named arguments: a fn and a block's forward with parameters set by name, in an aliased
// import (open) and an unaliased one (not open)
const ARGS_LIB = `dim B, D
fn soft(x: f32[B, D], be<|>ta = 0.1, gamma = 0.98) -> f32[B, D] = gamma * tanh(beta * x)
block Gate(D) {
  param w: f32[D] = ones
  fn (x: f32[B, D], scale = 1.0) -> f32[B, D] = scale * x * w
}
`;
const ARGS_MAIN = `import "./lib.weft" as L
dim B, D
fn main(x: f32[B, D], g: L.Gate) -> f32[B, D] {
  let y = L.soft(x, be<|>ta=0.5)
  return g(y, sc<|>ale=2.0) + L.soft(y, 0.2, gamma=0.9)
}
`;
const ARGS_OTHER = `import "./lib.weft"
fn twice(x: f32[B, D]) -> f32[B, D] = soft(soft(x, beta=0.3), beta=0.4)
`;
mkdirSync(join(dir, "args"));
writeFileSync(join(dir, "args", "lib.weft"), marked(ARGS_LIB).text);
writeFileSync(join(dir, "args", "main.weft"), marked(ARGS_MAIN).text);
writeFileSync(join(dir, "args", "other.weft"), ARGS_OTHER);
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

describe("rename of a parameter set by name", () => {
  const lib = join(dir, "args", "lib.weft");
  const main = join(dir, "args", "main.weft");
  const other = join(dir, "args", "other.weft");

  it("renames the named arguments that set it, in every file, from the declaration", async () => {
    const doc = await lsp.open(lib, ARGS_LIB);
    expect(await lsp.diagnostics(doc)).toEqual([]);
    const edit = await lsp.rename(doc, doc.at[0], "temp");
    expect(Object.keys(edit?.changes ?? {}).sort()).toEqual([uriOf(lib), uriOf(main), uriOf(other)]);
    expect(applyEdits(doc.text, editsFor(edit, uriOf(lib)))).toContain("fn soft(x: f32[B, D], temp = 0.1, gamma = 0.98) -> f32[B, D] = gamma * tanh(temp * x)");
    expect(applyEdits(marked(ARGS_MAIN).text, editsFor(edit, uriOf(main)))).toContain("let y = L.soft(x, temp=0.5)\n  return g(y, scale=2.0) + L.soft(y, 0.2, gamma=0.9)");
    expect(applyEdits(ARGS_OTHER, editsFor(edit, uriOf(other)))).toContain("= soft(soft(x, temp=0.3), temp=0.4)");
  });

  it("renames from a named argument, and a block forward's parameter", async () => {
    const doc = await lsp.open(main, ARGS_MAIN);
    expect(await lsp.diagnostics(doc)).toEqual([]);
    const edit = await lsp.rename(doc, doc.at[0], "temp");
    expect(applyEdits(doc.text, editsFor(edit, doc.uri))).toContain("L.soft(x, temp=0.5)");
    expect(applyEdits(ARGS_OTHER, editsFor(edit, uriOf(other)))).toContain("= soft(soft(x, temp=0.3), temp=0.4)");
    expect(applyEdits(marked(ARGS_LIB).text, editsFor(edit, uriOf(lib)))).toContain("temp = 0.1, gamma = 0.98) -> f32[B, D] = gamma * tanh(temp * x)");

    const fwd = await lsp.rename(doc, doc.at[1], "factor");
    expect(Object.keys(fwd?.changes ?? {}).sort()).toEqual([uriOf(lib), uriOf(main)]);
    expect(applyEdits(doc.text, editsFor(fwd, doc.uri))).toContain("return g(y, factor=2.0)");
    expect(applyEdits(marked(ARGS_LIB).text, editsFor(fwd, uriOf(lib)))).toContain("fn (x: f32[B, D], factor = 1.0) -> f32[B, D] = factor * x * w");
  });

  it("goes from a named argument to its parameter, and finds the parameter's uses", async () => {
    const doc = await lsp.open(main, ARGS_MAIN);
    const [def] = await lsp.definition(doc, doc.at[0]);
    expect(def).toEqual({ uri: uriOf(lib), range: { start: { line: 1, character: 22 }, end: { line: 1, character: 26 } } });
    const refs = await lsp.references(doc, doc.at[0]);
    expect(refs.map((r) => `${r.uri.split("/").pop()}:${r.range.start.line}:${r.range.start.character}`).sort()).toEqual(
      ["lib.weft:1:22", "lib.weft:1:76", "main.weft:3:20", "other.weft:1:51", "other.weft:1:62"].sort(),
    );
  });

  it("refuses a name another parameter has", async () => {
    const doc = await lsp.open(main, ARGS_MAIN);
    expect(await refusal(lsp.rename(doc, doc.at[0], "gamma"))).toMatch(/cannot rename `beta` to `gamma`: `gamma` is already declared at lib.weft:2:/);
    expect(await refusal(lsp.rename(doc, doc.at[0], "x"))).toMatch(/cannot rename `beta` to `x`: `x` is already declared at lib.weft:2:/);
  });
});
