// One MLP training step: batch 64, 784 → 256 → 10, ReLU, softmax cross-entropy, SGD.
// Every peer starts from the same weights (Weft's initialisers) and is fed the same
// batches, uploaded from the host at every step, as a training loop does. The loss of
// the first step is compared across peers.
import type * as JAX from "@jax-js/jax";
import type * as TF from "@tensorflow/tfjs";
import type { TrainJob } from "../../compiler/lower/train.ts";
import { initialValues } from "../../runtime/init.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { awaitGpu } from "../../runtime/webgpu/device.ts";
import { errorText, measure, uniforms, type Contestant } from "../harness.ts";
import { jaxDispatch, tfFlush } from "../peers.ts";
import { emptyRow, fillRow, type Ctx, type Row, type Workload } from "../row.ts";
import { compileJob } from "../weft.ts";

const B = 64, D = 784, H = 256, C = 10;
const LR = 0.05; // the job's sgd(lr = 0.05)
const BATCHES = 4;

interface Data {
  x: Float32Array[];
  y: Int32Array[];
  onehot: Float32Array[];
}

function data(): Data {
  const x: Float32Array[] = [], y: Int32Array[] = [], onehot: Float32Array[] = [];
  for (let k = 0; k < BATCHES; k++) {
    x.push(uniforms(B * D, 100 + k, 0, 1));
    const labels = Int32Array.from(uniforms(B, 200 + k, 0, C), Math.floor);
    y.push(labels);
    const oh = new Float32Array(B * C);
    labels.forEach((l, i) => (oh[i * C + l] = 1));
    onehot.push(oh);
  }
  return { x, y, onehot };
}

/** Weft's initial weights of the job, by role. */
function weights(job: TrainJob): { w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array; all: Map<string, Float32Array> } {
  const all = new Map(job.spec.params.map((p) => [p.path, initialValues(p.init, p.shape, 0, p.path)]));
  const get = (path: string) => all.get(path) ?? failMissing(path, [...all.keys()]);
  return { w1: get("model.hidden.w"), b1: get("model.hidden.b"), w2: get("model.out.w"), b2: get("model.out.b"), all };
}

function failMissing(path: string, have: string[]): never {
  throw new Error(`the MLP job has no parameter ${path} (has ${have.join(", ")})`);
}

