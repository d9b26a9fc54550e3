// Mixed-precision training: params declared f16 train through f32 master copies
// (LowerOptions.masterWeights). The forward and backward run in f16 on the halves of the
// masters, the f16 gradients are cast to f32, and the optimizer (Adam's moments too)
// updates the masters in f32. Frozen f16 params stay f16. Checked: the step's graph and
// spec, that the loss goes down, that WebGPU follows the reference step by step, that a
// checkpoint holds the f32 masters and a resumed run is bit for bit the one that never
// stopped, and that an f16 loss trains too.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../runtime/checkpoint.ts";
import { paramValues } from "../../runtime/init.ts";
import { f16Round } from "../../runtime/f16.ts";
import type { HostArray } from "../../runtime/backend.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { cleanup, evalBackend, gpuBackend, lowerError, lowerFile, reference, ROOT, run, tempDir, writeJob, type Job } from "../train/helpers.ts";
import { checkSource } from "../check/harness.ts";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { run as interpretGraph } from "../util/graphs.ts";

const SPIRALS = readFileSync(join(ROOT, "examples/mlp/train.jsonl"), "utf8");
const VALID = SPIRALS.split("\n").filter((l, i) => l.trim() && i % 12 === 5).join("\n") + "\n";

// f16 everywhere inside: a frozen f16 projection, trained f16 layers, a repeat stack of
// f16 residual blocks (stacked masters), layer_norm and the logits in f16.
const MODEL = `dim B, D = 2, H = 16, C = 3, L = 2
block Lin16(I, O) {
  param w: f16[I, O] = glorot
  param b: f16[O] = zeros
  fn (x: f16[.., I]) -> f16[.., O] = x @ w + b
}
block Res16(H) {
  f = Lin16(H, H)
  fn (x: f16[B, H]) -> f16[B, H] = x + tanh(f(x))
}
block Mlp16(D, H, C) {
  proj = frozen Lin16(D, D)
  hidden = Lin16(D, H)
  blocks = repeat(L) Res16(H)
  out = Lin16(H, C)
  fn logits(x: f32[B, D]) -> f16[B, C] {
    var h = tanh(hidden(proj(cast(x, f16))))
    for i in 0..L { h = blocks[i](h) }
    return out(layer_norm(h, H))
  }
  fn (x: f32[B, D]) -> f32[B, C] = cast(logits(x))
}
`;

const JOB = `${MODEL}
train spirals16 {
  model = Mlp16(D, H, C)
  loss = cross_entropy(model(batch.x), batch.y)
  data = jsonl("train.jsonl")
  batch = 64
  steps = 40
  optimizer = adamw(lr = 0.02, weight_decay = 0.01)
  clip = 5.0
  eval = { every = 10, data = jsonl("valid.jsonl") }
}
`;

// the loss itself in f16: cross_entropy of f16 logits
const HALF_LOSS = `${MODEL}
train spirals16 {
  model = Mlp16(D, H, C)
  loss = cross_entropy(model.logits(batch.x), batch.y)
  data = jsonl("train.jsonl")
  batch = 64
  steps = 40
  optimizer = adam(lr = 0.02)
}
`;

const files = { "train.jsonl": SPIRALS, "valid.jsonl": VALID };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const isHalf = (v: number) => f16Round(v) === v;

function sameBits(a: HostArray, b: HostArray, what: string): void {
  expect(a.constructor.name, what).toBe(b.constructor.name);
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  expect(x.findIndex((v, i) => v !== y[i]), `${what}: first differing byte`).toBe(-1);
}

afterAll(cleanup);

