// The checker's entry point: loaded modules in, diagnostics and types out.
//
//   const mods = loadModules("model.weft", host);
//   const { diagnostics, types } = check(mods, { dims: { D: 256 } });
//
// `diagnostics` includes the loader's (parse and import) diagnostics, sorted by file and
// position; `types` gives every expression (and binding name, param, annotation) its type.
// The language server re-checks with compiler/check/incremental.ts instead, which runs the
// same phases (`runCheck`) but skips the items an edit did not affect.
import type { BlockItem, CallExpr, FnItem, Ident, Item, Span, TrainItem } from "../../grammar/ast.ts";
import type { Diagnostic } from "../diagnostics.ts";
import type { LoadedModules } from "../modules.ts";
import { type CallTarget, Checker } from "./checker.ts";
import { Code } from "./codes.ts";
import type { TypedNode } from "./frame.ts";
import { type GlobalSym, type ModuleScope, symSpan } from "./scope.ts";
import { type TrainInfo, checkTrain } from "./train.ts";
import type { BlockInfo, DimInfo, FnInfo, Type } from "./types.ts";

export interface CheckOptions {
  /** dim values from the command line (`--dim D=256`), overriding defaults */
  dims?: Record<string, number>;
}

export interface CheckResult {
  diagnostics: Diagnostic[];
  /** the inferred type of every expression, binding name, param and annotation, by AST node */
  types: Map<TypedNode, Type>;
  /** where each name used in the program is defined (for go-to-definition) */
  definitions: Map<Ident, Span>;
  /** global dims by name, with their symbolic default and numeric value when known */
  dims: Map<string, DimInfo>;
  blocks: Map<BlockItem, BlockInfo>;
  fns: Map<FnItem, FnInfo>;
  trains: Map<TrainItem, TrainInfo>;
  /** what each call expression calls (a built-in, a fn, an instance's forward, a constructor) */
  calls: Map<CallExpr, CallTarget>;
  /** what each module sees, by file */
  scopes: Map<string, ModuleScope>;
}

export function check(mods: LoadedModules, opts: CheckOptions = {}): CheckResult {
  return runCheck(new Checker(sourcesOf(mods)), mods, opts);
}

export function sourcesOf(mods: LoadedModules): Map<string, string> {
  return new Map([...mods.modules.values()].map((m) => [m.file, m.source]));
}

/** What an item's earlier check left, when it need not be checked again. */
export interface Reused {
  block?: BlockInfo;
  /** a block's fns, or a top-level fn, by node */
  fns: Map<FnItem, FnInfo>;
  train?: TrainInfo;
}

/** How `runCheck` reuses earlier work (compiler/check/incremental.ts); the default reuses none. */
export interface CheckPlan {
  /** the table of a module's own names (the incremental checker watches which are looked up) */
  names(file: string): Map<string, GlobalSym>;
  /** an item whose earlier check still holds: its summaries, already checked */
  reused(item: Item): Reused | undefined;
  /** run one item's check */
  checking(item: Item, run: () => void): void;
  /** before recursion is looked for: the call-graph edges of reused items go back in */
  beforeRecursion(ck: Checker): void;
  /** the diagnostics of reused items */
  reusedDiagnostics(): Diagnostic[];
}

const FRESH: CheckPlan = {
  names: () => new Map(),
  reused: () => undefined,
  checking: (_, run) => run(),
  beforeRecursion: () => {},
  reusedDiagnostics: () => [],
};

/** The items `declareItems` found, in checking order (a name defined twice is checked once). */
export interface Declared {
  blocks: BlockInfo[];
  fns: FnInfo[];
  trains: { item: TrainItem; scope: ModuleScope }[];
}

/** The checker's phases: module scopes, item declarations, dims, then every item's check. */
export function runCheck(ck: Checker, mods: LoadedModules, opts: CheckOptions, plan: CheckPlan = FRESH): CheckResult {
  buildScopes(ck, mods, plan);
  const declared = declareItems(ck, mods, plan);
  const trains = new Map<TrainItem, TrainInfo>();

  ck.guard(noSpanOf(mods.entry), "dims", () => ck.resolveDims(opts.dims ?? {}));
  for (const b of declared.blocks) {
    if (plan.reused(b.node)) continue;
    plan.checking(b.node, () => {
      ck.guard(b.node.span, `block ${b.name}`, () => ck.resolveBlock(b));
      for (const fn of [...(b.forward ? [b.forward] : []), ...b.fns.values()]) ck.guard(fn.node.span, `${b.name}.${fn.name}`, () => ck.checkFn(fn));
    });
  }
  for (const fn of declared.fns) if (!plan.reused(fn.node)) plan.checking(fn.node, () => ck.guard(fn.node.span, `fn ${fn.name}`, () => ck.checkFn(fn)));
  for (const { item, scope } of declared.trains) {
    const old = plan.reused(item)?.train;
    if (old) trains.set(item, old);
    else plan.checking(item, () => ck.guard(item.span, `train ${item.name.name}`, () => void trains.set(item, checkTrain(ck, item, scope))));
  }
  plan.beforeRecursion(ck);
  ck.guard(noSpanOf(mods.entry), "recursion", () => ck.reportRecursion());

  const order = [...mods.modules.keys()];
  const rank = (d: Diagnostic) => {
    const i = order.indexOf(d.span.file);
    return i < 0 ? order.length : i;
  };
  const diagnostics = dedupe([...mods.diagnostics, ...ck.diagnostics, ...plan.reusedDiagnostics()]).sort((a, b) => rank(a) - rank(b) || a.span.start - b.span.start);
  return { diagnostics, types: ck.types, definitions: ck.definitions, dims: ck.dims, blocks: ck.blocks, fns: ck.fns, trains, calls: ck.calls, scopes: ck.scopes };
}

