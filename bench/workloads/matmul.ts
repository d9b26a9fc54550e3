// fp32 matmul, n×n @ n×n for n = 256, 512, 1024, in GFLOP/s (2n³ per product); the
// hand-written register-blocked WGSL kernel (bench/wgsl.ts) is the kernel baseline.
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { awaitGpu } from "../../runtime/webgpu/device.ts";
import { errorText, maxRelError, measure, uniforms, type Contestant } from "../harness.ts";
import { jaxDispatch, tfFlush } from "../peers.ts";
import { emptyRow, fillRow, fmtErr, type Ctx, type Row, type Workload } from "../row.ts";
import { HandMatmul } from "../wgsl.ts";
import { compileFn } from "../weft.ts";

const SIZES = [256, 512, 1024];

async function one(n: number, { b, tf, jax }: Ctx): Promise<Row> {
  const row = emptyRow(`matmul-${n}`, `matmul ${n}×${n}, f32`, "GFLOP/s", true);
  const A = uniforms(n * n, 10 + n, -1, 1);
  const B = uniforms(n * n, 20 + n, -1, 1);
  // 256 sampled entries of C in float64
  const picks = Array.from({ length: 256 }, (_, i) => [(i * 37) % n, (i * 101 + 7) % n] as const);
  const want = picks.map(([r, c]) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += A[r * n + k] * B[k * n + c];
    return s;
  });
  const check = (peer: keyof Row["checks"], out: ArrayLike<number>) => {
    row.checks[peer] = `max rel err ${fmtErr(maxRelError(picks.map(([r, c]) => out[r * n + c]), want, 1))}`;
  };
  const cs: Contestant[] = [];

  try {
    const { bundle } = compileFn("kernels.weft", "matmul", { a: [n, n], b: [n, n] }, { dims: { N: n }, device: b.handle.profile });
    const be = await GpuBackend.load(b.handle, bundle);
    be.write("a", A);
    be.write("b", B);
    check("weft", (await be.run(["out"])).get("out")!);
    cs.push({ peer: "weft", step: async () => void (await be.run()), dispose: () => be.destroy() });
  } catch (e) {
    row.errors.weft = errorText(e);
  }

  if (tf.ok) {
    try {
      const t = tf.value.tf;
      const ta = t.tensor2d(A, [n, n]);
      const tb = t.tensor2d(B, [n, n]);
      const c0 = t.matMul(ta, tb);
      check("tfjs", await awaitGpu(c0.data()));
      c0.dispose();
      cs.push({
        peer: "tfjs",
        step: () => t.matMul(ta, tb).dispose(),
        flush: () => tfFlush(tf.value.backend),
        dispose: () => [ta, tb].forEach((v) => v.dispose()),
      });
    } catch (e) {
      row.errors.tfjs = errorText(e);
    }
  } else row.errors.tfjs = tf.error;

  if (jax.ok) {
    try {
      const { numpy: np, jit } = jax.value.jax;
      const ja = np.array(A).reshape([n, n]);
      const jb = np.array(B).reshape([n, n]);
      const f = jit((x: typeof ja, y: typeof ja) => np.matmul(x, y));
      check("jax", await awaitGpu(f(ja.ref, jb.ref).data()));
      cs.push({
        peer: "jax",
        step: () => {
          const y = f(ja.ref, jb.ref);
          jaxDispatch([y]);
          y.dispose();
        },
        dispose: () => {
          [ja, jb].forEach((v) => v.dispose());
          f.dispose();
        },
      });
    } catch (e) {
      row.errors.jax = errorText(e);
    }
  } else row.errors.jax = jax.error;

  try {
    const h = new HandMatmul(b.device, n);
    h.write(A, B);
    await h.load(awaitGpu);
    h.step();
    check("wgsl", await h.read(awaitGpu));
    cs.push({ peer: "wgsl", step: () => h.step(), dispose: () => h.destroy() });
  } catch (e) {
    row.errors.wgsl = errorText(e);
  }

  // Iterations per repetition: about the same GPU work at every size.
  const iters = n <= 256 ? 8 : n <= 512 ? 2 : 1;
  const rounds = b.quick ? 3 : n >= 1024 ? 6 : 8;
  const t = await measure(b, cs, { iters, warmup: 1, rounds });
  return fillRow(row, t, (ms) => (2 * n ** 3) / (ms * 1e6), rounds);
}

export const matmul: Workload = {
  name: "matmul",
  about: "fp32 matmul 256, 512, 1024 (GFLOP/s), with a hand-written register-blocked WGSL baseline",
  async run(ctx: Ctx): Promise<Row[]> {
    const rows: Row[] = [];
    for (const n of SIZES) {
      rows.push(await one(n, ctx));
      ctx.b.log(`  matmul ${n} done`);
    }
    return rows;
  },
};
