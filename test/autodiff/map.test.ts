// `map(f, args…, over=N)` in the language: f is lowered once and batched
// (compiler/lower/map.ts, compiler/autodiff/batch.ts). Each mapped program is checked
// against the same fn lowered on its own and run on each example's slice, one by one
// (float64 reference interpreter), or against float64 code written here; gradients
// through map also against central differences. The GPU suite at the end runs a few
// mapped programs on the WebGPU device against the reference.
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { hasErrors, formatDiagnostic } from "../../compiler/diagnostics.ts";
import { fileHost, loadProgram, lowerFunction } from "../../compiler/index.ts";
import { numel, type Graph } from "../../compiler/ir/graph.ts";
import { countedKey, randomBits, randomKey } from "../../compiler/ops/random.ts";
import type { DType } from "../../runtime/bundle.ts";
import { refTensor, rowStrides, forEachIndex, type RefTensor } from "../../runtime/reference/tensor.ts";
import { run } from "../util/graphs.ts";
import { runBoth } from "../util/both.ts";
import { ROOT, uniforms } from "../util/weft.ts";

const SRC = `
import "std/nn"
dim N, T, D, F, V, M

block Net {
  ln = LayerNorm(D)
  ff = Ffn(D, F)
  fn (x: f32[T, D]) -> f32[T, D] = x + ff(ln(x))
}

/// a residual MLP, then softmax mixing over positions; bias is the same for every example
fn mix(m: Net, x: f32[T, D], bias: f32[D]) -> f32[T, D] {
  let h = m(x) + bias
  let s = softmax(h @ transpose(h, [D, T]) / 2.0, -1)
  return s @ h
}
fn mix_all(m: Net, xs: f32[N, T, D], bias: f32[D]) -> f32[N, T, D] = map(mix, m, xs, bias, over=N)
/// an instance as the mapped fn
fn apply(m: Net, x: f32[T, D]) -> f32[T, D] = m(x)
fn apply_all(m: Net, xs: f32[N, T, D]) -> f32[N, T, D] = map(m, xs, over=N)
/// per-example gradients w.r.t. the mapped input itself
fn saliency(m: Net, x: f32[T, D]) -> f32[T, D] = grad(sum(m(x) * m(x)), x)
fn saliency_all(m: Net, xs: f32[N, T, D]) -> f32[N, T, D] = map(saliency, m, xs, over=N)
/// the examples along the middle axis
fn mix_mid(m: Net, xs: f32[T, N, D], bias: f32[D]) -> f32[N, T, D] = map(mix, m, xs, bias, over=N)

block Lm {
  param table: f32[V, D] = normal(0.5)
  head = Linear(D, V)
  fn (x: i32[T]) -> f32[T, V] = head(gather(table, x, 0))
}

/// a loss, indices, a scan, a selection and slicing, returned as a tuple
fn stats(m: Lm, x: i32[T], y: i32[T]) -> (f32, i32[T], f32[T, V], f32[T, V]) {
  let logits = m(x)
  let c = cumsum(logits, T, reverse=true)
  let tail = concat([logits[1:, :], logits[:1, :]], 0)
  return (cross_entropy(logits, y), argmax(c, V), keep_topk(logits, 2, V), tail * take_along(logits, y[:, None], V))
}
fn stats_all(m: Lm, xs: i32[N, T], ys: i32[N, T]) -> (f32[N], i32[N, T], f32[N, T, V], f32[N, T, V]) =
  map(stats, m, xs, ys, over=N)

fn loss(m: Lm, x: i32[T], y: i32[T]) -> f32 = cross_entropy(m(x), y)
/// one example's gradient w.r.t. the head and the embedding table
fn pe_grad(m: Lm, x: i32[T], y: i32[T]) -> f32[_] {
  let l = loss(m, x, y)
  return concat([flatten(grad(l, m.head)), flatten(grad(l, m.table))], 0)
}
fn pe_grads(m: Lm, xs: i32[N, T], ys: i32[N, T]) -> f32[N, _] = map(pe_grad, m, xs, ys, over=N)
/// gradients through map: the loss of a batch is the sum of its examples'
fn total(m: Lm, xs: i32[N, T], ys: i32[N, T]) -> f32 = sum(map(loss, m, xs, ys, over=N))
fn total_pe(m: Lm, xs: i32[N, T], ys: i32[N, T]) -> f32 = sum(map(pe_grad, m, xs, ys, over=N))

fn dot(a: f32[D], b: f32[D]) -> f32 = sum(a * b)
fn row(a: f32[D], bs: f32[M, D]) -> f32[M] = map(dot, a, bs, over=M)
/// nested: the inner map's mapped argument is whole to the outer one
fn gram(us: f32[N, D], bs: f32[M, D]) -> f32[N, M] = map(row, us, bs, over=N)
fn scaled(x: f32[M, D], w: f32[D]) -> f32[M] = map(dot, x, w, over=M)
/// nested: the inner map's mapped argument is batched by the outer one
fn scaled_all(xs: f32[N, M, D], w: f32[D]) -> f32[N, M] = map(scaled, xs, w, over=N)

fn drop(x: f32[D]) -> f32[D] = dropout(x, 0.5)
fn drop_all(xs: f32[N, D]) -> f32[N, D] = map(drop, xs, over=N)
`;

