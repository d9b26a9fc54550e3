// Loading a document and its imports for the editor: compiler/modules.ts's `loadModules`,
// with each file parsed incrementally (lsp/incremental.ts) instead of from scratch. The
// resolution, the order and the diagnostics are the loader's own; test/lsp/incremental.test.ts
// checks that both give the same result on every `.weft` file of the repository.
import * as path from "node:path";
import { Code } from "../compiler/check/codes.ts";
import { type Diagnostic, error, noSpan } from "../compiler/diagnostics.ts";
import { type LoadedModules, type Module, type ModuleHost, importCandidates } from "../compiler/modules.ts";
import { IncrementalParser } from "./incremental.ts";

export class ModuleLoader {
  private readonly parsers = new Map<string, IncrementalParser>();

  parser(file: string): IncrementalParser {
    let p = this.parsers.get(file);
    if (!p) this.parsers.set(file, (p = new IncrementalParser(file)));
    return p;
  }

  /** Forget a file's parses (it was closed, or went away). */
  forget(file: string): void {
    this.parsers.delete(file);
  }

  load(entryFile: string, host: ModuleHost): LoadedModules {
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
    const loading: string[] = [];
    const load = (file: string, text: string) => {
      const parsed = this.parser(file).parse(text);
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
          diagnostics.push(error(Code.ImportNotFound, item.pathSpan, `cannot find "${item.path}"`, { hint: `looked for ${tried.join(" and ")}` }));
          continue;
        }
        const at = loading.indexOf(found);
        if (at >= 0) {
          const cycle = [...loading.slice(at), found].map((f) => path.relative(path.dirname(entry), f) || f).join(" → ");
          diagnostics.push(error(Code.ImportCycle, item.pathSpan, `import cycle: ${cycle}`, { hint: "move what both files need into a third file that imports neither" }));
          continue;
        }
        if (!modules.has(found) && foundText !== undefined) load(found, foundText);
      }
      loading.pop();
    };
    load(entry, source);
    return { entry, modules, diagnostics };
  }
}
