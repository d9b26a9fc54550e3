// Signature help: the parameter under the cursor for built-ins, user fns, constructors and
// instance calls, positionally or by name, in calls that are not finished.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SignatureHelp } from "vscode-languageserver-protocol";
import { LspClient } from "./client.ts";

let lsp: LspClient;
let n = 0;
beforeAll(async () => {
  lsp = await LspClient.start();
});
afterAll(async () => {
  await lsp.stop();
});

async function help(src: string): Promise<{ label: string; active: string } | undefined> {
  const doc = await lsp.open(`/virtual/signature/f${n++}.weft`, src);
  const h: SignatureHelp | null = await lsp.signature(doc, doc.at[0]);
  if (!h) return undefined;
  const sig = h.signatures[h.activeSignature ?? 0];
  const p = sig.parameters?.[h.activeParameter ?? 0]?.label;
  return { label: sig.label, active: Array.isArray(p) ? sig.label.slice(p[0], p[1]) : String(p) };
}

const HEAD = `import "std/nn"
dim B, T, D
fn mix(a: f32[B, D], b: f32[B, D], w = 0.5) -> f32[B, D] = w * a + (1 - w) * b
`;

describe("signature help", () => {
  it("a built-in, on its second argument, in an unfinished call", async () => {
    expect(await help(`${HEAD}fn f(x: f32[B, T, D]) -> f32[B, D] = sum(x, <|>`)).toEqual({ label: "sum(x, axis?) -> x without axis", active: "axis?" });
  });

  it("a named argument selects its parameter", async () => {
    expect(await help(`${HEAD}fn f(x: f32[B, D]) -> f32[B] = std(x, unbiased=<|>true, axis=D)`)).toMatchObject({ active: "unbiased?" });
  });

  it("a user fn, with its declared types", async () => {
    expect(await help(`${HEAD}fn f(x: f32[B, D]) -> f32[B, D] = mix(x, tanh(x)<|>, w = 0.1)`)).toEqual({
      label: "mix(a: f32[B, D], b: f32[B, D], w = 0.5) -> f32[B, D]",
      active: "b: f32[B, D]",
    });
  });

  it("a block constructor, and an instance's forward", async () => {
    expect(await help(`${HEAD}block M { l = Linear(D, <|>) }`)).toEqual({ label: "Linear(I, O) -> instance of Linear", active: "O" });
    expect(await help(`${HEAD}fn f(x: f32[B, D], l: Linear) -> f32[B, D] = l(<|>`)).toEqual({ label: "l(x: f32[.., I]) -> f32[.., O]", active: "x: f32[.., I]" });
  });

  it("the innermost call, across a list argument", async () => {
    expect(await help(`${HEAD}fn f(x: f32[B, D]) -> f32[B, D] = tanh(concat([x, x], <|>`)).toMatchObject({ label: "concat(xs, axis) -> joined along axis", active: "axis" });
  });

  it("nothing outside a call", async () => {
    expect(await help(`${HEAD}fn f(x: f32[B, D]) -> f32[B, D] = x<|>`)).toBeUndefined();
  });
});
