// Each optimizer's first steps, compiled into the step graph, against an independent
// float64 implementation written here from the papers' / PyTorch's update rules.
//
// The job is a linear layer on four records with batch = 4 (or 2 micro-batches of 2):
// every step sees every record, so the gradient is the full-batch one whatever the
// shuffle. The loop writes the step's scalars (lr, Adam's bias corrections) as f32, so
// the expected values round those with Math.fround; everything else is float64.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { learningRate } from "../../runtime/train.ts";
import { gpu } from "../gpu.ts";
import { cleanup, expectClose, gpuBackend, LINREG, lowerFile, reference, run, writeJob } from "./helpers.ts";

const X = [
  [0.5, -1.25, 2.0],
  [-0.75, 0.125, 1.0],
  [1.5, 0.25, -0.5],
  [0.0, 2.5, -1.75],
];
const Y = [
  [1.5, -0.25],
  [0.375, 2.0],
  [-1.0, 0.625],
  [0.75, -1.5],
];
const W0 = [0.25, -0.5, 0.75, 0.125, -0.375, 1.0]; // [3, 2], row-major
const B0 = [0.0625, -0.25];

/** Loss and gradient of mean((X @ W + b − Y)²) over all records and outputs, in float64. */
function lossGrad(p: number[]): { loss: number; g: number[] } {
  const g = p.map(() => 0);
  let loss = 0;
  const n = X.length * 2;
  for (let r = 0; r < X.length; r++) {
    for (let j = 0; j < 2; j++) {
      let z = p[6 + j];
      for (let i = 0; i < 3; i++) z += X[r][i] * p[i * 2 + j];
      const e = z - Y[r][j];
      loss += (e * e) / n;
      const dz = (2 * e) / n;
      g[6 + j] += dz;
      for (let i = 0; i < 3; i++) g[i * 2 + j] += X[r][i] * dz;
    }
  }
  return { loss, g };
}

interface Opt {
  kind: "sgd" | "adam" | "adamw" | "lion";
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  b1?: number;
  b2?: number;
  eps?: number;
  wd?: number;
}

/**
 * The update rules, element by element:
 *   SGD (torch.optim.SGD, dampening 0):  g += wd·p; buf = μ·buf + g; p −= lr·(nesterov ? g + μ·buf : buf)
 *   Adam (torch.optim.Adam):             g += wd·p; m, v moments; p −= lr·m̂/(√v̂ + eps)
 *   AdamW (torch.optim.AdamW):           p −= lr·wd·p; then Adam without the L2 term
 *   Lion (Chen et al. 2023, Alg. 2):     p = p·(1 − lr·wd) − lr·sign(b1·m + (1−b1)·g); m = b2·m + (1−b2)·g
 * Clipping (torch.nn.utils.clip_grad_norm_): g ·= min(1, clip / (‖g‖₂ + 1e-6)).
 * `decays[k]` says whether weight decay applies to element k.
 */
