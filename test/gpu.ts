// GPU suites get the process's WebGPU device here. A GPU suite never skips: without an
// adapter it fails, saying what to do (CI sets WEFT_REQUIRE_GPU=1 and installs lavapipe).
//
//   let h: GpuHandle;
//   beforeAll(async () => { h = await gpu(); });

import { acquireDevice, type GpuHandle } from "../runtime/webgpu/device.ts";

let handle: Promise<GpuHandle> | null = null;

/** The GPU handle, or an Error explaining why there is none (which fails the suite). */
export function gpu(): Promise<GpuHandle> {
  handle ??= (async () => {
    const h = await acquireDevice({ requireGpu: process.env.WEFT_REQUIRE_GPU === "1" });
    if (!h) throw new Error("no WebGPU adapter: run `npm run setup` (installs Mesa lavapipe on Debian 12)");
    return h;
  })();
  return handle;
}
