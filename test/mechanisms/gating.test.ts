// Gating (MECHANISMS.md §5 placeholder form, §10): models/seeds/gating.weft against the
// formulas written again here in plain float64 JavaScript.
//
// §5 gives no formula from the paper (its code is unreleased): the fusion tested here is
// the placeholder h = z·a + (1−z)·b, z = σ(W[a; b] + b) of LANGUAGE.md's normative example.
// These tests check that Weft computes that program; they say nothing about GSGN itself.
// §10's top-2 routing is as LANGUAGE.md writes it (softmax probabilities, the two largest
// kept, zeros elsewhere, no renormalisation), and the load-balancing term is the standard
// Switch form E·Σ f_i·P_i [INF in §10: the paper does not state it].
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const B = 2;
const T = 3;
const D = 4;
const N = 8;
const E = 4;
const F = 5;
const FILE = "models/seeds/gating.weft";
const dims = { B, T, D, N, E, F };

type Params = Map<string, ArrayLike<number>>;
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** y = x @ w + b for rows of x (w is [I, O], row-major). */
function linear(xs: number[], rows: number, I: number, O: number, w: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < O; o++) {
      let s = b[o];
      for (let i = 0; i < I; i++) s += xs[r * I + i] * w[i * O + o];
      out.push(s);
    }
  }
  return out;
}

// ---- feature fusion ----
const aData = uniforms(B * T * D, 1, -2, 2);
const bData = uniforms(B * T * D, 2, -2, 2);
const fusionParams: Params = new Map([
  ["m.g.w", uniforms(2 * D * D, 10, -0.8, 0.8)],
  ["m.g.b", uniforms(D, 11, -0.5, 0.5)],
]);

function fuse(p: Params): number[] {
  const rows = B * T;
  const cat: number[] = [];
  for (let r = 0; r < rows; r++) cat.push(...aData.slice(r * D, r * D + D), ...bData.slice(r * D, r * D + D));
  const z = linear(cat, rows, 2 * D, D, p.get("m.g.w")!, p.get("m.g.b")!).map(sigmoid);
  return z.map((zi, i) => zi * aData[i] + (1 - zi) * bData[i]);
}

// ---- mixture of experts ----
const xData = uniforms(N * D, 3, -1.5, 1.5);
function moeParams(routerSeed: number): Map<string, number[]> {
  const p = new Map<string, number[]>([
    ["m.router.w", uniforms(D * E, routerSeed, -1.5, 1.5)],
    ["m.router.b", uniforms(E, routerSeed + 1, -0.5, 0.5)],
  ]);
  for (let e = 0; e < E; e++) {
    p.set(`m.experts[${e}].up.w`, uniforms(D * F, 100 + 10 * e, -0.8, 0.8));
    p.set(`m.experts[${e}].up.b`, uniforms(F, 101 + 10 * e, -0.3, 0.3));
    p.set(`m.experts[${e}].down.w`, uniforms(F * D, 102 + 10 * e, -0.8, 0.8));
    p.set(`m.experts[${e}].down.b`, uniforms(D, 103 + 10 * e, -0.3, 0.3));
  }
  return p;
}

function routerProbs(p: Params): number[][] {
  const logits = linear(xData, N, D, E, p.get("m.router.w")!, p.get("m.router.b")!);
  return Array.from({ length: N }, (_, n) => {
    const row = logits.slice(n * E, n * E + E);
    const m = Math.max(...row);
    const ex = row.map((v) => Math.exp(v - m));
    const s = ex.reduce((a, b) => a + b, 0);
    return ex.map((v) => v / s);
  });
}

/** Top-2 gates: each token keeps its two largest probabilities, unrenormalised. */
function gates(probs: number[][]): number[][] {
  return probs.map((row) => {
    const order = row.map((v, i) => [v, i]).sort((u, v) => v[0] - u[0]);
    const keep = new Set([order[0][1], order[1][1]]);
    return row.map((v, i) => (keep.has(i) ? v : 0));
  });
}

function moe(p: Params): number[] {
  const g = gates(routerProbs(p));
  const y = new Array(N * D).fill(0);
  for (let e = 0; e < E; e++) {
    const q = (k: string) => p.get(`m.experts[${e}].${k}`)!;
    const h = linear(xData, N, D, F, q("up.w"), q("up.b")).map(gelu);
    const out = linear(h, N, F, D, q("down.w"), q("down.b"));
    for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) y[n * D + d] += g[n][e] * out[n * D + d];
  }
  return y;
}

