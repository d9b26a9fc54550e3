// GRPO (MECHANISMS.md §1): models/seeds/grpo.weft against the formulas of verl's
// core_algos.py, written out again here in plain float64 JavaScript.
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const G = 5;
const T = 4;
const FILE = "models/seeds/grpo.weft";
const dims = { G, T };

const logp = uniforms(G * T, 1, -3, -0.1);
const old = logp.map((x, i) => Math.fround(x + 0.3 * Math.sin(i)));
const mask = [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1];
const reward = [1, 0, 1, 1, 0];

function advantages(r: number[]): number[] {
  const mean = r.reduce((a, b) => a + b, 0) / r.length;
  const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (r.length - 1)); // torch.std: unbiased
  return r.map((x) => (x - mean) / (std + 1e-6));
}

/** token-mean over the mask of max(−Aρ, −A·clip(ρ, 1−ε, 1+ε)); keep filters rollouts */
function grpo(sign: number, eps = 0.2): number {
  const a = advantages(reward);
  let num = 0;
  let den = 0;
  for (let g = 0; g < G; g++) {
    const keep = sign > 0 ? +(a[g] > 0) : sign < 0 ? +(a[g] < 0) : 1;
    for (let t = 0; t < T; t++) {
      const i = g * T + t;
      const rho = Math.exp(logp[i] - old[i]);
      const clipped = Math.min(Math.max(rho, 1 - eps), 1 + eps);
      num += Math.max(-a[g] * rho, -a[g] * clipped) * mask[i] * keep;
      den += mask[i];
    }
  }
  return num / den;
}

const inputs = {
  logp: { shape: [G, T], data: logp },
  old: { shape: [G, T], data: old },
  m: { shape: [G, T], data: mask },
  reward: { shape: [G], data: reward },
};

describe("GRPO", () => {
  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;
    it(`advantages use the unbiased std (${backend})`, async () => {
      const r = await runFn(FILE, "advantages", { reward: inputs.reward }, { dims, backend });
      expect(maxRelError(r.outputs.get("out")!, advantages(reward))).toBeLessThan(tol);
    });
    for (const [entry, sign] of [["grpo", 0], ["grpo_pos", 1], ["grpo_neg", -1]] as const) {
      it(`${entry} equals the clipped surrogate (${backend})`, async () => {
        const r = await runFn(FILE, entry, inputs, { dims, backend });
        expect(maxRelError(r.outputs.get("out")!, [grpo(sign)])).toBeLessThan(tol);
      });
    }
    it(`k3 KL estimator, clamped (${backend})`, async () => {
      const ref = logp.map((x, i) => Math.fround(x - 0.5 + 0.1 * i));
      const r = await runFn(FILE, "kl_k3", { logp: inputs.logp, ref: { shape: [G, T], data: ref }, m: inputs.m }, { dims, backend });
      let num = 0;
      let den = 0;
      for (let i = 0; i < G * T; i++) {
        const d = ref[i] - logp[i];
        num += Math.min(10, Math.max(-10, Math.exp(d) - d - 1)) * mask[i];
        den += mask[i];
      }
      expect(maxRelError(r.outputs.get("out")!, [num / den])).toBeLessThan(tol);
    });
  }

  it("the gradient of the surrogate matches float64 finite differences", async () => {
    const r = await runFn(FILE, "grpo", inputs, { dims, backend: "reference", wrt: ["logp"] });
    const got = r.outputs.get("grad.logp")!;
    const h = 1e-6;
    for (const i of [0, 3, 7, 13, 19]) {
      const saved = logp[i];
      logp[i] = saved + h;
      const up = grpo(0);
      logp[i] = saved - h;
      const down = grpo(0);
      logp[i] = saved;
      expect(Math.abs(got[i] - (up - down) / (2 * h))).toBeLessThan(1e-7);
    }
  });

  it("relative length reward applies only to groups at or above the accuracy threshold", async () => {
    const correct = [1, 1, 1, 1, 0];
    const len = [300, 700, 500, 100, 900];
    const r = await runFn(FILE, "length_reward", { reward: { shape: [G], data: reward }, correct: { shape: [G], data: correct }, len: { shape: [G], data: len } }, { dims, backend: "reference" });
    const n = 4;
    const meanLen = (300 + 700 + 500 + 100) / n;
    const on = n / G >= 0.75 ? 1 : 0;
    const want = reward.map((x, g) => x + on * correct[g] * Math.min(1, Math.max(-0.5, (meanLen - len[g]) / 500)));
    expect(maxRelError(r.outputs.get("out")!, want)).toBeLessThan(1e-12);
  });
});
