// docs/errors.md explains every code the loader and checker emit, each with an example
// that really triggers it.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Code } from "../../compiler/check/codes.ts";
import { checkFiles } from "./harness.ts";

const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
const sections = new Map<string, string>();
for (const part of doc.split(/^## /m).slice(1)) sections.set(part.slice(0, 5), part);

/** A doc example: files split at `// file: x.weft`, options from `// --dim X=N`. */
function example(section: string): { files: Record<string, string>; dims: Record<string, number> } | undefined {
  const m = /```weft\n([\s\S]*?)```/.exec(section);
  if (!m) return undefined;
  const files: Record<string, string> = {};
  const dims: Record<string, number> = {};
  let current = "main.weft";
  for (const line of m[1].split("\n")) {
    const file = /^\/\/ file: (\S+)/.exec(line);
    const dim = /^\/\/ --dim (\w+)=(\d+)/.exec(line);
    if (file) current = file[1];
    else if (dim) dims[dim[1]] = Number(dim[2]);
    else files[current] = (files[current] ?? "") + line + "\n";
  }
  return { files, dims };
}

describe("docs/errors.md", () => {
  it("has a section for every code", () => {
    const missing = Object.values(Code).filter((c) => !sections.has(c));
    expect(missing).toEqual([]);
  });

  for (const code of Object.values(Code)) {
    if (code === Code.Internal) continue;
    it(`the example for ${code} triggers ${code}`, () => {
      const ex = example(sections.get(code) ?? "");
      expect(ex, `no example for ${code}`).toBeDefined();
      const r = checkFiles(ex!.files, "main.weft", { dims: ex!.dims });
      expect(r.diagnostics.map((d) => d.code), r.report()).toContain(code);
    });
  }
});
