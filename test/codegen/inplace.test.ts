// In-place updates: a training step writes new parameters and optimizer state into the
// sources' own buffers (no temporary, no copy after the run), and trains bit for bit as
// the step with temporaries and copies does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { add, mul, reshape } from "../../compiler/ops/build.ts";
import { ReferenceBackend } from "../../runtime/reference/backend.ts";
import { loadProgram, lowerJob } from "../../compiler/index.ts";
import type { Bundle } from "../../runtime/bundle.ts";
import { readJsonl } from "../../runtime/data.ts";
import { train } from "../../runtime/train.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { cleanup, expectClose, LINREG, lowerFile, writeJob, type Job } from "../train/helpers.ts";
import { ROOT } from "../util/weft.ts";

const program = loadProgram(`${ROOT}/examples/mlp/mlp.weft`);
const data = readJsonl(`${ROOT}/examples/mlp/train.jsonl`);
const lowered = lowerJob(program, undefined, () => data.fields);
if (!lowered.ok) throw new Error("the MLP example must lower");
const mlp = lowered.value;

/** The buffers a bundle's kernels bind writable. */
const written = (b: Bundle) => new Set(b.kernels.flatMap((k) => k.bindings.slice(k.readOnly)));

describe("in-place updates (no device)", () => {
  const copied = compileBundle(mlp.graph, { updates: mlp.job.updates, inPlace: false });
  const inPlace = compileBundle(mlp.graph, { updates: mlp.job.updates });

  it("Adam writes every parameter and moment in place: no copies, one kernel per parameter", () => {
    expect(copied.copies.length).toBe(12); // 4 params × (p, m, v)
    expect(inPlace.copies).toEqual([]);
    const sources = [...inPlace.params, ...inPlace.state];
    for (const r of sources) expect(written(inPlace).has(r.buffer), r.name).toBe(true);
    const updates = inPlace.kernels.filter((k) => k.name.startsWith("update_"));
    expect(updates.length).toBe(inPlace.params.length);
    for (const k of updates) expect(k.bindings.length - k.readOnly).toBe(3); // p, m, v
    expect(inPlace.kernels.length).toBeLessThan(copied.kernels.length);
  });

  it("an in-place kernel never binds what it rewrites read-only as well", () => {
    for (const k of inPlace.kernels) {
      const reads = new Set(k.bindings.slice(0, k.readOnly));
      for (const w of k.bindings.slice(k.readOnly)) expect(reads.has(w), k.name).toBe(false);
    }
  });

  it("fewer temporary bytes than with copies", () => {
    const temp = (b: Bundle) => b.buffers.filter((x) => x.role === "temp").reduce((a, x) => a + x.length * 4, 0);
    expect(temp(inPlace)).toBeLessThan(temp(copied));
  });
});

