// The runtime runs a bundle without the compiler: no file under runtime/ may import
// anything outside runtime/ by relative path (type-only imports included). Packages
// (webgpu, node:*) are fine.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const runtimeDir = join(root, "runtime");

/** Every module specifier in a TS source: import/export ... from, import "x", import("x"), typeof import("x"), require("x"). */
function specifiers(src: string): string[] {
  const out: string[] = [];
  const re = /\b(?:from|import|require)\s*\(?\s*["']([^"']+)["']/g;
  for (const m of src.matchAll(re)) out.push(m[1]);
  return out;
}

/** Imports in `file` that leave runtime/. */
function escapes(file: string, src: string): string[] {
  return specifiers(src).filter((s) => {
    if (s.startsWith("/") || /^[a-zA-Z]:[\\/]/.test(s) || s.startsWith("file:")) return true;
    if (!s.startsWith(".")) return false; // a package or node: builtin
    const rel = relative(runtimeDir, resolve(dirname(file), s));
    return rel === ".." || rel.startsWith(`..${sep}`);
  });
}

describe("runtime/ is self-contained", () => {
  it("finds the import forms it must catch", () => {
    const f = join(runtimeDir, "webgpu", "x.ts");
    const src = `
      import type { Graph } from "../../compiler/ir.ts";
      export { x } from '../../grammar/ast.ts';
      const m = await import("../../compiler/codegen/wgsl.ts");
      type T = typeof import("../../cli/main.ts");
      import "../../compiler/side-effect.ts";
      import { ok } from "../bundle.ts";
      import { create } from "webgpu";`;
    expect(escapes(f, src)).toEqual([
      "../../compiler/ir.ts",
      "../../grammar/ast.ts",
      "../../compiler/codegen/wgsl.ts",
      "../../cli/main.ts",
      "../../compiler/side-effect.ts",
    ]);
  });

  it("no runtime/**/*.ts imports from compiler/, grammar/ or anywhere outside runtime/", () => {
    const files = (readdirSync(runtimeDir, { recursive: true }) as string[])
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join(runtimeDir, f));
    expect(files.length).toBeGreaterThanOrEqual(4);
    const bad = files.flatMap((f) => escapes(f, readFileSync(f, "utf8")).map((s) => `${relative(root, f)} imports "${s}"`));
    expect(bad, bad.join("\n")).toEqual([]);
  });
});