/** Each module's scope: its import aliases, and the files it sees unqualified. */
export function buildScopes(ck: Checker, mods: LoadedModules, plan: CheckPlan = FRESH): void {
  const direct = new Map<string, string[]>();
  for (const mod of mods.modules.values()) {
    const scope: ModuleScope = { file: mod.file, names: plan.names(mod.file), aliases: new Map(), opens: [] };
    for (const imp of mod.imports) {
      const alias = imp.item.alias;
      if (alias) {
        const prev = scope.aliases.get(alias.name);
        if (prev) ck.err(undefined, Code.Duplicate, alias.span, `import alias \`${alias.name}\` is used twice`, { related: [{ span: prev.span, message: "first used here" }] });
        else scope.aliases.set(alias.name, { file: imp.file, span: alias.span });
      } else if (imp.file && imp.file !== mod.file && !scope.opens.includes(imp.file)) scope.opens.push(imp.file);
    }
    ck.scopes.set(mod.file, scope);
    direct.set(mod.file, [...scope.opens]);
  }

  // an unaliased import brings in what its file sees unqualified too (as the lowering does)
  for (const scope of ck.scopes.values()) {
    const seen = new Set<string>([scope.file]);
    const queue = [...scope.opens];
    scope.opens = [];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      scope.opens.push(file);
      queue.push(...direct.get(file)!);
    }
  }
}

/** Give every item its summary (reused ones keep theirs) and its name in its module. */
export function declareItems(ck: Checker, mods: LoadedModules, plan: CheckPlan = FRESH): Declared {
  const declare = (scope: ModuleScope, name: Ident, sym: GlobalSym) => {
    const prev = scope.names.get(name.name);
    if (prev) {
      ck.err(undefined, Code.Duplicate, name.span, `\`${name.name}\` is already defined in this file`, { related: [{ span: symSpan(prev), message: "first defined here" }] });
      return false;
    }
    scope.names.set(name.name, sym);
    return true;
  };

  const out: Declared = { blocks: [], fns: [], trains: [] };
  for (const mod of mods.modules.values()) {
    const scope = ck.scopes.get(mod.file)!;
    for (const item of mod.program.items) {
      ck.guard(item.span, item.kind, () => {
        switch (item.kind) {
          case "import":
            return;
          case "dim":
            for (const d of item.decls) ck.declareDim(d, scope);
            return;
          case "block": {
            const old = plan.reused(item);
            const id = `block:${mod.file}:${item.name.name}`;
            const b: BlockInfo = old?.block ?? {
              id,
              name: item.name.name,
              node: item,
              file: mod.file,
              dims: item.dims.map((d) => ({ kind: "sym", key: `${id}.${d.name}`, name: d.name })),
              params: new Map(),
              subs: new Map(),
              fns: new Map(),
              state: "new",
            };
            ck.nameOf(id, item.name.name);
            if (declare(scope, item.name, { kind: "block", info: b })) out.blocks.push(b);
            ck.blocks.set(item, b);
            for (const m of item.members) {
              if (m.kind !== "fn") continue;
              const fname = m.name?.name ?? "forward";
              const fid = `fn:${mod.file}:${item.name.name}.${fname}`;
              const info = old?.fns.get(m) ?? newFn(fid, fname, m, mod.file, b);
              ck.nameOf(fid, m.name ? `${item.name.name}.${fname}` : `${item.name.name} (forward)`);
              ck.fns.set(m, info);
              if (!m.name) {
                if (b.forward && b.forward !== info)
                  ck.err(undefined, Code.Duplicate, m.span, `block ${b.name} has two unnamed (forward) fns`, { related: [{ span: b.forward.node.span, message: "the first one" }] });
                else b.forward = info;
              } else if (!b.fns.has(fname)) b.fns.set(fname, info);
            }
            return;
          }
          case "fn": {
            if (!item.name) return; // the parser reports a top-level fn without a name
            const fid = `fn:${mod.file}:${item.name.name}`;
            const info = plan.reused(item)?.fns.get(item) ?? newFn(fid, item.name.name, item, mod.file);
            ck.nameOf(fid, item.name.name);
            ck.fns.set(item, info);
            if (declare(scope, item.name, { kind: "fn", info })) out.fns.push(info);
            return;
          }
          case "train":
            declare(scope, item.name, { kind: "train", item });
            out.trains.push({ item, scope });
            return;
        }
      });
    }
  }
  return out;
}

function newFn(id: string, name: string, node: FnItem, file: string, owner?: BlockInfo): FnInfo {
  return { id, name, node, file, owner, state: "new", bodyErrors: false };
}

function noSpanOf(file: string): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}

/** The same message at the same place once (a signature can be reached from several paths). */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.code}|${d.span.file}|${d.span.start}|${d.span.end}|${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The brief's name for a checker type. */
export type TypeInfo = Type;
export type { CallTarget, TypedNode, TrainInfo };
export type { BlockInfo, DimInfo, FnInfo, FnSig, InstanceType, ParamInfo, TensorType, Type } from "./types.ts";
export { describe, instanceSubst, printType, substType } from "./types.ts";
export { type Atom, type Dim, dimEquals, evalDim, printDim } from "./dims.ts";
export { BUILTINS, INITS, OPTIMIZERS, SCHEDULES } from "./builtins.ts";
export type { ModuleScope } from "./scope.ts";
