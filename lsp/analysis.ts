// One checked snapshot of a document: the modules it loads, the checker's result, and the
// indexes the editor features share (declarations by span, names by declaration). Built once
// per document version; every request against that version reads it. The indexes are built
// on first use, so publishing diagnostics after an edit pays only for parse and check.
import type { Ident, Program, Span } from "../grammar/ast.ts";
import { check, type CheckResult } from "../compiler/check/index.ts";
import { loadModules, type LoadedModules, type ModuleHost } from "../compiler/modules.ts";
import type { ModuleLoader } from "./modules.ts";
import { type Declaration, declarations, isIdent, spanKey, walk } from "./syntax.ts";

export interface Index {
  /** declarations of every loaded module, by the span of the declared name */
  decls: Map<string, Declaration>;
  /** every name in every loaded module, with the declaration it refers to (when known) */
  uses: Map<Ident, Span | undefined>;
}

/** What one file declares, and the import aliases it qualifies types with (`L.Linear`). */
interface FileIndex {
  decls: Map<string, Declaration>;
  qualifiers: Map<Ident, Span>;
}

export class Analysis {
  private built?: Index;
  private readonly files = new Map<string, FileIndex>();

  constructor(
    readonly file: string,
    readonly version: number,
    readonly text: string,
    readonly modules: LoadedModules,
    readonly checked: CheckResult,
  ) {}

  /** the entry module's AST (empty when the file could not be read) */
  get program(): Program {
    return this.modules.modules.get(this.modules.entry)?.program ?? { kind: "program", file: this.file, items: [], span: emptySpan(this.file) };
  }

  /** Every declaration and every use, of every loaded module (for references, rename). */
  get index(): Index {
    if (!this.built) {
      const decls = new Map<string, Declaration>();
      const uses = new Map<Ident, Span | undefined>();
      for (const mod of this.modules.modules.values()) {
        for (const [k, d] of this.fileIndex(mod.file).decls) decls.set(k, d);
        for (const n of walk(mod.program)) if (isIdent(n) && n.name !== "" && !decls.has(spanKey(n.span))) uses.set(n, this.targetOf(n));
      }
      this.built = { decls, uses };
    }
    return this.built;
  }

  private fileIndex(file: string): FileIndex {
    let f = this.files.get(file);
    if (!f) {
      const program = this.modules.modules.get(file)?.program;
      const decls = new Map<string, Declaration>();
      const qualifiers = new Map<Ident, Span>();
      if (program) {
        for (const d of declarations(program)) decls.set(spanKey(d.name.span), d);
        const aliases = this.checked.scopes.get(file)?.aliases;
        for (const n of walk(program)) {
          if (!("kind" in n) || n.kind !== "namedType" || !("qualifier" in n) || !isIdent(n.qualifier)) continue;
          const alias = aliases?.get(n.qualifier.name);
          if (alias) qualifiers.set(n.qualifier, alias.span);
        }
      }
      this.files.set(file, (f = { decls, qualifiers }));
    }
    return f;
  }

  /** The declaration a name refers to; a declared name refers to itself. */
  targetOf(ident: Ident): Span | undefined {
    const d = this.checked.definitions.get(ident);
    if (d) return d;
    const f = this.fileIndex(ident.span.file);
    if (f.decls.has(spanKey(ident.span))) return ident.span;
    // the checker does not record uses of import aliases (`L.Linear`, `L.f(x)`): resolve them here
    if (this.checked.types.get(ident)?.kind === "module") return this.checked.scopes.get(ident.span.file)?.aliases.get(ident.name)?.span;
    return f.qualifiers.get(ident);
  }

  /** The source text of a span in any loaded module. */
  textOf(span: Span): string {
    return this.modules.modules.get(span.file)?.source.slice(span.start, span.end) ?? "";
  }

  declarationAt(span: Span): Declaration | undefined {
    return this.fileIndex(span.file).decls.get(spanKey(span));
  }
}

/** Load (through `loader`, which re-parses only what changed, or from scratch) and check. */
export function analyse(file: string, version: number, text: string, host: ModuleHost, dims: Record<string, number>, loader?: ModuleLoader): Analysis {
  const modules = loader ? loader.load(file, host) : loadModules(file, host);
  return new Analysis(file, version, text, modules, check(modules, { dims }));
}

export function emptySpan(file: string): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}
