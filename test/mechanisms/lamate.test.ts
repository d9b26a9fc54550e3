// LaMaTE (MECHANISMS.md §3): models/seeds/lamate.weft against GroupedEncoderFusion and the
// Connector's projection, written again here in plain float64 JavaScript:
// H = RMSNorm((1/G)·Σ_g σ(w_g)·h_g) (RMSNorm: x / sqrt(mean(x²) + 1e-5) · scale), then
// Linear D→A (no bias) → GELU (tanh form, Weft's gelu) → Linear A→A (no bias).
import { describe, expect, it } from "vitest";
import { maxRelError, runFn, uniforms } from "../util/weft.ts";

const G = 3; // e.g. a 12-layer encoder, groups of 4: layers 4, 8, 12
const B = 2;
const T = 3;
const D = 8;
const A = 5;
const FILE = "models/seeds/lamate.weft";
const dims = { G, B, T, D, A };
const ROWS = B * T;

type Params = Map<string, ArrayLike<number>>;
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

const hData = uniforms(G * ROWS * D, 1, -3, 3);
const h = { shape: [G, B, T, D], data: hData };

/** GroupedEncoderFusion on rows of [B·T, D]; w and scale under `prefix`. */
function fusion(p: Params, prefix: string): number[] {
  const w = p.get(`${prefix}.w`)!;
  const scale = p.get(`${prefix}.norm.scale`)!;
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    const avg = Array.from({ length: D }, (_, d) => {
      let s = 0;
      for (let g = 0; g < G; g++) s += sigmoid(w[g]) * hData[(g * ROWS + r) * D + d];
      return s / G;
    });
    const rms = Math.sqrt(avg.reduce((a, b) => a + b * b, 0) / D + 1e-5);
    out.push(...avg.map((v, d) => (v / rms) * scale[d]));
  }
  return out;
}

function connector(p: Params, prefix: string, xs: number[]): number[] {
  const up = p.get(`${prefix}.up.w`)!; // [D, A]
  const down = p.get(`${prefix}.down.w`)!; // [A, A]
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++) {
    const u = Array.from({ length: A }, (_, a) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += xs[r * D + d] * up[d * A + a];
      return gelu(s);
    });
    for (let o = 0; o < A; o++) {
      let s = 0;
      for (let a = 0; a < A; a++) s += u[a] * down[a * A + o];
      out.push(s);
    }
  }
  return out;
}

const fusionParams = (prefix: string): [string, number[]][] => [
  [`${prefix}.w`, uniforms(G, 10, -2, 2)],
  [`${prefix}.norm.scale`, uniforms(D, 11, 0.5, 1.5)],
];
const connectorParams = (prefix: string): [string, number[]][] => [
  [`${prefix}.up.w`, uniforms(D * A, 20, -0.6, 0.6)],
  [`${prefix}.down.w`, uniforms(A * A, 21, -0.6, 0.6)],
];
const meanSq = (y: number[]) => y.reduce((a, b) => a + b * b, 0) / y.length;

describe("LaMaTE", () => {
  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? 1e-12 : 2e-5;
    const floor = backend === "reference" ? 1e-6 : 1e-2;
    it(`layer fusion: RMSNorm((1/G)·Σ_g σ(w_g)·h_g) (${backend})`, async () => {
      const params: Params = new Map(fusionParams("m"));
      const r = await runFn(FILE, "fuse_layers", { h }, { dims, backend, params });
      expect(r.params.size).toBe(params.size);
      expect(maxRelError(r.outputs.get("out")!, fusion(params, "m"), floor)).toBeLessThan(tol);
    });
    it(`connector: Linear (no bias) → GELU → Linear (no bias) (${backend})`, async () => {
      const params: Params = new Map(connectorParams("m"));
      const xData = uniforms(ROWS * D, 2, -2, 2);
      const r = await runFn(FILE, "connect", { x: { shape: [B, T, D], data: xData } }, { dims, backend, params });
      expect(r.params.size).toBe(params.size);
      expect(maxRelError(r.outputs.get("out")!, connector(params, "m", xData), floor)).toBeLessThan(tol);
    });
    it(`fusion then connector, and the gradient w.r.t. the fusion weights w_g (${backend})`, async () => {
      const params = new Map<string, number[]>([...fusionParams("f"), ...connectorParams("c")]);
      const loss = () => meanSq(connector(params, "c", fusion(params, "f")));
      const r = await runFn(FILE, "encode_loss", { h }, { dims, backend, params, wrt: ["f.w"] });
      expect(maxRelError(r.outputs.get("out")!, [loss()])).toBeLessThan(tol);
      const w = params.get("f.w")!;
      const fd = w.map((_, g) => {
        const e = 1e-6;
        const saved = w[g];
        w[g] = saved + e;
        const up = loss();
        w[g] = saved - e;
        const down = loss();
        w[g] = saved;
        return (up - down) / (2 * e);
      });
      expect(maxRelError(r.outputs.get("grad.f.w")!, fd, 1e-4)).toBeLessThan(backend === "reference" ? 1e-6 : 2e-3);
    });
  }

  it("w starts from N(0, 1) (normal(1.0)), the norm's scale from ones", async () => {
    const big = { shape: [64, B, T, D], data: uniforms(64 * ROWS * D, 3) };
    const r = await runFn(FILE, "fuse_layers", { h: big }, { dims: { ...dims, G: 64 }, backend: "reference", seed: 7 });
    const w = r.params.get("m.w")!;
    expect(w.length).toBe(64);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / (w.length - 1));
    expect(Math.abs(mean)).toBeLessThan(0.5); // loose: 64 draws
    expect(sd).toBeGreaterThan(0.6);
    expect(sd).toBeLessThan(1.4);
    expect([...r.params.get("m.norm.scale")!]).toEqual(new Array(D).fill(1));
  });
});