const FILE = resolve(ROOT, "test/autodiff/map-fixture.weft"); // in memory only
const base = fileHost();
const host = { ...base, readFile: (p: string) => (p === FILE ? SRC : base.readFile(p)) };

type Dims = Record<string, number>;
interface In {
  shape: number[];
  data: ArrayLike<number>;
  dtype?: DType;
}

function lower(entry: string, inputs: Record<string, In>, dims: Dims, opts: { wrt?: string[]; training?: boolean } = {}) {
  const p = loadProgram(FILE, { dims, host });
  if (hasErrors(p.diagnostics)) throw new Error(p.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  const types = new Map(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype ?? ("f32" as DType) }]));
  const r = lowerFunction(p, entry, types, { dims, ...opts });
  if (!r.ok) throw new Error(r.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return r.value;
}

/** Deterministic values for a parameter, from its path. */
function paramValues(path: string, n: number): number[] {
  let h = 7;
  for (const ch of path) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  return uniforms(n, h, -0.8, 0.8);
}

function feedsFor(graph: Graph, params: { path: string; shape: number[] }[], inputs: Record<string, In>, extra: Record<string, RefTensor> = {}): Record<string, RefTensor> {
  const feeds: Record<string, RefTensor> = { ...extra };
  for (const q of params) feeds[q.path] = refTensor(q.shape, paramValues(q.path, numel(q.shape)));
  for (const [k, t] of Object.entries(inputs)) feeds[k] = refTensor(t.shape, t.data);
  for (const name of graph.sources.keys()) if (!(name in feeds)) throw new Error(`test feeds no ${name}`);
  return feeds;
}

function runEntry(entry: string, inputs: Record<string, In>, dims: Dims, opts: { wrt?: string[] } = {}): Map<string, RefTensor> {
  const { graph, params } = lower(entry, inputs, dims, opts);
  return run(graph, feedsFor(graph, params, inputs));
}

/** Element `e` of `t` along `axis`, without that axis. */
function sliceAt(t: { shape: readonly number[]; data: ArrayLike<number> }, axis: number, e: number): RefTensor {
  const shape = t.shape.filter((_, k) => k !== axis);
  const st = rowStrides(t.shape);
  const out = refTensor(shape);
  forEachIndex(shape, (flat, idx) => {
    let o = e * st[axis];
    for (let k = 0, j = 0; k < t.shape.length; k++) if (k !== axis) o += idx[j++] * st[k];
    out.data[flat] = t.data[o];
  });
  return out;
}

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return w;
}

/**
 * Runs `mapped` once and `single` on each example (the mapped inputs sliced along their
 * axis); every output's row e must equal the single run's output.
 */
