// Gradients on f16: every differentiable op's VJP built on f16 operands (the cotangents
// are f16, as their values are), checked two ways:
//
// 1. against float64 central differences of the same program in f32 at the same points
//    (inputs and weights that are halves): the f16 gradient differs from the true one by
//    the rounding of each node it passes through, a few 2^-11 relative each. Allowed:
//    |g16 − g_fd| ≤ 2^-8 · max|g_fd| over the tensor (8 f16 ulps of the largest entry;
//    measured on lavapipe's machine: at most 2.3 · 2^-11, for pow).
// 2. on the GPU against the reference interpreter running the same f16 VJP graph: 2 f16
//    ulps per element, or 2^-10 of the tensor's largest entry (a backward pass sums
//    several rounded terms, and a 1-ulp difference in one of them moves a small sum);
//    measured: at most 1 ulp.
import { beforeAll, describe, expect, it } from "vitest";
import { vjp } from "../../compiler/autodiff/vjp.ts";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { mul, reduce } from "../../compiler/ops/build.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { f16Round } from "../../runtime/f16.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { randomTensor, rng, run } from "../util/graphs.ts";
import { runBoth } from "../util/both.ts";
import { gradCases, type Case } from "../ops/cases.ts";
import { halfUlp } from "./half.ts";

const r = rng(5);

/** y = Σ w ⊙ f(x…) in `dtype`, its gradients with respect to the float inputs as outputs `g<k>`. */
function build(g: Graph, c: Case, dtype: "f16" | "f32", prefix: string): { y: number; grads: string[] } {
  const xs = c.inputs.map((t, k) => g.source("input", `${prefix}x${k}`, { shape: t.shape, dtype: t.dtype === "f32" ? dtype : t.dtype }));
  const fx = g.add(c.op, xs, c.attrs ?? {});
  const wt = g.type(fx);
  const w = g.source("input", `${prefix}w`, { shape: wt.shape, dtype });
  const y = reduce(g, "sum", mul(g, fx, w), [...wt.shape.keys()]);
  const diffable = c.inputs.map((t, k) => (t.dtype === "f32" ? k : -1)).filter((k) => k >= 0);
  const gs = vjp(g, y, diffable.map((k) => xs[k]));
  const grads = gs.map((id, j) => {
    g.output(`${prefix}g${diffable[j]}`, id);
    return `${prefix}g${diffable[j]}`;
  });
  g.output(`${prefix}y`, y);
  return { y, grads };
}

interface Prepared {
  c: Case;
  name: string;
  feeds: Record<string, RefTensor>;
  g32: Graph;
}

const label = (c: Case) => `${c.op} ${c.inputs.map((t) => `[${t.shape.join(",")}]`).join(" ")} ${JSON.stringify(c.attrs ?? {})}`;
// halves for every input and weight, so the f16 and the f32 program start from the same numbers
const cases: Prepared[] = gradCases.map((c, n) => {
  const feeds: Record<string, RefTensor> = {};
  c.inputs.forEach((t, k) => {
    const v = randomTensor(t.shape, r, ...(c.range?.[k] ?? [-2, 2]));
    feeds[`x${k}`] = { shape: v.shape, data: t.dtype === "f32" ? v.data.map(f16Round) : v.data };
  });
  const g32 = new Graph();
  build(g32, c, "f32", "");
  const fx = g32.nodes.find((x) => x.op === c.op)!;
  feeds.w = { shape: fx.type.shape, data: randomTensor(fx.type.shape, r, 0.5, 1.5).data.map(f16Round) };
  return { c, name: `${n}: ${label(c)}`, feeds, g32 };
});

