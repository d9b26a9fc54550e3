// Shared by the formatter's tests: the repository's .weft files, LANGUAGE.md's code
// blocks, and a comparison of trees that ignores positions.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { languageExamples } from "../grammar/fixtures.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Every .weft file of the repository (outside node_modules), by path relative to the root. */
export function repoWeftFiles(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith(".weft")) out.set(relative(ROOT, p), readFileSync(p, "utf8"));
    }
  };
  walk(ROOT);
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The code blocks of LANGUAGE.md: from the document itself where this checkout can see it
 * (the shared design folder), and always the copies in test/grammar/fixtures.ts.
 */
export function languageBlocks(): Map<string, string> {
  const out = new Map<string, string>();
  for (const path of [join(ROOT, "shared/LANGUAGE.md"), join(ROOT, "../shared/LANGUAGE.md")]) {
    if (!existsSync(path)) continue;
    const md = readFileSync(path, "utf8");
    [...md.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].forEach((m, i) => out.set(`LANGUAGE.md block ${i + 1}`, m[1]));
    break;
  }
  for (const [name, source] of Object.entries(languageExamples)) out.set(`LANGUAGE.md example '${name}' (fixtures.ts)`, source);
  return out;
}

const POSITIONS = new Set(["span", "opSpan", "argsSpan", "pathSpan", "file"]);

/** A copy of an AST with every position removed (spans, and the file name). */
export function stripPositions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripPositions);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (!POSITIONS.has(k) && v !== undefined) out[k] = stripPositions(v);
  return out;
}
