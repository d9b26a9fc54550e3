// The float64 reference interpreter: evaluates a graph node by node. It is the oracle
// for every test of the GPU back end, and the CPU fallback when no WebGPU adapter exists.
// The per-op evaluations are passed in (the compiler's op registry), so the runtime does
// not import the compiler.
//
// f16 is defined here, once for every op: a node of dtype f16 is computed from its inputs
// in float64 (a matmul or a reduction of f16 inputs accumulates in float64), and its value
// is then rounded to the nearest f16 (ties to even, overflow to ±Inf, subnormals kept).
// Sources of dtype f16 are rounded as they are fed. f32 nodes are not rounded: float64
// stands in for f32.
import type { DType } from "../bundle.ts";
import { roundF16 } from "../f16.ts";
import type { RefTensor } from "./tensor.ts";

/** Op attributes: the same value kinds as the compiler's Graph IR. */
export type RefAttrs = Readonly<Record<string, number | string | boolean | readonly number[]>>;

export interface RefNode {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: RefAttrs;
  readonly type: { readonly shape: readonly number[]; readonly dtype: DType };
}

export interface RefGraph {
  readonly nodes: readonly RefNode[];
  readonly outputs: ReadonlyMap<string, number>;
}


export interface InterpretOptions {
  /** called after each node; used by `--debug` to find the first non-finite value */
  onNode?: (node: RefNode, value: RefTensor) => void;
}

/**
 * Evaluates the nodes the outputs depend on. `sources` maps source names (inputs,
 * params, state) to values. Returns the outputs by name.
 */
export function interpret(
  graph: RefGraph,
  sources: ReadonlyMap<string, RefTensor>,
  evaluate: ReadonlyMap<string, (inputs: readonly RefTensor[], attrs: RefNode["attrs"], out: RefNode["type"]) => RefTensor>,
  opts: InterpretOptions = {},
): Map<string, RefTensor> {
  const needed = new Uint8Array(graph.nodes.length);
  const stack = [...graph.outputs.values()];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed[id]) continue;
    needed[id] = 1;
    stack.push(...graph.nodes[id].inputs);
  }
  const values = new Array<RefTensor | undefined>(graph.nodes.length);
  for (const node of graph.nodes) {
    if (!needed[node.id]) continue;
    let v: RefTensor;
    if (node.op === "input" || node.op === "param" || node.op === "state") {
      const name = String(node.attrs.name);
      const fed = sources.get(name);
      if (!fed) throw new Error(`no value for ${node.op} '${name}'`);
      if (fed.shape.length !== node.type.shape.length || fed.shape.some((d, i) => d !== node.type.shape[i])) {
        throw new Error(`${node.op} '${name}' has shape [${fed.shape.join(", ")}], expected [${node.type.shape.join(", ")}]`);
      }
      v = fed;
    } else {
      const f = evaluate.get(node.op);
      if (!f) throw new Error(`the reference interpreter has no evaluation for '${node.op}'`);
      v = f(node.inputs.map((i) => values[i]!), node.attrs, node.type);
    }
    // (a new array where rounding changes anything: never the fed source or an input's values)
    if (node.type.dtype === "f16") v = { shape: v.shape, data: roundF16(v.data) };
    values[node.id] = v;
    opts.onNode?.(node, v);
  }
  const out = new Map<string, RefTensor>();
  for (const [name, id] of graph.outputs) out.set(name, values[id]!);
  return out;
}
