// Completion: keywords, built-ins with signatures, names in scope, members after `.`, dims
// inside type annotations, import paths — in half-written lines that do not parse.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CompletionItem } from "vscode-languageserver-protocol";
import { LspClient } from "./client.ts";

let lsp: LspClient;
let n = 0;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

/** Labels offered at the (first) marker of `src`. */
async function offered(src: string): Promise<CompletionItem[]> {
  const doc = await lsp.open(`/virtual/complete/f${n++}.weft`, src);
  return lsp.completion(doc, doc.at[0]);
}
const labels = (items: CompletionItem[]) => items.map((i) => i.label);

const HEAD = `import "std/nn"
dim B, T = 64, D = 128, F
block Layer(D, F) {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  param gain: f32[D] = ones
  fn (x: f32[B, T, D]) -> f32[B, T, D] = x + ff(ln(x)) * gain
  fn norm(x: f32[B, T, D]) -> f32[B, T, D] = ln(x)
}
`;

describe("completion", () => {
  it("offers members after `.` on a line that does not parse", async () => {
    const items = await offered(`${HEAD}
fn f(x: f32[B, T, D], m: Layer) -> f32[B, T, D] {
  let h = m.<|>
  return x
}
`);
    expect(labels(items).sort()).toEqual(["D", "F", "ff", "gain", "ln", "norm"]);
    expect(items.find((i) => i.label === "gain")?.detail).toBe("f32[m.D]");
    expect(items.find((i) => i.label === "norm")?.detail).toBe("fn Layer.norm(x: f32[B, T, D]) -> f32[B, T, D]");
  });

  it("offers members of a sub-instance and of an indexed repeat", async () => {
    const items = await offered(`${HEAD}
block Stack(L) {
  layers = repeat(L) Layer(D, F)
  fn (x: f32[B, T, D]) -> f32[B, T, D] {
    var h = x
    for i in 0..L { h = layers[i].ff.<|> }
    return h
  }
}
`);
    expect(labels(items).sort()).toEqual(["D", "F", "down", "up"]);
    expect(items.find((i) => i.label === "up")?.detail).toBe("Linear(D, F)");
  });

  it("offers an import alias's items", async () => {
    const items = await offered(`import "std/nn" as nn
block M { l = nn.<|> }
`);
    expect(labels(items)).toEqual(expect.arrayContaining(["Linear", "LayerNorm", "Ffn", "RmsNorm"]));
  });

  it("offers locals, params, globals, built-ins and keywords in an expression", async () => {
    const items = await offered(`${HEAD}
fn f(x: f32[B, T, D], m: Layer) -> f32[B, T, D] {
  let y = tanh(x)
  let z = s<|>
`);
    const l = labels(items);
    expect(l).toEqual(expect.arrayContaining(["x", "m", "y", "Layer", "B", "softmax", "sum", "let", "return", "training"]));
    expect(l).not.toContain("z");
    expect(items.find((i) => i.label === "y")?.detail).toBe("f32[B, T, D]");
    expect(items.find((i) => i.label === "softmax")?.detail).toBe("softmax(x, axis?) -> same type");
    // locals sort before built-ins
    const order = items.map((i) => i.sortText ?? i.label);
    expect(order[l.indexOf("y")] < order[l.indexOf("softmax")]).toBe(true);
  });

  it("offers block members inside a block's fn", async () => {
    const items = await offered(`${HEAD.replace("= ln(x)", "= <|>")}`);
    expect(labels(items)).toEqual(expect.arrayContaining(["ln", "ff", "gain", "norm", "x"]));
  });

  it("offers dims inside a type annotation", async () => {
    const items = await offered(`${HEAD}
block Head(H) {
  fn (x: f32[B, <|>
`);
    const l = labels(items);
    expect(l).toEqual(expect.arrayContaining(["B", "T", "D", "F", "H", "_", ".."]));
    expect(l).not.toContain("softmax");
    expect(items.find((i) => i.label === "T")?.detail).toBe("dim T = 64");
  });

  it("offers dtypes and blocks after `:` in a parameter list", async () => {
    const l = labels(await offered(`${HEAD}
fn g(x: f32[B, D], m: <|>
`));
    expect(l).toEqual(expect.arrayContaining(["f32", "i32", "Layer", "Linear", "repeat"]));
    expect(l).not.toContain("softmax");
  });

  it("offers item keywords at the top level", async () => {
    expect(labels(await offered(`dim B\n<|>\n`))).toEqual(["import", "dim", "block", "fn", "train"]);
  });

  it("offers import paths from the models folder", async () => {
    const items = await offered(`import "st<|>\n`);
    expect(labels(items)).toContain("std/nn");
    expect(items.find((i) => i.label === "std/nn")?.textEdit).toMatchObject({ newText: "std/nn" });
  });

  it("offers train fields and optimizers in a train job", async () => {
    const fields = labels(await offered(`${HEAD}
train t {
  model = Layer(D, F)
  <|>
}
`));
    expect(fields).toEqual(expect.arrayContaining(["loss", "data", "optimizer", "steps"]));
    expect(fields).not.toContain("model");
    expect(labels(await offered(`train t {\n  optimizer = <|>\n}\n`))).toEqual(expect.arrayContaining(["adamw", "sgd"]));
  });

  it("offers named arguments of the built-in being called", async () => {
    expect(labels(await offered(`${HEAD}
fn f(x: f32[B, T, D]) -> f32 = std(x, D, <|>
`))).toContain("unbiased=");
  });

  it("offers nothing inside a comment", async () => {
    expect(await offered(`dim B\n// B.<|>\n`)).toEqual([]);
  });
});