function expectRowsMatch(mapped: string, single: string, inputs: Record<string, In>, axes: Record<string, number>, dims: Dims, n: number, outs: string[], names: Record<string, string> = {}): void {
  const all = runEntry(mapped, inputs, dims);
  for (let e = 0; e < n; e++) {
    const one: Record<string, In> = {};
    for (const [k, t] of Object.entries(inputs)) {
      const s = k in axes ? sliceAt(t, axes[k], e) : refTensor(t.shape, t.data);
      one[names[k] ?? k] = { shape: [...s.shape], data: s.data, dtype: t.dtype };
    }
    const want = runEntry(single, one, dims);
    for (const o of outs) expect(maxErr(sliceAt(all.get(o)!, 0, e).data, want.get(o)!.data), `${o}, example ${e}`).toBeLessThan(1e-12);
  }
}

const ND = { N: 3, T: 4, D: 5, F: 6, V: 7, M: 2 };
const ints = (n: number, seed: number, lo: number, hi: number) => uniforms(n, seed, lo, hi).map(Math.floor);
const tokens = (seed: number): In => ({ shape: [ND.N, ND.T], data: ints(ND.N * ND.T, seed, 0, ND.V), dtype: "i32" });
const xs3 = { shape: [ND.N, ND.T, ND.D], data: uniforms(ND.N * ND.T * ND.D, 1, -2, 2) };
const bias = { shape: [ND.D], data: uniforms(ND.D, 2, -1, 1) };

describe("map equals f applied to each slice, stacked (reference, float64)", () => {
  it("an MLP with layer_norm, gelu, matmuls and softmax; an unsliced argument", () => {
    expectRowsMatch("mix_all", "mix", { xs: xs3, bias }, { xs: 0 }, ND, ND.N, ["out"], { xs: "x" });
  });

  it("an instance (its forward fn) as the mapped fn", () => {
    expectRowsMatch("apply_all", "apply", { xs: xs3 }, { xs: 0 }, ND, ND.N, ["out"], { xs: "x" });
  });

  it("the examples along a middle axis", () => {
    const mid = sliceAtEachT(xs3);
    expectRowsMatch("mix_mid", "mix", { xs: mid, bias }, { xs: 1 }, ND, ND.N, ["out"], { xs: "x" });
  });

  it("embedding gather with per-example indices, cross_entropy, cumsum, argmax, keep_topk, slices, concat, take_along; tuple results", () => {
    expectRowsMatch("stats_all", "stats", { xs: tokens(3), ys: tokens(4) }, { xs: 0, ys: 0 }, ND, ND.N, ["out.0", "out.1", "out.2", "out.3"], { xs: "x", ys: "y" });
  });

  it("per-example gradients: map of grad equals each example's gradient computed on its own", () => {
    expectRowsMatch("pe_grads", "pe_grad", { xs: tokens(5), ys: tokens(6) }, { xs: 0, ys: 0 }, ND, ND.N, ["out"], { xs: "x", ys: "y" });
  });

  it("per-example gradients w.r.t. the mapped argument", () => {
    expectRowsMatch("saliency_all", "saliency", { xs: xs3 }, { xs: 0 }, ND, ND.N, ["out"], { xs: "x" });
  });

  it("nested map, the inner mapped argument whole to the outer map (float64 dot products written here)", () => {
    const a = { shape: [ND.N, ND.D], data: uniforms(ND.N * ND.D, 7) };
    const b = { shape: [ND.M, ND.D], data: uniforms(ND.M * ND.D, 8) };
    const got = runEntry("gram", { us: a, bs: b }, ND).get("out")!;
    expect(got.shape).toEqual([ND.N, ND.M]);
    for (let i = 0; i < ND.N; i++) {
      for (let j = 0; j < ND.M; j++) {
        let s = 0;
        for (let d = 0; d < ND.D; d++) s += a.data[i * ND.D + d] * b.data[j * ND.D + d];
        expect(got.data[i * ND.M + j]).toBeCloseTo(s, 12);
      }
    }
  });

  it("nested map, the inner mapped argument batched by the outer map", () => {
    const x = { shape: [ND.N, ND.M, ND.D], data: uniforms(ND.N * ND.M * ND.D, 9) };
    const w = { shape: [ND.D], data: uniforms(ND.D, 10) };
    const got = runEntry("scaled_all", { xs: x, w }, ND).get("out")!;
    for (let i = 0; i < ND.N * ND.M; i++) {
      let s = 0;
      for (let d = 0; d < ND.D; d++) s += x.data[i * ND.D + d] * w.data[d];
      expect(got.data[i]).toBeCloseTo(s, 12);
    }
  });
});

