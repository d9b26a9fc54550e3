// A Frame is the state of checking one body: its local scopes, the unifier whose variables
// it solves, where its diagnostics go, and whether it records types for hover. A fn body
// is checked once on its own (recording) and, for templates, again per instantiation
// (not recording, diagnostics collected and summarised at the call site).
import type { Ident, Span } from "../../grammar/ast.ts";
import { type Diagnostic, warning } from "../diagnostics.ts";
import { Code } from "./codes.ts";
import type { Binding, ModuleScope } from "./scope.ts";
import type { FnInfo, InstanceType, Type } from "./types.ts";
import type { Unifier } from "./unify.ts";

/** Anything the checker gives a type to: expressions, binding names, params, type annotations. */
export type TypedNode = object;

export interface FnContext {
  info: FnInfo;
  /** declared return type (instantiated), if any */
  ret?: Type;
  /** every value the body can produce: `return`s and the final expression */
  results: { type: Type; span: Span }[];
  params: Map<string, Span>;
}

export class Frame {
  private scopes: Map<string, Binding>[] = [new Map()];
  readonly recorded: [TypedNode, Type][] = [];
  /** block members and train fields may construct instances; fn bodies may not */
  allowInstances = false;

  constructor(
    readonly module: ModuleScope,
    /** call-graph node this code belongs to (a fn, block or train id) */
    readonly owner: string,
    readonly u: Unifier,
    readonly diags: Diagnostic[],
    readonly record: boolean,
    readonly self?: InstanceType,
    readonly fn?: FnContext,
  ) {}

  report(d: Diagnostic): void {
    this.diags.push(d);
  }

  rec(node: TypedNode, t: Type): Type {
    if (this.record) this.recorded.push([node, t]);
    return t;
  }

  push(): void {
    this.scopes.push(new Map());
  }

  /** Leave a scope, warning about `let`/`var` bindings never read. */
  pop(): void {
    const scope = this.scopes.pop();
    if (!scope || !this.record) return;
    for (const b of scope.values())
      if ((b.kind === "let" || b.kind === "var") && !b.used && !b.name.startsWith("_"))
        this.report(warning(Code.Unused, b.span, `\`${b.name}\` is never used`, { hint: `remove it, or name it \`_${b.name}\`` }));
  }

  declare(name: Ident, type: Type, kind: Binding["kind"], used = false): Binding {
    const b: Binding = { name: name.name, type, span: name.span, kind, used };
    this.scopes[this.scopes.length - 1].set(name.name, b);
    return b;
  }

  lookup(name: string, markUsed = true): Binding | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const b = this.scopes[i].get(name);
      if (b) {
        if (markUsed) b.used = true;
        return b;
      }
    }
    return undefined;
  }

  localNames(): string[] {
    return this.scopes.flatMap((s) => [...s.keys()]);
  }
}
