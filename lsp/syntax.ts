// Questions the editor asks of a (possibly partial) AST: which node is under the cursor,
// which names a position can see, where every name is declared. The AST has no parent
// links and no visitor, so nodes are walked generically: every object with a `span` is a
// node, and its children are the node-valued properties. That keeps this file correct as
// the grammar grows.
import type {
  BlockItem, BlockStmt, Expr, FnItem, Ident, Item, Pattern, Program, Span, Stmt, TrainItem,
} from "../grammar/ast.ts";

export interface Node {
  span: Span;
}

/** Properties that hold spans, not child nodes. */
const SPAN_KEYS = new Set(["span", "opSpan", "argsSpan", "pathSpan"]);

export function isNode(v: unknown): v is Node {
  if (typeof v !== "object" || v === null || !("span" in v)) return false;
  const s = v.span;
  return typeof s === "object" && s !== null && "start" in s;
}

export function isIdent(v: unknown): v is Ident {
  return isNode(v) && "kind" in v && v.kind === "ident";
}

/**
 * Each node's children, found once: a node of an unchanged item is the same object in the next
 * version of the document (lsp/incremental.ts), so walking an edited file costs little.
 */
const childrenOf = new WeakMap<object, Node[]>();

/** A node's children, in property order (not always source order: sort where it matters). Do not change the array. */
export function children(n: object): Node[] {
  let out = childrenOf.get(n);
  if (out) return out;
  out = [];
  for (const key in n) {
    if (SPAN_KEYS.has(key)) continue;
    const v: unknown = (n as Record<string, unknown>)[key];
    if (Array.isArray(v)) {
      for (const x of v) if (isNode(x)) out.push(x);
    } else if (isNode(v)) out.push(v);
  }
  childrenOf.set(n, out);
  return out;
}

/** Every node under `root` (itself included), parents before children. */
export function* walk(root: Node): Generator<Node> {
  const stack: Node[] = [root];
  while (stack.length) {
    const n = stack.pop()!;
    yield n;
    const cs = children(n);
    for (let i = cs.length - 1; i >= 0; i--) stack.push(cs[i]);
  }
}

export function contains(s: Span, offset: number): boolean {
  return s.start <= offset && offset <= s.end;
}

/**
 * The chain of nodes from the program down to the innermost one that contains `offset`
 * (an offset just after a name still counts as on it, as editors place the cursor there).
 * Where two siblings touch at `offset`, the one that starts there loses to a name that ends
 * there only if it is not itself a name.
 */
export function pathAt(program: Program, offset: number): Node[] {
  const path: Node[] = [program];
  let n: Node = program;
  for (;;) {
    const hits = children(n)
      .filter((c) => contains(c.span, offset) && !(c.span.start === c.span.end && isIdent(c) && c.name !== ""))
      .sort((a, b) => a.span.start - b.span.start || b.span.end - a.span.end);
    if (!hits.length) return path;
    const named = hits.filter(isIdent);
    n = named.length ? named[named.length - 1] : hits.find((h) => h.span.start < offset && offset < h.span.end) ?? hits[hits.length - 1];
    path.push(n);
  }
}

/** The name under the cursor, if any. */
export function identAt(program: Program, offset: number): { ident: Ident; path: Node[] } | undefined {
  const path = pathAt(program, offset);
  const last = path[path.length - 1];
  return isIdent(last) && last.name !== "" ? { ident: last, path } : undefined;
}

// ---------------------------------------------------------------- declarations

export type DeclKind =
  | "alias" | "dim" | "blockDim" | "block" | "fn" | "method" | "param" | "member" | "parameter"
  | "let" | "var" | "loop" | "train" | "field";

export interface Declaration {
  name: Ident;
  kind: DeclKind;
  /** the item or member that declares it */
  node: Node;
  /** the enclosing block, fn or train, for locals and members */
  container?: BlockItem | FnItem | TrainItem;
  doc?: string;
}

/** Every name a program declares, in source order. */
export function declarations(program: Program): Declaration[] {
  return program.items.flatMap(itemDeclarations);
}

/** What each item declares, found once per item node (an unchanged item keeps its node). */
const declared = new WeakMap<Item, Declaration[]>();

