// gelu(x*a+b)*c over 4M floats: a memory-bound elementwise chain (4 reads, 1 write).
// Weft fuses it into one kernel; jax-js's jit fuses it; TF.js runs one kernel per op.
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { awaitGpu } from "../../runtime/webgpu/device.ts";
import { errorText, maxRelError, measure, uniforms, type Contestant } from "../harness.ts";
import { jaxDispatch, tfFlush } from "../peers.ts";
import { emptyRow, fillRow, fmtErr, type Ctx, type Row, type Workload } from "../row.ts";
import { compileFn } from "../weft.ts";

const M = 4 * 1024 * 1024;
const K0 = Math.sqrt(2 / Math.PI);

function reference(x: number, a: number, b: number, c: number): number {
  const z = x * a + b;
  return 0.5 * z * (1 + Math.tanh(K0 * (z + 0.044715 * z * z * z))) * c;
}

export const gelu: Workload = {
  name: "gelu",
  about: "gelu(x*a+b)*c over 4M floats (GB/s counts 4 reads + 1 write of 4M f32)",
  async run({ b, tf, jax }: Ctx): Promise<Row[]> {
    const row = emptyRow("gelu-4M", "gelu(x*a+b)*c, 4M f32", "GB/s", true);
    const [x, a, bb, c] = [1, 2, 3, 4].map((s) => uniforms(M, s, -2, 2));
    const sample = Array.from({ length: 4096 }, (_, i) => Math.floor((i * M) / 4096) + (i % 7));
    const want = sample.map((i) => reference(x[i], a[i], bb[i], c[i]));
    const check = (peer: keyof Row["checks"], out: ArrayLike<number>) => {
      row.checks[peer] = `max rel err ${fmtErr(maxRelError(sample.map((i) => out[i]), want))}`;
    };
    const cs: Contestant[] = [];

    try {
      const { bundle } = compileFn("kernels.weft", "gelu_affine", { x: [M], a: [M], b: [M], c: [M] }, { dims: { M } });
      row.notes.push(`Weft: ${bundle.kernels.length} kernel${bundle.kernels.length === 1 ? "" : "s"}`);
      const be = await GpuBackend.load(b.handle, bundle);
      be.write("x", x);
      be.write("a", a);
      be.write("b", bb);
      be.write("c", c);
      check("weft", (await be.run(["out"])).get("out")!);
      cs.push({ peer: "weft", step: async () => void (await be.run()), dispose: () => be.destroy() });
    } catch (e) {
      row.errors.weft = errorText(e);
    }

    if (tf.ok) {
      try {
        const t = tf.value.tf;
        const [tx, ta, tb, tc] = [x, a, bb, c].map((v) => t.tensor1d(v));
        const f = () =>
          t.tidy(() => {
            const z = t.add(t.mul(tx, ta), tb);
            const inner = t.mul(K0, t.add(z, t.mul(0.044715, t.mul(t.mul(z, z), z))));
            return t.mul(t.mul(t.mul(0.5, z), t.add(1, t.tanh(inner))), tc);
          });
        const y0 = f();
        check("tfjs", await awaitGpu(y0.data()));
        y0.dispose();
        cs.push({
          peer: "tfjs",
          step: () => f().dispose(),
          flush: () => tfFlush(tf.value.backend),
          dispose: () => [tx, ta, tb, tc].forEach((v) => v.dispose()),
        });
      } catch (e) {
        row.errors.tfjs = errorText(e);
      }
    } else row.errors.tfjs = tf.error;

    if (jax.ok) {
      try {
        const { numpy: np, nn, jit } = jax.value.jax;
        const [jx, ja, jb, jc] = [x, a, bb, c].map((v) => np.array(v));
        const f = jit((x: typeof jx, a: typeof jx, b: typeof jx, c: typeof jx) => nn.gelu(x.mul(a).add(b)).mul(c));
        check("jax", await awaitGpu(f(jx.ref, ja.ref, jb.ref, jc.ref).data()));
        cs.push({
          peer: "jax",
          step: () => {
            const y = f(jx.ref, ja.ref, jb.ref, jc.ref);
            jaxDispatch([y]);
            y.dispose();
          },
          dispose: () => {
            [jx, ja, jb, jc].forEach((v) => v.dispose());
            f.dispose();
          },
        });
      } catch (e) {
        row.errors.jax = errorText(e);
      }
    } else row.errors.jax = jax.error;

    const rounds = b.quick ? 4 : 10;
    const t = await measure(b, cs, { iters: 2, warmup: b.quick ? 1 : 2, rounds });
    return [fillRow(row, t, (ms) => (5 * 4 * M) / (ms * 1e6), rounds)];
  },
};
