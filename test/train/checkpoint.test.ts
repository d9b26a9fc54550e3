// Checkpoints: a run stopped at step k and resumed is bit for bit the run that never
// stopped (parameters, optimizer state, losses, evaluations), on the reference
// interpreter and on WebGPU; the files are ordinary safetensors named by parameter
// path; a writer killed at any moment leaves the previous checkpoint whole.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostArray } from "../../runtime/backend.ts";
import { latestCheckpoint, listCheckpoints, loadCheckpoint } from "../../runtime/checkpoint.ts";
import { InitError, valuesFrom } from "../../runtime/init.ts";
import { decodeSafetensors, safetensorsMetadata } from "../../runtime/safetensors.ts";
import type { TrainResult } from "../../runtime/train.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { cleanup, evalBackend, gpuBackend, lowerFile, reference, ROOT, run, tempDir, writeJob, type Job } from "./helpers.ts";

const SPIRALS = readFileSync(join(ROOT, "examples/mlp/train.jsonl"), "utf8");
const VALID = SPIRALS.split("\n").filter((l, i) => l.trim() && i % 12 === 5).join("\n") + "\n";

// Everything that carries state across steps: AdamW moments, accumulation buffers,
// clipping, a warm-up + cosine schedule, dropout (new masks every micro-batch), an epoch
// boundary (600 records, 64 per step: epoch 2 starts inside step 10), and an evaluation
// every 3 steps (without dropout: its graph is lowered with training = false).
const JOB = `import "std/nn"
dim B, D = 2, H = 16, C = 3
block Mlp(D, H, C) {
  hidden = Linear(D, H)
  out = Linear(H, C)
  fn (x: f32[B, D]) -> f32[B, C] = out(dropout(tanh(hidden(x)), 0.1))
}
train spirals {
  model = Mlp(D, H, C)
  loss = cross_entropy(model(batch.x), batch.y)
  data = jsonl("train.jsonl")
  batch = 32
  accumulate = 2
  steps = 12
  optimizer = adamw(lr = 0.05, weight_decay = 0.1)
  schedule = cosine(warmup = 3)
  clip = 1.0
  eval = { every = 3, data = jsonl("valid.jsonl") }
}
`;

function sameBits(a: HostArray, b: HostArray, what: string): void {
  expect(a.constructor.name, what).toBe(b.constructor.name);
  expect(a.length, what).toBe(b.length);
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  const bad = x.findIndex((v, i) => v !== y[i]);
  expect(bad, `${what}: first differing byte`).toBe(-1);
}

function sameRun(a: TrainResult, b: TrainResult, j: Job): void {
  expect(b.metrics).toEqual(a.metrics);
  expect(b.losses).toEqual(a.losses);
  expect(b.evals).toEqual(a.evals);
  for (const p of j.lowered.job.spec.params) sameBits(b.params.get(p.path)!, a.params.get(p.path)!, p.path);
}

afterAll(cleanup);

