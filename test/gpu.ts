// GPU suites use this to get the process's WebGPU device. A suite must never pass
// silently without a GPU:
//   adapter found                          → the handle
//   none, WEFT_REQUIRE_GPU=1 (CI)          → the suite fails with acquireDevice's error
//   none, WEFT_ALLOW_NO_GPU=1              → the suite is reported skipped (probeGpu().skip)
//   none, neither                          → the suite fails, saying what to do
//
//   const gpu = await probeGpu();
//   describe.skipIf(gpu.skip)("...", () => {
//     let h: GpuHandle;
//     beforeAll(async () => { h = await gpuOrSkipReason(); });

import { acquireDevice, type GpuHandle } from "../runtime/webgpu/device.ts";

export interface GpuProbe {
  handle: GpuHandle | null;
  /** true only when there is no adapter and WEFT_ALLOW_NO_GPU=1 (and no WEFT_REQUIRE_GPU=1) */
  skip: boolean;
  /** why there is no handle ("" when there is one) */
  reason: string;
}

let probe: Promise<GpuProbe> | null = null;

export function probeGpu(): Promise<GpuProbe> {
  probe ??= (async () => {
    const required = process.env.WEFT_REQUIRE_GPU === "1";
    const allowed = process.env.WEFT_ALLOW_NO_GPU === "1" && !required;
    try {
      const handle = await acquireDevice();
      if (handle) return { handle, skip: false, reason: "" };
      return {
        handle: null,
        skip: allowed,
        reason:
          "no WebGPU adapter: run `npm run setup` (installs Mesa lavapipe on Debian 12), " +
          "or set WEFT_ALLOW_NO_GPU=1 to report GPU suites as skipped",
      };
    } catch (e) {
      return { handle: null, skip: false, reason: (e as Error).message };
    }
  })();
  return probe;
}

/** The GPU handle, or an Error explaining why there is none (which fails the suite). */
export async function gpuOrSkipReason(): Promise<GpuHandle> {
  const p = await probeGpu();
  if (!p.handle) throw new Error(p.reason);
  return p.handle;
}
