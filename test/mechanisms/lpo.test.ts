// Latent DPO stage 2 (MECHANISMS.md §7): models/seeds/lpo.weft against LPOModel.forward,
// log_pdf and sampling of zhangjf-nlp/LPO (LPO-sentiment/modeling_gpt2_cvae.py), written
// again here in plain float64 JavaScript. The threshold is torch.quantile's default
// (linear interpolation) over the whole S×S comparison matrix, diagonal zeros included,
// at q = 1 − evidence_ratio/2 = 0.75, as that code computes it.
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const B = 2;
const Z = 3;
const FILE = "models/seeds/lpo.weft";
const BETA = 0.1;

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** torch.quantile(v, q) with interpolation='linear'. */
function quantile(values: number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const p = q * (v.length - 1);
  const lo = Math.floor(p);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (p - lo) * (v[hi] - v[lo]);
}

/** Per prompt b: the comparison matrix r_i − r_j and its threshold. */
function comparison(lqw: number[], lql: number[], S: number, b: number, includeDiagonal: boolean) {
  const r = Array.from({ length: S }, (_, i) => sigmoid(lqw[b * S + i] - lql[b * S + i]));
  const cmp = r.map((ri) => r.map((rj) => ri - rj));
  const vals = cmp.flatMap((row, i) => row.filter((_, j) => includeDiagonal || i !== j));
  return { cmp, thresh: quantile(vals, 0.75) };
}

/** mean over kept ordered pairs (i ≠ j, r_i − r_j ≥ threshold) of −log σ(β(ρ_i − ρ_j)), over all prompts. */
function lpoPairs(lqw: number[], lql: number[], lp: number[], lr: number[], S: number, includeDiagonal = true): number {
  let num = 0;
  let den = 0;
  for (let b = 0; b < B; b++) {
    const { cmp, thresh } = comparison(lqw, lql, S, b, includeDiagonal);
    const rho = Array.from({ length: S }, (_, i) => lp[b * S + i] - lr[b * S + i]);
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < S; j++) {
        if (i === j || cmp[i][j] < thresh) continue;
        num += -logSigmoid(BETA * (rho[i] - rho[j]));
        den += 1;
      }
    }
  }
  return num / den;
}

/** Σ_d [−½ log 2π − ½ logvar_d − (z_d − μ_d)² / (2 exp(logvar_d) + 1e-4)], z laid out [B, S, Z]. */
function logPdf(mu: ArrayLike<number>, lv: ArrayLike<number>, z: ArrayLike<number>, S: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      let acc = 0;
      for (let d = 0; d < Z; d++) {
        const m = mu[b * Z + d];
        const l = lv[b * Z + d];
        acc += -0.5 * Math.log(2 * Math.PI) - 0.5 * l - (z[(b * S + s) * Z + d] - m) ** 2 / (2 * Math.exp(l) + 1e-4);
      }
      out.push(acc);
    }
  }
  return out;
}

const bs = (S: number, data: number[]) => ({ shape: [B, S], data });
const densities = (S: number, seed: number) => ({
  lq_w: bs(S, uniforms(B * S, seed, -6, -1)),
  lq_l: bs(S, uniforms(B * S, seed + 1, -6, -1)),
  lp: bs(S, uniforms(B * S, seed + 2, -6, -1)),
  lr: bs(S, uniforms(B * S, seed + 3, -6, -1)),
});
const loss = (d: ReturnType<typeof densities>, S: number, diag = true) =>
  lpoPairs(d.lq_w.data, d.lq_l.data, d.lp.data, d.lr.data, S, diag);