describe("resume is bit-identical", () => {
  const job = () => lowerFile(writeJob(JOB, { "train.jsonl": SPIRALS, "valid.jsonl": VALID }));

  async function stopAndResume(make: (j: Job) => Promise<{ train: Awaited<ReturnType<typeof gpuBackend>>; eval?: Awaited<ReturnType<typeof evalBackend>> }>, stopAt: number, total: number) {
    const j = job();
    const once = tempDir();
    const a0 = await make(j);
    const straight = await run(a0.train, j, { seed: 5, steps: total, dir: once, eval: { backend: a0.eval!, data: j.evalData! } });
    const dir = tempDir();
    const b0 = await make(j);
    const first = await run(b0.train, j, { seed: 5, steps: stopAt, dir, eval: { backend: b0.eval!, data: j.evalData! } });
    expect(first.step).toBe(stopAt);
    const ck = loadCheckpoint(dir);
    expect(ck.trainer.step).toBe(stopAt);
    const b1 = await make(j);
    const resumed = await run(b1.train, j, { seed: 5, steps: total, dir, resume: ck, eval: { backend: b1.eval!, data: j.evalData! } });
    expect(resumed.step).toBe(total);
    sameRun(straight, resumed, j);
    // the optimizer state too
    const s1 = loadCheckpoint(once);
    const s2 = loadCheckpoint(dir);
    expect([...s2.state.keys()].sort()).toEqual([...s1.state.keys()].sort());
    for (const [k, t] of s1.state) sameBits(s2.state.get(k)!.data, t.data, k);
    expect(readFileSync(join(dir, "metrics.jsonl"), "utf8")).toBe(readFileSync(join(once, "metrics.jsonl"), "utf8"));
    return { straight, j };
  }

  it("on the reference interpreter: 7 steps, then resumed to 12 = 12 steps", async () => {
    const { straight } = await stopAndResume(async (j) => ({ train: reference(j), eval: await evalBackend(j) }), 7, 12);
    expect(straight.evals.map((e) => e.step)).toEqual([2, 5, 8, 11]);
    expect(straight.metrics.filter((m) => m.grad_norm !== undefined)).toHaveLength(12);
  });

  describe("on WebGPU", () => {
    let h: GpuHandle;
    beforeAll(async () => {
      h = await gpu();
    });
    it("5 steps, then resumed to 12 = 12 steps (f32 state restored exactly)", async () => {
      await stopAndResume(async (j) => ({ train: await gpuBackend(h, j), eval: await evalBackend(j, h) }), 5, 12);
    });
  });

  it("an interrupt (AbortSignal, as Ctrl-C) checkpoints the finished steps and resumes exactly", async () => {
    const j = job();
    const ac = new AbortController();
    const dir = tempDir();
    const straight = await run(reference(j), j, { seed: 2, steps: 9 });
    const cut = await run(reference(j), j, {
      seed: 2,
      steps: 9,
      dir,
      progress: { wantsStepLines: false, line: () => {}, done: () => {}, update: (r) => r.step === 3 && ac.abort() },
      signal: ac.signal,
    });
    expect(cut.interrupted).toBe(true);
    // the step in flight when the signal came finished; the one after never started
    expect(cut.step).toBe(5);
    expect(loadCheckpoint(dir).trainer.step).toBe(5);
    const resumed = await run(reference(j), j, { seed: 2, steps: 9, dir, resume: loadCheckpoint(dir) });
    expect(resumed.losses).toEqual(straight.losses);
    for (const p of j.lowered.job.spec.params) sameBits(resumed.params.get(p.path)!, straight.params.get(p.path)!, p.path);
  });
});

describe("checkpoint files", () => {
  it("params.safetensors is named by parameter path; optimizer state, step, data position beside it; old ones pruned", async () => {
    const j = lowerFile(writeJob(JOB, { "train.jsonl": SPIRALS, "valid.jsonl": VALID }));
    const dir = tempDir();
    expect(j.lowered.job.spec.scalars.rngStep).toBe("rng.step"); // dropout's step counter
    await run(reference(j), j, { seed: 1, steps: 7, dir, saveEvery: 2, keep: 2, metadata: { job: "spirals" } });
    expect(listCheckpoints(dir)).toEqual([6, 7]);
    expect(latestCheckpoint(dir)).toBe(join(dir, "checkpoints", "step-000007"));
    const ck = join(dir, "checkpoints", "step-000007");
    const bytes = readFileSync(join(ck, "params.safetensors"));
    const params = decodeSafetensors(bytes);
    expect([...params.keys()].sort()).toEqual(["model.hidden.b", "model.hidden.w", "model.out.b", "model.out.w"]);
    expect(params.get("model.hidden.w")!.shape).toEqual([2, 16]);
    // the reference back end computes in float64, and its checkpoints keep that precision
    expect(params.get("model.hidden.w")!.dtype).toBe("F64");
    expect(safetensorsMetadata(bytes)).toMatchObject({ job: "spirals", step: "7" });
    const state = decodeSafetensors(readFileSync(join(ck, "optimizer.safetensors")));
    expect([...state.keys()].sort()).toEqual(
      ["acc", "m", "v"].flatMap((k) => ["model.hidden.b", "model.hidden.w", "model.out.b", "model.out.w"].map((p) => `opt.${k}.${p}`)).sort(),
    );
    const trainer = JSON.parse(readFileSync(join(ck, "trainer.json"), "utf8"));
    // 7 steps × 2 micro-batches × 32 records = 448 of 600: still epoch 0
    expect(trainer).toMatchObject({ version: 1, step: 7, seed: 1, horizon: 12, data: { epoch: 0, pos: 448 } });
    expect(readdirSync(join(dir, "checkpoints")).filter((f) => f.startsWith("."))).toEqual([]);
  });
});

