// ODE Transformer and PCformer (MECHANISMS.md §9): models/seeds/ode.weft against the
// update rules of libeineu/ODE-Transformer and rangehow/Neurips-PCformer, written out
// again here in plain float64 JavaScript. F is the whole layer call, residual included:
// F(x) = x + down(gelu_tanh(up(layer_norm(x)·scale + shift))), the same weights at every stage.
// The predictor–corrector stack is LANGUAGE.md's forward_pc (Adams–Bashforth 2 predictor,
// trapezoid corrector): a textbook scheme, not PCformer's learned-history corrector, whose
// coefficients §9 did not find. It is checked as the program it is.
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const B = 2;
const T = 3;
const D = 4;
const F = 6;
const L = 3;
const FILE = "models/seeds/ode.weft";
const dims = { B, T, D, F, L };
const ROWS = B * T;

const xData = uniforms(ROWS * D, 1, -1.5, 1.5);
const x = { shape: [B, T, D], data: xData };

type Params = Map<string, ArrayLike<number>>;

/** Random float32 values for one Layer's parameters under `prefix` (non-trivial scale and shift). */
function layerParams(prefix: string, seed: number): [string, number[]][] {
  return [
    [`${prefix}.ln.scale`, uniforms(D, seed, 0.5, 1.5)],
    [`${prefix}.ln.shift`, uniforms(D, seed + 1, -0.3, 0.3)],
    [`${prefix}.ff.up.w`, uniforms(D * F, seed + 2, -0.7, 0.7)],
    [`${prefix}.ff.up.b`, uniforms(F, seed + 3, -0.3, 0.3)],
    [`${prefix}.ff.down.w`, uniforms(F * D, seed + 4, -0.5, 0.5)],
    [`${prefix}.ff.down.b`, uniforms(D, seed + 5, -0.3, 0.3)],
  ];
}

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** F(x) for every one of the B·T rows of x (row-major [B, T, D]). */
function layer(p: Params, prefix: string, xs: number[]): number[] {
  const g = (k: string) => p.get(`${prefix}.${k}`)!;
  const [scale, shift, upW, upB, downW, downB] = ["ln.scale", "ln.shift", "ff.up.w", "ff.up.b", "ff.down.w", "ff.down.b"].map(g);
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    const row = xs.slice(r * D, r * D + D);
    const mu = row.reduce((a, b) => a + b, 0) / D;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / D; // biased variance
    const ln = row.map((e, i) => ((e - mu) / Math.sqrt(v + 1e-5)) * scale[i] + shift[i]);
    const h: number[] = [];
    for (let f = 0; f < F; f++) {
      let s = upB[f];
      for (let i = 0; i < D; i++) s += ln[i] * upW[i * F + f];
      h.push(gelu(s));
    }
    for (let o = 0; o < D; o++) {
      let s = downB[o];
      for (let f = 0; f < F; f++) s += h[f] * downW[f * D + o];
      out.push(row[o] + s); // the layer's own residual
    }
  }
  return out;
}

const add = (a: number[], b: number[], c = 1) => a.map((v, i) => v + c * b[i]);
const meanSq = (y: number[]) => y.reduce((a, b) => a + b * b, 0) / y.length;

/** ODE Transformer RK2 with a learned gate: g = σ(W[F1; F2] + b), y' = y + g·F1 + (1−g)·F2. */
function rk2Gated(p: Params, xs: number[]): number[] {
  const k1 = layer(p, "m.f", xs);
  const k2 = layer(p, "m.f", add(xs, k1));
  const w = p.get("m.gate.w")!; // [2D, 1]
  const b = p.get("m.gate.b")![0];
  const y: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    let s = b;
    for (let i = 0; i < D; i++) s += k1[r * D + i] * w[i] + k2[r * D + i] * w[D + i];
    const g = sigmoid(s);
    for (let i = 0; i < D; i++) y.push(xs[r * D + i] + g * k1[r * D + i] + (1 - g) * k2[r * D + i]);
  }
  return y;
}

/** The four RK4 stages: F1 = F(y), F2 = F(y + ½F1), F3 = F(y + ½F2), F4 = F(y + F3). */
function rk4Stages(p: Params, xs: number[]): number[][] {
  const k1 = layer(p, "m.f", xs);
  const k2 = layer(p, "m.f", add(xs, k1, 0.5));
  const k3 = layer(p, "m.f", add(xs, k2, 0.5));
  const k4 = layer(p, "m.f", add(xs, k3));
  return [k1, k2, k3, k4];
}

/** y' = y + ⅙(F1 + 2F2 + 2F3 + F4). */
function rk4(p: Params, xs: number[]): number[] {
  const [k1, k2, k3, k4] = rk4Stages(p, xs);
  return xs.map((v, i) => v + (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) / 6);
}

/** Adams–Bashforth 2 predictor, trapezoid corrector, across L layers (LANGUAGE.md's forward_pc). */
function predictorCorrector(p: Params, xs: number[]): number[] {
  let h = xs;
  let prev = xs.map(() => 0);
  for (let i = 0; i < L; i++) {
    const k = layer(p, `m.layers[${i}]`, h);
    const pred = h.map((v, j) => v + 1.5 * k[j] - 0.5 * prev[j]);
    const kc = layer(p, `m.layers[${i}]`, pred);
    h = h.map((v, j) => v + 0.5 * (kc[j] + k[j]));
    prev = k;
  }
  return h;
}

