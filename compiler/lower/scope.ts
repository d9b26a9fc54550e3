// Scopes of the lowering: a module's globals (its own items and what it imports) and
// nested local scopes for fn bodies.
import type { BlockItem, DimDecl, FnItem, TrainItem } from "../../grammar/ast.ts";
import type { Module } from "../modules.ts";
import type { Value } from "./values.ts";

export type { Module };

export type Global =
  | { kind: "block"; item: BlockItem; module: Module }
  | { kind: "fn"; item: FnItem; module: Module }
  | { kind: "train"; item: TrainItem; module: Module }
  | { kind: "dim"; decl: DimDecl; module: Module }
  | { kind: "namespace"; module: Module };

/** The names visible at the top level of `module`: its items, then unaliased imports' items. */
export function globalsOf(module: Module, modules: ReadonlyMap<string, Module>): Map<string, Global> {
  const out = new Map<string, Global>();
  const own = (m: Module, into: Map<string, Global>) => {
    for (const item of m.program.items) {
      if (item.kind === "block" || item.kind === "fn" || item.kind === "train") {
        if (item.name) into.set(item.name.name, { kind: item.kind, item, module: m } as Global);
      } else if (item.kind === "dim") {
        for (const decl of item.decls) into.set(decl.name.name, { kind: "dim", decl, module: m });
      }
    }
  };
  const seen = new Set<string>();
  const imported = (m: Module) => {
    for (const imp of m.imports) {
      if (!imp.file || seen.has(imp.file)) continue;
      const target = modules.get(imp.file);
      if (!target) continue;
      if (imp.item.alias) {
        out.set(imp.item.alias.name, { kind: "namespace", module: target });
        continue;
      }
      seen.add(imp.file);
      imported(target);
      own(target, out);
    }
  };
  imported(module);
  own(module, out);
  return out;
}

export interface Binding {
  value: Value;
  mutable: boolean;
}

export class Scope {
  private readonly names = new Map<string, Binding>();
  constructor(readonly parent?: Scope) {}

  lookup(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }

  define(name: string, value: Value, mutable = false): void {
    this.names.set(name, { value, mutable });
  }

  namesHere(): string[] {
    return [...this.names.keys()];
  }

  child(): Scope {
    return new Scope(this);
  }
}