describe("in-place updates train bit-identically (WebGPU)", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });
  afterAll(cleanup);

  /** Losses, params and optimizer state after `steps` steps of `bundle`. */
  async function steps(j: Job["lowered"], d: Job["data"], bundle: Bundle, n: number) {
    const backend = await GpuBackend.load(h, bundle);
    try {
      const res = await train(backend, j.job.spec, d, { seed: 3, steps: n, logEvery: 1 });
      const state = await backend.read(j.job.spec.state.map((s) => s.name));
      return { losses: res.losses.map((l) => l.loss), params: res.params, state };
    } finally {
      backend.destroy();
    }
  }

  /**
   * In place vs temporaries and copies: bit for bit where the two bundles store the same
   * intermediate values (`exact`); else (the binding limit splits the update kernels at
   * other places, and the shader compiler may fuse a multiply-add where a value is not
   * stored) within f32 rounding, and both against the float64 reference.
   */
  async function same(j: Job["lowered"], d: Job["data"], n: number, exact = true) {
    const a = await steps(j, d, compileBundle(j.graph, { updates: j.job.updates, inPlace: false }), n);
    const b = await steps(j, d, compileBundle(j.graph, { updates: j.job.updates }), n);
    if (exact) {
      expect(b.losses).toEqual(a.losses);
      for (const [k, v] of a.params) expect([...b.params.get(k)!], k).toEqual([...v]);
      for (const [k, v] of a.state) expect([...b.state.get(k)!], k).toEqual([...v]);
      return;
    }
    const ref = new ReferenceBackend(j.graph, evaluators(), j.job.updates);
    const r = await train(ref, j.job.spec, d, { seed: 3, steps: n, logEvery: 1 });
    ref.destroy();
    for (const x of [a, b]) {
      expectClose(x.losses, r.losses.map((l) => l.loss), 2e-5, 2e-6, "losses");
      for (const [k, v] of r.params) expectClose(x.params.get(k)!, v, 2e-5, 2e-6, k);
    }
    expectClose(b.losses, a.losses, 1e-6, 1e-7, "in place vs copies: losses");
    for (const [k, v] of a.params) expectClose(b.params.get(k)!, v, 1e-6, 1e-7, `in place vs copies: ${k}`);
  }

  it("the MLP example (Adam), 6 steps", () => same(mlp, data, 6));

  const linreg = (optimizer: string, extra = "", batch = 4) => `import "std/nn"
dim I = 3, H = 5, O = 2
block Two(I, H, O) {
  a = Linear(I, H)
  b = Linear(H, O)
  fn (x: f32[.., I]) -> f32[.., O] = b(tanh(a(x)))
}
train t {
  model = Two(I, H, O)
  loss = mean((model(batch.x) - batch.y) ** 2)
  data = jsonl("linreg.jsonl")
  batch = ${batch}
  steps = 3
  optimizer = ${optimizer}
  ${extra}
}
`;
  const cases: [string, string, string, number, boolean][] = [
    ["sgd with Nesterov momentum and L2 decay", "sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.05)", "", 4, true],
    ["lion with decay and accumulation", "lion(lr = 0.01, weight_decay = 0.5)", "accumulate = 2", 2, true],
    // L2 decay makes m and v read p: p, m and v must be one kernel (or copies); with
    // accumulation and clipping too, that kernel is over the binding limit until a
    // shared subtree (the clipped mean gradient) is computed first
    ["adam with L2 decay, accumulation and clipping (within f32 rounding)", "adam(lr = 0.01, weight_decay = 0.1)", "accumulate = 2\n  clip = 0.5", 2, false],
  ];
  it("updates that read each other's old values and cannot share a kernel: one falls back to a copy", async () => {
    // p ← p + m·a and m ← m + p·b, with p of shape [70] and m of shape [7, 10]: not one
    // kernel (their shapes differ), and in place each kernel would have to run first.
    const g = new Graph();
    const t = { shape: [70], dtype: "f32" as const };
    const t2 = { shape: [7, 10], dtype: "f32" as const };
    const [p, m] = [g.source("param", "p", t), g.source("state", "m", t2)];
    const [a, b] = [g.source("input", "a", t), g.source("input", "b", t2)];
    const updates = new Map([["p", add(g, p, mul(g, reshape(g, m, [70]), a))], ["m", add(g, m, mul(g, reshape(g, p, [7, 10]), b))]]);
    g.output("s", add(g, p, reshape(g, m, [70])));
    const bundle = compileBundle(g, { updates });
    expect(bundle.copies.length).toBe(1);
    const values = (k: number) => Float32Array.from({ length: 70 }, (_, i) => Math.fround(Math.sin(i * k) / 2));
    const gpuB = await GpuBackend.load(h, bundle);
    const ref = new ReferenceBackend(g, evaluators(), updates);
    try {
      for (const x of [gpuB, ref]) ["p", "m", "a", "b"].forEach((n, k) => x.write(n, values(k + 1)));
      for (let step = 0; step < 3; step++) {
        const [got, want] = [await gpuB.run(["s"]), await ref.run(["s"])];
        expect(Math.max(...[...got.get("s")!].map((v, i) => Math.abs(v - want.get("s")![i])))).toBeLessThan(1e-5);
      }
      const [got, want] = [await gpuB.read(["p", "m"]), await ref.read(["p", "m"])];
      for (const n of ["p", "m"]) expect(Math.max(...[...got.get(n)!].map((v, i) => Math.abs(v - want.get(n)![i]))), n).toBeLessThan(1e-5);
    } finally {
      gpuB.destroy();
    }
  });

  for (const [what, opt, extra, batch, exact] of cases) {
    it(what, async () => {
      const j = lowerFile(writeJob(linreg(opt, extra, batch), { "linreg.jsonl": LINREG }));
      const b = compileBundle(j.lowered.graph, { updates: j.lowered.job.updates });
      // every param and state buffer is rewritten by a kernel, or copied into
      const targets = new Set([...written(b), ...b.copies.map((c) => c.dst)]);
      for (const r of [...b.params, ...b.state]) expect(targets.has(r.buffer), r.name).toBe(true);
      expect(b.kernels.every((k) => k.bindings.length <= 8)).toBe(true);
      await same(j.lowered, j.data, 4, exact);
    });
  }
});
