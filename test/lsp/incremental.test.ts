// The language server's incremental parse must give exactly what a whole-file `parse` gives:
// on every `.weft` file of the repository, and along random sequences of edits to them (each
// version parsed by the same IncrementalParser, so chunks are reused and shifted).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse } from "../../grammar/index.ts";
import { loadModules } from "../../compiler/modules.ts";
import { IncrementalParser, chunksOf } from "../../lsp/incremental.ts";
import { ModuleLoader } from "../../lsp/modules.ts";
import { ROOT } from "./client.ts";

function weftFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === "node_modules" || e.name.startsWith(".") ? [] : weftFiles(join(dir, e.name))) : e.name.endsWith(".weft") ? [join(dir, e.name)] : [],
  );
}

const files = weftFiles(ROOT).map((f) => ({ name: f.slice(ROOT.length + 1), text: readFileSync(f, "utf8") }));
const show = (r: { program: unknown; diagnostics: unknown }) => JSON.stringify(r, null, 1);

describe("incremental parse", () => {
  it("cuts files into items", () => {
    const text = `import "std/nn"\n/// doc\n\n/// more\nfn f() -> f32 = 1.0\nblock B {\n  fn g() -> f32 = 2.0\n}\n// plain\ndim D\n`;
    expect(chunksOf(text).map((c) => text.slice(c.start, c.end).split("\n")[0])).toEqual(['import "std/nn"', "/// doc", "block B {", "dim D"]);
  });

  it.each(files.map((f) => [f.name, f.text]))("matches a whole-file parse of %s", (name, text) => {
    expect(show(new IncrementalParser(name).parse(text))).toBe(show(parse(text, name)));
  });

  it("matches a whole-file parse along random edits, reusing unchanged items", () => {
    const alphabet = ["a", "x", " ", "\n", "{", "}", "(", ")", "[", "]", '"', "/", "*", ",", "=", "+", "fn ", "let ", "block ", "dim ", "///", "1"];
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 3 }), ins: fc.constantFrom(...alphabet) });
    let reused = 0;
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.array(edit, { minLength: 1, maxLength: 6 }), (file, edits) => {
        const inc = new IncrementalParser(file.name);
        let text = file.text;
        inc.parse(text);
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.ins + text.slice(at + e.del);
          const got = inc.parse(text);
          if (inc.stats.parsed < inc.stats.chunks) reused++;
          expect(show(got)).toBe(show(parse(text, file.name)));
        }
      }),
      { numRuns: 300, seed: 7 },
    );
    expect(reused).toBeGreaterThan(100);
  });
});

describe("the server's module loader", () => {
  it.each(files.map((f) => [f.name]))("loads %s as compiler/modules.ts does", (name) => {
    const host = { modelsDir: join(ROOT, "models"), readFile: (p: string) => { try { return readFileSync(p, "utf8"); } catch { return undefined; } } };
    const entry = join(ROOT, name);
    const loader = new ModuleLoader();
    loader.load(entry, host); // a second load reuses every chunk
    expect(JSON.stringify(loader.load(entry, host), replacer)).toBe(JSON.stringify(loadModules(entry, host), replacer));
  });
});

/** Maps as arrays, for comparing loaded modules. */
function replacer(_: string, v: unknown): unknown {
  return v instanceof Map ? [...v.entries()] : v;
}
