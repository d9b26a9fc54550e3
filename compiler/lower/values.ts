// The values of the lowering: what a Weft expression evaluates to once every dim is
// concrete. Tensors are graph nodes carrying a symbolic label per axis (`T`, `2*D`), so
// that named-axis reductions (`sum(x, T)`) can find their axis in a concrete shape.
import type { BlockItem, FnItem, Span } from "../../grammar/ast.ts";
import type { Module } from "./scope.ts";

export type Label = string | undefined;

export interface TensorValue {
  kind: "tensor";
  id: number;
  labels: Label[];
}

/** A compile-time number; `label` is set when it is a dim (`T` evaluates to 64 with label T). */
export interface NumberValue {
  kind: "number";
  value: number;
  isInt: boolean;
  label?: string;
}

export interface Dim {
  value: number;
  label: string;
}

export interface ParamInit {
  kind: "zeros" | "ones" | "glorot" | "normal" | "uniform" | "constant";
  /** std for normal, bound for uniform, the value for constant */
  scale?: number;
}

/** One enclosing `repeat` of an instance: which layer it is, of how many. */
export interface RepeatSlot {
  index: number;
  count: number;
  /** the count's dim name (`L`), the label of the stacked axis */
  label: string;
  /** the repeat's path without indices (`stack.layers`): where its params' stacked names start */
  stackPath: string;
}

export interface Instance {
  block: BlockItem;
  module: Module;
  /** its path, with the index in each repeat: `stack.layers[3].ff` */
  path: string;
  /**
   * its path without repeat indices (`stack.layers.ff`): its params are the stacked
   * tensors `stack.layers.ff.w1`, f32[L, …], of which it reads its slice
   */
  stackPath: string;
  /** the repeats it sits in, outermost first; empty outside any */
  slots: RepeatSlot[];
  dims: Map<string, Dim>;
  frozen: boolean;
  /** checkpoint to initialise from (`Lm(V, D) from "x.safetensors"`), resolved path */
  from?: string;
  /** params and sub-instances, created on first access */
  members: Map<string, Value>;
  span: Span;
}

export type Value =
  | TensorValue
  | NumberValue
  | { kind: "bool"; value: boolean }
  | { kind: "string"; value: string }
  | { kind: "instance"; inst: Instance }
  | { kind: "instances"; items: Instance[] }
  | { kind: "tuple"; items: Value[] }
  | { kind: "list"; items: Value[] }
  | { kind: "record"; fields: Map<string, Value>; span: Span }
  | { kind: "fn"; fn: FnItem; module: Module; self?: Instance }
  | { kind: "builtin"; name: string }
  | { kind: "block"; block: BlockItem; module: Module }
  | { kind: "namespace"; module: Module }
  | { kind: "none" }
  /** `jsonl("file")` in a train job */
  | { kind: "data"; file: string; span: Span }
  /** `sgd(...)`, `adam(...)`: a call recorded for the train job to interpret */
  | { kind: "config"; name: string; named: Map<string, Value>; span: Span };

export function describe(v: Value): string {
  switch (v.kind) {
    case "tensor":
      return "a tensor";
    case "number":
      return v.label ? `the dim ${v.label} (= ${v.value})` : `the number ${v.value}`;
    case "instance":
      return `an instance of ${v.inst.block.name.name}`;
    case "instances":
      return `a repeat of ${v.items.length} instances`;
    case "fn":
      return `the function ${v.fn.name?.name ?? "(forward)"}`;
    case "builtin":
      return `the built-in ${v.name}`;
    case "block":
      return `the block ${v.block.name.name}`;
    case "config":
      return `${v.name}(...)`;
    default:
      return `a ${v.kind}`;
  }
}