function expected(o: Opt, steps: number, decays: boolean[], opts: { clip?: number; lrAt?: (t: number) => number } = {}) {
  const p = [...W0, ...B0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const losses: number[] = [];
  const b1 = o.b1 ?? 0.9;
  const b2 = o.b2 ?? (o.kind === "lion" ? 0.99 : 0.999);
  const eps = o.eps ?? 1e-8;
  for (let t = 0; t < steps; t++) {
    const { loss, g } = lossGrad(p);
    losses.push(loss);
    if (opts.clip !== undefined) {
      const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
      const coef = Math.min(1, opts.clip / (norm + 1e-6));
      for (let k = 0; k < g.length; k++) g[k] *= coef;
    }
    const lr = Math.fround(opts.lrAt ? opts.lrAt(t) : o.lr);
    const c1 = Math.fround(1 / (1 - b1 ** (t + 1)));
    const c2 = Math.fround(1 / Math.sqrt(1 - b2 ** (t + 1)));
    for (let k = 0; k < p.length; k++) {
      const wd = decays[k] ? (o.wd ?? 0) : 0;
      switch (o.kind) {
        case "sgd": {
          const gg = g[k] + wd * p[k];
          const mu = o.momentum ?? 0;
          m[k] = mu * m[k] + gg;
          p[k] -= lr * (mu === 0 ? gg : o.nesterov ? gg + mu * m[k] : m[k]);
          break;
        }
        case "adam":
        case "adamw": {
          const gg = o.kind === "adam" ? g[k] + wd * p[k] : g[k];
          m[k] = b1 * m[k] + (1 - b1) * gg;
          v[k] = b2 * v[k] + (1 - b2) * gg * gg;
          const base = o.kind === "adamw" ? p[k] - lr * wd * p[k] : p[k];
          p[k] = base - (lr * c1 * m[k]) / (Math.sqrt(v[k]) * c2 + eps);
          break;
        }
        case "lion": {
          const u = Math.sign(b1 * m[k] + (1 - b1) * g[k]);
          p[k] = p[k] * (1 - lr * wd) - lr * u;
          m[k] = b2 * m[k] + (1 - b2) * g[k];
          break;
        }
      }
    }
  }
  return { losses, w: p.slice(0, 6), b: p.slice(6) };
}

const WEIGHTS_ONLY = [...W0.map(() => true), ...B0.map(() => false)];
const ALL = [...W0, ...B0].map(() => true);

function job(optimizer: string, extra = "", batch = 4): string {
  return `import "std/nn"
dim I = 3, O = 2
train t {
  model = Linear(I, O)
  loss = mean((model(batch.x) - batch.y) ** 2)
  data = jsonl("linreg.jsonl")
  batch = ${batch}
  steps = 3
  optimizer = ${optimizer}
  ${extra}
}
`;
}

const initial = () =>
  new Map([
    ["model.w", Float32Array.from(W0)],
    ["model.b", Float32Array.from(B0)],
  ]);

async function onReference(source: string, steps = 3) {
  const j = lowerFile(writeJob(source, { "linreg.jsonl": LINREG }));
  const r = await run(reference(j), j, { steps, initial: initial() });
  return { r, j };
}

function check(r: Awaited<ReturnType<typeof onReference>>["r"], e: ReturnType<typeof expected>, rel: number, abs: number, what: string) {
  expectClose(r.losses.map((x) => x.loss), e.losses, rel, abs, `${what} losses`);
  expectClose(r.params.get("model.w")!, e.w, rel, abs, `${what} model.w`);
  expectClose(r.params.get("model.b")!, e.b, rel, abs, `${what} model.b`);
}

// W0 and B0 are exact in f32, so the reference starts from exactly these numbers.
const TOL = [1e-12, 1e-13] as const;

afterAll(cleanup);

describe("optimizers on the reference interpreter, three steps", () => {
  it("sgd with momentum (PyTorch's heavy ball)", async () => {
    const { r } = await onReference(job("sgd(lr = 0.1, momentum = 0.9)"));
    check(r, expected({ kind: "sgd", lr: 0.1, momentum: 0.9 }, 3, WEIGHTS_ONLY), ...TOL, "sgd");
  });

  it("sgd with Nesterov momentum and L2 weight decay on the matrix only", async () => {
    const { r, j } = await onReference(job("sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.05)"));
    // the default decay set: matrices, not vectors (the bias)
    expect(j.lowered.job.spec.params.map((p) => [p.path, p.decay])).toEqual([
      ["model.w", true],
      ["model.b", false],
    ]);
    check(r, expected({ kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: true, wd: 0.05 }, 3, WEIGHTS_ONLY), ...TOL, "nesterov");
  });

  it("adam with L2 weight decay (torch.optim.Adam's weight_decay)", async () => {
    const { r } = await onReference(job("adam(lr = 0.01, weight_decay = 0.1)"));
    check(r, expected({ kind: "adam", lr: 0.01, wd: 0.1 }, 3, WEIGHTS_ONLY), ...TOL, "adam");
  });

  it("adamw: decoupled decay, biases excluded by default", async () => {
    const { r } = await onReference(job("adamw(lr = 0.01, weight_decay = 0.1, b2 = 0.99)"));
    check(r, expected({ kind: "adamw", lr: 0.01, wd: 0.1, b2: 0.99 }, 3, WEIGHTS_ONLY), ...TOL, "adamw");
    // and the bias really is not decayed: with decay = [model] the result differs
    const all = await onReference(job("adamw(lr = 0.01, weight_decay = 0.1, b2 = 0.99)", "decay = [model]"));
    check(all.r, expected({ kind: "adamw", lr: 0.01, wd: 0.1, b2: 0.99 }, 3, ALL), ...TOL, "adamw decay = [model]");
    expect(all.r.params.get("model.b")![0]).not.toBe(r.params.get("model.b")![0]);
  });

  it("lion with decoupled weight decay", async () => {
    const { r, j } = await onReference(job("lion(lr = 0.01, weight_decay = 0.5)"));
    expect(j.lowered.job.spec.optimizer).toMatchObject({ kind: "lion", b1: 0.9, b2: 0.99, weightDecay: 0.5 });
    check(r, expected({ kind: "lion", lr: 0.01, wd: 0.5 }, 3, WEIGHTS_ONLY), ...TOL, "lion");
  });

  it("global-norm clipping, with the norm before clipping reported", async () => {
    const { r, j } = await onReference(job("adam(lr = 0.01)", "clip = 0.5"));
    expect(j.lowered.job.spec.gradNorm).toBe("grad_norm");
    check(r, expected({ kind: "adam", lr: 0.01 }, 3, WEIGHTS_ONLY, { clip: 0.5 }), ...TOL, "clip");
    const g0 = lossGrad([...W0, ...B0]).g;
    const norm = Math.sqrt(g0.reduce((a, x) => a + x * x, 0));
    expect(norm).toBeGreaterThan(1); // so clipping at 0.5 really acts
    expect(Math.abs(r.metrics[0].grad_norm! - norm)).toBeLessThan(1e-12);
  });

  it("gradient accumulation: 2 micro-batches of 2 take the step of one batch of 4", async () => {
    const { r, j } = await onReference(job("adamw(lr = 0.01, weight_decay = 0.1)", "accumulate = 2\n  clip = 0.5", 2));
    expect(j.lowered.job.spec.accumulate).toBe(2);
    expect(j.lowered.job.spec.scalars.apply).toBe("opt.apply");
    // the reported loss is the mean of the micro-batches' losses = the full-batch loss
    check(r, expected({ kind: "adamw", lr: 0.01, wd: 0.1 }, 3, WEIGHTS_ONLY, { clip: 0.5 }), ...TOL, "accumulate");
  });

  it("a schedule's rate reaches the update: sgd with cosine(warmup = 1)", async () => {
    const { r, j } = await onReference(job("sgd(lr = 0.1)", "schedule = cosine(warmup = 1)"));
    const lrAt = (t: number) => learningRate(j.lowered.job.spec, t);
    expect([0, 1, 2].map(lrAt)).toEqual([0.1, 0.1, 0.1 * 0.5 * (1 + Math.cos(Math.PI / 2))]);
    check(r, expected({ kind: "sgd", lr: 0.1 }, 3, WEIGHTS_ONLY, { lrAt }), ...TOL, "cosine");
  });
});

describe("optimizers on WebGPU (f32)", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });

  it("lion + clipping + accumulation, and sgd + nesterov + decay: the same steps as float64", async () => {
    const cases: [string, string, number, ReturnType<typeof expected>][] = [
      ["lion(lr = 0.01, weight_decay = 0.5)", "clip = 0.5\n  accumulate = 2", 2, expected({ kind: "lion", lr: 0.01, wd: 0.5 }, 3, WEIGHTS_ONLY, { clip: 0.5 })],
      ["sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.05)", "", 4, expected({ kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: true, wd: 0.05 }, 3, WEIGHTS_ONLY)],
    ];
    for (const [opt, extra, batch, e] of cases) {
      const j = lowerFile(writeJob(job(opt, extra, batch), { "linreg.jsonl": LINREG }));
      const r = await run(await gpuBackend(h, j), j, { steps: 3, initial: initial() });
      check(r, e, 2e-5, 2e-6, `webgpu ${opt}`);
    }
  });
});

