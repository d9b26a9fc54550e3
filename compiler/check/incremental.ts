// Re-checking after an edit, for the language server: only the items the edit can have
// affected are checked again; every other item keeps what its last check found.
//
//   const ck = new IncrementalChecker({ dims });
//   ck.check(loadedV1);   // checks everything
//   ck.check(loadedV2);   // checks the items of V2 that are new, and those that depend on them
//
// An item (a block, a fn, a train job) is known by its AST node. The language server's
// parser (lsp/incremental.ts) hands back the very same node for an item whose text did not
// change, its spans shifted in place when it moved, so "the same node" means "the same text".
// For each item the checker records what its check wrote (types, definitions, calls,
// diagnostics, call-graph edges) and which global names it looked up, with what each meant:
// the checker's lazy entry points (`resolveBlock`, `sigOf`, `checkFn`) say whose check runs,
// the result maps note who wrote each key, and the modules' tables of names note each lookup.
// An item is checked again when
//   - its node is new (its text changed, or a different parser made it),
//   - a name it looked up now means something else (an item was added, removed or renamed),
//     or a table of names it listed (for a did-you-mean hint) changed,
//   - or it depends, directly or through other items, on an item checked again:
//     dependencies are the items its looked-up names denoted, and they are followed
//     transitively, because a type can carry another item's summary (a block's sub-instance).
// Anything that changes the whole program's frame (the modules, their imports, the dim
// declarations) checks everything again, and so does a program with recursion or an
// internal error (their results depend on the order of checking). Recursion is looked for
// in the whole call graph only when a cycle could pass through an item checked now.
// test/check/incremental.test.ts checks that, along random edits, the result equals a
// from-scratch `check`.
//
// The maps of a CheckResult (types, definitions, calls) are kept from one check to the next
// and updated in place: a result is valid until the next `check` call of the same checker.
// Diagnostics of an item that only moved are shifted to where it is now.
import type { CallExpr, FnItem, Ident, Item, Span } from "../../grammar/ast.ts";
import type { Diagnostic } from "../diagnostics.ts";
import type { LoadedModules } from "../modules.ts";
import { type CallTarget, Checker } from "./checker.ts";
import { Code } from "./codes.ts";
import type { TypedNode } from "./frame.ts";
import { type CheckOptions, type CheckPlan, type CheckResult, type Reused, runCheck, sourcesOf } from "./index.ts";
import type { GlobalSym } from "./scope.ts";
import type { BlockInfo, FnInfo, FnSig, Type } from "./types.ts";

interface Edge {
  from: string;
  to: string;
  span: Span;
}

/** A diagnostic as it was, and where the item each of its spans lies in was then. */
interface Placed {
  diagnostic: Diagnostic;
  /** for the main span, then each related span */
  anchors: { item: Item; start: number; line: number }[];
}

/** What one item's check wrote and read. */
interface ItemState {
  /** undefined for what no item wrote (module scopes, declarations, dims): redone by every check */
  item?: Item;
  /** its summaries, handed back to the checker while the item need not be checked again */
  reused: Reused;
  /** keys it wrote into the result maps (types, definitions, calls) */
  keys: [object[], object[], object[]];
  diagnostics: Diagnostic[];
  placed: Placed[];
  edges: Edge[];
  /** global names looked up, by `file \0 name`, and what each meant */
  lookups: Map<string, Identity>;
  /** modules whose whole table of names it read */
  listed: Set<string>;
  /** the items its looked-up names denoted */
  deps: Set<Item>;
  /** it has a span in no item (it cannot be moved): checked every time */
  pinned: boolean;
}

function newState(item?: Item): ItemState {
  return { item, reused: { fns: new Map() }, keys: [[], [], []], diagnostics: [], placed: [], edges: [], lookups: new Map(), listed: new Set(), deps: new Set(), pinned: false };
}

/** Which item's check is running; what is written meanwhile is that item's. */
class Tracker {
  private readonly stack: ItemState[] = [];
  private mark = 0;
  readonly global = newState();
  /** the items checked by this check, with their states */
  readonly fresh = new Map<Item, ItemState>();
  diagnostics: Diagnostic[] = [];