/** Switch load balancing: E·Σ_i f_i·P_i, f_i = share of tokens whose argmax is i, P_i = mean probability. */
function loadBalance(probs: number[][]): number {
  let s = 0;
  for (let i = 0; i < E; i++) {
    const f = probs.filter((row) => row.indexOf(Math.max(...row)) === i).length / N;
    const P = probs.reduce((a, row) => a + row[i], 0) / N;
    s += f * P;
  }
  return E * s;
}

const meanSq = (y: number[]) => y.reduce((a, b) => a + b * b, 0) / y.length;
const moeLoss = (p: Params) => meanSq(moe(p)) + 0.01 * loadBalance(routerProbs(p));

describe("Gating", () => {
  const params = moeParams(20);
  it("the chosen router weights route tokens to every expert, with no near-ties in the top-2 (a check of the test data)", () => {
    const probs = routerProbs(params);
    const tops = new Set(probs.map((row) => row.indexOf(Math.max(...row))));
    expect(tops.size).toBeGreaterThanOrEqual(3);
    for (const row of probs) {
      const s = [...row].sort((u, v) => v - u);
      expect(s[1] - s[2]).toBeGreaterThan(1e-3);
      expect(s[0] - s[1]).toBeGreaterThan(1e-3);
    }
  });

  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;
    const floor = backend === "reference" ? 1e-6 : 1e-2;
    it(`fuse: z·a + (1−z)·b with z = σ(W[a; b] + b) — the placeholder form (${backend})`, async () => {
      const inputs = { a: { shape: [B, T, D], data: aData }, b: { shape: [B, T, D], data: bData } };
      const want = fuse(fusionParams);
      const r = await runFn(FILE, "fusion_out", inputs, { dims, backend, params: fusionParams });
      expect(r.params.size).toBe(fusionParams.size);
      expect(maxRelError(r.outputs.get("out")!, want, floor)).toBeLessThan(tol);
      const l = await runFn(FILE, "fusion_loss", inputs, { dims, backend, params: fusionParams });
      expect(maxRelError(l.outputs.get("out")!, [meanSq(want)])).toBeLessThan(tol);
    });
    it(`top-2 MoE output: unrenormalised top-2 softmax gates weight the experts (${backend})`, async () => {
      const r = await runFn(FILE, "moe_out", { x: { shape: [N, D], data: xData } }, { dims, backend, params });
      expect(r.params.size).toBe(params.size);
      expect(maxRelError(r.outputs.get("out")!, moe(params), floor)).toBeLessThan(tol);
    });
    it(`load balance E·Σ f_i·P_i and the full MoE loss (${backend})`, async () => {
      const x = { x: { shape: [N, D], data: xData } };
      const lb = await runFn(FILE, "moe_balance", x, { dims, backend, params });
      expect(maxRelError(lb.outputs.get("out")!, [loadBalance(routerProbs(params))])).toBeLessThan(tol);
      const l = await runFn(FILE, "moe_loss", x, { dims, backend, params });
      expect(maxRelError(l.outputs.get("out")!, [moeLoss(params)])).toBeLessThan(tol);
    });
    it(`the MoE loss's gradient w.r.t. the router matches float64 finite differences (${backend})`, async () => {
      // The top-2 selection and the argmax counts are piecewise constant; the gradient flows
      // through the kept probabilities and through P_i.
      const r = await runFn(FILE, "moe_loss", { x: { shape: [N, D], data: xData } }, { dims, backend, params, wrt: ["m.router.w", "m.router.b"] });
      for (const name of ["m.router.w", "m.router.b"]) {
        const got = r.outputs.get(`grad.${name}`)!;
        const w = params.get(name)!;
        const fd = w.map((_, i) => {
          const h = 1e-6;
          const saved = w[i];
          w[i] = saved + h;
          const up = moeLoss(params);
          w[i] = saved - h;
          const down = moeLoss(params);
          w[i] = saved;
          return (up - down) / (2 * h);
        });
        expect(maxRelError(got, fd, 1e-3)).toBeLessThan(backend === "reference" ? 1e-6 : 2e-3);
      }
    });
  }

  it("each token's gates are its two largest probabilities, summing to less than 1 (not renormalised)", () => {
    for (const row of gates(routerProbs(params))) {
      expect(row.filter((v) => v > 0).length).toBe(2);
      expect(row.reduce((a, b) => a + b, 0)).toBeLessThan(1);
    }
  });
});
