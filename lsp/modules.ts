// Loading a document and its imports for the editor: compiler/modules.ts's `loadModules`,
// with each file parsed incrementally (lsp/incremental.ts) instead of from scratch. The
// resolution, the order and the diagnostics are the loader's own; test/lsp/incremental.test.ts
// checks that both give the same result on every `.weft` file of the repository.
import { type LoadedModules, type ModuleHost, loadModules } from "../compiler/modules.ts";
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
    return loadModules(entryFile, { ...host, parse: (text, file) => this.parser(file).parse(text) });
  }
}
