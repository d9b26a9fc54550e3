// The measuring harness: one process, one WebGPU device shared by every peer,
// interleaved repetitions, and one way of waiting for the GPU for all of them.
//
// - Device: Weft's acquireDevice() opens the process's dawn-node device. TF.js and
//   jax-js are handed that same GPUDevice through a `navigator.gpu` shim whose adapter
//   returns it from requestDevice() (both libraries open their device that way), so
//   all peers share one adapter, one device and one queue.
// - Waiting: a repetition enqueues `iters` iterations without waiting, flushes the
//   libraries that batch their commands (TF.js), then awaits
//   `device.queue.onSubmittedWorkDone()`. Every wait goes through Weft's awaitGpu(), so
//   the event-loop setting (dawn's busy-poll redirected to a ~1 ms timer, or the plain
//   spin with --spin) is the same for every peer (DEVICE-NOTES items 2 and 5).
// - Order: each round runs every peer once, rotating who goes first; warm-up
//   repetitions (which include pipeline compilation) are not counted.
import { availableParallelism } from "node:os";
import { acquireDevice, awaitGpu, type GpuHandle } from "../runtime/webgpu/device.ts";

export type PeerName = "weft" | "tfjs" | "jax" | "wgsl";

export const PEERS: { name: PeerName; label: string }[] = [
  { name: "weft", label: "Weft" },
  { name: "tfjs", label: "TF.js webgpu" },
  { name: "jax", label: "jax-js jit" },
  { name: "wgsl", label: "hand WGSL" },
];

export interface Contestant {
  peer: PeerName;
  /** enqueue one iteration on the GPU; must not wait for the GPU */
  step(): void | Promise<void>;
  /** submit whatever the library has batched but not submitted yet */
  flush?(): void;
  dispose(): void;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0] ?? NaN, max: s[n - 1] ?? NaN, n };
}

export interface Bench {
  handle: GpuHandle;
  device: GPUDevice;
  quick: boolean;
  log(msg: string): void;
}

/** Waits until the shared queue is idle (the same wait for every peer). */
export function settle(device: GPUDevice): Promise<void> {
  return awaitGpu(device.queue.onSubmittedWorkDone());
}

export interface Timings {
  /** per peer: ms per iteration, one entry per counted repetition, in round order */
  ms: Map<PeerName, number[]>;
  /** per peer: the error that stopped it, if any */
  errors: Map<PeerName, string>;
  iters: number;
}

/**
 * Runs `warmup` uncounted and `rounds` counted repetitions of every contestant,
 * interleaved (round r starts with contestant r mod n). A repetition is `iters`
 * iterations then one wait for the queue; its time is divided by `iters`.
 */
export async function measure(b: Bench, cs: Contestant[], opts: { iters: number; warmup: number; rounds: number }): Promise<Timings> {
  const ms = new Map<PeerName, number[]>(cs.map((c) => [c.peer, []]));
  const errors = new Map<PeerName, string>();
  const rep = async (c: Contestant): Promise<number> => {
    await settle(b.device);
    b.handle.throwIfFailed();
    const t0 = performance.now();
    for (let i = 0; i < opts.iters; i++) await c.step();
    c.flush?.();
    await settle(b.device);
    const t = (performance.now() - t0) / opts.iters;
    b.handle.throwIfFailed();
    return t;
  };
  const live = () => cs.filter((c) => !errors.has(c.peer));
  const guarded = async (c: Contestant, f: (t: number) => void) => {
    try {
      f(await rep(c));
    } catch (e) {
      errors.set(c.peer, errorText(e));
      b.log(`  ${c.peer}: failed: ${errorText(e)}`);
    }
  };
  for (let w = 0; w < opts.warmup; w++) for (const c of live()) await guarded(c, () => {});
  for (let r = 0; r < opts.rounds; r++) {
    const order = live();
    for (let j = 0; j < order.length; j++) {
      const c = order[(j + r) % order.length];
      await guarded(c, (t) => ms.get(c.peer)!.push(t));
    }
  }
  for (const c of cs) {
    try {
      c.dispose();
    } catch {
      /* a failed peer may not dispose cleanly */
    }
  }
  await settle(b.device);
  return { ms, errors, iters: opts.iters };
}

export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").slice(0, 6).join(" | ").slice(0, 500);
}

// ---------------------------------------------------------------------------------
// The shared device and the navigator.gpu shim for the peers.

let shimmed: GpuHandle | null = null;

export async function openDevice(): Promise<GpuHandle> {
  const handle = await acquireDevice({ requireGpu: true });
  if (!handle) throw new Error("no WebGPU adapter");
  return handle;
}

/**
 * Installs `globalThis.navigator` so that libraries which open their own device
 * (`navigator.gpu.requestAdapter()` → `adapter.requestDevice()`) get the shared one.
 * The adapter's features and limits are the real adapter's; the device is Weft's,
 * opened with every optional feature the adapter has and its maximum limits.
 */
export function shareDevice(handle: GpuHandle): void {
  if (shimmed === handle) return;
  const { adapter, device } = handle;
  const sharedAdapter = {
    features: adapter.features,
    limits: adapter.limits,
    info: adapter.info,
    isFallbackAdapter: false,
    requestDevice: async (): Promise<GPUDevice> => device,
    requestAdapterInfo: async (): Promise<GPUAdapterInfo> => adapter.info,
  };
  const gpu = {
    requestAdapter: async () => sharedAdapter,
    getPreferredCanvasFormat: (): GPUTextureFormat => "rgba8unorm",
    wgslLanguageFeatures: new Set<string>(),
  };
  const nav = { gpu, userAgent: `Node.js ${process.version}`, hardwareConcurrency: availableParallelism() };
  Object.defineProperty(globalThis, "navigator", { value: nav, configurable: true, writable: true });
  shimmed = handle;
}

/** Deterministic uniform floats in [lo, hi). */
export function uniforms(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** max |a − b| / max(|b|, floor) */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}