describe("Latent DPO (stage 2)", () => {
  it("the test's quantile is torch's linear interpolation (known values)", () => {
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25); // torch.quantile(tensor([1., 2., 3., 4.]), 0.75) = 3.25
    expect(quantile([0, 10, 20, 30, 40], 0.75)).toBe(30);
  });

  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;

    it(`diagonal Gaussian log-pdf with 1e-4 added to 2σ², and the reparameterised sample (${backend})`, async () => {
      const S = 4;
      const mu = uniforms(B * Z, 1, -1, 1);
      const lv = uniforms(B * Z, 2, -3, 1);
      const eps = uniforms(B * S * Z, 3, -2, 2);
      const dims = { B, S, Z };
      const s = await runFn(FILE, "sample", { mu: { shape: [B, Z], data: mu }, logvar: { shape: [B, Z], data: lv }, eps: { shape: [B, S, Z], data: eps } }, { dims, backend });
      const wantZ = eps.map((e, i) => {
        const b = Math.floor(i / (S * Z));
        const d = i % Z;
        return mu[b * Z + d] + Math.exp(0.5 * lv[b * Z + d]) * e;
      });
      expect(maxRelError(s.outputs.get("out")!, wantZ, backend === "reference" ? 1e-6 : 1e-2)).toBeLessThan(tol);
      const z = wantZ.map(Math.fround);
      const r = await runFn(FILE, "log_pdf", { mu: { shape: [B, Z], data: mu }, logvar: { shape: [B, Z], data: lv }, z: { shape: [B, S, Z], data: z } }, { dims, backend });
      expect(maxRelError(r.outputs.get("out")!, logPdf(mu, lv, z, S))).toBeLessThan(tol);
    });

    // S = 6: p = 0.75·35 = 26.25 interpolates; S = 5: p = 0.75·24 = 18 lands on a value.
    for (const S of [6, 5]) {
      it(`threshold = torch.quantile(r_i − r_j over all S² entries, 0.75), S = ${S} (${backend})`, async () => {
        const d = densities(S, 10 * S);
        const r = await runFn(FILE, "lpo_threshold", { lq_w: d.lq_w, lq_l: d.lq_l }, { dims: { B, S, Z }, backend });
        const want = [0, 1].map((b) => comparison(d.lq_w.data, d.lq_l.data, S, b, true).thresh);
        expect(maxRelError(r.outputs.get("out")!, want)).toBeLessThan(backend === "reference" ? 1e-12 : 1e-4);
      });
      it(`pair loss: mean of −log σ(β(ρ_i − ρ_j)) over kept pairs, S = ${S} (${backend})`, async () => {
        const d = densities(S, 10 * S);
        const r = await runFn(FILE, "lpo_pairs", d, { dims: { B, S, Z }, backend });
        expect(maxRelError(r.outputs.get("out")!, [loss(d, S)])).toBeLessThan(tol);
      });
    }

    it(`pair loss with the quantile over the S(S−1) pairs i ≠ j only (${backend})`, async () => {
      const S = 6; // p = 0.75·29 = 21.75
      const d = densities(S, 60);
      const r = await runFn(FILE, "lpo_pairs_offdiag", d, { dims: { B, S, Z }, backend });
      expect(maxRelError(r.outputs.get("out")!, [loss(d, S, false)])).toBeLessThan(tol);
      // The two conventions keep different pairs on these inputs, so this checks something.
      expect(Math.abs(loss(d, S, false) - loss(d, S, true))).toBeGreaterThan(1e-6);
    });

    it(`ties: many equal rewards put the threshold on a zero difference (${backend})`, async () => {
      const S = 5;
      // Four of the five samples have the same densities, so their rewards tie exactly:
      // 5 + 12 zero differences fill ascending positions 4..20, and p = 0.75·24 = 18 is among them.
      const lqW = [-2, -2, -2, -2, -1, -4.5, -3, -4.5, -4.5, -4.5];
      const lqL = [-3, -3, -3, -3, -3.5, -2, -2.5, -2, -2, -2];
      const d = { ...densities(S, 70), lq_w: bs(S, lqW), lq_l: bs(S, lqL) };
      const want = [0, 1].map((b) => comparison(lqW, lqL, S, b, true).thresh);
      expect(want).toEqual([0, 0]); // a check of the test data
      const th = await runFn(FILE, "lpo_threshold", { lq_w: d.lq_w, lq_l: d.lq_l }, { dims: { B, S, Z }, backend });
      expect([...th.outputs.get("out")!]).toEqual([0, 0]);
      const r = await runFn(FILE, "lpo_pairs", d, { dims: { B, S, Z }, backend });
      expect(maxRelError(r.outputs.get("out")!, [loss(d, S)])).toBeLessThan(tol);
    });

    it(`from the latent distributions, and the gradient w.r.t. the policy's μ and log σ² (${backend})`, async () => {
      const S = 6;
      const dims = { B, S, Z };
      const g = (seed: number, lo: number, hi: number) => uniforms(B * Z, seed, lo, hi);
      const v: Record<string, number[]> = { pm: g(80, -1, 1), plv: g(81, -1, 0.5), wm: g(82, -1, 1), wlv: g(83, -1, 0.5), lm: g(84, -1, 1), llv: g(85, -1, 0.5) };
      const z = uniforms(B * S * Z, 86, -2, 2);
      const full = () => {
        const zero = new Array(B * Z).fill(0);
        const d = {
          lq_w: bs(S, logPdf(v.wm, v.wlv, z, S)),
          lq_l: bs(S, logPdf(v.lm, v.llv, z, S)),
          lp: bs(S, logPdf(v.pm, v.plv, z, S)),
          lr: bs(S, logPdf(zero, zero, z, S)), // π_ref = N(0, I), through the same log_pdf
        };
        return loss(d, S);
      };
      const inputs: Record<string, { shape: number[]; data: number[] }> = { z: { shape: [B, S, Z], data: z } };
      for (const [k, data] of Object.entries(v)) inputs[k] = { shape: [B, Z], data };
      const r = await runFn(FILE, "lpo_latent", inputs, { dims, backend, wrt: ["pm", "plv"] });
      expect(maxRelError(r.outputs.get("out")!, [full()])).toBeLessThan(tol);
      for (const name of ["pm", "plv"]) {
        const x = v[name];
        const fd = x.map((_, i) => {
          const h = 1e-6;
          const saved = x[i];
          x[i] = saved + h;
          const up = full();
          x[i] = saved - h;
          const down = full();
          x[i] = saved;
          return (up - down) / (2 * h);
        });
        expect(maxRelError(r.outputs.get(`grad.${name}`)!, fd, 1e-4)).toBeLessThan(backend === "reference" ? 1e-6 : 2e-3);
      }
    });
  }

  it("at the paper's 48 samples per prompt (16 prior + 16 + 16 posterior) (reference)", async () => {
    const S = 48; // p = 0.75·2303 = 1727.25
    const d = densities(S, 90);
    const r = await runFn(FILE, "lpo_pairs", d, { dims: { B, S, Z }, backend: "reference" });
    expect(maxRelError(r.outputs.get("out")!, [loss(d, S)])).toBeLessThan(1e-12);
  });
});
