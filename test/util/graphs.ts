// Helpers for building small graphs in tests and checking gradients numerically.
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { vjp } from "../../compiler/autodiff/vjp.ts";
import { add, mul, reduce } from "../../compiler/ops/build.ts";
import { interpret } from "../../runtime/reference/interpret.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";

const table = evaluators();

/** Deterministic PRNG (mulberry32) so failures are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTensor(shape: readonly number[], r: () => number, lo = -2, hi = 2): RefTensor {
  const t = refTensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = lo + (hi - lo) * r();
  return t;
}

export function run(g: Graph, feeds: Record<string, RefTensor>): Map<string, RefTensor> {
  return interpret(g, new Map(Object.entries(feeds)), table);
}

export interface GradCheck {
  maxRelError: number;
  analytic: RefTensor[];
  numeric: RefTensor[];
}

/**
 * Builds y = Σ w ⊙ f(x…) for a random weight w (so every output element matters),
 * differentiates it with the graph VJP, and compares against float64 central
 * differences of the reference interpreter. Relative error uses max(|a|, |n|, 1e-3)
 * per element; `h` is the FD step.
 */
export function gradCheck(
  inputs: readonly TensorType[],
  f: (g: Graph, xs: number[]) => number,
  values: readonly RefTensor[],
  seed = 1,
  h = 1e-6,
): GradCheck {
  const g = new Graph();
  const xs = inputs.map((t, k) => g.source("input", `x${k}`, t));
  const fx = f(g, xs);
  const wt = g.type(fx);
  const w = g.source("input", "w", { shape: wt.shape, dtype: "f32" });
  const y = reduce(g, "sum", mul(g, fx, w), [...wt.shape.keys()]);
  const diffable = inputs.map((t, k) => (t.dtype === "f32" ? k : -1)).filter((k) => k >= 0);
  const grads = vjp(g, y, diffable.map((k) => xs[k]));
  g.output("y", y);
  grads.forEach((gr, k) => g.output(`g${k}`, gr));
  const r = rng(seed);
  const wv = randomTensor(wt.shape, r, 0.5, 1.5);
  const feeds = (vals: readonly RefTensor[]) => Object.fromEntries([...vals.map((v, k) => [`x${k}`, v] as const), ["w", wv]]);
  const out = run(g, feeds(values));
  const analytic = grads.map((_, k) => out.get(`g${k}`)!);
  const numeric: RefTensor[] = [];
  let worst = 0;
  diffable.forEach((k, j) => {
    const num = refTensor(values[k].shape);
    for (let i = 0; i < num.data.length; i++) {
      const plus = values.map((v) => ({ shape: v.shape, data: v.data.slice() }));
      const minus = values.map((v) => ({ shape: v.shape, data: v.data.slice() }));
      plus[k].data[i] += h;
      minus[k].data[i] -= h;
      const yp = run(g, feeds(plus)).get("y")!.data[0];
      const ym = run(g, feeds(minus)).get("y")!.data[0];
      num.data[i] = (yp - ym) / (2 * h);
      const a = analytic[j].data[i];
      const err = Math.abs(a - num.data[i]) / Math.max(Math.abs(a), Math.abs(num.data[i]), 1e-3);
      worst = Math.max(worst, err);
    }
    numeric.push(num);
  });
  return { maxRelError: worst, analytic, numeric };
}

export { add, mul };
