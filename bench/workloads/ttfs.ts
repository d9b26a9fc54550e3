// Time to the first training step of the transformer block (fwd + bwd + SGD), from a
// cold start: each measurement is a fresh child process with the Mesa shader cache
// disabled (MESA_SHADER_CACHE_DISABLE=true), so every pipeline is compiled by
// lavapipe's LLVM JIT. The clock starts once the device is open and the peer's library
// is imported (both reported apart) and stops when the first step's loss is back on
// the host: for Weft that is check + lower + autodiff + codegen, pipeline creation and
// the first run; for TF.js building the model and its first minimize(); for jax-js
// tracing, compiling and running the jitted step.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type * as JAX from "@jax-js/jax";
import { shaderKey } from "../../runtime/bundle.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { awaitGpu } from "../../runtime/webgpu/device.ts";
import { errorText, openDevice, stat, uniforms, type PeerName, type Timings } from "../harness.ts";
import { jaxParams, jaxTransformerLoss, ROLES, TB, tfTransformer, transformerInit } from "../models.ts";
import { loadJax, loadTf } from "../peers.ts";
import { emptyRow, fillRow, type Ctx, type Row, type Workload } from "../row.ts";
import { compileJob } from "../weft.ts";

const { B, T, D } = TB;
const LR = 0.01; // the job's sgd(lr = 0.01)
// WEFT_BENCH_RUNNER: the script a child runs (bench/pack.mjs sets it to the packed bench).
const RUNNER = process.env.WEFT_BENCH_RUNNER ?? fileURLToPath(new URL("../run.mjs", import.meta.url));

interface ChildResult {
  peer: PeerName;
  /** build + compile + first step, ms */
  ms: number;
  parts: Record<string, number>;
  importMs: number;
  deviceMs: number;
  loss: number;
  /** Weft: kernels launched by the step, and the distinct shaders among them (what the driver compiles) */
  kernels?: number;
  shaders?: number;
}

function child(peer: PeerName, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [RUNNER, "--child", "ttfs", peer], {
      // Cold shader caches: Mesa (lavapipe) and the NVIDIA driver each keep one on disk.
      env: { ...process.env, MESA_SHADER_CACHE_DISABLE: "true", __GL_SHADER_DISK_CACHE: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("close", (code) => {
      clearTimeout(timer);
      const line = out.split("\n").find((l) => l.startsWith("TTFS "));
      if (line) resolve(JSON.parse(line.slice(5)) as ChildResult);
      else {
        const why = err.split("\n").filter((l) => l.trim() && !l.includes("artificially reduced")).slice(-4).join(" | ");
        reject(new Error(`child exited with ${code ?? "a signal (timed out?)"}: ${why}`));
      }
    });
  });
}

