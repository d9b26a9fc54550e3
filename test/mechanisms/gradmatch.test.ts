// Gradient matching (MECHANISMS.md §2): models/seeds/gradmatch.weft against
// (1) per-example gradients of the summed token NLL, derived by hand here in float64 JS
//     (∂/∂logits = softmax − one_hot(target)), themselves checked by central differences;
// (2) a line-by-line JS port of optimize_subset in zhangjf-nlp/ManyShotICL-CLG
//     condense_tensor.py: greedy forward selection, then best-single-swap rounds that stop
//     when no swap improves the L2 distance between the means by more than 1e-6.
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const FILE = "models/seeds/gradmatch.weft";

// ---- per-example gradients ----
const N = 4;
const T = 3;
const V = 5;
const D = 3;
const P = D * V + V; // sizeof(m.head): w is [D, V], b is [V]
const ids = (seed: number) => uniforms(N * T, seed, 0, V).map(Math.floor);
const xs = ids(1);
const ys = ids(2);
const params = new Map<string, number[]>([
  ["m.embed.table", uniforms(V * D, 10, -1, 1)],
  ["m.head.w", uniforms(D * V, 11, -1, 1)],
  ["m.head.b", uniforms(V, 12, -0.5, 0.5)],
]);

/** −Σ_t log softmax(table[x_t] @ w + b)[y_t] for example n. */
function nll(n: number): number {
  const [table, w, b] = ["m.embed.table", "m.head.w", "m.head.b"].map((k) => params.get(k)!);
  let loss = 0;
  for (let t = 0; t < T; t++) {
    const x = xs[n * T + t];
    const logits = Array.from({ length: V }, (_, v) => b[v] + Array.from({ length: D }, (_, d) => table[x * D + d] * w[d * V + v]).reduce((a, c) => a + c, 0));
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, l) => a + Math.exp(l - m), 0));
    loss -= logits[ys[n * T + t]] - lse;
  }
  return loss;
}

/** ∂nll/∂w (row-major [D, V]) then ∂nll/∂b, by hand: Σ_t e_t ⊗ (p_t − one_hot(y_t)). */
function exampleGrad(n: number): number[] {
  const [table, w, b] = ["m.embed.table", "m.head.w", "m.head.b"].map((k) => params.get(k)!);
  const gw = new Array(D * V).fill(0);
  const gb = new Array(V).fill(0);
  for (let t = 0; t < T; t++) {
    const x = xs[n * T + t];
    const e = Array.from({ length: D }, (_, d) => table[x * D + d]);
    const logits = Array.from({ length: V }, (_, v) => b[v] + e.reduce((a, ed, d) => a + ed * w[d * V + v], 0));
    const m = Math.max(...logits);
    const z = logits.reduce((a, l) => a + Math.exp(l - m), 0);
    for (let v = 0; v < V; v++) {
      const dl = Math.exp(logits[v] - m) / z - (v === ys[n * T + t] ? 1 : 0);
      gb[v] += dl;
      for (let d = 0; d < D; d++) gw[d * V + v] += e[d] * dl;
    }
  }
  return [...gw, ...gb];
}

// ---- greedy selection and swap search: a port of condense_tensor.py's optimize_subset ----
const norm = (v: number[]) => Math.sqrt(v.reduce((a, b) => a + b * b, 0));

interface Selection {
  greedy: number[];
  selected: number[];
  swaps: number;
  /** the smallest gap between the best and the second-best candidate at any decision, and
   * between the best swap's distance and the stopping bound: how far from a tie the data is */
  margin: number;
}

function optimizeSubset(g: number[], n: number, p: number, k: number, maxIter: number, tol = 1e-6): Selection {
  const row = (i: number) => g.slice(i * p, i * p + p);
  const full = Array.from({ length: p }, (_, q) => Array.from({ length: n }, (_, i) => g[i * p + q]).reduce((a, b) => a + b, 0) / n);
  const S: number[][] = [];
  const selected: number[] = [];
  const remaining = [...Array(n).keys()];
  let margin = Infinity;
  const gap = (vals: number[]) => {
    const s = [...vals].sort((a, b) => a - b);
    if (s.length > 1) margin = Math.min(margin, s[1] - s[0]);
  };
  for (let it = 0; it < k; it++) {
    const current = it > 0 ? full.map((_, q) => S.reduce((a, r) => a + r[q], 0) / it) : full.map(() => 0);
    let best = -1;
    let bestDiff = Infinity;
    const diffs = remaining.map((j, idx) => {
      const d = norm(current.map((c, q) => (c * it + g[j * p + q]) / (it + 1) - full[q]));
      if (d < bestDiff) {
        bestDiff = d; // strict <: ties go to the lowest index
        best = idx;
      }
      return d;
    });
    gap(diffs);
    S.push(row(remaining[best]));
    selected.push(remaining[best]);
    remaining.splice(best, 1);
  }
  const greedy = [...selected];
  let swaps = 0;
  for (let it = 0; it < maxIter; it++) {
    const currentDiff = full.map((f, q) => f - S.reduce((a, r) => a + r[q], 0) / k);
    let minDiff = Infinity;
    let bestRow = -1;
    let bestCol = -1;
    const all: number[] = [];
    for (let r = 0; r < k; r++) {
      for (let c = 0; c < n; c++) {
        if (selected.includes(c)) continue; // the code's 1e10
        const d = norm(currentDiff.map((x, q) => (g[c * p + q] - S[r][q]) / k - x));
        all.push(d);
        if (d < minDiff) {
          minDiff = d; // first row, then first column, on ties
          bestRow = r;
          bestCol = c;
        }
      }
    }
    gap(all);
    const bound = norm(currentDiff) - tol;
    margin = Math.min(margin, Math.abs(minDiff - bound));
    if (minDiff >= bound) break;
    S[bestRow] = row(bestCol);
    selected[bestRow] = bestCol;
    swaps++;
  }
  return { greedy, selected, swaps, margin };
}

