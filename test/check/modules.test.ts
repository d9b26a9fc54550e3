// Loading a program: import resolution, missing files, cycles, and names across files.
import { describe, expect, it } from "vitest";
import { importCandidates, loadModules } from "../../compiler/modules.ts";
import { checkFiles } from "./harness.ts";

const nn = `block Linear(I, O) {
  param w: f32[I, O] = glorot
  fn (x: f32[.., I]) -> f32[.., O] = x @ w
}
`;

describe("import resolution", () => {
  it("a bare path is looked up in the models folder first, then next to the file", () => {
    expect(importCandidates("std/nn", "src/main.weft", "models")).toEqual(["models/std/nn.weft", "src/std/nn.weft"]);
  });

  it("an explicitly relative path is looked up next to the file first", () => {
    expect(importCandidates("./layers.weft", "src/main.weft", "models")).toEqual(["src/layers.weft", "models/layers.weft"]);
  });

  it("loads the entry and its imports, in import order, with their resolved files", () => {
    const files: Record<string, string> = {
      "src/main.weft": 'import "std/nn"\nimport "./layers" as L\n',
      "models/std/nn.weft": nn,
      "src/layers.weft": "dim D\n",
    };
    const m = loadModules("src/main.weft", { readFile: (p) => files[p], modelsDir: "models" });
    expect(m.diagnostics).toEqual([]);
    expect([...m.modules.keys()]).toEqual(["src/main.weft", "models/std/nn.weft", "src/layers.weft"]);
    expect(m.modules.get("src/main.weft")!.imports.map((i) => i.file)).toEqual(["models/std/nn.weft", "src/layers.weft"]);
  });

  it("a file imported twice is loaded once", () => {
    const files: Record<string, string> = { "main.weft": 'import "./a"\nimport "./b"\n', "a.weft": 'import "./b"\n', "b.weft": "dim D\n" };
    const m = loadModules("main.weft", { readFile: (p) => files[p], modelsDir: "models" });
    expect([...m.modules.keys()]).toEqual(["main.weft", "a.weft", "b.weft"]);
    expect(m.diagnostics).toEqual([]);
  });

  it("a missing entry file is a diagnostic, and a throwing host is treated as a missing file", () => {
    const m = loadModules("nope.weft", {
      readFile: () => {
        throw new Error("EACCES");
      },
      modelsDir: "models",
    });
    expect(m.diagnostics.map((d) => [d.code, d.message])).toEqual([["W0104", "cannot read nope.weft"]]);
  });

  it("includes the parser's diagnostics", () => {
    const m = loadModules("main.weft", { readFile: (p) => (p === "main.weft" ? "fn f( -> \n" : undefined), modelsDir: "models" });
    expect(m.diagnostics.some((d) => d.code.startsWith("W000"))).toBe(true);
  });
});

describe("names across files", () => {
  it("an unaliased import's names are visible unqualified; an alias qualifies them", () => {
    const r = checkFiles({
      "main.weft": `import "std/nn"
import "./mine" as M
dim B, D
fn f(x: f32[B, D], a: Linear, b: M.Gate) -> f32[B, D] = M.scale(b(a(x)))
block Top {
  a = Linear(D, D)
  g = M.Gate(D)
  fn (x: f32[B, D]) -> f32[B, D] = f(x, a, g)
}`,
      "models/std/nn.weft": nn,
      "mine.weft": `dim B, D
block Gate(D) { fn (x: f32[B, D]) -> f32[B, D] = sigmoid(x) * x }
fn scale(x: f32[B, D]) -> f32[B, D] = 0.5 * x`,
    });
    expect(r.report()).toBe("");
    expect(r.typeOf("M.scale(b(a(x)))")).toBe("f32[B, D]");
  });

  it("an unaliased import passes on what its file imports unaliased; an aliased one does not", () => {
    const r = checkFiles({
      "main.weft": 'import "./a"\ndim D\nfn f(x: f32[D]) -> f32[D] = h(g(x))\n',
      "a.weft": 'import "./b"\nimport "./c" as C\n',
      "b.weft": "dim D\nfn g(x: f32[D]) -> f32[D] = x\n",
      "c.weft": "dim D\nfn h(x: f32[D]) -> f32[D] = x\n",
    });
    expect(r.errors.map((d) => [d.code, d.message])).toEqual([["W0101", "unknown name `h`"]]);
  });

  it("a dim must be declared in the file or come with an import", () => {
    const r = checkFiles({
      "main.weft": 'import "./lib" as L\ndim B, D\nfn f(x: f32[B, D]) -> f32[B, D] = L.double(x)\n',
      "lib.weft": "fn double(x: f32[.., D]) -> f32[.., D] = 2.0 * x\n",
    });
    expect(r.errors.map((d) => `${d.span.file}:${d.span.line}:${d.span.col} ${d.code}`)).toEqual(["lib.weft:1:22 W0107", "lib.weft:1:37 W0107"]);
  });

  it("dims are identified by name: a dim declared in two files is the same dim", () => {
    const r = checkFiles({
      "main.weft": 'import "./a"\ndim D = 64\nfn f(x: f32[D]) -> f32[D] = g(x)\n',
      "a.weft": "dim D = 64\nfn g(x: f32[D]) -> f32[D] = x\n",
    });
    expect(r.report()).toBe("");
  });

  it("an unknown qualified name says which file was searched", () => {
    const r = checkFiles({ "main.weft": 'import "./a" as A\ndim D\nfn f(x: f32[D]) -> f32[D] = A.h(x)\n', "a.weft": "dim D\nfn g(x: f32[D]) -> f32[D] = x\n" });
    expect(r.errors.map((d) => d.message)).toEqual(['"a.weft" has no member `h`']);
    expect(r.errors[0].hint).toBeUndefined();
  });
});