  /** `states`: those of the items not checked again */
  constructor(private readonly states: Map<Item, ItemState>) {}

  top(): ItemState {
    return this.stack[this.stack.length - 1] ?? this.global;
  }

  enter(item: Item): void {
    this.cut();
    let st = this.states.get(item) ?? this.fresh.get(item);
    if (!st) this.fresh.set(item, (st = newState(item)));
    this.stack.push(st);
  }

  leave(): void {
    this.cut();
    this.stack.pop();
  }

  /** Diagnostics reported since the last cut are the current item's. */
  cut(): void {
    const top = this.top();
    if (this.mark < this.diagnostics.length) this.wrote(top);
    for (let i = this.mark; i < this.diagnostics.length; i++) top.diagnostics.push(this.diagnostics[i]);
    this.mark = this.diagnostics.length;
  }

  /** set when an item not checked again was written to: its reused results would be incomplete */
  strayed = false;

  wrote(st: ItemState): void {
    if (st.item && this.states.has(st.item)) this.strayed = true;
  }

  looked(file: string, name: string, sym: GlobalSym | undefined): void {
    const top = this.stack[this.stack.length - 1];
    if (!top) return;
    const key = `${file}\u0000${name}`;
    if (top.lookups.has(key)) return;
    top.lookups.set(key, identity(sym));
    const dep = sym && itemOf(sym);
    if (dep) top.deps.add(dep);
  }

  listed(file: string): void {
    this.stack[this.stack.length - 1]?.listed.add(file);
  }
}

/**
 * What a global name denotes, comparable across checks: the declaring node, "dim" for a dim
 * (a change to the dims checks everything), null for nothing.
 */
type Identity = Item | "dim" | null;

function identity(sym: GlobalSym | undefined): Identity {
  if (!sym) return null;
  switch (sym.kind) {
    case "block":
    case "fn":
      return sym.info.node;
    case "dim":
      return "dim";
    case "train":
      return sym.item;
  }
}

/** Every module's names as the checker will declare them (first wins), and the items it will check. */
interface Names {
  /** by `file \0 name` */
  table: Map<string, Identity>;
  /** each module's names, in order */
  lists: Map<string, string>;
  toCheck: Set<Item>;
  present: Set<Item>;
}

/** The declaration pass of compiler/check/index.ts (`declareItems`), reduced to what each name denotes. */
function namesOf(mods: LoadedModules): Names {
  const out: Names = { table: new Map(), lists: new Map(), toCheck: new Set(), present: new Set() };
  for (const m of mods.modules.values()) {
    const own = new Map<string, Identity>();
    const declare = (name: string, id: Identity) => {
      if (own.has(name)) return false;
      own.set(name, id);
      return true;
    };
    for (const item of m.program.items) {
      out.present.add(item);
      if (item.kind === "dim") for (const d of item.decls) declare(d.name.name, "dim");
      else if (item.kind === "block" || (item.kind === "fn" && item.name)) {
        if (declare(item.name!.name, item)) out.toCheck.add(item);
      } else if (item.kind === "train") {
        declare(item.name.name, item);
        out.toCheck.add(item);
      }
    }
    for (const [name, id] of own) out.table.set(`${m.file}\u0000${name}`, id);
    out.lists.set(m.file, [...own.keys()].join("\u0000"));
  }
  return out;
}

function itemOf(sym: GlobalSym): Item | undefined {
  switch (sym.kind) {
    case "block":
      return sym.info.node;
    case "fn":
      return sym.info.owner?.node ?? sym.info.node;
    case "train":
      return sym.item;
    case "dim":
      return undefined;
  }
}

/** A module's table of names that notes, for the running item, each name looked up. */
class WatchedNames extends Map<string, GlobalSym> {
  constructor(
    private readonly file: string,
    private readonly tracker: Tracker,
  ) {
    super();
  }

  override get(name: string): GlobalSym | undefined {
    const s = super.get(name);
    this.tracker.looked(this.file, name, s);
    return s;
  }

  override has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  override keys(): MapIterator<string> {
    this.tracker.listed(this.file);
    return super.keys();
  }

  override values(): MapIterator<GlobalSym> {
    this.tracker.listed(this.file);
    return super.values();
  }

