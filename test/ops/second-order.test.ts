// Second-order derivatives through grad-of-grad: for each fn g(x) = ⟨∇f(x), v⟩ (which
// contains a grad), Weft's gradient of g — a Hessian-vector product of f — is compared with
// float64 central differences of g on the reference back end.
import { describe, expect, it } from "vitest";
import { runFn, uniforms } from "../util/weft.ts";

const FILE = "test/fixtures/second/second.weft";
const shape = [2, 3];
const x = uniforms(6, 1, -1.5, 1.5);
const w = uniforms(6, 2, -1, 1);
const v = uniforms(6, 3, -1, 1);
const t = (data: number[]) => ({ shape, data });

for (const entry of ["softmax2", "lognorm2", "rmsnorm2", "matmul2", "elementwise2"]) {
  describe(`second derivative: ${entry}`, () => {
    it("matches central differences of the first derivative", async () => {
      const g = async (xs: number[]) => (await runFn(FILE, entry, { x: t(xs), w: t(w), v: t(v) }, { backend: "reference" })).outputs.get("out")![0];
      const analytic = (await runFn(FILE, entry, { x: t(x), w: t(w), v: t(v) }, { backend: "reference", wrt: ["x"] })).outputs.get("grad.x")!;
      // Inputs pass through f32 storage: a power-of-two step keeps x ± h exact in f32.
      const h = 2 ** -12;
      for (let i = 0; i < 6; i++) {
        const up = [...x];
        const down = [...x];
        up[i] += h;
        down[i] -= h;
        const num = ((await g(up)) - (await g(down))) / (2 * h);
        expect(Math.abs(analytic[i] - num)).toBeLessThan(1e-6 * Math.max(1, Math.abs(num)));
      }
    });
  });
}
