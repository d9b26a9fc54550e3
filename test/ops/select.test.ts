// topk, quantile and gelu as a Weft program sees them, on the reference back end, against
// float64 code written here (a rank count for topk, numpy's definition of the linear
// quantile, the normal CDF by quadrature for gelu); and the diagnostics for misuse.
// Gradients are checked on random cases in properties.test.ts; the GPU in select-gpu.test.ts.
import { describe, expect, it } from "vitest";
import { loadProgram, lowerFunction, MODELS_DIR, type InputType } from "../../compiler/index.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { checkSource } from "../check/harness.ts";
import { rng, run } from "../util/graphs.ts";

function lowered(source: string, entry: string, inputs: Record<string, InputType>): { ok: true; graph: Graph } | { ok: false; messages: string[] } {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/t.weft" ? source : undefined) };
  const p = loadProgram("/virtual/t.weft", { host });
  if (p.diagnostics.length) return { ok: false, messages: p.diagnostics.map((d) => `${d.code} ${d.message}`) };
  const l = lowerFunction(p, entry, new Map(Object.entries(inputs)), { wrt: [] });
  return l.ok ? { ok: true, graph: l.value.graph } : { ok: false, messages: l.diagnostics.map((d) => `${d.code} ${d.message}`) };
}

/** Runs `entry` on the reference interpreter; returns every output. */
function runRef(source: string, entry: string, inputs: Record<string, RefTensor & { dtype?: "f32" | "i32" }>): Map<string, number[]> {
  const types = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { shape: [...t.shape], dtype: t.dtype ?? "f32" }]));
  const l = lowered(source, entry, types);
  if (!l.ok) throw new Error(l.messages.join("\n"));
  const out = run(l.graph, Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, refTensor(t.shape, t.data)])));
  return new Map([...out].map(([k, v]) => [k, Array.from(v.data)]));
}

const t = (shape: number[], data: number[]) => refTensor(shape, data);

// ---- independent float64 definitions

/** Row-wise topk by counting ranks: j's rank is the number of elements before it (larger, or equal at a lower index). */
function topkRows(data: number[], rows: number, n: number, k: number): { values: number[]; indices: number[] } {
  const values: number[] = [];
  const indices: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = data.slice(r * n, (r + 1) * n);
    const slot = new Array<number>(k);
    row.forEach((v, j) => {
      const rank = row.filter((u, i) => u > v || (u === v && i < j)).length;
      if (rank < k) slot[rank] = j;
    });
    indices.push(...slot);
    values.push(...slot.map((j) => row[j]));
  }
  return { values, indices };
}

/** numpy.quantile(row, q) with method="linear" (the default), as numpy's docs define it. */
function npQuantile(row: number[], q: number): number {
  const s = [...row].sort((a, b) => a - b);
  const p = q * (s.length - 1);
  const lo = Math.floor(p);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (p - lo) * (s[hi] - s[lo]);
}

/** Φ(x) by composite Simpson quadrature of the normal density from 0 (error < 1e-13 here). */
function normalCdf(x: number): number {
  const m = 4000;
  const h = x / m;
  let s = 0;
  for (let i = 0; i <= m; i++) {
    const w = i === 0 || i === m ? 1 : i % 2 ? 4 : 2;
    s += w * Math.exp(-0.5 * (i * h) ** 2);
  }
  return 0.5 + ((s * h) / 3) / Math.sqrt(2 * Math.PI);
}

