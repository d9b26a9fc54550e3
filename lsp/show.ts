// How the editor prints what the checker knows: types with their shapes, fn signatures,
// block summaries. Printing of a single type is the checker's own (`printType`), so hover
// text and error messages always agree.
import type { FnItem, Span } from "../grammar/ast.ts";
import type { CheckResult } from "../compiler/check/index.ts";
import { printType } from "../compiler/check/types.ts";
import type { BlockInfo, FnInfo, Type } from "../compiler/check/types.ts";
import { instanceSubst } from "../compiler/check/types.ts";
import { type Dim, addDim, constDim, evalDim, mulDim, printDim, productDims, substDim } from "../compiler/check/dims.ts";

/** The value of a dim from the global dims' defaults and overrides, when it has one. */
export function dimValue(d: Dim, checked: CheckResult): number | undefined {
  return evalDim(d, (a) => {
    const info = checked.dims.get(a.name);
    return info && info.atom.key === a.key ? info.value : undefined;
  });
}

/** ` = [?, 64, 128]` after a tensor type whose dims are (partly) known, else "". */
export function shapeNote(t: Type, checked: CheckResult): string {
  if (t.kind !== "tensor" || t.dims.length === 0) return "";
  const vals = t.dims.map((d) => dimValue(d, checked));
  if (vals.every((v, i) => v === undefined || String(v) === printDim(t.dims[i]))) return "";
  return `[${t.rest ? ".., " : ""}${vals.map((v) => (v === undefined ? "?" : String(v))).join(", ")}]`;
}

/** An annotation a user can write for `t`, when the language has one (tensors and tuples of them). */
export function annotationText(t: Type): string | undefined {
  if (t.kind === "tensor") {
    const text = printType(t);
    return /<|\?|#/.test(text) ? undefined : text;
  }
  if (t.kind === "tuple") {
    const items = t.items.map(annotationText);
    return items.every((x) => x !== undefined) ? `(${items.join(", ")})` : undefined;
  }
  if (t.kind === "instance" && !t.frozen) return t.block.name;
  return undefined;
}

/** The number of parameters of a block, in its own dims (sub-instances included). */
export function paramCount(b: BlockInfo, busy = new Set<BlockInfo>()): Dim | undefined {
  if (busy.has(b)) return undefined;
  busy.add(b);
  try {
    let n: Dim = constDim(0);
    for (const p of b.params.values()) if (p.type.kind === "tensor") n = addDim(n, productDims(p.type.dims));
    for (const s of b.subs.values()) {
      const k = instanceCount(s.type, busy);
      if (k === undefined) return undefined;
      n = addDim(n, k);
    }
    return n;
  } finally {
    busy.delete(b);
  }
}

function instanceCount(t: Type, busy: Set<BlockInfo>): Dim | undefined {
  if (t.kind === "repeat") {
    const k = instanceCount(t.elem, busy);
    return k && mulDim(t.count, k);
  }
  if (t.kind !== "instance") return constDim(0);
  const k = paramCount(t.block, busy);
  const s = instanceSubst(t);
  return k && substDim(k, (a) => s(a));
}

/** `block Linear(I, O)` */
export function blockHeader(b: BlockInfo): string {
  return `block ${b.name}${b.node.dims.length ? `(${b.node.dims.map((d) => d.name).join(", ")})` : ""}`;
}

/** `fn name(x: f32[B, D], m: Linear, K = 16) -> f32[B, D]`: declared types, inferred return type. */
export function fnSignature(info: FnInfo | undefined, node: FnItem, text: (s: Span) => string): string {
  const owner = info?.owner ? `${info.owner.name}.` : "";
  const name = node.name ? `${owner}${node.name.name}` : `${info?.owner?.name ?? ""} (forward)`;
  return `fn ${name}${fnShape(info, node, text)}`;
}

/** `(x: f32[B, D], m: Linear, K = 16) -> f32[B, D]` */
export function fnShape(info: FnInfo | undefined, node: FnItem, text: (s: Span) => string): string {
  const params = node.params.map((p) => `${p.name.name}${p.type ? `: ${text(p.type.span)}` : ""}${p.default ? ` = ${text(p.default.span)}` : ""}`);
  const inferred = info?.inferredRet && info.inferredRet.kind !== "error" && info.inferredRet.kind !== "unit" ? printType(info.inferredRet) : undefined;
  const retText = node.ret ? text(node.ret.span) : inferred;
  return `(${params.join(", ")})${retText ? ` -> ${retText}` : ""}`;
}
