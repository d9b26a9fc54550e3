// Wording shared by diagnostics: mismatch details, hints that say which of two same-looking
// dims is which, and how to convert dtypes.
import { type Atom, type Dim, atomsOf, dimEquals, printDim } from "./dims.ts";
import { type DType, printRest } from "./types.ts";
import type { Mismatch, Shape } from "./unify.ts";

export function rankText(s: Shape): string {
  return s.rest ? `${s.dims.length}+` : String(s.dims.length);
}

/** ` (rank 2 vs 3)`, or what differs when both have leading dims `..` of their own. */
export function rankDetail(found: Shape, expected: Shape): string {
  if (found.rest && expected.rest && found.rest.key !== expected.rest.key && found.dims.length === expected.dims.length)
    return ` (leading dims ${printRest(found.rest)} vs ${printRest(expected.rest)})`;
  return ` (rank ${rankText(found)} vs ${rankText(expected)})`;
}

export function mismatchDetail(m: Mismatch): string {
  switch (m.kind) {
    case "dim":
      return `: dim ${printDim(m.found)} vs ${printDim(m.expected)} (at dim ${m.index + 1} of ${m.rank})`;
    case "rank":
      return rankDetail(m.found, m.expected);
    case "dtype":
      return ` (dtype ${m.found} vs ${m.expected})`;
    default:
      return "";
  }
}

/** When two different dims print alike (a block's `D` and the global `D`), say which is which. */
export function sameNameHint(a: Dim, b: Dim): string | undefined {
  if (printDim(a) !== printDim(b) || dimEquals(a, b)) return undefined;
  const ka = atomsOf(a), kb = atomsOf(b);
  const only = (x: Map<string, Atom>, y: Map<string, Atom>) => [...x.values()].filter((t) => !y.has(t.key)).map(describeAtom);
  return `two different dims print as ${printDim(a)}: ${[...only(kb, ka), ...only(ka, kb)].join(" and ")}`;
}

export function describeAtom(a: Atom): string {
  if (a.kind === "var") return `the inferred ${a.name}`;
  if (a.kind === "div") return printDim({ terms: [{ coef: 1, atoms: [a] }] });
  const block = /^block:.*:([^:.]+)\.[^.]+$/.exec(a.key);
  if (block) return `\`${a.name}\` of block ${block[1]}`;
  const fn = /^fn:.*:([^:#]+)#/.exec(a.key);
  if (fn) return `\`${a.name}\` of fn ${fn[1]}`;
  return `the global dim \`${a.name}\``;
}

export function mismatchHint(m: Mismatch): string | undefined {
  return m.kind === "dim" || m.kind === "instance" ? sameNameHint(m.expected, m.found) : undefined;
}

export function castHint(to: DType): string {
  return to === "f32" ? "convert with cast(x)" : `convert with cast(x, ${to})`;
}

export function dtypeList(ds: readonly DType[]): string {
  if (ds.length === 1) return `a ${ds[0]} tensor`;
  if (ds.length === 2 && ds.includes("f32") && ds.includes("f16")) return "a float tensor (f32 or f16)";
  if (ds.length === 3 && ds.includes("i32")) return "a numeric tensor (f32, f16 or i32)";
  return `a tensor of ${ds.join(", ")}`;
}
