// Every code block of LANGUAGE.md parses with no diagnostics, into the items it shows.
import { describe, expect, it } from "vitest";
import { parse, type FnItem, type Item } from "../../grammar/index.ts";
import { languageExamples } from "./fixtures.ts";
import { show, showStmt } from "./show.ts";

function summary(items: Item[]): string[] {
  return items.map((i) => `${i.kind} ${i.kind === "import" ? i.path : i.kind === "dim" ? i.decls.map((d) => d.name.name).join(",") : (i.name?.name ?? "")}`);
}

const expectedItems: Record<string, string[]> = {
  items: ["import std/nn", "import ./layers.weft", "dim B,T,D,H,V", "block Linear", "fn gelu_mlp", "train demo"],
  statements: ["fn f"],
  blocks: ["block Layer", "block Stack"],
  training: ["train copy_task", "train dpo"],
  rk2_gated: ["block Rk2Gated"],
  predictor_corrector: ["fn forward_pc"],
  gating: ["fn fuse", "fn moe"],
  d2po: ["fn d2po"],
  grpo: ["fn grpo"],
  gradient_matching: ["fn example_grad", "fn grad_features", "fn grad_match"],
};

describe("LANGUAGE.md examples", () => {
  for (const [name, source] of Object.entries(languageExamples)) {
    it(`${name} parses with no diagnostics`, () => {
      const { program, diagnostics } = parse(source, `${name}.weft`);
      expect(diagnostics).toEqual([]);
      expect(summary(program.items)).toEqual(expectedItems[name]);
    });
  }

  const fn = (example: string, name: string): FnItem => {
    const item = parse(languageExamples[example], "x.weft").program.items.find((i): i is FnItem => i.kind === "fn" && i.name?.name === name);
    if (!item) throw new Error(`no fn ${name}`);
    return item;
  };
  const stmts = (f: FnItem) => (f.body?.kind === "block" ? f.body.stmts.map(showStmt) : []);
  const exprBody = (f: FnItem) => (f.body && f.body.kind !== "block" ? show(f.body) : "no expression body");

  it("grpo: an if condition is followed by its block, not a record or call", () => {
    expect(stmts(fn("grpo", "grpo"))[1]).toBe(
      "let keep = (if (> sign 0) {(call cast (> a 0))} else (if (< sign 0) {(call cast (< a 0))} else {(call ones_like a)}))",
    );
  });

  it("moe: new axes and slices in an index", () => {
    expect(stmts(fn("gating", "moe"))[2]).toBe(
      "for e in 0..(call len experts) {y = (+ y (* (idx gates (: _ _ _) e None) (call (idx experts e) x)))}",
    );
  });

  it("d2po: ** with a call on the right, unary minus before a call", () => {
    const s = stmts(fn("d2po", "d2po"));
    expect(s[0]).toBe("let w = (** gamma (call positions T))");
    expect(s[3]).toBe("return (call mean (- (call log_sigmoid (* beta (paren (- rc rr))))) B)");
  });

  it("gradient matching: an expression body on the next line, and a signature without a body", () => {
    expect(exprBody(fn("gradient_matching", "example_grad"))).toBe("(call flatten (call grad (call lm_loss m x y) (. m head)))");
    expect(fn("gradient_matching", "grad_match").body).toBeUndefined();
  });
});