  override entries(): MapIterator<[string, GlobalSym]> {
    this.tracker.listed(this.file);
    return super.entries();
  }

  override [Symbol.iterator](): MapIterator<[string, GlobalSym]> {
    return this.entries();
  }

  override forEach(f: (v: GlobalSym, k: string, m: Map<string, GlobalSym>) => void): void {
    this.tracker.listed(this.file);
    super.forEach(f);
  }
}

/** A result map kept across checks: each key belongs to the item whose check wrote it first. */
class OwnedMap<K extends object, V> extends Map<K, V> {
  tracker?: Tracker;
  private readonly owners = new Map<K, ItemState>();

  constructor(private readonly slot: 0 | 1 | 2) {
    super();
  }

  override set(k: K, v: V): this {
    if (this.tracker && !this.owners.has(k)) {
      const owner = this.tracker.top();
      this.tracker.wrote(owner);
      this.owners.set(k, owner);
      owner.keys[this.slot].push(k);
    }
    return super.set(k, v);
  }

  /** Forget what an item wrote. */
  release(st: ItemState): void {
    for (const k of st.keys[this.slot] as K[]) {
      if (this.owners.get(k) !== st) continue;
      this.owners.delete(k);
      this.delete(k);
    }
  }
}

interface Store {
  types: OwnedMap<TypedNode, Type>;
  definitions: OwnedMap<Ident, Span>;
  calls: OwnedMap<CallExpr, CallTarget>;
}

function newStore(): Store {
  return { types: new OwnedMap(0), definitions: new OwnedMap(1), calls: new OwnedMap(2) };
}

/** The checker, writing into the kept maps and telling the tracker whose check runs. */
class TrackingChecker extends Checker {
  declare readonly types: OwnedMap<TypedNode, Type>;
  declare readonly definitions: OwnedMap<Ident, Span>;
  declare readonly calls: OwnedMap<CallExpr, CallTarget>;

  constructor(
    sources: Map<string, string>,
    private readonly tracker: Tracker,
    store: Store,
  ) {
    super(sources);
    this.types = store.types;
    this.definitions = store.definitions;
    this.calls = store.calls;
    tracker.diagnostics = this.diagnostics;
  }

  private within<T>(item: Item, f: () => T): T {
    this.tracker.enter(item);
    try {
      return f();
    } finally {
      this.tracker.leave();
    }
  }

  override resolveBlock(b: BlockInfo): void {
    this.within(b.node, () => super.resolveBlock(b));
  }

  override sigOf(info: FnInfo): FnSig {
    return this.within(info.owner?.node ?? info.node, () => super.sigOf(info));
  }

  override checkFn(info: FnInfo): void {
    this.within(info.owner?.node ?? info.node, () => super.checkFn(info));
  }

  override addEdge(from: string, to: string, span: Span): void {
    this.tracker.top().edges.push({ from, to, span });
    super.addEdge(from, to, span);
  }

  /** An edge of an item not checked again. */
  replayEdge(e: Edge): void {
    super.addEdge(e.from, e.to, e.span);
  }
}

export class IncrementalChecker {
  private store = newStore();
  /** by item, the state of every item checked before (and not released since) */
  private states = new Map<Item, ItemState>();
  /** by item, the items whose check looked it up */
  private dependents = new Map<Item, Set<Item>>();
  private last?: { frame: unknown[]; names: Names; trouble: boolean; global: ItemState };
  /** how many items the last check had, how many it checked, and whether it checked all */
  stats = { items: 0, checked: 0, full: true };

  constructor(private readonly opts: CheckOptions = {}) {}

  check(mods: LoadedModules): CheckResult {
    const frame = frameOf(mods);
    const incremental = !!this.last && !this.last.trouble && sameFrame(this.last.frame, frame);
    const r = this.round(mods, frame, incremental);
    // recursion and internal errors depend on the order items are checked in (and an item not
    // checked again must not have been written to): then check as from scratch
    if (incremental && this.last?.trouble) return this.round(mods, frame, false);
    return r;
  }

