// Names: what each module sees, local bindings, and the did-you-mean hint.
import type { Span, TrainItem } from "../../grammar/ast.ts";
import type { BlockInfo, DimInfo, FnInfo, Type } from "./types.ts";

export type GlobalSym =
  | { kind: "block"; info: BlockInfo }
  | { kind: "fn"; info: FnInfo }
  | { kind: "dim"; info: DimInfo }
  | { kind: "train"; item: TrainItem };

export interface ModuleScope {
  file: string;
  /** the module's own items */
  names: Map<string, GlobalSym>;
  /** `import "x" as L` */
  aliases: Map<string, { file: string | undefined; span: Span }>;
  /** files imported without an alias, directly or through such imports: their items are visible unqualified */
  opens: string[];
}

export interface Binding {
  name: string;
  type: Type;
  /** where it is declared */
  span: Span;
  kind: "let" | "var" | "param" | "loop" | "field" | "batch";
  used: boolean;
}

export function symSpan(s: GlobalSym): Span {
  switch (s.kind) {
    case "block":
      return s.info.node.name.span;
    case "fn":
      return s.info.node.name?.span ?? s.info.node.span;
    case "dim":
      return s.info.span;
    case "train":
      return s.item.name.span;
  }
}

/** Levenshtein distance where swapping two neighbours counts as one edit (`sfotmax`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The closest candidate within edit distance 2 (less for short names). */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c === name) continue;
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    // one-letter names only match up to case; short names by one edit
    const limit = name.length <= 1 ? 0 : name.length <= 3 ? 1 : 2;
    if (d > limit) continue;
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

export function hintFor(name: string, candidates: Iterable<string>): string | undefined {
  const s = didYouMean(name, candidates);
  return s ? `did you mean \`${s}\`?` : undefined;
}