export const firstStep: Workload = {
  name: "ttfs",
  about: "time to first training step of the transformer block, cold shader cache (child processes)",
  async run({ b, tf, jax }: Ctx): Promise<Row[]> {
    const row = emptyRow("ttfs-transformer", "time to first step, transformer block (cold shader cache)", "s", true);
    row.higherIsBetter = false;
    const peers: PeerName[] = ["weft", ...(tf.ok ? (["tfjs"] as const) : []), ...(jax.ok ? (["jax"] as const) : [])];
    if (!tf.ok) row.errors.tfjs = tf.error;
    if (!jax.ok) row.errors.jax = jax.error;
    const reps = b.quick ? 1 : 2;
    const t: Timings = { ms: new Map(peers.map((p) => [p, []])), errors: new Map(), iters: 1 };
    const extra = new Map<PeerName, ChildResult[]>();
    for (let r = 0; r < reps; r++) {
      for (let j = 0; j < peers.length; j++) {
        const peer = peers[(j + r) % peers.length];
        if (t.errors.has(peer)) continue;
        try {
          const res = await child(peer, 240_000);
          t.ms.get(peer)!.push(res.ms);
          extra.set(peer, [...(extra.get(peer) ?? []), res]);
          const parts = Object.entries(res.parts).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`);
          b.log(`  ${peer}: first step after ${(res.ms / 1000).toFixed(1)} s${parts.length ? ` (${parts.join(", ")})` : ""}; loss ${res.loss.toFixed(5)}`);
        } catch (e) {
          t.errors.set(peer, errorText(e));
          b.log(`  ${peer}: failed: ${errorText(e)}`);
        }
      }
    }
    fillRow(row, t, (ms) => ms / 1000, reps);
    for (const [peer, rs] of extra) {
      const parts = Object.keys(rs[0].parts).map((k) => `${k} ${(stat(rs.map((x) => x.parts[k])).median / 1000).toFixed(2)} s`);
      row.checks[peer] =
        `first-step loss ${rs[0].loss.toFixed(5)}; ` +
        (rs[0].shaders ? `${rs[0].kernels} kernels, ${rs[0].shaders} distinct shaders; ` : "") +
        (parts.length ? `${parts.join(" + ")}; ` : "") +
        `not counted: library import ${(stat(rs.map((x) => x.importMs)).median / 1000).toFixed(2)} s, device ${(stat(rs.map((x) => x.deviceMs)).median / 1000).toFixed(2)} s`;
    }
    return [row];
  },
};

/** In the child process: `--child ttfs PEER`; prints one line `TTFS {json}`. */
export async function runFirstStepChild(args: string[]): Promise<number> {
  const [what, peerArg] = args;
  if (what !== "ttfs" || !["weft", "tfjs", "jax"].includes(peerArg)) {
    console.error(`bench --child: expected 'ttfs weft|tfjs|jax', got '${args.join(" ")}'`);
    return 2;
  }
  const peer = peerArg as PeerName;
  const x = uniforms(B * T * D, 7, -1, 1);
  let t = performance.now();
  const handle = await openDevice();
  const deviceMs = performance.now() - t;
  let importMs = 0;
  const parts: Record<string, number> = {};
  let loss = NaN;
  let t0 = 0;
  let counts: { kernels?: number; shaders?: number } = {};
  try {
    if (peer === "weft") {
      t0 = performance.now();
      const { bundle, job } = compileJob("transformer.weft", "block_step", [{ name: "x", shape: [T, D], dtype: "f32" }], undefined, handle.profile);
      const t1 = performance.now();
      const be = await GpuBackend.load(handle, bundle);
      const t2 = performance.now();
      const init = transformerInit("model.", job.spec.params);
      for (const r of ROLES) be.write(`model.${r.role}`, init.get(r.role)!);
      for (const s of job.spec.state) be.write(s.name, new Float32Array(s.shape.reduce((a, c) => a * c, 1)));
      be.write(job.spec.fields[0]?.input ?? "batch.x", x);
      be.write(job.spec.scalars.lr, Float32Array.of(LR));
      if (job.spec.scalars.apply) be.write(job.spec.scalars.apply, Float32Array.of(1));
      loss = (await be.run([job.spec.loss])).get(job.spec.loss)![0];
      counts = { kernels: bundle.kernels.length, shaders: new Set(bundle.kernels.map(shaderKey)).size };
      Object.assign(parts, { compile: t1 - t0, "pipeline creation": t2 - t1, "first run (incl. any shader compile the driver defers to it)": performance.now() - t2 });
    } else if (peer === "tfjs") {
      t = performance.now();
      const tf = await loadTf(handle);
      importMs = performance.now() - t;
      if (!tf.ok) throw new Error(tf.error);
      const T_ = tf.value.tf;
      t0 = performance.now();
      const m = tfTransformer(T_, transformerInit("model."));
      const tx = T_.tensor3d(x, [B, T, D]);
      const opt = T_.train.sgd(LR);
      const cost = opt.minimize(() => m.loss(tx), true, [...m.vars.values()]);
      loss = (await awaitGpu(cost!.data()))[0];
    } else {
      t = performance.now();
      const jx = await loadJax(handle);
      importMs = performance.now() - t;
      if (!jx.ok) throw new Error(jx.error);
      const J = jx.value.jax;
      t0 = performance.now();
      const params = jaxParams(J, transformerInit("model."));
      const lossFn = jaxTransformerLoss(J);
      const step = J.jit((p: Record<string, JAX.Array>, xs: JAX.Array) => {
        const [l, g] = J.valueAndGrad(lossFn)(J.tree.ref(p), xs) as [JAX.Array, Record<string, JAX.Array>];
        const next = Object.fromEntries(Object.entries(p).map(([k, w]) => [k, w.sub(g[k].mul(LR))]));
        return { p: next, loss: l };
      });
      const out = step(params, J.numpy.array(x).reshape([B, T, D]));
      loss = (await awaitGpu(out.loss.data()))[0];
    }
  } catch (e) {
    console.error(`bench --child ttfs ${peer}: ${(e as Error).stack ?? e}`);
    return 1;
  }
  const res: ChildResult = { peer, ms: performance.now() - t0, parts, importMs, deviceMs, loss, ...counts };
  process.stdout.write(`TTFS ${JSON.stringify(res)}\n`);
  return 0;
}
