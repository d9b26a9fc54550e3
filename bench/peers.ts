// Loading the peers on the shared device: TensorFlow.js with its WebGPU back end, and
// jax-js on WebGPU. Each loads at most once per process; a peer that cannot load is
// reported (with the reason) and left out of every workload.
import type * as TF from "@tensorflow/tfjs";
import type * as JAX from "@jax-js/jax";
import { awaitGpu, type GpuHandle } from "../runtime/webgpu/device.ts";
import { errorText, shareDevice } from "./harness.ts";

export type Tf = typeof TF;
export type Jax = typeof JAX;

/** The parts of tfjs-backend-webgpu's WebGPUBackend the bench uses. */
export interface TfWebGpuBackend {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Submits what TF.js has recorded but not submitted (it batches up to 15 dispatches), as its own reads do. */
export function tfFlush(b: TfWebGpuBackend): void {
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
}

export interface TfPeer {
  tf: Tf;
  backend: TfWebGpuBackend;
  version: string;
}

export interface JaxPeer {
  jax: Jax;
  version: string;
}

export type Loaded<T> = { ok: true; value: T } | { ok: false; error: string };

let tfLoad: Promise<Loaded<TfPeer>> | null = null;
let jaxLoad: Promise<Loaded<JaxPeer>> | null = null;

/** A CommonJS module imported from ESM: named exports, or everything under `default`. */
function cjs<T>(m: T & { default?: T }): T {
  return (m as { setBackend?: unknown }).setBackend ? m : (m.default ?? m);
}

/** The installed version of a package (found from its entry point: not every package exports package.json). */
async function versionOf(pkg: string): Promise<string> {
  const packed = (globalThis as { __weftPeerVersions?: Record<string, string> }).__weftPeerVersions?.[pkg];
  if (packed) return packed; // bench/pack.mjs wrote it in
  const { createRequire } = await import("node:module");
  const { readFileSync } = await import("node:fs");
  const { dirname, join } = await import("node:path");
  try {
    let dir = dirname(createRequire(import.meta.url).resolve(pkg));
    for (let i = 0; i < 6; i++, dir = dirname(dir)) {
      try {
        const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
        if (meta.name === pkg && meta.version) return meta.version;
      } catch {
        /* not here: go up */
      }
    }
  } catch {
    /* unresolvable */
  }
  return "?";
}

export function loadTf(handle: GpuHandle): Promise<Loaded<TfPeer>> {
  tfLoad ??= (async (): Promise<Loaded<TfPeer>> => {
    try {
      shareDevice(handle);
      // The union package registers the gradients (tfjs-core alone has none: DEVICE-NOTES 6).
      const tf = cjs((await import("@tensorflow/tfjs")) as Tf & { default?: Tf });
      // Registers the "webgpu" back end; its factory asks navigator.gpu, i.e. the shared device.
      await import("@tensorflow/tfjs-backend-webgpu");
      const ok = await awaitGpu(tf.setBackend("webgpu"));
      if (!ok) return { ok: false, error: "tf.setBackend('webgpu') failed" };
      await awaitGpu(tf.ready());
      const backend = tf.backend() as unknown as TfWebGpuBackend;
      if (backend.device !== handle.device) return { ok: false, error: "TF.js did not take the shared GPUDevice" };
      return { ok: true, value: { tf, backend, version: await versionOf("@tensorflow/tfjs-backend-webgpu") } };
    } catch (e) {
      return { ok: false, error: errorText(e) };
    }
  })();
  return tfLoad;
}

export function loadJax(handle: GpuHandle): Promise<Loaded<JaxPeer>> {
  jaxLoad ??= (async (): Promise<Loaded<JaxPeer>> => {
    try {
      shareDevice(handle);
      const jax = (await import("@jax-js/jax")) as Jax;
      const devices = await awaitGpu(jax.init("webgpu"));
      if (!devices.includes("webgpu")) return { ok: false, error: `jax-js init("webgpu") gave ${devices.join(", ")}` };
      jax.defaultDevice("webgpu");
      if (jax.getWebGPUDevice() !== handle.device) return { ok: false, error: "jax-js did not take the shared GPUDevice" };
      return { ok: true, value: { jax, version: await versionOf("@jax-js/jax") } };
    } catch (e) {
      return { ok: false, error: errorText(e) };
    }
  })();
  return jaxLoad;
}

/**
 * Enqueues the work behind jax-js arrays without waiting for it. jax-js is lazy: an
 * array's kernels are dispatched only when it is read. gpuBufferSync() dispatches them
 * (pipelines are already compiled after warm-up) and returns without waiting.
 */
export function jaxDispatch(leaves: JAX.Array[]): void {
  for (const a of leaves) a.ref.gpuBufferSync();
}