describe("what has optimizer state", () => {
  it("trainable = [...] and frozen instances decide it", () => {
    const src = (extra: string, ref = "") => `import "std/nn"
dim I = 3, H = 4, O = 2
block Two(I, H, O) {
  a = Linear(I, H)
  b = Linear(H, O)
  fn (x: f32[.., I]) -> f32[.., O] = b(tanh(a(x)))
}
train t {
  model = Two(I, H, O)
  ${ref}
  loss = mean((model(batch.x) - batch.y) ** 2)
  data = jsonl("linreg.jsonl")
  batch = 4
  steps = 1
  optimizer = adam(lr = 0.01)
  ${extra}
}
`;
    const state = (s: string) => lowerFile(writeJob(s, { "linreg.jsonl": LINREG })).lowered.job.spec.state.map((x) => x.name);
    expect(state(src("trainable = [model.b]"))).toEqual(["opt.m.model.b.w", "opt.v.model.b.w", "opt.m.model.b.b", "opt.v.model.b.b"]);
    // a frozen extra instance has params but no state
    const j = lowerFile(writeJob(src("", "other = frozen Linear(I, O)").replace("loss = mean(", "loss = mean(other(batch.x)) + mean("), { "linreg.jsonl": LINREG }));
    expect(j.lowered.job.spec.params.filter((p) => !p.trainable).map((p) => p.path)).toEqual(["other.w", "other.b"]);
    expect(j.lowered.job.spec.state.some((s) => s.name.includes("other."))).toBe(false);
  });
});