describe("topk(x, k, axis)", () => {
  const SRC = `
dim R = 3, N = 7, K = 3
fn top(x: f32[R, N]) -> (f32[R, K], i32[R, K]) = topk(x, K, N)
fn top_axis0(x: f32[R, N]) -> (f32[2, N], i32[2, N]) = topk(x, 2, R)
fn top_int(x: i32[R, N]) -> (i32[R, K], i32[R, K]) = topk(x, K, -1)
fn grads(x: f32[R, N], w: f32[R, K]) -> (f32[R, N], f32[R, N]) {
  let (v, i) = topk(x, K, N)
  // through the values: the cotangent goes back to where each value came from; the
  // indices (i32), like argmax's, carry none once the program says so with stop
  return (grad(sum(v * w), x), grad(sum(cast(stop(i)) * w) + sum(cast(stop(argmax(x, N)))), x))
}
fn through_indices(x: f32[R, N], w: f32[R, K]) -> f32[R, N] = grad(sum(cast(topk(x, K, N)[1]) * w), x)
fn through_argmax(x: f32[R, N]) -> f32[R, N] = grad(sum(cast(argmax(x, N))), x)`;

  it("gives the k largest, largest first, with their indices; ties go to the lower index", () => {
    // row 1 ties 4 three ways; row 2 is all equal
    const data = [3, 1, 4, 1, 5, 9, 2, 4, 0, 4, 7, 4, -1, 2, 5, 5, 5, 5, 5, 5, 5];
    const out = runRef(SRC, "top", { x: t([3, 7], data) });
    const want = topkRows(data, 3, 7, 3);
    expect(out.get("out.0")).toEqual(want.values);
    expect(out.get("out.1")).toEqual(want.indices);
    expect(out.get("out.1")).toEqual([5, 4, 2, 3, 0, 2, 0, 1, 2]);
  });

  it("along a leading axis, and on i32", () => {
    const r = rng(3);
    const data = Array.from({ length: 21 }, () => Math.floor(r() * 5) - 2);
    const cols = (a: number[]) => Array.from({ length: 7 }, (_, c) => [0, 1, 2].map((k) => a[k * 7 + c])).flat();
    const axis0 = runRef(SRC, "top_axis0", { x: t([3, 7], data) });
    const want = topkRows(cols(data), 7, 3, 2);
    // back from [N, 2] to [2, N]
    const back = (a: number[]) => [0, 1].flatMap((k) => Array.from({ length: 7 }, (_, c) => a[c * 2 + k]));
    expect(axis0.get("out.0")).toEqual(back(want.values));
    expect(axis0.get("out.1")).toEqual(back(want.indices));
    const ints = runRef(SRC, "top_int", { x: { ...t([3, 7], data), dtype: "i32" } });
    expect(ints.get("out.0")).toEqual(topkRows(data, 3, 7, 3).values);
    expect(ints.get("out.1")).toEqual(topkRows(data, 3, 7, 3).indices);
  });

  it("NaN counts as the largest; −0 and +0 tie", () => {
    const out = runRef(SRC, "top", { x: t([3, 7], [1, NaN, 3, NaN, 0, -5, 2, -0, 0, -0, -1, -2, -3, -4, 1, 2, 3, 4, 5, 6, 7]) });
    expect(out.get("out.1")).toEqual([1, 3, 2, 0, 1, 2, 6, 5, 4]);
  });

  it("the values' gradient scatters the cotangent back; the indices carry none (like argmax)", () => {
    const r = rng(5);
    const data = Array.from({ length: 21 }, () => Math.round(r() * 40) / 8);
    const w = Array.from({ length: 9 }, () => r());
    const out = runRef(SRC, "grads", { x: t([3, 7], data), w: t([3, 3], w) });
    const { indices } = topkRows(data, 3, 7, 3);
    const want = new Array<number>(21).fill(0);
    indices.forEach((j, s) => (want[Math.floor(s / 3) * 7 + j] += w[s]));
    expect(out.get("out.0")).toEqual(want);
    expect(out.get("out.1")).toEqual(new Array(21).fill(0));
  });

  it("differentiating through the indices (or argmax) without stop is an error naming the op", () => {
    const types = { x: { shape: [3, 7], dtype: "f32" as const }, w: { shape: [3, 3], dtype: "f32" as const } };
    const a = lowered(SRC, "through_indices", types);
    expect(a.ok).toBe(false);
    expect(!a.ok && a.messages.join("\n")).toMatch(/W0216 cannot differentiate through 'argsort' \(its i32 result .*stop/);
    const b = lowered(SRC, "through_argmax", { x: types.x });
    expect(b.ok).toBe(false);
    expect(!b.ok && b.messages.join("\n")).toMatch(/W0216 cannot differentiate through 'argmax' \(its i32 result .*stop/);
  });

  it("k outside 1..n is an error naming the axis length", () => {
    const l = lowered("dim N = 5\nfn f(x: f32[N]) -> f32[6] = topk(x, 6, N)[0]", "f", { x: { shape: [5], dtype: "f32" } });
    expect(l.ok).toBe(false);
    expect(!l.ok && l.messages.join("\n")).toMatch(/k must be an integer in 1\.\.5/);
  });

  it("the checker types the tuple", () => {
    const c = checkSource("dim B, T, K\nfn f(x: f32[B, T]) -> f32[B, K] {\n  let (v, i) = topk(x, K, T)\n  return v + cast(i)\n}");
    expect(c.errors, c.report()).toEqual([]);
    expect(c.typeOf("topk(x, K, T)")).toBe("(f32[B, K], i32[B, K])");
  });
});

describe("quantile(x, q, axis)", () => {
  const SRC = (q: number) => `
dim R = 4, N = 5
fn along(x: f32[R, N]) -> f32[R] = quantile(x, ${q}, N)
fn along0(x: f32[R, N]) -> f32[N] = quantile(x, ${q}, R)
fn all(x: f32[R, N]) -> f32 = quantile(x, q=${q})
fn grads(x: f32[R, N], w: f32[R]) -> f32[R, N] = grad(sum(quantile(x, ${q}, N) * w), x)`;

  it("matches numpy's worked definition on small cases", () => {
    const one = (q: number, row: number[]) => runRef(`dim N = ${row.length}\nfn f(x: f32[N]) -> f32 = quantile(x, ${q}, N)`, "f", { x: t([row.length], row) }).get("out")![0];
    // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75; numpy.median([4, 1, 3, 2]) = 2.5
    expect(one(0.25, [1, 2, 3, 4])).toBeCloseTo(1.75, 14);
    expect(one(0.5, [4, 1, 3, 2])).toBeCloseTo(2.5, 14);
    // odd length: the middle element; with ties: p = 2.7 between the 1 at rank 2 and the 5
    expect(one(0.5, [3, 1, 2])).toBe(2);
    expect(one(0.9, [1, 5, 1, 1])).toBeCloseTo(3.8, 14);
    expect(one(1, [2, -7, 9])).toBe(9);
    expect(one(0, [2, -7, 9])).toBe(-7);
    expect(one(0.3, [42])).toBe(42);
  });

  for (const q of [0, 0.1, 0.25, 0.37, 0.5, 0.9, 1]) {
    it(`q = ${q}: along either axis, and over everything, as numpy (with ties)`, () => {
      const r = rng(Math.round(q * 100) + 1);
      const data = Array.from({ length: 20 }, () => Math.floor(r() * 6) / 2);
      const out = (e: string) => runRef(SRC(q), e, { x: t([4, 5], data) }).get("out")!;
      const rows = [0, 1, 2, 3].map((i) => data.slice(i * 5, i * 5 + 5));
      const cols = [0, 1, 2, 3, 4].map((c) => rows.map((row) => row[c]));
      out("along").forEach((v, i) => expect(v).toBeCloseTo(npQuantile(rows[i], q), 12));
      out("along0").forEach((v, i) => expect(v).toBeCloseTo(npQuantile(cols[i], q), 12));
      expect(out("all")[0]).toBeCloseTo(npQuantile(data, q), 12);
    });
  }

  it("the gradient goes to the two order statistics, weighted 1 − frac and frac", () => {
    // distinct values: ranks are unambiguous. q = 0.3, n = 5: p = 1.2, so ranks 1 and 2 get 0.8 and 0.2
    const data = [5, 1, 4, 2, 3, 0.5, -1, 9, 7, 8, 10, 20, 30, 40, 50, -3, -2, -1, -4, -5];
    const w = [1, 2, 3, 4];
    const g = runRef(SRC(0.3), "grads", { x: t([4, 5], data), w: t([4], w) }).get("out")!;
    const want = new Array<number>(20).fill(0);
    for (let i = 0; i < 4; i++) {
      const row = data.slice(i * 5, i * 5 + 5);
      const order = row.map((_, j) => j).sort((a, b) => row[a] - row[b]);
      want[i * 5 + order[1]] += 0.8 * w[i];
      want[i * 5 + order[2]] += 0.2 * w[i];
    }
    g.forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
  });

  it("q outside [0, 1] is a checker error; the result type drops the axis", () => {
    const bad = checkSource("dim B, T\nfn f(x: f32[B, T]) -> f32[B] = quantile(x, 1.5, T)");
    expect(bad.lines.join("\n")).toMatch(/W0211 quantile q must be in \[0, 1\], found 1\.5/);
    const ok = checkSource("dim B, T\nfn f(x: f32[B, T]) -> f32[B] = quantile(x, 0.75, T)\nfn g(x: f32[B, T]) -> f32 = quantile(x, 0.5)");
    expect(ok.errors, ok.report()).toEqual([]);
    expect(ok.typeOf("quantile(x, 0.75, T)")).toBe("f32[B]");
    const int = checkSource("dim B, T\nfn f(x: i32[B, T]) -> f32[B] = quantile(x, 0.5, T)");
    expect(int.errors.length).toBeGreaterThan(0);
  });
});

describe("gelu(x, approximate)", () => {
  const SRC = `
dim N = 9
fn exact(x: f32[N]) -> f32[N] = gelu(x)
fn named(x: f32[N]) -> f32[N] = gelu(x, approximate="none")
fn tanh_form(x: f32[N]) -> f32[N] = gelu(x, approximate="tanh")
fn d2(x: f32[N]) -> f32[N] = grad(sum(grad(sum(gelu(x)), x)), x)`;
  const xs = [-8, -3, -1, -0.5, 0, 0.5, 1, 2, 5];

  it("is exact by default (x·Φ(x), as torch.nn.functional.gelu)", () => {
    const out = runRef(SRC, "exact", { x: t([9], xs) }).get("out")!;
    // Φ(1) = 0.8413447460685429, Φ(2) = 0.9772498680518208, Φ(−3) = 0.0013498980316300946
    expect(out[6]).toBeCloseTo(0.8413447460685429, 15);
    expect(out[7]).toBeCloseTo(2 * 0.9772498680518208, 15);
    expect(out[1]).toBeCloseTo(-3 * 0.0013498980316300946, 15);
    out.forEach((v, i) => expect(Math.abs(v - xs[i] * normalCdf(xs[i]))).toBeLessThan(1e-13));
    expect(runRef(SRC, "named", { x: t([9], xs) }).get("out")).toEqual(out);
  });

  it('approximate="tanh" is 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))', () => {
    const out = runRef(SRC, "tanh_form", { x: t([9], xs) }).get("out")!;
    out.forEach((v, i) => {
      const x = xs[i];
      expect(v).toBeCloseTo(0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))), 14);
    });
  });

  it("its second derivative is 2φ(x) − x²φ(x)", () => {
    const out = runRef(SRC, "d2", { x: t([9], xs) }).get("out")!;
    out.forEach((v, i) => {
      const x = xs[i];
      const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
      expect(v).toBeCloseTo((2 - x * x) * pdf, 12);
    });
  });

  it("another approximate= is an error", () => {
    const c = checkSource('dim N\nfn f(x: f32[N]) -> f32[N] = gelu(x, approximate="fast")');
    expect(c.lines.join("\n")).toMatch(/W0211 gelu: approximate must be "none" or "tanh", found "fast"/);
  });
});
