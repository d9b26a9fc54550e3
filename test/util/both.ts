// Runs one graph on the GPU (compiled bundle) and on the float64 reference interpreter,
// so suites can compare every output of many cases after a single pipeline load.
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { toStorage, type HostArray } from "../../runtime/backend.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { run } from "./graphs.ts";

export async function runBoth(g: Graph, feeds: Record<string, RefTensor>, outs: readonly string[]): Promise<{ got: Map<string, HostArray>; want: Map<string, RefTensor> }> {
  const backend = await GpuBackend.load(await gpu(), compileBundle(g));
  try {
    for (const [name, v] of Object.entries(feeds)) backend.write(name, toStorage(v.data, g.type(g.sources.get(name)!).dtype));
    return { got: await backend.run(outs), want: run(g, feeds) };
  } finally {
    backend.destroy();
  }
}