describe("a writer killed mid-checkpoint", () => {
  // A child saves checkpoints of a 24 MB model in a loop, every tensor filled with its
  // step number; it is SIGKILLed at staggered moments. After each kill, the checkpoint
  // `latest` names must load whole and self-consistent.
  function startWriter(dir: string): ChildProcess {
    const url = (f: string) => JSON.stringify(pathToFileURL(join(ROOT, f)).href);
    const script = join(dir, "writer.mts");
    writeFileSync(
      script,
      `import { saveCheckpoint } from ${url("runtime/checkpoint.ts")};
       const n = 3 << 20;
       for (let step = 1; step < 1000; step++) {
         const t = (v) => ({ shape: [n], data: new Float32Array(n).fill(v) });
         await saveCheckpoint(${JSON.stringify(dir)}, {
           params: new Map([["model.w", t(step)], ["model.b", t(step)]]),
           state: new Map([["opt.m.model.w", t(-step)]]),
           trainer: { version: 1, step, seed: 0, horizon: 1000, data: { epoch: 0, pos: step }, metrics: [] },
           files: new Map(),
         });
         process.stdout.write(step + "\\n");
       }`,
    );
    return spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  }

  it("leaves `latest` naming a whole checkpoint, at every kill", async () => {
    const dir = tempDir();
    let saved = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const child = startWriter(dir);
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      const done = new Promise((r) => child.once("exit", r));
      // wait for a first save, then kill a little later each time: inside a write
      await new Promise<void>((r) => {
        const t = setInterval(() => {
          if (out.includes("\n") || child.exitCode !== null) {
            clearInterval(t);
            r();
          }
        }, 5);
      });
      await new Promise((r) => setTimeout(r, 15 + attempt * 37));
      child.kill("SIGKILL");
      await done;
      const ck = loadCheckpoint(dir);
      const step = ck.trainer.step;
      expect(step).toBeGreaterThanOrEqual(1);
      for (const [k, t] of [...ck.params, ...ck.state]) {
        const want = k.startsWith("opt.") ? -step : step;
        expect(t.data.length, k).toBe(3 << 20);
        expect(t.data.every((x) => x === want), `${k} all ${want}`).toBe(true);
      }
      saved = Math.max(saved, step);
    }
    expect(saved).toBeGreaterThanOrEqual(1);
  });
});

describe("initialising from a checkpoint", () => {
  const tensors = new Map([
    ["model.embed.table", { shape: [10, 4], data: new Float32Array(40).fill(0.5) }],
    ["model.head.w", { shape: [4, 11], data: new Float32Array(44) }],
  ]);
  const params = [
    { path: "policy.embed.table", shape: [10, 4] },
    { path: "policy.head.w", shape: [4, 10] },
    { path: "policy.head.b", shape: [10] },
    { path: "ref.head.b", shape: [10] },
  ];

  it("finds tensors by path inside the instance, and names every missing or mis-shaped one", () => {
    let msg = "";
    try {
      valuesFrom("sft.safetensors", tensors, params, "policy");
    } catch (e) {
      expect(e).toBeInstanceOf(InitError);
      msg = (e as Error).message;
    }
    expect(msg).toContain("sft.safetensors cannot initialise policy");
    expect(msg).toContain("wrong shape: policy.head.w needs [4, 10], 'model.head.w' is [4, 11]");
    expect(msg).toContain("missing: policy.head.b [10]");
    expect(msg).not.toContain("policy.embed.table"); // that one was found (as model.embed.table)
    expect(msg).not.toContain("ref.head.b"); // not under the prefix
  });

  it("a job's `from` initialises the instance with the file's values", async () => {
    const src = lowerFile(writeJob(JOB, { "train.jsonl": SPIRALS, "valid.jsonl": VALID }));
    const dir = tempDir();
    const first = await run(reference(src), src, { seed: 1, steps: 2, dir });
    // a second job whose model starts from the first run's checkpoint
    const ckFile = join(dir, "checkpoints", "step-000002", "params.safetensors");
    expect(existsSync(ckFile)).toBe(true);
    const j = lowerFile(writeJob(JOB.replace("model = Mlp(D, H, C)", `model = Mlp(D, H, C) from "${ckFile}"`), { "train.jsonl": SPIRALS, "valid.jsonl": VALID }));
    expect([...j.lowered.job.from]).toEqual([["model", ckFile]]);
    const ck = decodeSafetensors(readFileSync(ckFile));
    const init = valuesFrom(ckFile, ck as Map<string, { shape: number[]; data: Float64Array }>, j.lowered.job.spec.params, "model");
    for (const p of j.lowered.job.spec.params) sameBits(init.get(p.path)!, first.params.get(p.path)!, p.path);
  });
});
