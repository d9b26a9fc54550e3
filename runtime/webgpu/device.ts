// Acquire one WebGPU device per process: dawn-node (npm `webgpu`) in Node,
// `navigator.gpu` in a browser. Also: a non-spinning way to await dawn-node promises.
// See shared/DEVICE-NOTES.md for the traps this file works around.
import { profileOf, type DeviceProfile } from "../profile.ts";

export interface GpuHandle {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** human description of the adapter, e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) [mesa, software]" */
  info: string;
  /** the optional features that were enabled on the device */
  features: string[];
  /** what the compiler may assume about this device (pass it to compileBundle as `device`) */
  profile: DeviceProfile;
  /** Throws the first uncaptured device error or device loss seen since the last call. */
  throwIfFailed(): void;
}

type DawnModule = typeof import("webgpu");

/** Features requested when the adapter has them. */
const WANTED_FEATURES = ["shader-f16", "timestamp-query", "subgroups"] as const;

/** Limits raised to the adapter's maximum (the defaults are far below what adapters give). */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
] as const;

// The object dawn-node's create() returns must stay reachable for the life of the
// process: if it is garbage-collected the process crashes later (DEVICE-NOTES item 1).
let dawnGpu: GPU | null = null;
let cached: Promise<{ handle: GpuHandle | null; reason: string }> | null = null;

const isNode = typeof process !== "undefined" && typeof process.versions?.node === "string";

/**
 * The process's WebGPU device, or null when there is no adapter (nothing is printed by
 * Weft; native drivers may still log). With `requireGpu` (or WEFT_REQUIRE_GPU=1) a
 * missing adapter is an Error that says how to install one.
 */
export async function acquireDevice(opts?: { requireGpu?: boolean }): Promise<GpuHandle | null> {
  cached ??= openDevice();
  const { handle, reason } = await cached;
  const required = opts?.requireGpu === true || (isNode && process.env.WEFT_REQUIRE_GPU === "1");
  if (handle === null && required) {
    throw new Error(
      `no WebGPU adapter (${reason}). On Debian 12, run \`npm run setup\` to install Mesa lavapipe ` +
        "(mesa-vulkan-drivers from bookworm-backports, a Vulkan driver that runs on the CPU); " +
        "elsewhere install a Vulkan/Metal/D3D12 driver for your GPU.",
    );
  }
  return handle;
}

/**
 * A fresh adapter from the same WebGPU instance (null without one), for a second device
 * with other limits or features: an adapter that made a device cannot make another.
 */
export async function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = await findGpu();
  return gpu ? awaitGpu(gpu.requestAdapter({ powerPreference: "high-performance" })) : null;
}

async function findGpu(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!isNode) return null;
  if (dawnGpu) return dawnGpu;
  await ensureXdgRuntimeDir();
  // A computed specifier keeps browser bundlers from pulling in the native module.
  const spec = "webgpu";
  const dawn = (await import(/* @vite-ignore */ spec)) as DawnModule;
  // Libraries (and our executor) expect GPUBufferUsage, GPUMapMode, ... as globals.
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, writable: true, configurable: true });
  }
  dawnGpu = dawn.create([]);
  return dawnGpu;
}

async function openDevice(): Promise<{ handle: GpuHandle | null; reason: string }> {
  let gpu: GPU | null;
  try {
    gpu = await findGpu();
  } catch (e) {
    return { handle: null, reason: `cannot load dawn-node: ${(e as Error).message}` };
  }
  if (!gpu) return { handle: null, reason: "no navigator.gpu in this environment" };
  let adapter: GPUAdapter | null;
  let device: GPUDevice;
  const features: GPUFeatureName[] = [];
  try {
    adapter = await awaitGpu(gpu.requestAdapter({ powerPreference: "high-performance" }));
    if (!adapter) return { handle: null, reason: "requestAdapter() found no adapter" };
    for (const f of WANTED_FEATURES) if (adapter.features.has(f)) features.push(f);
    const requiredLimits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
    device = await awaitGpu(adapter.requestDevice({ requiredFeatures: features, requiredLimits }));
  } catch (e) {
    return { handle: null, reason: `cannot open a WebGPU device: ${(e as Error).message}` };
  }

  // Errors nobody captured in an error scope, and device loss, are kept and rethrown
  // by the next executor call (dawn-node also prints uncaptured errors itself).
  let failure: Error | null = null;
  device.addEventListener("uncapturederror", (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    failure ??= new Error(`WebGPU ${err.constructor.name}: ${err.message}`);
  });
  void device.lost.then((info) => {
    cached = null; // the next acquireDevice() opens a fresh device
    // "destroyed" means someone called device.destroy(): later use fails validation.
    failure ??= new Error(`WebGPU device lost (${info.reason}): ${info.message}`);
    if (info.reason !== "destroyed") console.error(`weft: ${failure.message}`);
  });

  const handle: GpuHandle = {
    device,
    adapter,
    info: describeAdapter(adapter.info),
    features: [...features],
    // Weft's subgroup reductions also need WGSL's subgroup_id builtin (a language feature of its own).
    profile: profileOf(adapter.info, device.limits, features.filter((f) => f !== "subgroups" || gpu.wgslLanguageFeatures?.has("subgroup_id"))),
    throwIfFailed() {
      const f = failure;
      if (f) {
        failure = null;
        throw f;
      }
    },
  };
  return { handle, reason: "" };
}