  private round(mods: LoadedModules, frame: unknown[], incremental: boolean): CheckResult {
    const names = namesOf(mods);
    if (incremental && this.last) {
      for (const item of this.invalid(names, this.last.names)) this.forget(item);
      this.release(this.last.global);
    } else {
      this.store = newStore();
      this.states = new Map();
      this.dependents = new Map();
    }
    const valid = this.states;

    const tracker = new Tracker(valid);
    for (const m of [this.store.types, this.store.definitions, this.store.calls]) m.tracker = tracker;
    const ck = new TrackingChecker(sourcesOf(mods), tracker, this.store);
    const plan: CheckPlan = {
      names: (file) => new WatchedNames(file, tracker),
      reused: (item) => valid.get(item)?.reused,
      checking: (item, run) => {
        tracker.enter(item);
        try {
          run();
        } finally {
          tracker.leave();
        }
      },
      // a new cycle of calls goes through an item checked now: without one, the edges of the
      // others (acyclic last time) need not go back in
      beforeRecursion: (c) => {
        if (!this.mayRecurse(tracker, names)) return;
        for (const st of valid.values()) for (const e of st.edges) (c as TrackingChecker).replayEdge(e);
      },
      reusedDiagnostics: () => {
        const out: Diagnostic[] = [];
        for (const st of valid.values()) if (st.placed.length) out.push(...relocate(st));
        return out;
      },
    };
    const result = runCheck(ck, mods, this.opts, plan);
    tracker.cut();
    for (const m of [this.store.types, this.store.definitions, this.store.calls]) m.tracker = undefined;

    // what the items checked now leave for the next check
    const items = itemsByFile(mods);
    for (const [item, st] of tracker.fresh) {
      if (item.kind === "block") {
        const block = result.blocks.get(item);
        st.reused = { block, fns: new Map(item.members.filter((m): m is FnItem => m.kind === "fn").map((m) => [m, result.fns.get(m)!])) };
      } else if (item.kind === "fn") st.reused = { fns: new Map([[item, result.fns.get(item)!]]) };
      else if (item.kind === "train") st.reused = { fns: new Map(), train: result.trains.get(item) };
      st.placed = st.diagnostics.map((d) => place(d, items, st));
      this.states.set(item, st);
      for (const d of st.deps) {
        let set = this.dependents.get(d);
        if (!set) this.dependents.set(d, (set = new Set()));
        set.add(item);
      }
    }
    const trouble = tracker.strayed || result.diagnostics.some((d) => d.code === Code.Recursion || d.code === Code.Internal);
    this.last = { frame, names, trouble, global: tracker.global };
    this.stats = { items: this.states.size, checked: tracker.fresh.size, full: !incremental };
    return result;
  }

  /** Whether an item checked now can reach itself through calls (an item's edges taken as all its own). */
  private mayRecurse(tracker: Tracker, names: Names): boolean {
    const stateOf = (item: Item) => tracker.fresh.get(item) ?? this.states.get(item);
    // an id is `fn:<file>:<name>`, `fn:<file>:<Block>.<fn>`, `block:<file>:<name>` or `train:<file>:<name>`
    const itemOfId = (id: string): Item | undefined => {
      const a = id.indexOf(":");
      const b = id.lastIndexOf(":");
      const name = id.slice(b + 1).split(".")[0];
      const it = names.table.get(`${id.slice(a + 1, b)}\u0000${name}`);
      return it && it !== "dim" ? it : undefined;
    };
    for (const start of tracker.fresh.keys()) {
      const seen = new Set<Item>();
      const stack = [start];
      while (stack.length) {
        for (const e of stateOf(stack.pop()!)?.edges ?? []) {
          const to = itemOfId(e.to);
          if (to === start) return true;
          if (to && !seen.has(to)) (seen.add(to), stack.push(to));
        }
      }
    }
    return false;
  }

  /** Drop what an item's check wrote, and its state. */
  private forget(item: Item): void {
    // its dependents are forgotten in the same check (they depend on it)
    this.dependents.delete(item);
    const st = this.states.get(item);
    if (!st) return;
    this.release(st);
    this.states.delete(item);
    for (const d of st.deps) this.dependents.get(d)?.delete(item);
  }

  private release(st: ItemState): void {
    this.store.types.release(st);
    this.store.definitions.release(st);
    this.store.calls.release(st);
  }

