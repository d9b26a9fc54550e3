// One checked snapshot of a document: the modules it loads, the checker's result, and the
// indexes the editor features share (declarations by span, names by declaration). Built once
// per document version; every request against that version reads it. The indexes are built
// on first use, so publishing diagnostics after an edit pays only for parse and check.
import type { Ident, Program, Span } from "../grammar/ast.ts";
import { check, type CheckResult } from "../compiler/check/index.ts";
import { loadModules, type LoadedModules, type ModuleHost } from "../compiler/modules.ts";
import { type Declaration, declarations, isIdent, spanKey, walk } from "./syntax.ts";

export interface Index {
  /** declarations of every loaded module, by the span of the declared name */
  decls: Map<string, Declaration>;
  /** every name in every loaded module, with the declaration it refers to (when known) */
  uses: Map<Ident, Span | undefined>;
}

export class Analysis {
  private built?: Index;

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

  get index(): Index {
    return (this.built ??= buildIndex(this.modules, this.checked));
  }

  /** The declaration a name refers to; a declared name refers to itself. */
  targetOf(ident: Ident): Span | undefined {
    const { decls, uses } = this.index;
    return decls.has(spanKey(ident.span)) ? ident.span : uses.get(ident);
  }

  /** The source text of a span in any loaded module. */
  textOf(span: Span): string {
    return this.modules.modules.get(span.file)?.source.slice(span.start, span.end) ?? "";
  }

  declarationAt(span: Span): Declaration | undefined {
    return this.index.decls.get(spanKey(span));
  }
}

export function analyse(file: string, version: number, text: string, host: ModuleHost, dims: Record<string, number>): Analysis {
  const modules = loadModules(file, host);
  return new Analysis(file, version, text, modules, check(modules, { dims }));
}

function buildIndex(modules: LoadedModules, checked: CheckResult): Index {
  const decls = new Map<string, Declaration>();
  const uses = new Map<Ident, Span | undefined>();
  for (const mod of modules.modules.values()) {
    for (const d of declarations(mod.program)) decls.set(spanKey(d.name.span), d);
    const aliases = checked.scopes.get(mod.file)?.aliases;
    for (const n of walk(mod.program)) {
      // the checker does not record uses of import aliases (`L.Linear`, `L.f(x)`): resolve them here
      if ("kind" in n && n.kind === "namedType" && "qualifier" in n && isIdent(n.qualifier)) {
        const alias = aliases?.get(n.qualifier.name);
        if (alias) uses.set(n.qualifier, alias.span);
      }
      if (!isIdent(n) || n.name === "" || uses.has(n)) continue;
      let target = checked.definitions.get(n);
      if (!target && checked.types.get(n)?.kind === "module") target = aliases?.get(n.name)?.span;
      uses.set(n, target);
    }
  }
  return { decls, uses };
}

export function emptySpan(file: string): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}