/** float64 central differences of y(x) in the f32 program, per float input. */
function finiteDifferences(p: Prepared): Map<number, RefTensor> {
  const out = new Map<number, RefTensor>();
  const h = 1e-6;
  const yOf = (feeds: Record<string, RefTensor>) => run(p.g32, feeds).get("y")!.data[0];
  p.c.inputs.forEach((t, k) => {
    if (t.dtype !== "f32") return;
    const x = p.feeds[`x${k}`];
    const num = refTensor(x.shape);
    for (let i = 0; i < x.data.length; i++) {
      const at = (d: number) => {
        const v = x.data.slice();
        v[i] += d;
        return yOf({ ...p.feeds, [`x${k}`]: { shape: x.shape, data: v } });
      };
      num.data[i] = (at(h) - at(-h)) / (2 * h);
    }
    out.set(k, num);
  });
  return out;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("f16 VJPs against float64 finite differences of the f32 program", () => {
  for (const p of cases) {
    it(p.name, () => {
      const g16 = new Graph();
      build(g16, p.c, "f16", "");
      const got = run(g16, p.feeds);
      for (const [k, fd] of finiteDifferences(p)) {
        const g = got.get(`g${k}`)!;
        expect(g16.type(g16.outputs.get(`g${k}`)!).dtype).toBe("f16");
        const scale = Math.max(maxAbs(fd.data), 2 ** -14);
        let worst = 0;
        for (let i = 0; i < fd.data.length; i++) worst = Math.max(worst, Math.abs(g.data[i] - fd.data[i]) / scale);
        expect(worst, `input ${k}: worst error ${worst.toExponential(2)} of max|g| = ${scale.toExponential(2)}`).toBeLessThanOrEqual(2 ** -8);
      }
    });
  }
});

describe("f16 VJPs on the GPU match the reference interpreter", () => {
  const g = new Graph();
  const feeds: Record<string, RefTensor> = {};
  const outs: { name: string; grads: string[] }[] = [];
  cases.forEach((p, n) => {
    const { grads } = build(g, p.c, "f16", `c${n}.`);
    for (const [k, v] of Object.entries(p.feeds)) feeds[`c${n}.${k}`] = v;
    outs.push({ name: p.name, grads });
  });
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, outs.flatMap((o) => o.grads)));
  }, 300_000);
  for (const o of outs) {
    it(o.name, () => {
      for (const name of o.grads) {
        const w = want.get(name)!.data;
        const v = got.get(name)!;
        const floor = maxAbs(w) * 2 ** -10;
        for (let i = 0; i < w.length; i++) {
          const err = Math.abs(v[i] - w[i]);
          if (!(err <= Math.max(2 * halfUlp(w[i]), floor))) throw new Error(`${name}[${i}]: gpu ${v[i]} vs reference ${w[i]}`);
        }
      }
    });
  }
});

describe("a broadcast weight's f16 gradient", () => {
  // x: f16[3, 5, 4] @ w: f16[4, 6]: w's gradient sums the batch's products, each rounded to
  // f16 first (the graph's semantics; in f32 the compiler merges them into one matmul)
  it("rounds each batch's product, as the reference does", async () => {
    const g = new Graph();
    const x = g.source("input", "x", { shape: [3, 5, 4], dtype: "f16" });
    const w = g.source("input", "w", { shape: [4, 6], dtype: "f16" });
    const c = g.source("input", "c", { shape: [3, 5, 6], dtype: "f16" });
    const y = reduce(g, "sum", mul(g, g.add("matmul", [x, g.add("broadcast", [w], { shape: [3, 4, 6] })]), c), [0, 1, 2]);
    const [gw] = vjp(g, y, [w]);
    g.output("gw", gw);
    const feeds = Object.fromEntries(
      [["x", [3, 5, 4]], ["w", [4, 6]], ["c", [3, 5, 6]]].map(([k, s]) => [k as string, { shape: s as number[], data: randomTensor(s as number[], r, -2, 2).data.map(f16Round) }]),
    );
    const { got, want } = await runBoth(g, feeds, ["gw"]);
    const v = got.get("gw")!;
    const ww = want.get("gw")!.data;
    for (let i = 0; i < ww.length; i++) expect(Math.abs(v[i] - ww[i]), `gw[${i}]: gpu ${v[i]} vs reference ${ww[i]}`).toBeLessThanOrEqual(2 * halfUlp(ww[i]));
  }, 120_000);
});
