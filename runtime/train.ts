// The training loop. The compiled step (forward, backward and optimizer update) runs
// as one program per step; the host only feeds the batch and the step's scalars
// (learning rate, Adam's bias corrections) and reads the loss every `logEvery` steps.
import type { Backend, HostArray } from "./backend.ts";
import { toStorage } from "./backend.ts";
import type { DType } from "./bundle.ts";
import { Batcher, type Dataset } from "./data.ts";
import { initialValues, type InitSpec } from "./init.ts";

export interface OptimizerSpec {
  kind: "sgd" | "adam" | "adamw";
  lr: number;
  momentum: number;
  b1: number;
  b2: number;
  eps: number;
  weightDecay: number;
}

export interface ScheduleSpec {
  kind: "constant" | "cosine" | "linear";
  warmup: number;
}

export interface ParamSpec {
  path: string;
  shape: number[];
  dtype: DType;
  init: InitSpec;
  trainable: boolean;
}

export interface TrainSpec {
  steps: number;
  batch: number;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  /** data field → the program input it feeds (`batch.x`) */
  fields: { field: string; input: string; dtype: DType }[];
  /** name of the loss output */
  loss: string;
  params: ParamSpec[];
  state: { name: string; shape: number[] }[];
  /** scalar inputs the host writes every step */
  scalars: { lr: string; c1?: string; c2?: string };
}

/** The learning rate at step t (0-based) of a run of `total` steps. */
export function learningRate(spec: TrainSpec, t: number): number {
  const { lr } = spec.optimizer;
  const { kind, warmup } = spec.schedule;
  if (t < warmup) return (lr * (t + 1)) / warmup;
  const span = Math.max(1, spec.steps - warmup);
  const p = Math.min(1, (t - warmup) / span);
  if (kind === "cosine") return lr * 0.5 * (1 + Math.cos(Math.PI * p));
  if (kind === "linear") return lr * (1 - p);
  return lr;
}

export interface TrainOptions {
  seed: number;
  /** steps to run in total (overrides the job's) */
  steps?: number;
  logEvery?: number;
  log?: (line: string) => void;
  /** initial values for some params (from a checkpoint), by path */
  initial?: ReadonlyMap<string, Float32Array>;
}

export interface TrainResult {
  losses: { step: number; loss: number }[];
  params: Map<string, HostArray>;
  seconds: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number) {
    super(`the loss became ${loss} at step ${step}; lower the learning rate or check the data`);
  }
}

export function initialise(backend: Backend, spec: TrainSpec, seed: number, initial?: ReadonlyMap<string, Float32Array>): void {
  for (const p of spec.params) {
    const values = initial?.get(p.path) ?? initialValues(p.init, p.shape, seed, p.path);
    backend.write(p.path, toStorage(values, p.dtype));
  }
  for (const s of spec.state) backend.write(s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)));
}

export async function train(backend: Backend, spec: TrainSpec, data: Dataset, opts: TrainOptions): Promise<TrainResult> {
  const steps = opts.steps ?? spec.steps;
  const logEvery = opts.logEvery ?? Math.max(1, Math.floor(steps / 20));
  const log = opts.log ?? (() => {});
  initialise(backend, spec, opts.seed, opts.initial);
  const batcher = new Batcher(data, spec.batch, opts.seed);
  const { b1, b2 } = spec.optimizer;
  const losses: { step: number; loss: number }[] = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) {
    const batch = batcher.next();
    for (const f of spec.fields) backend.write(f.input, toStorage(batch.get(f.field)!, f.dtype));
    backend.write(spec.scalars.lr, Float32Array.of(learningRate({ ...spec, steps }, t)));
    if (spec.scalars.c1) backend.write(spec.scalars.c1, Float32Array.of(1 / (1 - b1 ** (t + 1))));
    if (spec.scalars.c2) backend.write(spec.scalars.c2, Float32Array.of(1 / Math.sqrt(1 - b2 ** (t + 1))));
    const report = t % logEvery === 0 || t === steps - 1;
    const out = await backend.run(report ? [spec.loss] : []);
    if (report) {
      const loss = out.get(spec.loss)![0];
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(t, loss);
      losses.push({ step: t, loss });
      const secs = (performance.now() - t0) / 1000;
      log(`step ${String(t + 1).padStart(String(steps).length)}/${steps}  loss ${loss.toFixed(4)}  ${((t + 1) / secs).toFixed(1)} steps/s`);
    }
  }
  const params = await backend.read(spec.params.map((p) => p.path));
  return { losses, params, seconds: (performance.now() - t0) / 1000 };
}