/** Every name an item declares, in source order. */
export function itemDeclarations(item: Item): Declaration[] {
  const known = declared.get(item);
  if (known) return known;
  const out: Declaration[] = [];
  const add = (name: Ident | undefined, kind: DeclKind, node: Node, container?: Declaration["container"], doc?: string) => {
    if (name && name.name !== "") out.push({ name, kind, node, container, doc });
  };
  const pattern = (p: Pattern, kind: "let" | "var", node: Node, container: FnItem) => {
    if (p.kind === "ident") add(p, kind, node, container);
    else p.items.forEach((q) => pattern(q, kind, node, container));
  };
  // locals inside expressions too: the branches of `if` and `{ }` blocks hold statements
  const body = (root: Node, container: FnItem) => {
    for (const n of walk(root)) {
      if (!("kind" in n)) continue;
      if (n.kind === "let" || n.kind === "var") {
        const s = n as Stmt & { kind: "let" | "var" };
        pattern(s.target, s.kind, s, container);
      } else if (n.kind === "for") add((n as Stmt & { kind: "for" }).variable, "loop", n, container);
    }
  };
  const fn = (f: FnItem, owner?: BlockItem) => {
    add(f.name, owner ? "method" : "fn", f, owner, f.doc);
    for (const p of f.params) add(p.name, "parameter", p, f);
    if (f.body) body(f.body, f);
  };
  switch (item.kind) {
    case "import":
      add(item.alias, "alias", item, undefined, item.doc);
      break;
    case "dim":
      for (const d of item.decls) add(d.name, "dim", d, undefined, item.doc);
      break;
    case "block":
      add(item.name, "block", item, undefined, item.doc);
      for (const d of item.dims) add(d, "blockDim", item, item);
      for (const m of item.members) {
        if (m.kind === "fn") fn(m, item);
        else add(m.name, m.kind === "param" ? "param" : "member", m, item, m.doc);
      }
      break;
    case "fn":
      fn(item);
      break;
    case "train":
      add(item.name, "train", item, undefined, item.doc);
      for (const f of item.fields) add(f.name, "field", f, item);
      break;
  }
  declared.set(item, out);
  return out;
}

export function spanKey(s: Span): string {
  return `${s.file}:${s.start}:${s.end}`;
}

// ---------------------------------------------------------------- scopes

/**
 * Whether `offset` is inside `n`: within its span, or after it where the text is still part of
 * it — on the same line (`fn f() = |`), or anywhere before the next item when `n` is a
 * `{ }` body not yet closed (`block B {` while typing the block).
 */
function reaches(n: { span: Span }, offset: number, next: number, text: string | undefined, braces: boolean): boolean {
  if (n.span.start <= offset && offset <= n.span.end) return true;
  if (offset < n.span.end || offset > next || text === undefined) return false;
  const own = text.slice(n.span.start, n.span.end).trimEnd();
  if (braces && !own.endsWith("}")) return true;
  return !text.slice(n.span.end, offset).includes("\n");
}

/** The item (and block member fn) that encloses an offset; `text` lets an unfinished item reach the cursor. */
export function enclosing(program: Program, offset: number, text?: string): { item?: Item; fn?: FnItem; block?: BlockItem; train?: TrainItem } {
  const items = program.items;
  const i = items.findIndex((it, k) => reaches(it, offset, items[k + 1]?.span.start ?? Infinity, text, hasBraces(it)));
  if (i < 0) return {};
  const item = items[i];
  if (item.kind === "fn") return { item, fn: item };
  if (item.kind === "train") return { item, train: item };
  if (item.kind === "block") {
    const ms = item.members;
    const k = ms.findIndex((m, j) => m.kind === "fn" && reaches(m, offset, ms[j + 1]?.span.start ?? Infinity, text, hasBraces(m)));
    return { item, block: item, fn: k >= 0 ? (ms[k] as FnItem) : undefined };
  }
  return { item };
}

function hasBraces(n: Item | BlockItem["members"][number]): boolean {
  return n.kind === "block" || n.kind === "train" || (n.kind === "fn" && n.body?.kind === "block");
}

/**
 * The local names visible at `offset` inside a fn: its params, then the `let`s, `var`s and
 * loop variables of the statements before the cursor in each enclosing statement list.
 */
export function localsAt(fn: FnItem, offset: number): Ident[] {
  const out: Ident[] = fn.params.map((p) => p.name).filter((n) => n.name !== "");
  const pattern = (p: Pattern) => (p.kind === "ident" ? out.push(p) : p.items.forEach(pattern));
  const visit = (b: BlockStmt) => {
    for (const s of b.stmts) {
      if (s.span.start > offset) break;
      const inside = contains(s.span, offset);
      if ((s.kind === "let" || s.kind === "var") && !inside) pattern(s.target);
      if (s.kind === "for" && inside) {
        out.push(s.variable);
        visit(s.body);
      } else if (inside) nested(s);
    }
  };
  const nested = (n: Node) => {
    for (const c of walk(n)) {
      if (c === n || !("kind" in c) || !contains(c.span, offset)) continue;
      if (c.kind === "block" && "stmts" in c) {
        visit(c as BlockStmt);
        return;
      }
    }
  };
  if (fn.body?.kind === "block") visit(fn.body);
  else if (fn.body) nested(fn.body as Expr);
  return out.filter((n) => n.name !== "");
}