describe("f16 params train with f32 masters", () => {
  let j: Job;
  beforeAll(() => {
    j = lowerFile(writeJob(JOB, files));
  });

  it("the step: trainable f16 params are f32 sources read through a cast to f16; frozen ones stay f16; optimizer state is f32", () => {
    const { graph, job } = j.lowered;
    const byPath = new Map(job.spec.params.map((p) => [p.path, p]));
    expect(byPath.get("model.hidden.w")).toMatchObject({ dtype: "f32", master: true, trainable: true });
    expect(byPath.get("model.blocks.f.w")).toMatchObject({ dtype: "f32", master: true, shape: [2, 16, 16] });
    expect(byPath.get("model.proj.w")).toMatchObject({ dtype: "f16", trainable: false });
    expect(byPath.get("model.proj.w")!.master).toBeUndefined();
    for (const p of ["model.hidden.w", "model.blocks.f.w", "model.out.b"]) {
      const src = graph.sources.get(p)!;
      const readers = graph.nodes.filter((n) => n.inputs.includes(src));
      // the forward's cast, and the optimizer's f32 update
      expect(readers.some((n) => n.op === "cast" && n.type.dtype === "f16")).toBe(true);
    }
    for (const s of job.spec.state) expect(graph.type(graph.sources.get(s.name)!).dtype).toBe("f32");
    // every update writes an f32 master or f32 state
    for (const [name, id] of job.updates) expect(graph.type(id).dtype, name).toBe("f32");
  });

  it("the loss goes down on the reference back end, and WebGPU follows it step by step", async () => {
    const ref = await run(reference(j), j, { seed: 3, eval: { backend: (await evalBackend(j))!, data: j.evalData! } });
    const losses = ref.losses.map((l) => l.loss);
    expect(losses).toHaveLength(40);
    expect(mean(losses.slice(-5))).toBeLessThan(0.75 * mean(losses.slice(0, 5)));
    expect(ref.evals.map((e) => e.step)).toEqual([9, 19, 29, 39]);
    expect(ref.evals[3].loss).toBeLessThan(ref.evals[0].loss);

    const h = await gpu();
    const dev = await run(await gpuBackend(h, j), j, { seed: 3, eval: { backend: (await evalBackend(j, h))!, data: j.evalData! } });
    // The GPU's masters are f32, the reference's float64: the halves the forward reads
    // agree until a master sits within f32 rounding of a midpoint between two halves, and
    // the runs drift apart slowly after. Measured on lavapipe over 40 steps: losses within
    // 3.2e-4, evaluations within 7e-5, params within 6e-4.
    dev.losses.forEach((l, i) => expect(Math.abs(l.loss - losses[i]), `step ${i}: gpu ${l.loss} vs reference ${losses[i]}`).toBeLessThan(2e-3 + 2e-3 * losses[i]));
    dev.evals.forEach((e, i) => expect(Math.abs(e.loss - ref.evals[i].loss)).toBeLessThan(5e-3));
    for (const p of j.lowered.job.spec.params) {
      const a = dev.params.get(p.path)!;
      const b = ref.params.get(p.path)!;
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      expect(worst, p.path).toBeLessThan(5e-3);
    }
    // the frozen f16 param holds halves, unchanged
    const proj = dev.params.get("model.proj.w")!;
    expect(proj).toBeInstanceOf(Float32Array);
    expect([...proj].every(isHalf)).toBe(true);
    expect([...proj]).toEqual([...ref.params.get("model.proj.w")!]);
    // a trained master is not just halves: it keeps what f16 would round away
    expect([...dev.params.get("model.hidden.w")!].some((v) => !isHalf(v))).toBe(true);
  }, 300_000);

  describe("checkpoints on WebGPU", () => {
    let h: GpuHandle;
    beforeAll(async () => {
      h = await gpu();
    });

    it("hold the f32 masters under the params' own paths, and a resumed run is bit for bit the straight one", async () => {
      const once = tempDir();
      const straight = await run(await gpuBackend(h, j), j, { seed: 4, steps: 8, dir: once });
      const dir = tempDir();
      await run(await gpuBackend(h, j), j, { seed: 4, steps: 5, dir });
      const ck = loadCheckpoint(dir);
      expect(ck.trainer.step).toBe(5);
      const w = ck.params.get("model.hidden.w")!;
      expect(w.data).toBeInstanceOf(Float32Array);
      expect(w.shape).toEqual([2, 16]);
      expect([...w.data].some((v) => !isHalf(v))).toBe(true);
      // a stacked master is saved layer by layer, by each layer's own path
      expect(ck.params.get("model.blocks[1].f.w")!.shape).toEqual([16, 16]);
      expect(ck.state.get("opt.m.model.hidden.w")!.data).toBeInstanceOf(Float32Array);
      const resumed = await run(await gpuBackend(h, j), j, { seed: 4, steps: 8, dir, resume: ck });
      expect(resumed.losses).toEqual(straight.losses);
      for (const p of j.lowered.job.spec.params) sameBits(resumed.params.get(p.path)!, straight.params.get(p.path)!, p.path);
      const s1 = loadCheckpoint(once);
      const s2 = loadCheckpoint(dir);
      for (const [k, t] of s1.state) sameBits(s2.state.get(k)!.data, t.data, k);
    }, 300_000);
  });

  it("an f16 loss (cross_entropy of f16 logits) trains too", async () => {
    const jh = lowerFile(writeJob(HALF_LOSS, files));
    expect(jh.lowered.graph.type(jh.lowered.graph.outputs.get("loss")!).dtype).toBe("f16");
    const res = await run(reference(jh), jh, { seed: 3 });
    const losses = res.losses.map((l) => l.loss);
    expect(losses.every(isHalf)).toBe(true);
    expect(mean(losses.slice(-5))).toBeLessThan(0.75 * mean(losses.slice(0, 5)));
  });
});

