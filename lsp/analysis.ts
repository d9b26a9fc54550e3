// One checked snapshot of a document: the modules it loads, the checker's result, and the
// indexes the editor features share (declarations by span, names by declaration). Built once
// per document version; every request against that version reads it. The indexes are built
// on first use, so publishing diagnostics after an edit pays only for parse and check.
import type { CallExpr, Ident, Item, Program, Span } from "../grammar/ast.ts";
import { check, type CheckResult } from "../compiler/check/index.ts";
import type { IncrementalChecker } from "../compiler/check/incremental.ts";
import { loadModules, type LoadedModules, type ModuleHost } from "../compiler/modules.ts";
import type { ModuleLoader } from "./modules.ts";
import { type Declaration, declarations, isIdent, itemDeclarations, spanKey, walk } from "./syntax.ts";

export interface Index {
  /** declarations of every loaded module, by the span of the declared name */
  decls: Map<string, Declaration>;
  /** every name in every loaded module, with the declaration it refers to (when known) */
  uses: Map<Ident, Span | undefined>;
}

/**
 * What one item declares (by the start of the declared name, counted from the item's start,
 * so that it holds wherever the item moves), the names of its named arguments (`beta` in
 * `f(x, beta=0.5)`) with their calls, and the import aliases it qualifies types with
 * (`L.Linear`). Found once per item node: an unchanged item keeps its node from one version
 * of the document to the next.
 */
interface ItemIndex {
  decls: Map<number, Declaration>;
  namedArgs: Map<Ident, CallExpr>;
  qualifiers: Set<Ident>;
}

const itemIndexes = new WeakMap<Item, ItemIndex>();

function itemIndex(item: Item): ItemIndex {
  let x = itemIndexes.get(item);
  if (!x) {
    x = { decls: new Map(), namedArgs: new Map(), qualifiers: new Set() };
    for (const d of itemDeclarations(item)) x.decls.set(d.name.span.start - item.span.start, d);
    for (const n of walk(item)) {
      if (!("kind" in n)) continue;
      if (n.kind === "call") for (const a of (n as CallExpr).args) if (a.name && a.name.name !== "") x.namedArgs.set(a.name, n as CallExpr);
      if (n.kind === "namedType" && "qualifier" in n && isIdent(n.qualifier)) x.qualifiers.add(n.qualifier);
    }
    itemIndexes.set(item, x);
  }
  return x;
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

  /** Every declaration and every use, of every loaded module (for references, rename). */
  get index(): Index {
    if (!this.built) {
      const decls = new Map<string, Declaration>();
      const uses = new Map<Ident, Span | undefined>();
      for (const mod of this.modules.modules.values()) {
        for (const d of declarations(mod.program)) decls.set(spanKey(d.name.span), d);
        for (const n of walk(mod.program)) if (isIdent(n) && n.name !== "" && !decls.has(spanKey(n.span))) uses.set(n, this.targetOf(n));
      }
      this.built = { decls, uses };
    }
    return this.built;
  }

  /** The top-level item of a loaded module that a span lies in. */
  private itemAt(span: Span): Item | undefined {
    const items = this.modules.modules.get(span.file)?.program.items;
    if (!items?.length) return undefined;
    let lo = 0;
    let hi = items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (items[mid].span.start <= span.start) lo = mid;
      else hi = mid - 1;
    }
    const it = items[lo];
    return it.span.start <= span.start && span.start <= it.span.end ? it : undefined;
  }

  /** The declaration a name refers to; a declared name refers to itself. */
  targetOf(ident: Ident): Span | undefined {
    const d = this.checked.definitions.get(ident);
    if (d) return d;
    if (this.declarationAt(ident.span)) return ident.span;
    const alias = () => this.checked.scopes.get(ident.span.file)?.aliases.get(ident.name)?.span;
    // the checker does not record uses of import aliases (`L.Linear`, `L.f(x)`): resolve them here
    if (this.checked.types.get(ident)?.kind === "module") return alias();
    const item = this.itemAt(ident.span);
    if (!item) return undefined;
    const x = itemIndex(item);
    const call = x.namedArgs.get(ident);
    if (call) return this.parameterOf(call, ident.name);
    return x.qualifiers.has(ident) ? alias() : undefined;
  }

  /** The call a named argument's name belongs to, if it is one. */
  namedArgCall(ident: Ident): CallExpr | undefined {
    const item = this.itemAt(ident.span);
    return item && itemIndex(item).namedArgs.get(ident);
  }

  /** The declaration of the parameter (a constructor's: the block's dim) that a call's named argument sets. */
  private parameterOf(call: CallExpr, name: string): Span | undefined {
    const target = this.checked.calls.get(call);
    if (!target || target.kind === "builtin") return undefined;
    if (target.kind === "construct") return target.block.node.dims.find((d) => d.name === name)?.span;
    const fn = target.kind === "fn" ? target.fn : target.block.forward;
    return fn?.node.params.find((p) => p.name.name === name)?.name.span;
  }

  /** The source text of a span in any loaded module. */
  textOf(span: Span): string {
    return this.modules.modules.get(span.file)?.source.slice(span.start, span.end) ?? "";
  }

  declarationAt(span: Span): Declaration | undefined {
    const item = this.itemAt(span);
    const d = item && itemIndex(item).decls.get(span.start - item.span.start);
    return d && d.name.span.end === span.end && d.name.span.file === span.file ? d : undefined;
  }
}

/**
 * Load (through `loader`, which re-parses only what changed, or from scratch) and check
 * (through `checker`, which re-checks only what an edit affected, or from scratch). An
 * incremental checker updates its result in place: the Analysis it made before is then stale.
 */
export function analyse(file: string, version: number, text: string, host: ModuleHost, dims: Record<string, number>, loader?: ModuleLoader, checker?: IncrementalChecker): Analysis {
  const modules = loader ? loader.load(file, host) : loadModules(file, host);
  return new Analysis(file, version, text, modules, checker ? checker.check(modules) : check(modules, { dims }));
}

export function emptySpan(file: string): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}
