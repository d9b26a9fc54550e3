// Renders the value of an operand at a multi-index as WGSL: buffer loads through views,
// inlined constants, and fused elementwise expression trees. A fused node read through
// a view (broadcast, transpose, reshape, slice) is evaluated at the index the view maps
// to, so a whole chain of elementwise ops and views becomes one expression in one kernel.
import type { Access, DType } from "../../runtime/bundle.ts";
import type { Node, Shape } from "../ir/graph.ts";
import { stridesOf } from "../ir/graph.ts";
import type { View } from "../kernel/view.ts";
import type { BufferOperand, ExprContext } from "../ops/registry.ts";
import type { Bindings } from "./wgsl.ts";
import { InternalError } from "../diagnostics.ts";
import { literal, load, offsetExpr, u } from "./wgsl.ts";

export interface ConstOperand {
  kind: "const";
  value: number;
  shape: Shape;
  dtype: DType;
}

/** An elementwise node not yet computed: rendered inside whichever kernel reads it. */
export interface FusedOperand {
  kind: "fused";
  node: Node;
  inputs: Renderable[];
  expr: (args: readonly string[], ctx: ExprContext) => string;
  /** the expression is right on f16 values as they are (else f16 is evaluated in f32: registry.ts) */
  native?: boolean;
  /** how the reader's index maps into the node's row-major index space */
  view: View;
  dtype: DType;
}

/** A matmul not yet computed: its single reader may take it as an epilogue (bundle.ts). */
export interface PendingMatmul {
  kind: "matmul";
  node: Node;
  a: BufferOperand;
  b: BufferOperand;
  view: View;
  dtype: DType;
}

/** A value already in a WGSL variable (a matmul accumulator inside its epilogue). */
export interface RawOperand {
  kind: "raw";
  name: string;
  dtype: DType;
}

export type Operand = BufferOperand | ConstOperand | FusedOperand | PendingMatmul;
/** What the renderer evaluates: an operand, or a value already in a variable. */
export type Renderable = Operand | RawOperand;

/**
 * How a renderer's indices come from the kernel's work items: the index steps so far
 * (runtime/bundle.ts Access). Each buffer read adds its view and is noted in the
 * Bindings, for the kernel's footprint; undefined: not described (no footprint).
 */
export type Chain = Exclude<Access, "whole">;

const through = (at: Chain | undefined, view: View): Chain | undefined => (at ? { ...at, steps: [...at.steps, view] } : undefined);

export function isIdentity(view: View, shape: Shape): boolean {
  if (view.offset !== 0 || view.shape.length !== shape.length) return false;
  const s = stridesOf(shape);
  return view.shape.every((d, i) => d === shape[i] && (s[i] === view.strides[i] || d === 1));
}

/**
 * Emits `let` lines into `lines` and returns WGSL naming the operand's value at `idx`.
 * Values already rendered at the same index in this scope are reused.
 */
export class Renderer {
  private readonly memo = new Map<string, string>();
  private count: { n: number };

  constructor(
    readonly bindings: Bindings,
    readonly lines: string[],
    readonly indent = "  ",
    shared?: { n: number },
    /** how the indices given to value() come from the kernel's work items */
    readonly root?: Chain,
  ) {
    this.count = shared ?? { n: 0 };
  }

  /** A renderer for a nested scope (a loop body): new lines, fresh memo, same names. */
  child(lines: string[], indent: string, root: Chain | undefined = this.root): Renderer {
    return new Renderer(this.bindings, lines, indent, this.count, root);
  }

  /** The output's own elements: reads at `idx` through an identity view of `shape` use offset `at`. */
  private own?: { shape: Shape; key: string; at: string };

  /** This renderer, with reads of `shape`'s element `idx` (identity views) at flat offset `at`. */
  at(shape: Shape, idx: readonly string[], at: string): this {
    this.own = { shape, key: idx.join(","), at };
    return this;
  }

  fresh(prefix: string): string {
    return `${prefix}${this.count.n++}`;
  }

  value(op: Renderable, idx: readonly string[], at: Chain | undefined = this.root): string {
    if (op.kind === "raw") return op.name;
    if (op.kind === "matmul") throw new InternalError("a pending matmul must be computed before it is rendered");
    // Keyed by the element's address, not by `idx`: indices that differ only along an
    // axis the view broadcasts (a matmul epilogue's columns, reading a per-row value)
    // reuse one load or one computation.
    const key = op.kind === "const" ? `c${op.value}` : `${op.kind === "fused" ? `f${op.node.id}` : `b${op.buffer}`}:${offsetExpr(op.view, idx)}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    let expr: string;
    if (op.kind === "const") {
      // A `let`, not a literal in the expression: literals make const-expressions, which
      // fail to compile on overflow (exp(100.0)).
      expr = literal(op.value, op.dtype);
    } else if (op.kind === "buffer") {
      const name = this.bindings.bind(op.buffer, op.dtype);
      this.bindings.touch(name, through(at, op.view));
      const own = this.own && idx.join(",") === this.own.key && isIdentity(op.view, this.own.shape) ? this.own.at : undefined;
      expr = load(`${name}[${own ?? offsetExpr(op.view, idx)}]`, op.dtype);
    } else {
      const inner = this.innerIndex(op, idx);
      const innerAt = isIdentity(op.view, op.node.type.shape) ? at : through(at, op.view);
      // f16 operands of an op that is not exact on halves: evaluated in f32, rounded once
      const promote = !op.native && (op.dtype === "f16" || op.inputs.some((x) => x.dtype === "f16"));
      const up = (d: DType): DType => (promote && d === "f16" ? "f32" : d);
      const args = op.inputs.map((x) => {
        const v = this.value(x, inner, innerAt);
        if (up(x.dtype) === x.dtype) return v;
        // widened once into a variable: expressions repeat their arguments
        const w = this.fresh("w");
        this.lines.push(`${this.indent}let ${w} = f32(${v});`);
        return w;
      });
      const ctx: ExprContext = {
        attrs: op.node.attrs,
        inputs: op.inputs.map((x) => up(x.dtype)),
        out: up(op.node.type.dtype),
        index: (axis) => inner[axis],
      };
      expr = op.expr(args, ctx);
      if (up(op.node.type.dtype) !== op.node.type.dtype) expr = `f16(${expr})`;
    }
    const name = this.fresh("v");
    this.lines.push(`${this.indent}let ${name} = ${expr};`);
    this.memo.set(key, name);
    return name;
  }

  /** The fused node's own multi-index for the reader's index `idx`. */
  private innerIndex(op: FusedOperand, idx: readonly string[]): string[] {
    const shape = op.node.type.shape;
    if (isIdentity(op.view, shape)) return [...idx];
    const flat = this.fresh("x");
    this.lines.push(`${this.indent}let ${flat} = ${offsetExpr(op.view, idx)};`);
    const strides = stridesOf(shape);
    return shape.map((d, k) => {
      if (d === 1) return "0u";
      const q = strides[k] === 1 ? flat : `${flat} / ${u(strides[k])}`;
      return k === 0 ? `(${q})` : `((${q}) % ${u(d)})`;
    });
  }
}
