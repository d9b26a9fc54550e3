// Graph IR: an SSA DAG of primitives with static shapes and dtypes. Node ids are
// their position in `nodes`, so the array is always in topological order.
// Building a node runs its op's shape rule; identical pure nodes are shared (CSE).
import type { Span } from "../../grammar/ast.ts";
import type { DType } from "../../runtime/bundle.ts";
import { InternalError } from "../diagnostics.ts";
import { getOp } from "../ops/registry.ts";
import "../ops/index.ts"; // registers the primitives

export type { DType };
export type Shape = readonly number[];

export interface TensorType {
  readonly shape: Shape;
  readonly dtype: DType;
}

export type AttrValue = number | string | boolean | readonly number[];
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Attrs;
  readonly type: TensorType;
  /** where in the user's program this node came from, for errors and debugging */
  readonly span?: Span;
}

export type SourceRole = "input" | "param" | "state";

export class Graph {
  readonly nodes: Node[] = [];
  /** name → node id of op `input` / `param` / `state` */
  readonly sources = new Map<string, number>();
  readonly outputs = new Map<string, number>();
  private readonly memo = new Map<string, number>();

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new InternalError(`no node %${id}`);
    return n;
  }

  type(id: number): TensorType {
    return this.node(id).type;
  }

  /** A named source: a run-time input, a parameter, or optimizer state. */
  source(role: SourceRole, name: string, type: TensorType, span?: Span): number {
    const existing = this.sources.get(name);
    if (existing !== undefined) {
      const n = this.node(existing);
      if (n.op !== role || !sameType(n.type, type)) {
        throw new InternalError(`source ${name} redeclared as ${role} ${fmtType(type)} (was ${n.op} ${fmtType(n.type)})`);
      }
      return existing;
    }
    const id = this.push(role, [], { name, shape: [...type.shape], dtype: type.dtype }, type, span);
    this.sources.set(name, id);
    return id;
  }

  /** Add a primitive. Runs the op's shape rule; returns an existing node if an identical one exists. */
  add(op: string, inputs: readonly number[], attrs: Attrs = {}, span?: Span): number {
    const def = getOp(op);
    if (def.arity >= 0 && inputs.length !== def.arity) {
      throw new InternalError(`${op} takes ${def.arity} inputs, got ${inputs.length}`);
    }
    const type = def.infer(inputs.map((i) => this.type(i)), attrs);
    if (def.impure) return this.push(op, inputs, attrs, type, span);
    const key = `${op}(${inputs.join(",")})${JSON.stringify(attrs)}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    const id = this.push(op, inputs, attrs, type, span);
    this.memo.set(key, id);
    return id;
  }

  output(name: string, id: number): void {
    this.outputs.set(name, id);
  }

  private push(op: string, inputs: readonly number[], attrs: Attrs, type: TensorType, span?: Span): number {
    const id = this.nodes.length;
    this.nodes.push(span ? { id, op, inputs, attrs, type, span } : { id, op, inputs, attrs, type });
    return id;
  }
}

export function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && sameShape(a.shape, b.shape);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function numel(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function fmtType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(", ")}]`;
}

/** Row-major strides of a contiguous tensor. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Text form, one node per line: `%3 = add(%1, %2) f32[4, 8]`. `weft compile --emit ir` prints this. */
export function printGraph(g: Graph): string {
  const names = new Map<number, string>();
  for (const [name, id] of g.outputs) names.set(id, name);
  const lines: string[] = [];
  for (const n of g.nodes) {
    const attrs = Object.entries(n.attrs)
      .filter(([k]) => !(n.op === "input" || n.op === "param" || n.op === "state") || k === "name")
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    const args = [...n.inputs.map((i) => `%${i}`), ...attrs].join(", ");
    const out = names.has(n.id) ? `   -> ${names.get(n.id)}` : "";
    lines.push(`%${n.id} = ${n.op}(${args}) ${fmtType(n.type)}${out}`);
  }
  return lines.join("\n");
}
