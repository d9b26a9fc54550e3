// The memory plan on a real training step: no two temporaries alive at once share a
// buffer, the plan is no larger than one buffer each and no smaller than the largest
// live set, the launch order keeps every kernel after what it reads, and the planned,
// reordered step trains exactly like the unplanned one in program order.
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { loadProgram, lowerJob } from "../../compiler/index.ts";
import { planMemory } from "../../compiler/opt/memory.ts";
import { accessDependencies, scheduleKernels } from "../../compiler/opt/schedule.ts";
import type { Bundle } from "../../runtime/bundle.ts";
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

  it("within 1.25× of the lower bound on the MLP and transformer-block steps", () => {
    const bench = loadProgram(`${ROOT}/bench/transformer.weft`);
    const t = lowerJob(bench, "block_step", () => [{ name: "x", shape: [64, 128], dtype: "f32" }]);
    if (!t.ok) throw new Error("the bench transformer must lower");
    for (const [what, b] of [["mlp", unplanned], ["transformer", compileBundle(t.value.graph, { updates: t.value.job.updates, plan: false })]] as const) {
      const r = planMemory(b).report;
      expect(r.plannedBytes / r.lowerBoundBytes, what).toBeLessThanOrEqual(1.25);
    }
  });

  it("the launch order runs every kernel after the kernels it depends on", () => {
    const inOrder = compileBundle(graph, { updates: job.updates, plan: false, schedule: false });
    const scheduled = scheduleKernels(inOrder);
    const names = (b: Bundle) => b.kernels.map((k) => k.name);
    expect([...names(scheduled)].sort()).toEqual([...names(inOrder)].sort());
    // every dependency of the given order still points backwards in the new one
    const at = new Map(names(scheduled).map((n, i) => [n, i]));
    accessDependencies(inOrder).forEach((preds, j) => {
      for (const p of preds) expect(at.get(inOrder.kernels[p].name)!).toBeLessThan(at.get(inOrder.kernels[j].name)!);
    });
    expect(planMemory(scheduled).report.plannedBytes).toBeLessThanOrEqual(planMemory(inOrder).report.plannedBytes);
  });

  it("trains bit-identically with and without the plan and the schedule", async () => {
    const h = await gpu();
    const losses: number[][] = [];
    for (const b of [compileBundle(graph, { updates: job.updates, plan: false, schedule: false }), unplanned, plan.bundle]) {
      const backend = await GpuBackend.load(h, b);
      const res = await train(backend, job.spec, data, { seed: 5, steps: 12, logEvery: 1 });
      losses.push(res.losses.map((l) => l.loss));
      backend.destroy();
    }
    expect(losses[1]).toEqual(losses[0]);
    expect(losses[2]).toEqual(losses[0]);
  });
});