  /** The items whose last check no longer holds. */
  private invalid(now: Names, before: Names): Set<Item> {
    // the names that mean something else now, and the modules whose list of names changed
    const changed: string[] = [];
    for (const [k, id] of now.table) if ((before.table.get(k) ?? null) !== id) changed.push(k);
    for (const k of before.table.keys()) if (!now.table.has(k)) changed.push(k);
    const relisted = new Set<string>();
    for (const [file, list] of now.lists) if (before.lists.get(file) !== list) relisted.add(file);

    const seeds: Item[] = [];
    for (const [item, st] of this.states) {
      const stale =
        st.pinned ||
        !now.present.has(item) ||
        !now.toCheck.has(item) ||
        changed.some((k) => st.lookups.has(k)) ||
        (relisted.size > 0 && [...st.listed].some((f) => relisted.has(f))) ||
        st.placed.some((p) => p.anchors.some((a) => !now.present.has(a.item)));
      if (stale) seeds.push(item);
    }
    // and everything that depends on those, transitively
    const out = new Set<Item>(seeds);
    const queue = [...seeds];
    while (queue.length) for (const x of this.dependents.get(queue.pop()!) ?? []) if (!out.has(x)) (out.add(x), queue.push(x));
    return out;
  }
}

/** What a check cannot be incremental across: the modules, their imports, the dim declarations. */
function frameOf(mods: LoadedModules): unknown[] {
  const out: unknown[] = [mods.entry];
  for (const m of mods.modules.values()) {
    out.push(m.file);
    for (const imp of m.imports) out.push(imp.item, imp.file);
    for (const item of m.program.items) if (item.kind === "dim") out.push(item);
  }
  return out;
}

function sameFrame(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function itemsByFile(mods: LoadedModules): Map<string, Item[]> {
  return new Map([...mods.modules.values()].map((m) => [m.file, m.program.items]));
}

/** The item a span lies in (items are in source order). */
function itemAt(items: Item[] | undefined, s: Span): Item | undefined {
  if (!items) return undefined;
  let lo = 0;
  let hi = items.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (items[mid].span.start <= s.start) lo = mid;
    else hi = mid - 1;
  }
  const it = items[lo];
  return it && it.span.start <= s.start && s.end <= it.span.end ? it : undefined;
}

function copySpan(s: Span, dOffset = 0, dLine = 0): Span {
  return { ...s, start: s.start + dOffset, end: s.end + dOffset, line: s.line + dLine, endLine: s.endLine + dLine };
}

/** Remember a diagnostic relative to the items its spans lie in (a copy: AST spans move in place). */
function place(d: Diagnostic, items: Map<string, Item[]>, st: ItemState): Placed {
  const spans = [d.span, ...(d.related ?? []).map((r) => r.span)];
  const anchors: Placed["anchors"] = [];
  for (const s of spans) {
    const item = itemAt(items.get(s.file), s);
    if (!item) {
      st.pinned = true;
      return { diagnostic: d, anchors: [] };
    }
    anchors.push({ item, start: item.span.start, line: item.span.line });
  }
  const diagnostic = { ...d, span: copySpan(d.span), ...(d.related ? { related: d.related.map((r) => ({ ...r, span: copySpan(r.span) })) } : {}) };
  return { diagnostic, anchors };
}

/** An unchanged item's diagnostics, moved with the items they point into. */
function relocate(st: ItemState): Diagnostic[] {
  return st.placed.map((p) => {
    const moves = p.anchors.map((a) => ({ dOffset: a.item.span.start - a.start, dLine: a.item.span.line - a.line }));
    if (moves.every((m) => m.dOffset === 0 && m.dLine === 0)) return p.diagnostic;
    const d = p.diagnostic;
    const moved: Diagnostic = {
      ...d,
      span: copySpan(d.span, moves[0].dOffset, moves[0].dLine),
      ...(d.related ? { related: d.related.map((r, i) => ({ ...r, span: copySpan(r.span, moves[i + 1].dOffset, moves[i + 1].dLine) })) } : {}),
    };
    p.diagnostic = moved;
    p.anchors = p.anchors.map((a) => ({ item: a.item, start: a.item.span.start, line: a.item.span.line }));
    return moved;
  });
}
