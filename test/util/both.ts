// Runs one graph on the GPU (compiled bundle) and on the float64 reference interpreter,
// so suites can compare every output of many cases after a single pipeline load.
// The GPU run is poisoned (ExecutorOptions.poison): every temporary starts as NaN, so
// an output element no kernel writes fails the comparison.
import { compileBundle, type CompileOptions } from "../../compiler/codegen/bundle.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { toStorage, type HostArray } from "../../runtime/backend.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { run } from "./graphs.ts";

/** `options` picks the compile options for the device (e.g. `(h) => ({ device: h.profile })`); default: a portable bundle. */
export async function runBoth(
  g: Graph,
  feeds: Record<string, RefTensor>,
  outs: readonly string[],
  options?: (h: GpuHandle) => CompileOptions,
): Promise<{ got: Map<string, HostArray>; want: Map<string, RefTensor> }> {
  const h = await gpu();
  const backend = await GpuBackend.load(h, compileBundle(g, options?.(h)), { poison: true });
  try {
    for (const [name, v] of Object.entries(feeds)) backend.write(name, toStorage(v.data, g.type(g.sources.get(name)!).dtype));
    return { got: await backend.run(outs), want: run(g, feeds) };
  } finally {
    backend.destroy();
  }
}
