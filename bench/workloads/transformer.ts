// Transformer block forward + backward: B 8, T 64, D 128, 4 heads, FFN 512; the loss
// mean(y²) and its gradient with respect to all 16 parameters (no update). Same weights
// and input for every peer; the loss and one gradient deep in the block (the query
// weights, behind the softmax) are compared with Weft's.
import type * as JAX from "@jax-js/jax";
import type * as TF from "@tensorflow/tfjs";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { awaitGpu } from "../../runtime/webgpu/device.ts";
import { errorText, maxRelError, measure, uniforms, type Contestant } from "../harness.ts";
import { jaxParams, jaxTransformerLoss, ROLES, TB, tfTransformer, transformerInit } from "../models.ts";
import { jaxDispatch, tfFlush } from "../peers.ts";
import { emptyRow, fillRow, fmtErr, type Ctx, type Row, type Workload } from "../row.ts";
import { compileFn } from "../weft.ts";

const { B, T, D } = TB;
const PROBE = "attn.q.w";

export const transformer: Workload = {
  name: "transformer",
  about: "transformer block forward+backward (B 8, T 64, D 128, 4 heads, FFN 512), ms per step",
  async run({ b, tf, jax }: Ctx): Promise<Row[]> {
    const row = emptyRow("transformer-fwdbwd", "transformer block fwd+bwd (8×64×128, 4 heads, FFN 512)", "ms", false);
    const x = uniforms(B * T * D, 7, -1, 1);
    const cs: Contestant[] = [];
    const got: Partial<Record<"weft" | "tfjs" | "jax", { loss: number; probe: Float32Array }>> = {};
    let init = transformerInit("m.");

    try {
      const { bundle, params } = compileFn("transformer.weft", "loss", { x: [B, T, D] }, { wrt: (ps) => ps.map((p) => p.path), device: b.handle.profile });
      init = transformerInit("m.", params);
      row.notes.push(`Weft: ${bundle.kernels.length} kernels`);
      const be = await GpuBackend.load(b.handle, bundle);
      for (const r of ROLES) be.write(`m.${r.role}`, init.get(r.role)!);
      be.write("x", x);
      const out = await be.run(["out", `grad.m.${PROBE}`]);
      got.weft = { loss: out.get("out")![0], probe: Float32Array.from(out.get(`grad.m.${PROBE}`)!) };
      cs.push({ peer: "weft", step: async () => void (await be.run()), dispose: () => be.destroy() });
    } catch (e) {
      row.errors.weft = errorText(e);
    }

    if (tf.ok) {
      try {
        const t = tf.value.tf;
        const m = tfTransformer(t, init);
        const tx = t.tensor3d(x, [B, T, D]);
        const varList = [...m.vars.values()];
        const step = () => t.variableGrads(() => m.loss(tx), varList);
        const g0 = step();
        got.tfjs = { loss: (await awaitGpu(g0.value.data()))[0], probe: Float32Array.from(await awaitGpu(g0.grads[m.vars.get(PROBE)!.name].data())) };
        const release = (g: { value: TF.Scalar; grads: TF.NamedTensorMap }) => {
          g.value.dispose();
          Object.values(g.grads).forEach((v) => v.dispose());
        };
        release(g0);
        cs.push({
          peer: "tfjs",
          step: () => release(step()),
          flush: () => tfFlush(tf.value.backend),
          dispose: () => {
            tx.dispose();
            varList.forEach((v) => v.dispose());
          },
        });
      } catch (e) {
        row.errors.tfjs = errorText(e);
      }
    } else row.errors.tfjs = tf.error;

    if (jax.ok) {
      try {
        const J = jax.value.jax;
        const params = jaxParams(J, init);
        const jx = J.numpy.array(x).reshape([B, T, D]);
        const f = J.jit(J.valueAndGrad(jaxTransformerLoss(J)));
        const run = () => f(J.tree.ref(params), jx.ref) as [JAX.Array, Record<string, JAX.Array>];
        const [l0, g0] = run();
        got.jax = { loss: (await awaitGpu(l0.data()))[0], probe: Float32Array.from(await awaitGpu(g0[PROBE].ref.data())) };
        J.tree.dispose(g0);
        cs.push({
          peer: "jax",
          step: () => {
            const [l, g] = run();
            jaxDispatch([l, ...Object.values(g)]);
            l.dispose();
            J.tree.dispose(g);
          },
          dispose: () => {
            J.tree.dispose(params);
            jx.dispose();
            f.dispose();
          },
        });
      } catch (e) {
        row.errors.jax = errorText(e);
      }
    } else row.errors.jax = jax.error;

    const ref = got.weft;
    for (const [peer, v] of Object.entries(got) as ["weft" | "tfjs" | "jax", { loss: number; probe: Float32Array }][]) {
      row.checks[peer] =
        peer === "weft" || !ref
          ? `loss ${v.loss.toFixed(5)}`
          : `loss ${v.loss.toFixed(5)}; ∂loss/∂${PROBE} max rel err vs Weft ${fmtErr(maxRelError(v.probe, ref.probe, 1e-3 * Math.max(...ref.probe.map(Math.abs))))}`;
    }
    const rounds = b.quick ? 4 : 8;
    const t = await measure(b, cs, { iters: 2, warmup: b.quick ? 1 : 2, rounds });
    return [fillRow(row, t, (ms) => ms, rounds)];
  },
};
