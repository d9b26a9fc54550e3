// The memory plan on a real training step: no two temporaries alive at once share a
// buffer, the plan is no larger than one buffer each and no smaller than the largest
// live set, and the planned step trains exactly like the unplanned one.
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { loadProgram, lowerJob } from "../../compiler/index.ts";
import { planMemory } from "../../compiler/opt/memory.ts";
import { readJsonl } from "../../runtime/data.ts";
import { train } from "../../runtime/train.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { ROOT } from "../util/weft.ts";

const program = loadProgram(`${ROOT}/examples/mlp/mlp.weft`);
const data = readJsonl(`${ROOT}/examples/mlp/train.jsonl`);
const lowered = lowerJob(program, undefined, () => data.fields);
if (!lowered.ok) throw new Error("the MLP example must lower");
const { graph, job } = lowered.value;

describe("memory plan", () => {
  const unplanned = compileBundle(graph, { updates: job.updates, plan: false });
  const plan = planMemory(unplanned);

  it("never gives two live temporaries one buffer", () => {
    const ts = [...plan.lifetimes];
    for (let i = 0; i < ts.length; i++) {
      for (let j = i + 1; j < ts.length; j++) {
        const [a, [a0, a1]] = ts[i];
        const [b, [b0, b1]] = ts[j];
        if (a0 <= b1 && b0 <= a1) expect(plan.assignment.get(a)).not.toBe(plan.assignment.get(b));
      }
    }
  });

  it("lies between the largest live set and one buffer per temporary", () => {
    const r = plan.report;
    expect(r.plannedBytes).toBeLessThan(r.unplannedBytes);
    expect(r.plannedBytes).toBeGreaterThanOrEqual(r.lowerBoundBytes);
  });

  it("trains bit-identically with and without the plan", async () => {
    const h = await gpu();
    const losses: number[][] = [];
    for (const b of [unplanned, plan.bundle]) {
      const backend = await GpuBackend.load(h, b);
      const res = await train(backend, job.spec, data, { seed: 5, steps: 12, logEvery: 1 });
      losses.push(res.losses.map((l) => l.loss));
      backend.destroy();
    }
    expect(losses[1]).toEqual(losses[0]);
  });
});