// A loss scaled down (× 1e-4) gives f16 cotangents of ~1e-6, in f16's subnormal range,
// where they keep few bits or none. loss_scale starts the backward pass from S instead of
// 1 and divides the (f32) gradients by S. Measured here: one SGD step's gradient against
// the same model in f32, relative error (L2) per param.
const scaled = (dtype: string, scale: string) => `dim B, D = 2, H = 16, C = 3
block Lin(I, O) {
  param w: ${dtype}[I, O] = glorot
  param b: ${dtype}[O] = zeros
  fn (x: ${dtype}[.., I]) -> ${dtype}[.., O] = x @ w + b
}
block Mlp(D, H, C) {
  hidden = Lin(D, H)
  out = Lin(H, C)
  fn (x: f32[B, D]) -> f32[B, C] = cast(out(tanh(hidden(cast(x, ${dtype})))))
}
train t {
  model = Mlp(D, H, C)
  loss = cross_entropy(model(batch.x), batch.y) * 0.0001
  data = jsonl("train.jsonl")
  batch = 64
  steps = 1
  optimizer = sgd(lr = 1.0)
  ${scale}
}
`;

describe("loss_scale", () => {
  /** The first step's gradient of every param, p0 − p1 (sgd, lr = 1), on the reference back end. */
  async function firstGradients(source: string): Promise<Map<string, number[]>> {
    const j = lowerFile(writeJob(source, { "train.jsonl": SPIRALS }));
    const res = await run(reference(j), j, { seed: 3 });
    return new Map(j.lowered.job.spec.params.map((p) => {
      const p0 = paramValues(p, 3);
      const p1 = res.params.get(p.path)!;
      return [p.path, Array.from(p0, (v, i) => v - p1[i])];
    }));
  }
  const relError = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / b.reduce((s, v) => s + v * v, 0));

  it("keeps small f16 gradients: without it the bias gradient is ~20% off the f32 model's, with 1024 about 0.1%", async () => {
    const want = await firstGradients(scaled("f32", ""));
    const plain = await firstGradients(scaled("f16", ""));
    const withScale = await firstGradients(scaled("f16", "loss_scale = 1024"));
    expect(relError(plain.get("model.hidden.b")!, want.get("model.hidden.b")!)).toBeGreaterThan(0.05);
    for (const [k, g] of want) expect(relError(withScale.get(k)!, g), k).toBeLessThan(5e-3);
  });

  it("must be a positive number, and fit an f16 loss", () => {
    const r = checkSource(`${scaled("f16", "loss_scale = -2").replace('jsonl("train.jsonl")', 'jsonl("t.jsonl")')}`);
    expect(r.lines.filter((l) => l.includes("loss_scale"))).toEqual([expect.stringMatching(/^19:16 W\d+ loss_scale \(the loss's multiplier for the backward pass\) must be a positive number, found `-2`$/)]);
    const half = HALF_LOSS.replace("optimizer = adam(lr = 0.02)", "optimizer = adam(lr = 0.02)\n  loss_scale = 65536");
    expect(lowerError(writeJob(half, files))).toMatch(/loss_scale 65536 is past f16's largest number, 65504, and the loss is f16/);
  });
});

// Dynamic loss scaling (torch.cuda.amp.GradScaler's rule). loss = mean(w·x) over 4 f16
// products with x = 1024: ∂loss/∂w = 256 each, so the scaled f16 cotangent S·256 is
// finite only for S ≤ 128 (256·256 = 65536 overflows f16). From S = 32768, backoff 0.5,
// growth 2, every 3, the rule gives, by hand: steps 0–7 skipped (S halves to 128), 8–10
// applied (the third grows S to 256), 11 skipped (back to 128), 12–14 applied, 15
// skipped. Each applied SGD step (lr 2^-10) moves w by −0.25 exactly.
const DYNAMIC = `dim N = 4
block Scaled(N) {
  param w: f16[N] = zeros
  fn (x: f32[.., N]) -> f16 = mean(w * cast(x, f16))
}
train overflow {
  model = Scaled(N)
  loss = model(batch.x)
  data = jsonl("big.jsonl")
  batch = 1
  steps = 16
  optimizer = sgd(lr = 0.0009765625)
  loss_scale = dynamic(init = 32768, every = 3)
}
`;
const BIG = Array.from({ length: 16 }, () => JSON.stringify({ x: [1024, 1024, 1024, 1024] })).join("\n") + "\n";
const SCALES = [32768, 16384, 8192, 4096, 2048, 1024, 512, 256, 128, 128, 128, 256, 128, 128, 128, 256];
const APPLIED = [8, 9, 10, 12, 13, 14];

describe("loss_scale = dynamic", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });
  afterAll(cleanup);

  it("is_finite reads the bits: ±Inf and NaN are not finite, the largest half and subnormals are (both back ends)", async () => {
    const values = [1, Infinity, -Infinity, NaN, 65504, 1e-7, -0, 3e38];
    for (const dtype of ["f32", "f16"] as const) {
      const g = new Graph();
      const x = g.source("input", "x", { shape: [values.length], dtype });
      g.output("ok", g.add("is_finite", [x]));
      const data = Float64Array.from(values, (v) => (dtype === "f16" ? f16Round(v) : Math.fround(v)));
      const want = [...interpretGraph(g, { x: { shape: [values.length], data } }).get("ok")!.data];
      expect(want, dtype).toEqual(dtype === "f16" ? [1, 0, 0, 0, 1, 1, 1, 0] : [1, 0, 0, 0, 1, 1, 1, 1]);
      const b = await GpuBackend.load(h, compileBundle(g, { device: h.profile }));
      b.write("x", Float32Array.from(data));
      expect([...(await b.run(["ok"])).get("ok")!], dtype).toEqual(want);
      b.destroy();
    }
  });

  for (const backend of ["reference", "webgpu"] as const) {
    it(`skips the steps whose gradients overflow and adapts the scale, as GradScaler does (${backend})`, async () => {
      const j = lowerFile(writeJob(DYNAMIC, { "big.jsonl": BIG }));
      const dir = tempDir();
      const res = await run(backend === "reference" ? reference(j) : await gpuBackend(h, j), j, { seed: 1, dir });
      const metrics = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { step: number; loss?: number; loss_scale?: number });
      const steps = metrics.filter((m) => m.loss !== undefined);
      expect(steps.map((m) => m.loss_scale)).toEqual(SCALES);
      // the loss a step reports is before its update: w = −0.25 × (updates applied so far), loss = 1024·w
      expect(steps.map((m) => m.loss)).toEqual(steps.map((m) => -256 * APPLIED.filter((s) => s < m.step).length + 0));
      expect([...res.params.get("model.w")!]).toEqual([-1.5, -1.5, -1.5, -1.5]);
      const ck = loadCheckpoint(dir);
      expect([...ck.state.get("opt.loss_scale")!.data, ...ck.state.get("opt.loss_scale.good")!.data]).toEqual([128, 0]);
    }, 120_000);
  }

  it("with gradient accumulation: the micro-batches' summed gradient decides, on the micro-batch that applies it", async () => {
    const acc = DYNAMIC.replace("  steps = 16\n", "  steps = 16\n  accumulate = 2\n");
    const j = lowerFile(writeJob(acc, { "big.jsonl": BIG + BIG }));
    const dir = tempDir();
    const res = await run(reference(j), j, { seed: 1, dir });
    const metrics = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { loss?: number; loss_scale?: number });
    expect(metrics.filter((m) => m.loss !== undefined).map((m) => m.loss_scale)).toEqual(SCALES);
    expect([...res.params.get("model.w")!]).toEqual([-1.5, -1.5, -1.5, -1.5]);
  });

  it("Adam's bias corrections count the updates applied, not the steps: each applied step of a constant gradient moves w by lr, as torch's Adam after GradScaler skips", async () => {
    // m̂ = g and v̂ = g² for a constant gradient at every count t, so an update is lr·g/(g + eps).
    // Counted from the steps instead (t = 9 at the first applied step) it would be 0.49·lr.
    const adam = DYNAMIC.replace("optimizer = sgd(lr = 0.0009765625)", "optimizer = adam(lr = 0.0009765625)");
    for (const which of ["reference", "webgpu"] as const) {
      const j = lowerFile(writeJob(adam, { "big.jsonl": BIG }));
      expect(j.lowered.job.spec.scalars.c1).toBeUndefined();
      const dir = tempDir();
      const res = await run(which === "reference" ? reference(j) : await gpuBackend(h, j), j, { seed: 1, dir });
      const lr = 0.0009765625;
      for (const w of res.params.get("model.w")!) expect(Math.abs(w - -6 * lr * (256 / (256 + 1e-8))), which).toBeLessThan(6 * lr * 1e-6);
      // 1 − b^t after the 6 updates applied
      const st = loadCheckpoint(dir).state;
      expect(st.get("opt.adam.q1")!.data[0]).toBeCloseTo(1 - 0.9 ** APPLIED.length, 6);
      expect(st.get("opt.adam.q2")!.data[0]).toBeCloseTo(1 - 0.999 ** APPLIED.length, 8);
    }
  }, 120_000);

  it("resumes from a checkpoint with its scale and count: bit for bit the run that never stopped", async () => {
    const j = lowerFile(writeJob(DYNAMIC, { "big.jsonl": BIG }));
    const once = await run(reference(j), j, { seed: 1, dir: tempDir() });
    const dir = tempDir();
    await run(reference(j), j, { seed: 1, steps: 9, dir });
    const ck = loadCheckpoint(dir);
    expect([...ck.state.get("opt.loss_scale")!.data, ...ck.state.get("opt.loss_scale.good")!.data]).toEqual([128, 1]);
    const resumed = await run(reference(j), j, { seed: 1, dir, resume: ck });
    // (a resumed run's losses start with the history its checkpoint kept)
    expect(resumed.losses).toEqual(once.losses);
    expect([...resumed.params.get("model.w")!]).toEqual([...once.params.get("model.w")!]);
  });

  it("checks its settings", () => {
    const bad = (s: string) => DYNAMIC.replace("dynamic(init = 32768, every = 3)", s);
    const lines = (s: string) => checkSource(bad(s).replace('jsonl("big.jsonl")', 'jsonl("t.jsonl")')).lines.filter((l) => l.includes("dynamic") || l.includes("loss_scale"));
    expect(lines("dynamic")).toEqual([]);
    expect(lines("dynamic(every = 100)")).toEqual([]);
    expect(lines("dynamic(evry = 100)")).toEqual([expect.stringMatching(/dynamic has no argument `evry`/)]);
    expect(lowerError(writeJob(bad("dynamic(growth = 0.5)"), { "big.jsonl": BIG }))).toMatch(/dynamic: growth must be above 1, found 0.5/);
    expect(lowerError(writeJob(bad("dynamic(init = 65536)"), { "big.jsonl": BIG }))).toMatch(/dynamic: init 65536 is past f16's largest number, 65504, and the loss is f16/);
    expect(lowerError(writeJob(bad("dynamic(every = 2.5)"), { "big.jsonl": BIG }))).toMatch(/every must be a whole number of steps/);
  });
});
