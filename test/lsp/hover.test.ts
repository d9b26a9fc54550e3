// Hover: inferred types with their shapes for expressions and bindings, block summaries
// (dims, parameter count, doc), fn signatures, built-ins (signature and doc), what `_` became
// — also in a file that does not parse.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LspClient } from "./client.ts";

let lsp: LspClient;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

const SRC = `import "std/nn"
dim B, T = 64, D = 128

/// A pre-norm feed-forward layer with a residual.
block Lay<|>er(D, F) {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  fn (x: f32[B, T, D]) -> f32[B, T, D] = x + ff(l<|>n(x))
}

fn step(x: f32[B, T, D], m: Layer) -> f32[B, T, D] {
  let k<|>1 = m(x)
  let s = sof<|>tmax(x @ transpose(k1, [B, D, T]), -1)
  let f: f32[B, T, <|>_] = s * 2.0
  return x <|>+ s @ k1
}

fn use_it(x: f32[B, T, <|>D], m: Layer) -> f32[B, T, D] = st<|>ep(x, m)
`;

describe("hover", async () => {
  it("shows a block's dims, parameter count and doc", async () => {
    const doc = await lsp.open("/virtual/hover/a.weft", SRC);
    const text = await lsp.hoverText(doc, doc.at[0]);
    expect(text).toContain("block Layer(D, F)");
    expect(text).toContain("dims: `D`, `F`");
    // LayerNorm: 2·D; Ffn: D·F + F + F·D + D
    expect(text).toContain("parameters: `2*D*F+3*D+F`");
    expect(text).toContain("A pre-norm feed-forward layer with a residual.");
  });

  it("shows a member's instance type", async () => {
    const doc = await lsp.open("/virtual/hover/b.weft", SRC);
    expect(await lsp.hoverText(doc, doc.at[1])).toContain("ln: LayerNorm(D)");
  });

  it("shows a let binding's inferred type with its shape", async () => {
    const doc = await lsp.open("/virtual/hover/c.weft", SRC);
    const text = await lsp.hoverText(doc, doc.at[2]);
    expect(text).toContain("let k1: f32[B, T, D]  // [?, 64, 128]");
  });

  it("shows a built-in's signature, doc and the type at this call", async () => {
    const doc = await lsp.open("/virtual/hover/d.weft", SRC);
    const text = await lsp.hoverText(doc, doc.at[3]);
    expect(text).toContain("softmax(x, axis?) -> same type");
    expect(text).toContain("Softmax along an axis");
    expect(text).toContain("here: `f32[B, T, T]  // [?, 64, 64]`");
  });

  it("shows what an inferred `_` dim became", async () => {
    const doc = await lsp.open("/virtual/hover/e.weft", SRC);
    expect(await lsp.hoverText(doc, doc.at[4])).toContain("_ = T");
  });

  it("shows the type of an operator's expression", async () => {
    const doc = await lsp.open("/virtual/hover/f.weft", SRC);
    expect(await lsp.hoverText(doc, doc.at[5])).toContain("f32[B, T, D]");
  });

  it("shows a dim's default and a fn's signature", async () => {
    const doc = await lsp.open("/virtual/hover/g.weft", SRC);
    expect(await lsp.hoverText(doc, doc.at[6])).toContain("dim D = 128");
    expect(await lsp.hoverText(doc, doc.at[7])).toContain("fn step(x: f32[B, T, D], m: Layer) -> f32[B, T, D]");
  });

  it("works in a file that does not parse", async () => {
    const doc = await lsp.open("/virtual/hover/broken.weft", `dim B, D = 16
fn f(x: f32[B, D]) -> f32[B, D] {
  let y<|> = tanh(x)
  let z = (x +
  return x<|> *

}
`);
    expect(await lsp.hoverText(doc, doc.at[0])).toContain("let y: f32[B, D]  // [?, 16]");
    expect(await lsp.hoverText(doc, doc.at[1])).toContain("x: f32[B, D]");
  });
});