export const mlp: Workload = {
  name: "mlp",
  about: "MLP train step: batch 64, 784→256→10, ReLU, softmax cross-entropy, SGD (ms per step)",
  async run({ b, tf, jax }: Ctx): Promise<Row[]> {
    const row = emptyRow("mlp-step", "MLP train step (64, 784→256→10, SGD)", "ms", false);
    const d = data();
    const cs: Contestant[] = [];
    const firstLoss: Partial<Record<"weft" | "tfjs" | "jax", number>> = {};
    let w: ReturnType<typeof weights> | null = null;

    try {
      const { bundle, job } = compileJob("mlp.weft", "mlp", [
        { name: "x", shape: [D], dtype: "f32" },
        { name: "y", shape: [], dtype: "i32" },
      ], undefined, b.handle.profile);
      w = weights(job);
      row.notes.push(`Weft: ${bundle.kernels.length} kernels per step`);
      const be = await GpuBackend.load(b.handle, bundle);
      for (const [path, v] of w.all) be.write(path, v);
      for (const s of job.spec.state) be.write(s.name, new Float32Array(s.shape.reduce((a, c) => a * c, 1)));
      const { lr, c1, c2, apply } = job.spec.scalars;
      const [xIn, yIn] = ["x", "y"].map((f) => job.spec.fields.find((q) => q.field === f)?.input ?? `batch.${f}`);
      let i = 0;
      const feed = () => {
        const k = i++ % BATCHES;
        be.write(xIn, d.x[k]);
        be.write(yIn, d.y[k]);
        be.write(lr, Float32Array.of(LR));
        if (c1) be.write(c1, Float32Array.of(1));
        if (c2) be.write(c2, Float32Array.of(1));
        if (apply) be.write(apply, Float32Array.of(1));
      };
      feed();
      firstLoss.weft = (await be.run(["loss"])).get("loss")![0];
      cs.push({
        peer: "weft",
        step: async () => {
          feed();
          await be.run();
        },
        dispose: () => be.destroy(),
      });
    } catch (e) {
      row.errors.weft = errorText(e);
    }
    const init = w ?? {
      w1: uniforms(D * H, 1, -0.07, 0.07),
      b1: new Float32Array(H),
      w2: uniforms(H * C, 2, -0.15, 0.15),
      b2: new Float32Array(C),
    };

    if (tf.ok) {
      try {
        const t = tf.value.tf;
        const vars = [t.variable(t.tensor2d(init.w1, [D, H])), t.variable(t.tensor1d(init.b1)), t.variable(t.tensor2d(init.w2, [H, C])), t.variable(t.tensor1d(init.b2))];
        const [w1, b1, w2, b2] = vars;
        const opt = t.train.sgd(LR);
        let i = 0;
        const step = (): TF.Scalar | null => {
          const k = i++ % BATCHES;
          const x = t.tensor2d(d.x[k], [B, D]);
          const y = t.tensor2d(d.onehot[k], [B, C]);
          const cost = opt.minimize(() => t.losses.softmaxCrossEntropy(y, t.add(t.matMul(t.relu(t.add(t.matMul(x, w1), b1)), w2), b2)) as TF.Scalar, true, vars);
          x.dispose();
          y.dispose();
          return cost;
        };
        const c0 = step();
        firstLoss.tfjs = (await awaitGpu(c0!.data()))[0];
        c0!.dispose();
        cs.push({
          peer: "tfjs",
          step: () => step()?.dispose(),
          flush: () => tfFlush(tf.value.backend),
          dispose: () => {
            vars.forEach((v) => v.dispose());
            opt.dispose();
          },
        });
      } catch (e) {
        row.errors.tfjs = errorText(e);
      }
    } else row.errors.tfjs = tf.error;

    if (jax.ok) {
      try {
        const { numpy: np, nn, jit, valueAndGrad, tree } = jax.value.jax;
        type A = JAX.Array;
        type P = { w1: A; b1: A; w2: A; b2: A };
        let params: P = { w1: np.array(init.w1).reshape([D, H]), b1: np.array(init.b1), w2: np.array(init.w2).reshape([H, C]), b2: np.array(init.b2) };
        const lossFn = (p: P, x: A, y: A): A => {
          const h = nn.relu(np.matmul(x, p.w1).add(p.b1));
          const logits = np.matmul(h, p.w2).add(p.b2);
          return nn.logSoftmax(logits, -1).mul(y).sum().mul(-1 / B);
        };
        const step = jit((p: P, x: A, y: A): { p: P; loss: A } => {
          const [loss, g] = valueAndGrad(lossFn)(tree.ref(p), x, y) as [A, P];
          return { p: { w1: p.w1.sub(g.w1.mul(LR)), b1: p.b1.sub(g.b1.mul(LR)), w2: p.w2.sub(g.w2.mul(LR)), b2: p.b2.sub(g.b2.mul(LR)) }, loss };
        });
        let i = 0;
        const run = (): A => {
          const k = i++ % BATCHES;
          const out = step(params, np.array(d.x[k]).reshape([B, D]), np.array(d.onehot[k]).reshape([B, C]));
          params = out.p;
          jaxDispatch([params.w1, params.b1, params.w2, params.b2, out.loss]);
          return out.loss;
        };
        firstLoss.jax = (await awaitGpu(run().data()))[0];
        cs.push({
          peer: "jax",
          step: () => run().dispose(),
          dispose: () => {
            tree.dispose(params);
            step.dispose();
          },
        });
      } catch (e) {
        row.errors.jax = errorText(e);
      }
    } else row.errors.jax = jax.error;

    const ref = firstLoss.weft ?? firstLoss.tfjs;
    for (const [peer, l] of Object.entries(firstLoss) as ["weft" | "tfjs" | "jax", number][]) {
      row.checks[peer] = `first-step loss ${l.toFixed(5)}${ref !== undefined && peer !== "weft" ? ` (Weft ${ref.toFixed(5)})` : ""}`;
    }
    const rounds = b.quick ? 4 : 10;
    const t = await measure(b, cs, { iters: 4, warmup: b.quick ? 1 : 2, rounds });
    return [fillRow(row, t, (ms) => ms, rounds)];
  },
};
