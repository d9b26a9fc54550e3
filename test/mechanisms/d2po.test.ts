// D2PO (MECHANISMS.md §4): the temporally decayed DPO loss of models/seeds/d2po.weft
// against the formula of LotuSrc/D2PO (trainer_utils.get_batch_logps: γ^t with t the
// 1-based position, pow(gamma, cumsum(mask))), written again here in float64.
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const B = 3;
const T = 5;
const V = 7;
const D = 4;
const FILE = "models/seeds/d2po.weft";
const dims = { B, T, V, D };

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
// Masks are contiguous from the start of the response here, so cumsum(mask) = t (1-based).
const cm = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
const rm = [1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1];
const pc = uniforms(B * T, 11, -4, -0.1);
const pr = uniforms(B * T, 12, -4, -0.1);
const rc = uniforms(B * T, 13, -4, -0.1);
const rr = uniforms(B * T, 14, -4, -0.1);

function decayed(lp: number[], m: number[], b: number, gamma: number): number {
  let s = 0;
  let pos = 0;
  for (let t = 0; t < T; t++) {
    pos += m[b * T + t]; // cumsum(mask)
    s += m[b * T + t] * gamma ** pos * lp[b * T + t];
  }
  return s;
}

function d2po(beta: number, gamma: number): number {
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const margin = decayed(pc, cm, b, gamma) - decayed(rc, cm, b, gamma) - (decayed(pr, rm, b, gamma) - decayed(rr, rm, b, gamma));
    loss += -logSigmoid(beta * margin);
  }
  return loss / B;
}

function simpo(beta: number, margin: number, gamma: number): number {
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const lw = cm.slice(b * T, b * T + T).reduce((x, y) => x + y, 0);
    const ll = rm.slice(b * T, b * T + T).reduce((x, y) => x + y, 0);
    loss += -logSigmoid(beta * (decayed(pc, cm, b, gamma) / lw - decayed(pr, rm, b, gamma) / ll) - margin);
  }
  return loss / B;
}

const t = (data: number[]) => ({ shape: [B, T], data });

describe("D2PO", () => {
  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;
    it(`decayed DPO loss, γ = 0.98, β = 0.1 (${backend})`, async () => {
      const r = await runFn(FILE, "d2po_logp", { pc: t(pc), pr: t(pr), rc_ref: t(rc), rr_ref: t(rr), cm: t(cm), rm: t(rm) }, { dims, backend });
      expect(maxRelError(r.outputs.get("out")!, [d2po(0.1, 0.98)])).toBeLessThan(tol);
    });
    it(`SimPO on decayed sums (${backend})`, async () => {
      const r = await runFn(FILE, "simpo_logp", { pc: t(pc), pr: t(pr), cm: t(cm), rm: t(rm) }, { dims, backend });
      expect(maxRelError(r.outputs.get("out")!, [simpo(2, 0.5, 0.98)])).toBeLessThan(tol);
    });
  }

  it("γ = 1 is plain DPO", () => {
    // The independent formula at γ = 1 reduces to DPO's Σ log π — a check of the test itself.
    let loss = 0;
    for (let b = 0; b < B; b++) {
      const s = (lp: number[], m: number[]) => lp.slice(b * T, b * T + T).reduce((a, x, k) => a + x * m[b * T + k], 0);
      loss += -logSigmoid(0.1 * (s(pc, cm) - s(rc, cm) - (s(pr, rm) - s(rr, rm))));
    }
    expect(Math.abs(loss / B - d2po(0.1, 1))).toBeLessThan(1e-12);
  });

  it("the full loss with a policy and a frozen reference model runs on both back ends and agrees", async () => {
    const ids = (seed: number) => ({ shape: [B, T], data: uniforms(B * T, seed, 0, V).map(Math.floor), dtype: "i32" as const });
    const inputs = { c: ids(21), r: ids(22), cm: t(cm), rm: t(rm) };
    const ref = await runFn(FILE, "d2po", inputs, { dims, backend: "reference", seed: 3, wrt: ["pi.head.w", "pi.embed.table"] });
    const gpuRun = await runFn(FILE, "d2po", inputs, { dims, backend: "webgpu", seed: 3, params: ref.params, wrt: ["pi.head.w", "pi.embed.table"] });
    expect(maxRelError(gpuRun.outputs.get("out")!, ref.outputs.get("out")!)).toBeLessThan(2e-5);
    expect(maxRelError(gpuRun.outputs.get("grad.pi.head.w")!, ref.outputs.get("grad.pi.head.w")!, 1e-4)).toBeLessThan(1e-3);
    // With the reference equal to the policy, every margin is 0 and the loss is log 2.
    const same = new Map(ref.params);
    for (const [k, v] of ref.params) if (k.startsWith("pi.")) same.set(`ref.${k.slice(3)}`, v);
    const tie = await runFn(FILE, "d2po", inputs, { dims, backend: "reference", params: same });
    expect(Math.abs(tie.outputs.get("out")![0] - Math.LN2)).toBeLessThan(1e-12);
  });
});
