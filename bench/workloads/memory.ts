// Device memory of a training step, from Weft's compiled bundles (no GPU needed):
// the temporaries after the memory plan (compiler/opt/memory.ts) against the liveness
// lower bound (the largest set of temporaries alive at once in launch order) and
// against one buffer per temporary; parameters, optimizer state and inputs are
// reported apart. The peers expose no comparable figure, so they are not measured.
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { planMemory } from "../../compiler/opt/memory.ts";
import type { Bundle } from "../../runtime/bundle.ts";
import { errorText } from "../harness.ts";
import { emptyRow, type Ctx, type Row, type Workload } from "../row.ts";
import { lowerJobGraph } from "../weft.ts";

const MiB = 1024 * 1024;
const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;

function one(id: string, title: string, make: () => Bundle): Row {
  const row = emptyRow(id, title, "MiB", false);
  try {
    const unplanned = make();
    const { report: r } = planMemory(unplanned);
    const one = { median: r.plannedBytes / MiB, min: r.plannedBytes / MiB, max: r.plannedBytes / MiB, n: 1 };
    row.values.weft = one;
    row.notes.push(
      `Weft temporaries ${mib(r.plannedBytes)} planned vs ${mib(r.lowerBoundBytes)} liveness lower bound (${(r.plannedBytes / Math.max(1, r.lowerBoundBytes)).toFixed(2)}×) ` +
        `and ${mib(r.unplannedBytes)} with one buffer each; params, optimizer state and inputs ${mib(r.fixedBytes)} more`,
    );
  } catch (e) {
    row.errors.weft = errorText(e);
  }
  row.errors.tfjs = "not measured (no comparable per-step figure)";
  row.errors.jax = "not measured (no comparable per-step figure)";
  return row;
}

export const memory: Workload = {
  name: "memory",
  about: "peak temporaries of a training step after Weft's memory plan vs the liveness lower bound",
  usesPeers: false,
  async run(_: Ctx): Promise<Row[]> {
    const unplanned = (file: string, job: string, fields: Parameters<typeof lowerJobGraph>[2]) => () => {
      const { graph, updates } = lowerJobGraph(file, job, fields);
      return compileBundle(graph, { updates, plan: false });
    };
    return [
      one("memory-mlp", "peak temporaries, MLP train step", unplanned("mlp.weft", "mlp", [
        { name: "x", shape: [784], dtype: "f32" },
        { name: "y", shape: [], dtype: "i32" },
      ])),
      one("memory-transformer", "peak temporaries, transformer train step", unplanned("transformer.weft", "block_step", [{ name: "x", shape: [64, 128], dtype: "f32" }])),
    ];
  },
};
