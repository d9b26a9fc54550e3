// Loading a program: the entry file and everything it imports, parsed, with import
// problems (missing files, cycles) reported at the import's path string. File access goes
// through `host`, so the CLI, the language server and tests each bring their own.
import * as path from "node:path";
import type { ImportItem, Program } from "../grammar/ast.ts";
import { parse } from "../grammar/index.ts";
import { type Diagnostic, error, noSpan } from "./diagnostics.ts";
import { Code } from "./check/codes.ts";

export interface Module {
  file: string;
  source: string;
  program: Program;
  /** each import with the file it resolved to (undefined when not found) */
  imports: { item: ImportItem; file: string | undefined }[];
}

export interface ModuleHost {
  /** the file's text, or undefined when it does not exist */
  readFile(path: string): string | undefined;
  /** the folder `import "std/nn"` is looked up in first */
  modelsDir: string;
  /** how to parse a file (default: grammar/ `parse`; the language server parses incrementally) */
  parse?: (source: string, file: string) => { program: Program; diagnostics: Diagnostic[] };
}

export interface LoadedModules {
  entry: string;
  /** by normalised file path, the entry first, then in import order */
  modules: Map<string, Module>;
  diagnostics: Diagnostic[];
}

/**
 * Where an import may live, in the order tried: a bare path (`std/nn`) is looked up in the
 * models folder, then next to the importing file; an explicitly relative one (`./x`) next to
 * the importing file first. `.weft` is added when missing.
 */
export function importCandidates(spec: string, fromFile: string, modelsDir: string): string[] {
  const file = spec.endsWith(".weft") ? spec : `${spec}.weft`;
  const local = path.normalize(path.join(path.dirname(fromFile), file));
  if (path.isAbsolute(file)) return [path.normalize(file)];
  const models = path.normalize(path.join(modelsDir, file));
  const explicit = file.startsWith("./") || file.startsWith("../");
  const order = explicit ? [local, models] : [models, local];
  return order.filter((p, i) => order.indexOf(p) === i);
}

export function loadModules(entryFile: string, host: ModuleHost): LoadedModules {
  const entry = path.normalize(entryFile);
  const modules = new Map<string, Module>();
  const diagnostics: Diagnostic[] = [];
  const read = (file: string): string | undefined => {
    try {
      return host.readFile(file);
    } catch {
      return undefined;
    }
  };

  const source = read(entry);
  if (source === undefined) {
    diagnostics.push(error(Code.ImportNotFound, noSpan(entry), `cannot read ${entry}`));
    return { entry, modules, diagnostics };
  }

  // depth-first, so that the path of files being loaded shows an import cycle
  const loading: string[] = [];
  const load = (file: string, text: string) => {
    const parsed = (host.parse ?? parse)(text, file);
    const mod: Module = { file, source: text, program: parsed.program, imports: [] };
    modules.set(file, mod);
    diagnostics.push(...parsed.diagnostics);
    loading.push(file);
    for (const item of parsed.program.items) {
      if (item.kind !== "import") continue;
      const tried = importCandidates(item.path, file, host.modelsDir);
      let found: string | undefined;
      let foundText: string | undefined;
      for (const candidate of tried) {
        if (modules.has(candidate)) {
          found = candidate;
          break;
        }
        const t = read(candidate);
        if (t !== undefined) {
          found = candidate;
          foundText = t;
          break;
        }
      }
      mod.imports.push({ item, file: found });
      if (!found) {
        diagnostics.push(
          error(Code.ImportNotFound, item.pathSpan, `cannot find "${item.path}"`, {
            hint: `looked for ${tried.join(" and ")}`,
          }),
        );
        continue;
      }
      const at = loading.indexOf(found);
      if (at >= 0) {
        const cycle = [...loading.slice(at), found].map((f) => path.relative(path.dirname(entry), f) || f).join(" → ");
        diagnostics.push(
          error(Code.ImportCycle, item.pathSpan, `import cycle: ${cycle}`, {
            hint: "move what both files need into a third file that imports neither",
          }),
        );
        continue;
      }
      if (!modules.has(found) && foundText !== undefined) load(found, foundText);
    }
    loading.pop();
  };
  load(entry, source);
  return { entry, modules, diagnostics };
}