/** xs3 laid out [T, N, D]: the same examples along the middle axis. */
function sliceAtEachT(t: In): In {
  const [n, tt, d] = t.shape;
  const out = new Array<number>(n * tt * d);
  for (let e = 0; e < n; e++) for (let i = 0; i < tt; i++) for (let k = 0; k < d; k++) out[(i * n + e) * d + k] = t.data[(e * tt + i) * d + k];
  return { shape: [tt, n, d], data: out };
}

describe("gradients through map", () => {
  const xs = tokens(11);
  const ys = tokens(12);
  const wrt = ["m.table", "m.head.w", "m.head.b"];

  it("grad of the summed per-example losses equals the sum of the per-example gradients, and central differences", () => {
    const { graph, params } = lower("total", { xs, ys }, ND, { wrt });
    const feeds = feedsFor(graph, params, { xs, ys });
    const got = run(graph, feeds);
    for (const w of wrt) {
      const sum = new Float64Array(got.get(`grad.${w}`)!.data.length);
      for (let e = 0; e < ND.N; e++) {
        const one = { x: { shape: [ND.T], data: sliceAt(xs, 0, e).data, dtype: "i32" as const }, y: { shape: [ND.T], data: sliceAt(ys, 0, e).data, dtype: "i32" as const } };
        const g = runEntry("loss", one, ND, { wrt: [w] }).get(`grad.${w}`)!;
        g.data.forEach((v, i) => (sum[i] += v));
      }
      expect(maxErr(got.get(`grad.${w}`)!.data, sum), w).toBeLessThan(1e-12);
      // central differences of the mapped loss itself, on a few elements
      const n = feeds[w].data.length;
      for (const i of [0, Math.floor(n / 2), n - 1]) {
        const h = 1e-6;
        const at = (dv: number) => {
          const f = { ...feeds, [w]: refTensor(feeds[w].shape, feeds[w].data) };
          f[w].data[i] += dv;
          return run(graph, f).get("out")!.data[0];
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        expect(Math.abs(got.get(`grad.${w}`)!.data[i] - fd), `${w}[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
    }
  });

  it("grad through a map of per-example gradients (second order) matches central differences", () => {
    const { graph, params } = lower("total_pe", { xs, ys }, ND, { wrt: ["m.head.w"] });
    const feeds = feedsFor(graph, params, { xs, ys });
    const got = run(graph, feeds).get("grad.m.head.w")!;
    for (const i of [0, 7, got.data.length - 1]) {
      const h = 1e-5;
      const at = (dv: number) => {
        const f = { ...feeds, "m.head.w": refTensor(feeds["m.head.w"].shape, feeds["m.head.w"].data) };
        f["m.head.w"].data[i] += dv;
        return run(graph, f).get("out")!.data[0];
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(got.data[i] - fd), `m.head.w[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    }
  });
});

describe("map is batched, not unrolled", () => {
  const count = (entry: string, n: number, inputs: (n: number) => Record<string, In>) => lower(entry, inputs(n), { ...ND, N: n }).graph.nodes.length;
  const tok = (n: number) => ({ xs: { shape: [n, ND.T], data: ints(n * ND.T, 1, 0, ND.V), dtype: "i32" as const }, ys: { shape: [n, ND.T], data: ints(n * ND.T, 2, 0, ND.V), dtype: "i32" as const } });

  it("the graph of map over N examples has as many nodes for N = 2 as for N = 40 (per-example gradients, an MLP, nested maps)", () => {
    expect(count("pe_grads", 40, tok)).toBe(count("pe_grads", 2, tok));
    expect(count("stats_all", 40, tok)).toBe(count("stats_all", 2, tok));
    const x = (n: number) => ({ xs: { shape: [n, ND.T, ND.D], data: new Array(n * ND.T * ND.D).fill(0) }, bias });
    expect(count("mix_all", 40, x)).toBe(count("mix_all", 2, x));
    const y = (n: number) => ({ xs: { shape: [n, ND.M, ND.D], data: new Array(n * ND.M * ND.D).fill(0) }, w: bias });
    expect(count("scaled_all", 40, y)).toBe(count("scaled_all", 2, y));
  });

  it("the gradient-matching seed's per-example gradients: one graph whatever N", () => {
    const nodes = (n: number) => {
      const dims = { N: n, T: 3, V: 5, D: 3, P: 20, K: 2 };
      const p = loadProgram(resolve(ROOT, "models/seeds/gradmatch.weft"), { dims });
      const t = { shape: [n, 3], dtype: "i32" as const };
      const r = lowerFunction(p, "grad_features", new Map([["xs", t], ["ys", t]]), { dims });
      if (!r.ok) throw new Error(r.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
      return r.value.graph.nodes.length;
    };
    expect(nodes(64)).toBe(nodes(4));
  });
});

describe("random numbers inside map", () => {
  it("dropout in a mapped fn: one [N, D] draw, so every example gets its own mask (the documented semantics)", () => {
    const n = 4;
    const x = { shape: [n, ND.D], data: new Array(n * ND.D).fill(1.5) };
    const { graph, params } = lower("drop_all", { xs: x }, { ...ND, N: n }, { training: true });
    const step = 17;
    const got = run(graph, feedsFor(graph, params, { xs: x }, { "rng.step": refTensor([], [step]) })).get("out")!;
    // the program's only random call site: seed 0, stream 0; element i of the [N, D] draw
    const key = countedKey(randomKey(0, 0, 0), step);
    for (let i = 0; i < n * ND.D; i++) {
      const u = (randomBits(i, key) >>> 8) * 2 ** -24;
      expect(got.data[i]).toBe(u >= 0.5 ? 3 : 0);
    }
    const masks = Array.from({ length: n }, (_, e) => [...sliceAt(got, 0, e).data].join());
    expect(new Set(masks).size).toBe(n);
  });
});

describe("map on the GPU agrees with the reference", () => {
  it("mapped MLP (middle axis), per-example gradients, stats with gathers and tuples, nested map", async () => {
    const programs: [string, Record<string, In>][] = [
      ["mix_mid", { xs: sliceAtEachT(xs3), bias }],
      ["pe_grads", { xs: tokens(21), ys: tokens(22) }],
      ["stats_all", { xs: tokens(23), ys: tokens(24) }],
      ["scaled_all", { xs: { shape: [ND.N, ND.M, ND.D], data: uniforms(ND.N * ND.M * ND.D, 25) }, w: bias }],
    ];
    for (const [entry, inputs] of programs) {
      const { graph, params } = lower(entry, inputs, ND);
      // f32 on the device: round the values both back ends see
      const feeds = feedsFor(graph, params, inputs);
      for (const v of Object.values(feeds)) v.data.set(Float32Array.from(v.data));
      const outs = [...graph.outputs.keys()];
      const { got, want } = await runBoth(graph, feeds, outs);
      for (const o of outs) {
        const w = want.get(o)!.data;
        const gv = got.get(o)!;
        expect(gv.length).toBe(w.length);
        for (let i = 0; i < w.length; i++) expect(Math.abs(gv[i] - w[i]), `${entry} ${o}[${i}]`).toBeLessThan(2e-4 * Math.max(1, Math.abs(w[i])));
      }
    }
  });
});