/** PCformer RK2 predictor: P = y + α(1−α)·F1 + α·F2 (F2 = F(y + F1)). */
function rk2Ema(p: Params, xs: number[], alpha: number): number[] {
  const k1 = layer(p, "m.f", xs);
  const k2 = layer(p, "m.f", add(xs, k1));
  return xs.map((v, i) => v + alpha * (1 - alpha) * k1[i] + alpha * k2[i]);
}

/** PCformer RK4 predictor: P = y + α(1−α)³F1 + α(1−α)²F2 + α(1−α)F3 + αF4. */
function rk4Ema(p: Params, xs: number[], alpha: number): number[] {
  const [k1, k2, k3, k4] = rk4Stages(p, xs);
  const c = 1 - alpha;
  return xs.map((v, i) => v + alpha * c ** 3 * k1[i] + alpha * c ** 2 * k2[i] + alpha * c * k3[i] + alpha * k4[i]);
}

const rk2Params: Params = new Map([...layerParams("m.f", 100), ["m.gate.w", uniforms(2 * D, 110, -0.8, 0.8)], ["m.gate.b", uniforms(1, 111, -0.3, 0.3)]]);
const rk4Params: Params = new Map(layerParams("m.f", 200));
const pcParams: Params = new Map(Array.from({ length: L }, (_, i) => layerParams(`m.layers[${i}]`, 300 + 10 * i)).flat());
const emaParams = (shift: number): Params => new Map([...layerParams("m.f", 400), ["m.alpha_shift", [Math.fround(shift)]]]);

describe("ODE Transformer and PCformer steps", () => {
  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;
    // Elementwise outputs: relative error with a floor, so near-zero entries are held to an absolute bound.
    const floor = backend === "reference" ? 1e-6 : 1e-2;
    for (const [name, entry, out, loss, params] of [
      ["RK2 with a learned gate", "rk2", rk2Gated, "rk2_loss", rk2Params],
      ["RK4", "rk4", rk4, "rk4_loss", rk4Params],
      ["AB2 predictor + trapezoid corrector over L layers", "pc", predictorCorrector, "pc_loss", pcParams],
    ] as const) {
      it(`${name}: output and mean(y²) loss (${backend})`, async () => {
        const want = out(params, xData);
        const r = await runFn(FILE, `${entry}_out`, { x }, { dims, backend, params });
        expect(r.params.size).toBe(params.size); // every parameter came from this test
        expect(maxRelError(r.outputs.get("out")!, want, floor)).toBeLessThan(tol);
        const l = await runFn(FILE, loss, { x }, { dims, backend, params });
        expect(maxRelError(l.outputs.get("out")!, [meanSq(want)])).toBeLessThan(tol);
      });
    }
    it(`PCformer RK2 predictor with the EMA coefficient α, and dL/dα (${backend})`, async () => {
      const shift = 0.13; // α = 0.63
      const params = emaParams(shift);
      const alpha = 0.5 + params.get("m.alpha_shift")![0];
      const lossOf = (a: number) => meanSq(rk2Ema(params, xData, a));
      const r = await runFn(FILE, "rk2_ema_loss", { x }, { dims, backend, params, wrt: ["m.alpha_shift"] });
      expect(r.params.size).toBe(params.size);
      expect(maxRelError(r.outputs.get("out")!, [lossOf(alpha)])).toBeLessThan(tol);
      const h = 1e-5;
      const fd = (lossOf(alpha + h) - lossOf(alpha - h)) / (2 * h);
      const got = r.outputs.get("grad.m.alpha_shift")!;
      expect(got.length).toBe(1);
      expect(Math.abs(got[0] - fd) / Math.abs(fd)).toBeLessThan(backend === "reference" ? 1e-8 : 1e-4);
    });
    it(`PCformer RK4 predictor with the EMA coefficient α (${backend})`, async () => {
      const params = emaParams(-0.21); // α = 0.29
      const alpha = 0.5 + params.get("m.alpha_shift")![0];
      const r = await runFn(FILE, "rk4_ema_loss", { x }, { dims, backend, params });
      expect(maxRelError(r.outputs.get("out")!, [meanSq(rk4Ema(params, xData, alpha))])).toBeLessThan(tol);
    });
  }

  it("at the initial α = 0.5 the RK2/RK4 predictor coefficients sum to 0.75 and 0.9375 (the test's formulas)", () => {
    // A check of this file's own formulas: with F ≡ 1 the predictor adds the coefficient sum.
    const a = 0.5;
    expect(a * (1 - a) + a).toBe(0.75);
    expect(a * (1 - a) ** 3 + a * (1 - a) ** 2 + a * (1 - a) + a).toBe(0.9375);
  });

  it("alpha_shift starts at zero, so α starts at PCformer's 0.5", async () => {
    const r = await runFn(FILE, "rk2_ema_loss", { x }, { dims, backend: "reference", seed: 5 });
    expect([...r.params.get("m.alpha_shift")!]).toEqual([0]);
    const p: Params = new Map(r.params);
    expect(maxRelError(r.outputs.get("out")!, [meanSq(rk2Ema(p, xData, 0.5))])).toBeLessThan(1e-12);
  });
});
