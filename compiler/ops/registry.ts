// The op registry: one entry per primitive, holding everything about it — its shape
// rule, its float64 reference evaluation, its VJP, and how it lowers to WGSL.
// Adding a primitive is adding an entry (and its tests); no other stage changes.
import type { Attrs, Graph, Node, TensorType } from "../ir/graph.ts";
import type { View } from "../kernel/view.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import { InternalError } from "../diagnostics.ts";
import type { Target } from "../codegen/target.ts";

/** Context for an elementwise WGSL expression. */
export interface ExprContext {
  readonly attrs: Attrs;
  readonly inputs: readonly DType[];
  readonly out: DType;
  /** WGSL expression (u32) of the output's index along `axis` */
  index(axis: number): string;
}

export type Lowering =
  /** `input` / `param` / `state`: a buffer the runtime owns */
  | { kind: "source" }
  /** A constant fill: inlined into elementwise kernels, a 1-element buffer elsewhere */
  | { kind: "const" }
  /** No kernel: the output reads the input's buffer through a new view. Undefined → needs a copy. */
  | { kind: "view"; view(input: View, attrs: Attrs, out: TensorType): View | undefined }
  /**
   * One WGSL expression per output element over same-shape inputs. On f16 operands the
   * expression is evaluated in f32 (its f16 arguments converted, its result rounded to
   * f16: the reference's semantics, up to f32 rounding), unless `native`: ops whose f16
   * WGSL is exact or correctly rounded (+ − ×, min, max, abs, comparisons, select) run on
   * the halves themselves.
   */
  | { kind: "elementwise"; expr(args: readonly string[], ctx: ExprContext): string; native?: boolean }
  /**
   * A reduction over `attrs.axes` with an accumulator; `subgroup` names the WGSL subgroup
   * builtin that folds the same way (subgroupAdd…), used where the device has subgroups.
   */
  | { kind: "reduce"; init(dtype: DType): string; combine(acc: string, x: string): string; subgroup?: string }
  /**
   * A kernel written for this op (matmul, gathers, scans): given the inputs as buffers
   * read through views, it renders the WGSL. Helpers in compiler/codegen/wgsl.ts.
   */
  | { kind: "kernel"; emit(args: KernelArgs): KernelSpec }
  /**
   * Inputs joined along `attrs.axis` (concat): each input is written into its own region
   * of the output buffer, read through its view or rendered from its fused expression;
   * past the storage-buffer limit, runs of inputs are joined first (codegen/bundle.ts).
   */
  | { kind: "concat" };

/** What an op's own kernel gets: its node, its inputs as buffer views, its output buffer. */
export interface KernelArgs {
  readonly name: string;
  readonly node: Node;
  readonly inputs: readonly BufferOperand[];
  readonly out: number;
  /** the device the kernel is for (default: codegen/target.ts DEFAULT_TARGET) */
  readonly target?: Target;
}

export interface BufferOperand {
  readonly kind: "buffer";
  readonly buffer: number;
  readonly view: View;
  readonly dtype: DType;
}

export interface VjpArgs {
  readonly g: Graph;
  readonly node: Node;
  /** the cotangent of the node's output, same type as the output */
  readonly cot: number;
}

/** A value of the batched graph: `id` carries a batch axis at `bdim`, or none (null: the same for every example). */
export interface Batched {
  readonly id: number;
  readonly bdim: number | null;
}

export interface BatchArgs {
  /** the graph the batched nodes go into */
  readonly g: Graph;
  /** the per-example node: its attrs and per-example type (its input ids belong to the per-example graph) */
  readonly node: Node;
  /** the node's inputs in `g`; at least one is batched, unless the op is `random` */
  readonly inputs: readonly Batched[];
  /** the number of examples */
  readonly size: number;
}

export interface OpDef {
  readonly name: string;
  /** number of inputs; -1 for variadic */
  readonly arity: number;
  /** never shared by CSE (random numbers, sources) */
  readonly impure?: boolean;
  /** Shape and dtype rule. Throws OpTypeError when the inputs don't fit. */
  infer(inputs: readonly TensorType[], attrs: Attrs): TensorType;
  /** Float64 reference evaluation. */
  evaluate(inputs: readonly RefTensor[], attrs: Attrs, out: TensorType): RefTensor;
  /**
   * Cotangents of the inputs, built as new graph nodes (so gradients are themselves
   * differentiable). `null` for an input that gets no gradient. Absent: the op is not
   * differentiable, and differentiating through it is an error unless wrapped in `stop`.
   */
  vjp?(a: VjpArgs): readonly (number | null)[];
  /** true for ops whose derivative is zero almost everywhere (floor, sign, comparisons) */
  readonly zeroGrad?: boolean;
  /**
   * Batching rule, for `map` (the transform is compiler/autodiff/batch.ts): the batched
   * value whose slice along its `bdim` is, for every example, this op applied to that
   * example's inputs. Built from new nodes in `a.g`. Ops without inputs (sources, const, iota) need none.
   * Any other op without one, or whose rule returns undefined for some inputs, is batched
   * by a per-example loop (slice, apply, stack): correct, but N nodes instead of one.
   */
  batch?(a: BatchArgs): Batched | undefined;
  /**
   * Random numbers: inside `map` each example draws its own, so the op is batched even
   * when none of its inputs is.
   */
  readonly random?: boolean;
  readonly lower: Lowering;
  /** one line for `--help`, hover and docs */
  readonly doc: string;
}

/** A shape rule failed: a compiler bug if the checker passed the program, else a user error. */
export class OpTypeError extends Error {
  override name = "OpTypeError";
}

const registry = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (registry.has(def.name)) throw new InternalError(`op ${def.name} defined twice`);
  registry.set(def.name, def);
  return def;
}

export function getOp(name: string): OpDef {
  const def = registry.get(name);
  if (!def) throw new InternalError(`unknown primitive '${name}'`);
  return def;
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}