function describeAdapter(i: GPUAdapterInfo): string {
  const name = i.description || i.device || i.vendor || "unknown adapter";
  const extra = [i.vendor, i.architecture].filter((s) => s && !name.includes(s));
  return extra.length ? `${name} [${extra.join(", ")}]` : name;
}

/** dawn-node needs XDG_RUNTIME_DIR to be an existing 0700 folder. */
async function ensureXdgRuntimeDir(): Promise<void> {
  const fs = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const cur = process.env.XDG_RUNTIME_DIR;
  if (cur && fs.statSync(cur, { throwIfNoEntry: false })?.isDirectory()) return;
  // A stable per-user folder, reused if it is ours and private; else a fresh one.
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const dir = path.join(os.tmpdir(), `weft-xdg-${uid}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch {
    /* exists, or cannot be made: checked below */
  }
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  const ok = st?.isDirectory() && (st.mode & 0o777) === 0o700 && st.uid === uid;
  process.env.XDG_RUNTIME_DIR = ok ? dir : fs.mkdtempSync(path.join(os.tmpdir(), "weft-xdg-"));
}

// ---------------------------------------------------------------------------------
// Non-spinning waits (DEVICE-NOTES item 2).
//
// While any dawn-node promise is pending, dawn.node's AsyncRunner re-schedules its
// event processing by calling `globalThis.setImmediate(tick)` from native code each
// time it runs: the main thread spins a core (measured: ~10,000 ticks while a 275 ms
// mapAsync waited). Because dawn looks setImmediate up on globalThis at every call,
// we can swap in a version that sends dawn's tick through a ~1 ms timer while an
// awaitGpu() is pending. The first SPIN_MS of a wait still spins, so short waits
// (a small read-back) keep their latency; a long wait then costs ~nothing on the main
// thread. Only dawn's tick is redirected: it is a native function
// taking no arguments with an empty name and length 0 (a promise's resolve function
// has length 1); every other caller gets the real setImmediate.

const POLL_MS = 1;
const SPIN_MS = 2;
let pendingWaits = 0;
let waitStart = 0;
let realSetImmediate: typeof setImmediate | null = null;
let patchedSetImmediate: ((...a: unknown[]) => unknown) | null = null;

function isDawnTick(fn: unknown, nargs: number): fn is () => void {
  return (
    typeof fn === "function" &&
    nargs === 0 &&
    fn.length === 0 &&
    fn.name === "" &&
    Function.prototype.toString.call(fn).includes("[native code]")
  );
}

function installSlowPoll(): void {
  if (pendingWaits++ > 0) return;
  const real = globalThis.setImmediate;
  realSetImmediate = real;
  waitStart = performance.now();
  patchedSetImmediate = (cb: unknown, ...args: unknown[]) =>
    isDawnTick(cb, args.length) && performance.now() - waitStart > SPIN_MS
      ? setTimeout(cb, POLL_MS)
      : Reflect.apply(real, globalThis, [cb, ...args]);
  Reflect.set(globalThis, "setImmediate", patchedSetImmediate);
}

function removeSlowPoll(): void {
  if (--pendingWaits > 0) return;
  // Restore only if nobody replaced it meanwhile (e.g. fake timers in a test).
  if (globalThis.setImmediate === patchedSetImmediate) Reflect.set(globalThis, "setImmediate", realSetImmediate);
  realSetImmediate = null;
  patchedSetImmediate = null;
}

/**
 * Await a WebGPU promise without busy-polling dawn-node's event loop: while it is
 * pending for more than 2 ms, dawn's re-polls go through a ~1 ms timer (so up to ~1 ms
 * extra latency on long waits, none on short ones).
 * In a browser, or with WEFT_SPIN_POLL=1, it is a plain await.
 */
export async function awaitGpu<T>(p: Promise<T> | (() => Promise<T>)): Promise<T> {
  // Harmless where the tick is not dawn's: only dawn's native tick is redirected.
  const slow = isNode && typeof globalThis.setImmediate === "function" && process.env.WEFT_SPIN_POLL !== "1";
  if (!slow) return typeof p === "function" ? p() : p;
  installSlowPoll();
  try {
    return await (typeof p === "function" ? p() : p);
  } finally {
    removeSlowPoll();
  }
}