describe("Gradient matching", () => {
  it("the hand-derived per-example gradients match central differences of the summed NLL (a check of the test)", () => {
    for (let n = 0; n < N; n++) {
      const want = exampleGrad(n);
      const fd: number[] = [];
      for (const key of ["m.head.w", "m.head.b"]) {
        const w = params.get(key)!;
        for (let i = 0; i < w.length; i++) {
          const h = 1e-6;
          const saved = w[i];
          w[i] = saved + h;
          const up = nll(n);
          w[i] = saved - h;
          const down = nll(n);
          w[i] = saved;
          fd.push((up - down) / (2 * h));
        }
      }
      expect(maxRelError(want, fd, 1e-3)).toBeLessThan(1e-6);
    }
  });

  const inputs = {
    xs: { shape: [N, T], data: xs, dtype: "i32" as const },
    ys: { shape: [N, T], data: ys, dtype: "i32" as const },
  };
  const dims = { N, T, V, D, P, K: 2 };

  for (const backend of ["reference", "webgpu"] as const) {
    it(`map(example_grad, …, over=N): each row is that example's ∂loss/∂head, flattened w then b (${backend})`, async () => {
      const r = await runFn(FILE, "grad_features", inputs, { dims, backend, params });
      expect(r.params.size).toBe(params.size);
      const got = r.outputs.get("out")!;
      expect(got.length).toBe(N * P);
      const want = Array.from({ length: N }, (_, n) => exampleGrad(n)).flat();
      expect(maxRelError(got, want, backend === "reference" ? 1e-6 : 1e-3)).toBeLessThan(backend === "reference" ? 1e-12 : 2e-5);
    });
  }

  // grad_match on given rows: N = 10 rows of P = 4, K = 3, 4 swap rounds.
  const GN = 10;
  const GP = 4;
  const GK = 3;
  const gdims = { N: GN, T, V, D, P: GP, K: GK };
  const cases = [1, 8, 4, 12].map((seed) => ({ seed, g: uniforms(GN * GP, seed, -1, 1) }));

  it("the test matrices exercise 0, 1 and 2 swaps, finish within 4 rounds, and have no near-ties (a check of the test data)", () => {
    const swaps = new Set<number>();
    for (const { g } of cases) {
      const four = optimizeSubset(g, GN, GP, GK, 4);
      const many = optimizeSubset(g, GN, GP, GK, 1000);
      expect(four.selected).toEqual(many.selected); // 4 rounds reach the code's fixed point here
      expect(four.margin).toBeGreaterThan(1e-4);
      swaps.add(four.swaps);
    }
    expect([...swaps].sort()).toEqual([0, 1, 2]);
  });

  for (const backend of ["reference", "webgpu"] as const) {
    it(`grad_match: greedy selection then swap search, as condense_tensor.py (${backend})`, async () => {
      for (const { g } of cases) {
        const r = await runFn(FILE, "grad_match", { g: { shape: [GN, GP], data: g } }, { dims: gdims, backend });
        expect([...r.outputs.get("out")!]).toEqual(optimizeSubset(g, GN, GP, GK, 4).selected);
      }
    });
  }

  it("grad_match breaks ties towards the lowest index, and stops when no swap helps", async () => {
    // Rows ±e1, ±e2, then e1 and −e1 again: the full mean is 0; every first pick is at
    // distance 1 (pick row 0), then rows 1 and 5 both bring the mean to 0 (pick row 1).
    const g = [1, 0, -1, 0, 0, 1, 0, -1, 1, 0, -1, 0];
    const sel = optimizeSubset(g, 6, 2, 2, 4);
    expect(sel.selected).toEqual([0, 1]);
    expect(sel.swaps).toBe(0);
    const r = await runFn(FILE, "grad_match", { g: { shape: [6, 2], data: g } }, { dims: { N: 6, T, V, D, P: 2, K: 2 }, backend: "reference" });
    expect([...r.outputs.get("out")!]).toEqual([0, 1]);
  });

  it("per-example gradients, then the selection on them (reference)", async () => {
    const n = 6;
    const big = { N: n, T, V, D, P, K: 3 };
    const bx = uniforms(n * T, 31, 0, V).map(Math.floor);
    const by = uniforms(n * T, 32, 0, V).map(Math.floor);
    const feats = await runFn(FILE, "grad_features", { xs: { shape: [n, T], data: bx, dtype: "i32" }, ys: { shape: [n, T], data: by, dtype: "i32" } }, { dims: big, backend: "reference", params });
    const g = [...feats.outputs.get("out")!];
    const r = await runFn(FILE, "grad_match", { g: { shape: [n, P], data: g } }, { dims: big, backend: "reference" });
    const want = optimizeSubset(g, n, P, 3, 4);
    expect(want.margin).toBeGreaterThan(1e-6);
    expect([...r.outputs.get("out")!]).toEqual(want.selected);
  });
});
