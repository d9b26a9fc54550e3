// topk, quantile and gelu on the WebGPU device (lavapipe in CI) against the float64
// reference interpreter: odd sizes, rows full of ties, NaN and ±0, inputs read through
// transposed and broadcast views, and the gradients (the scatter back through take_along).
// Indices must agree exactly, ties included; f32 values within |gpu − ref| ≤ 2e-5·|ref| + 2e-6.
import { beforeAll, describe, expect, it } from "vitest";
import { vjp } from "../../compiler/autodiff/vjp.ts";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { broadcastTo, mul, reduce, transpose } from "../../compiler/ops/build.ts";
import { quantile, topk } from "../../compiler/ops/select.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { rng } from "../util/graphs.ts";

const r = rng(11);
const f = (...shape: number[]): TensorType => ({ shape, dtype: "f32" });

/** Values from a small set (many ties), stored as float32. */
const tied = (n: number, levels = 4) => Array.from({ length: n }, () => Math.fround((Math.floor(r() * levels) - 1) * 0.75));
const spread = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * r()));

const g = new Graph();
const feeds: Record<string, RefTensor> = {};
const cases: { name: string; out: string }[] = [];
let n = 0;

function input(t: TensorType, data: number[]): number {
  const name = `in${n++}`;
  feeds[name] = refTensor(t.shape, data);
  return g.source("input", name, t);
}

function out(name: string, id: number): void {
  const key = `o${cases.length}`;
  g.output(key, id);
  cases.push({ name, out: key });
}

/** Σ w·y differentiated with respect to x, w random: the VJP as it runs on the device. */
function gradOf(x: number, y: number): number {
  const shape = g.type(y).shape;
  const w = input(f(...shape), spread(shape.reduce((a, b) => a * b, 1), 0.5, 1.5));
  return vjp(g, reduce(g, "sum", mul(g, y, w), [...shape.keys()]), [x])[0];
}

// topk: odd sizes, ties, every k, several axes
for (const [shape, axis, k] of [
  [[7, 13], 1, 4],
  [[5, 3, 9], 1, 3],
  [[5, 3, 9], 2, 9],
  [[11], 0, 1],
  [[1, 1], 1, 1],
  [[3, 17], 0, 2],
] as [number[], number, number][]) {
  const x = input(f(...shape), tied(shape.reduce((a, b) => a * b, 1)));
  const { values, indices } = topk(g, x, axis, k);
  const label = `topk [${shape}] axis ${axis} k ${k}`;
  out(`${label}: indices`, indices);
  out(`${label}: values`, values);
  out(`${label}: gradient`, gradOf(x, values));
}
{
  // through a transposed view, and a broadcast one (a stride-0 axis: every element ties)
  const x = input(f(6, 5), tied(30));
  out("topk of a transposed view: indices", topk(g, transpose(g, x, [1, 0]), 1, 3).indices);
  const b = input(f(4, 1), spread(4, -1, 1));
  out("topk along a broadcast axis: indices", topk(g, broadcastTo(g, b, [4, 7]), 1, 5).indices);
  out("topk across a broadcast axis: indices", topk(g, broadcastTo(g, b, [4, 7]), 0, 2).indices);
  // NaN above everything, NaNs tie, −0 ties +0
  const s = input(f(2, 7), [1, NaN, 3, NaN, 0, -5, 2, -0, 0, -0, -1, Infinity, -Infinity, 0]);
  out("topk with NaN, ±0 and ±inf: indices", topk(g, s, 1, 7).indices);
  // the input an elementwise expression (materialised for the kernel)
  const e = input(f(3, 11), tied(33));
  out("topk of x·x − x: indices", topk(g, g.add("sub", [mul(g, e, e), e]), 1, 4).indices);
  out("quantile of x·x − x", quantile(g, g.add("sub", [mul(g, e, e), e]), 1, 0.45));
  const i = input({ shape: [5, 9], dtype: "i32" }, Array.from({ length: 45 }, () => Math.floor(r() * 5) - 2));
  out("topk of i32 (ties): indices", topk(g, i, 1, 6).indices);
  out("topk of i32 (ties): values", topk(g, i, 1, 6).values);
}

// quantile: odd and even lengths, ties, q at and between order statistics
for (const [shape, axis] of [
  [[5, 9], 1],
  [[4, 7, 3], 1],
  [[13], 0],
  [[6, 1], 1],
  [[8, 5], 0],
] as [number[], number][]) {
  for (const q of [0, 0.1, 0.5, 0.37, 1]) {
    const x = input(f(...shape), tied(shape.reduce((a, b) => a * b, 1), 5));
    const y = quantile(g, x, axis, q);
    out(`quantile [${shape}] axis ${axis} q ${q}`, y);
    out(`quantile [${shape}] axis ${axis} q ${q}: gradient`, gradOf(x, y));
  }
}
{
  const x = input(f(7, 4), spread(28, -3, 3));
  out("quantile of a transposed view", quantile(g, transpose(g, x, [1, 0]), 1, 0.6));
}

// gelu: both forms, across the tails (where 1 + erf would cancel) and at 0
{
  const xs = [...spread(251, -10, 10), 0, -0, 1e-8, -1e-8, 30, -30];
  for (const approximate of ["none", "tanh"]) {
    const x = input(f(xs.length), xs);
    const y = g.add("gelu", [x], { approximate });
    out(`gelu ${approximate}`, y);
    out(`gelu ${approximate}: gradient`, gradOf(x, y));
  }
}

const close = (a: number, b: number, dtype: string) =>
  (Number.isNaN(a) && Number.isNaN(b)) || (dtype === "f32" ? Math.abs(a - b) <= 2e-5 * Math.abs(b) + 2e-6 || a === b : a === b);

describe("topk, quantile and gelu on the GPU match the reference interpreter", () => {
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.out)));
  });

  for (const c of cases) {
    it(c.name, () => {
      const w = want.get(c.out)!.data;
      const o = got.get(c.out)!;
      const dtype = g.type(g.outputs.get(c.out)!).dtype;
      expect(o.length).toBe(w.length);
      const bad = Array.from(w.keys()).filter((i) => !close(o[i], w[i], dtype));
      expect(bad.slice(0, 5).map((i) => `element ${i}: gpu ${o[i]} vs reference ${w[i]}`)).toEqual([]);
    });
  }
});
