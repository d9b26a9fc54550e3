// Inlay hints (the inferred type after each unannotated `let`/`var`, with the edit that writes
// it in) and code actions: did-you-mean, declare a missing dim, add a missing import, insert
// `None` to broadcast, annotate a binding or a return type.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CodeAction } from "vscode-languageserver-protocol";
import { LspClient, applyEdits, editsFor, type Doc } from "./client.ts";

let lsp: LspClient;
let n = 0;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

async function open(src: string): Promise<Doc> {
  return lsp.open(`/virtual/actions/f${n++}.weft`, src);
}

/** The actions at the first marker, by title, and what applying one gives. */
async function actionsAt(doc: Doc): Promise<{ titles: string[]; apply(title: string): string; get(title: string): CodeAction | undefined }> {
  const diags = await lsp.diagnostics(doc);
  const at = doc.at[0];
  const list = await lsp.codeActions(doc, { start: at, end: at }, diags);
  return {
    titles: list.map((a) => a.title),
    get: (t) => list.find((a) => a.title === t),
    apply(title) {
      const a = list.find((x) => x.title === title);
      if (!a) throw new Error(`no action "${title}"; have: ${list.map((x) => x.title).join(" | ")}`);
      return applyEdits(doc.text, editsFor(a.edit ?? null, doc.uri));
    },
  };
}

describe("inlay hints", () => {
  it("shows the inferred type after each unannotated let and var, with the edit", async () => {
    const doc = await open(`dim B, T, D = 8
fn f(x: f32[B, T, D]) -> f32[B, D] {
  let s = sum(x, T)
  var h: f32[B, D] = s
  let (a, b) = (s, 2 * s)
  var acc = a + b + h
  return acc
}
`);
    const hints = await lsp.inlayHints(doc);
    expect(hints.map((h) => `${h.position.line + 1}:${h.position.character + 1}${h.label}`)).toEqual([
      "3:8: f32[B, D]",
      "5:9: f32[B, D]",
      "5:12: f32[B, D]",
      "6:10: f32[B, D]",
    ]);
    expect(hints[0].tooltip).toBe("shape [?, 8]");
    expect(applyEdits(doc.text, hints[0].textEdits ?? [])).toContain("let s: f32[B, D] = sum(x, T)");
    expect(hints[1].textEdits).toBeUndefined(); // no annotation syntax for one name of a tuple pattern
  });

  it("follows edits: hints move with their fn, and change with the types", async () => {
    const doc = await open(`dim B, D
fn f(x: f32[B, D]) -> f32[B] {
  let s = sum(x, D)
  return s
}
fn g(x: f32[B, D]) -> f32[B, D] {
  let t = tanh(x)
  return t
}
`);
    const shown = async () => (await lsp.inlayHints(doc)).map((h) => `${h.position.line + 1}:${h.position.character + 1}${h.label}`);
    expect(await shown()).toEqual(["3:8: f32[B]", "7:8: f32[B, D]"]);
    await lsp.edit(doc, { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, "// shapes\n");
    expect(await shown()).toEqual(["4:8: f32[B]", "8:8: f32[B, D]"]);
    // f now sums over B: its hint changes, g's only moved
    await lsp.edit(doc, { start: { line: 3, character: 17 }, end: { line: 3, character: 18 } }, "B");
    expect(doc.text.split("\n")[3]).toBe("  let s = sum(x, B)");
    expect(await shown()).toEqual(["4:8: f32[D]", "8:8: f32[B, D]"]);
  });

  it("still hints in a file with a syntax error", async () => {
    const doc = await open(`dim B
fn f(x: f32[B]) -> f32[B] {
  let y = tanh(x)
  let z = y +
}
`);
    expect((await lsp.inlayHints(doc)).map((h) => h.label)).toContain(": f32[B]");
  });
});

describe("code actions", () => {
  it("applies a did-you-mean hint", async () => {
    const doc = await open(`dim B, D\nfn f(x: f32[B, D]) -> f32[B, D] = sfot<|>max(x, D)\n`);
    const a = await actionsAt(doc);
    expect(a.get("Change to `softmax`")?.isPreferred).toBe(true);
    expect(a.apply("Change to `softmax`")).toContain("= softmax(x, D)");
  });

  it("declares a missing dim", async () => {
    const doc = await open(`dim B\nfn f(x: f32[B, Q<|>]) -> f32[B] = sum(x, -1)\n`);
    expect((await actionsAt(doc)).apply("Declare `dim Q`")).toBe(`dim B, Q\nfn f(x: f32[B, Q]) -> f32[B] = sum(x, -1)\n`);
    const bare = await open(`/// Doc of f.\nfn f(x: f32[N<|>]) -> f32 = sum(x)\n`);
    expect((await actionsAt(bare)).apply("Declare `dim N`")).toBe(`dim N\n/// Doc of f.\nfn f(x: f32[N]) -> f32 = sum(x)\n`);
  });

  it("adds a missing import from models/std", async () => {
    const doc = await open(`dim D\nblock M {\n  l = Lin<|>ear(D, D)\n}\n`);
    expect((await actionsAt(doc)).apply('Import "std/nn" (defines `Linear`)')).toBe(`import "std/nn"\ndim D\nblock M {\n  l = Linear(D, D)\n}\n`);
  });

  it("inserts None to broadcast", async () => {
    const doc = await open(`dim G, T\nfn f(r: f32[G, T], a: f32[G]) -> f32[G, T] = r <|>* a\n`);
    expect((await actionsAt(doc)).apply("Insert `None` to broadcast: a[:, None]")).toContain("= r * a[:, None]");
    const wrapped = await open(`dim G, T\nfn f(r: f32[G, T], a: f32[G]) -> f32[G, T] = r <|>* (a + a)\n`);
    expect((await actionsAt(wrapped)).apply("Insert `None` to broadcast: x[:, None]")).toContain("= r * (a + a)[:, None]");
  });

  it("annotates a binding and an inferred return type", async () => {
    const doc = await open(`dim B, D\nfn f(x: f32[B, D]) {\n  let <|>y = sum(x, D)\n  return y\n}\n`);
    expect((await actionsAt(doc)).apply("Annotate `y: f32[B]`")).toContain("let y: f32[B] = sum(x, D)");
    const header = await open(`dim B, D\nfn <|>f(x: f32[B, D]) {\n  let y = sum(x, D)\n  return y\n}\n`);
    expect((await actionsAt(header)).apply("Annotate the return type: -> f32[B]")).toContain("fn f(x: f32[B, D]) -> f32[B] {");
  });
});
