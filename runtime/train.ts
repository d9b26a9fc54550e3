// The training loop. The compiled step (forward, backward and optimizer update) runs
// as one program per step; the host only feeds the batch and the step's scalars
// (learning rate, Adam's bias corrections, whether this micro-batch applies the
// accumulated update) and reads the loss back one step behind, so the device never
// waits for the host.
//
// A run is a pure function of (job, seed, data): the schedule spans the job's `steps`
// whatever `--steps` says, the batches come from a seeded per-epoch shuffle, and a
// checkpoint holds the parameters, the optimizer state, the step and the data position,
// so that stopping at step k and resuming gives exactly the run that never stopped.
import type { Backend, HostArray } from "./backend.ts";
import { toStorage } from "./backend.ts";
import type { DType } from "./bundle.ts";
import { CheckpointError, saveCheckpoint, type Checkpoint, type MetricRecord, type NamedTensor, type TrainerState } from "./checkpoint.ts";
import { Batcher, evalBatches, type Dataset } from "./data.ts";
import { paramValues, type InitSpec } from "./init.ts";
import { joinValues, splitValues, type Stacked } from "./stacked.ts";
import { MetricsLog, plainProgress, stepLine, type Progress, type StepReport } from "./progress.ts";

export interface OptimizerSpec {
  kind: "sgd" | "adam" | "adamw" | "lion";
  lr: number;
  /** sgd */
  momentum: number;
  nesterov: boolean;
  /** adam, adamw, lion */
  b1: number;
  b2: number;
  eps: number;
  /** sgd, adam: L2 added to the gradient (PyTorch); adamw, lion: decoupled */
  weightDecay: number;
}

export interface ScheduleSpec {
  kind: "constant" | "cosine" | "linear" | "inverse_sqrt" | "step";
  /** linear warm-up steps (a fraction of the job's steps when below 1) */
  warmup: number;
  /** linear, cosine: the rate they decay to */
  minLr?: number;
  /** step: multiply by `gamma` every `every` steps */
  every?: number;
  gamma?: number;
}

export interface ParamSpec {
  path: string;
  shape: number[];
  dtype: DType;
  init: InitSpec;
  trainable: boolean;
  /** whether weight decay applies to it */
  decay?: boolean;
  /** a param of a `repeat` stack: leading repeat dims, saved slice by slice (stacked.ts) */
  stacked?: Stacked;
  /**
   * declared f16 and trained in mixed precision: this (f32) tensor is its master copy,
   * which the optimizer updates and checkpoints save; the program reads its f16 rounding
   */
  master?: boolean;
}

export interface FieldSpec {
  field: string;
  input: string;
  dtype: DType;
}

export interface EvalSpec {
  every: number;
  batch: number;
  /** how many batches per evaluation (default: the whole set) */
  steps?: number;
  fields: FieldSpec[];
  loss: string;
}

export interface TrainSpec {
  /** the job's steps: the schedule's length */
  steps: number;
  batch: number;
  /** micro-batches per optimizer step (gradient accumulation) */
  accumulate?: number;
  /** global gradient-norm clipping threshold */
  clip?: number;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  /** data field → the program input it feeds (`batch.x`) */
  fields: FieldSpec[];
  /** name of the loss output */
  loss: string;
  /** name of the output holding the global gradient norm (before clipping), if computed */
  gradNorm?: string;
  /** name of the output holding the loss scale the step used (dynamic loss scaling) */
  lossScale?: string;
  params: ParamSpec[];
  /** optimizer state, by name; the state of a stacked param is stacked like it; `fill`: its value before the first step (default 0) */
  state: { name: string; shape: number[]; stacked?: Stacked; fill?: number }[];
  /** scalar inputs the host writes every step */
  scalars: { lr: string; c1?: string; c2?: string; apply?: string; rngStep?: string };
  eval?: EvalSpec;
}

/** The warm-up length in steps. */
export function warmupSteps(spec: Pick<TrainSpec, "schedule" | "steps">): number {
  const w = spec.schedule.warmup;
  return w > 0 && w < 1 ? Math.round(w * spec.steps) : Math.floor(w);
}

/** The learning rate at optimizer step t (0-based). The schedule spans the job's `steps`. */
export function learningRate(spec: Pick<TrainSpec, "optimizer" | "schedule" | "steps">, t: number): number {
  const { lr } = spec.optimizer;
  const s = spec.schedule;
  const warmup = warmupSteps(spec);
  if (t < warmup) return (lr * (t + 1)) / warmup;
  const minLr = s.minLr ?? 0;
  const p = Math.min(1, (t - warmup) / Math.max(1, spec.steps - warmup));
  switch (s.kind) {
    case "cosine":
      return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * p));
    case "linear":
      return minLr + (lr - minLr) * (1 - p);
    case "inverse_sqrt":
      // fairseq's inverse_sqrt: lr·sqrt(warmup / step), step 1-based; continuous at the warm-up's end
      return warmup > 0 ? lr * Math.sqrt(warmup / (t + 1)) : lr / Math.sqrt(t + 1);
    case "step":
      return lr * (s.gamma ?? 0.1) ** Math.floor((t - warmup) / Math.max(1, s.every ?? 1));
    default:
      return lr;
  }
}

export interface TrainOptions {
  seed: number;
  /** stop once this many steps are done in total (default: the job's) */
  steps?: number;
  /** log (and record in metrics.jsonl) every K steps */
  logEvery?: number;
  log?: (line: string) => void;
  progress?: Progress;
  /** initial values for some params (from a checkpoint), by path */
  initial?: ReadonlyMap<string, HostArray>;
  /** continue this checkpoint's run */
  resume?: Checkpoint;
  /** where checkpoints and metrics go */
  dir?: string;
  /** checkpoint every K steps (and always at the end and on interrupt, when `dir` is set) */
  saveEvery?: number;
  keep?: number;
  /** files saved with each checkpoint (tokenizer.json) */
  files?: Map<string, Uint8Array>;
  metadata?: Record<string, string>;
  /** called after each checkpoint (to redraw the curves) */
  onCheckpoint?: (metrics: MetricRecord[]) => Promise<void> | void;
  /** the evaluation program (the loss with training = false) and its data */
  eval?: { backend: Backend; data: Dataset };
  /** aborting (Ctrl-C) finishes the step in flight, checkpoints, and returns */
  signal?: AbortSignal;
  /**
   * --debug: snapshot every run's inputs, and on a non-finite loss hand the snapshot of
   * the step that made it to `diagnose`, which names the first op gone non-finite.
   */
  debug?: { diagnose(sources: Map<string, HostArray>, step: number): Promise<string | undefined> | string | undefined };
}

export interface TrainResult {
  /** the logged steps' losses (the mean over the step's micro-batches) */
  losses: { step: number; loss: number }[];
  evals: { step: number; loss: number }[];
  metrics: MetricRecord[];
  params: Map<string, HostArray>;
  seconds: number;
  /** steps done in total */
  step: number;
  interrupted: boolean;
  checkpoint?: string;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number, readonly diagnosis?: string) {
    super(`the loss became ${loss} at step ${step + 1}${diagnosis ? `\n${diagnosis}` : "; lower the learning rate or check the data (rerun with --debug to find the first op that went non-finite)"}`);
  }
}

export function initialise(backend: Backend, spec: TrainSpec, seed: number, initial?: ReadonlyMap<string, HostArray>): void {
  for (const p of spec.params) {
    const values = paramValues(p, seed, initial);
    backend.write(p.path, values instanceof Float64Array ? values : toStorage(values, p.dtype));
  }
  for (const s of spec.state) backend.write(s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(s.fill ?? 0));
}

function restore(backend: Backend, spec: TrainSpec, ck: Checkpoint): void {
  // A stacked tensor is saved slice by slice, under each layer's own name.
  const put = (name: string, shape: number[], stacked: Stacked | undefined, from: Map<string, NamedTensor>, what: string, dtype: DType = "f32") => {
    const missing = (f: { name: string }): never => {
      throw new CheckpointError(`checkpoint ${ck.dir}: no ${what} '${f.name}'`);
    };
    const data = joinValues(
      { path: name, shape, stacked },
      (f) => {
        const t = from.get(f.name);
        if (!t) return missing(f);
        if (t.shape.length !== f.shape.length || t.shape.some((d, i) => d !== f.shape[i])) {
          throw new CheckpointError(`checkpoint ${ck.dir}: ${what} '${f.name}' has shape [${t.shape.join(", ")}], the job needs [${f.shape.join(", ")}]`);
        }
        return t.data;
      },
      missing,
    );
    const whole = !stacked ? from.get(name)?.data : undefined;
    backend.write(name, whole ?? (data instanceof Float64Array || dtype === "f32" ? data : toStorage(data, dtype)));
  };
  for (const p of spec.params) put(p.path, p.shape, p.stacked, ck.params, "parameter", p.dtype);
  for (const s of spec.state) put(s.name, s.shape, s.stacked, ck.state, "optimizer state");
}

/** The tokens a batch holds, for tokens/s: the first mask's ones, else undefined. */
function tokenCounter(data: Dataset): ((b: Map<string, Float64Array>) => number) | undefined {
  const f = data.fields.find((x) => x.mask);
  if (!f?.mask) return undefined;
  const mask = f.mask;
  return (b) => {
    let n = 0;
    for (const v of b.get(mask)!) n += v;
    return n;
  };
}

interface Pending {
  step: number;
  lr: number;
  runs: Promise<Map<string, HostArray>>[];
}

export async function train(backend: Backend, spec: TrainSpec, data: Dataset, opts: TrainOptions): Promise<TrainResult> {
  const total = opts.steps ?? spec.steps;
  const logEvery = Math.max(1, opts.logEvery ?? Math.max(1, Math.floor(total / 20)));
  const progress = opts.progress ?? plainProgress(opts.log ?? (() => {}));
  const K = Math.max(1, spec.accumulate ?? 1);
  const batcher = new Batcher(data, spec.batch, opts.seed);
  let start = 0;
  let history: MetricRecord[] = [];
  if (opts.resume) {
    const tr = opts.resume.trainer;
    restore(backend, spec, opts.resume);
    batcher.seek(tr.data.epoch, tr.data.pos);
    start = tr.step;
    history = tr.metrics.filter((m) => m.step < start);
  } else {
    initialise(backend, spec, opts.seed, opts.initial);
  }
  const metrics = new MetricsLog(opts.dir ? `${opts.dir}/metrics.jsonl` : undefined, history);
  await metrics.start();
  const losses: TrainResult["losses"] = history.filter((m) => m.loss !== undefined).map((m) => ({ step: m.step, loss: m.loss! }));
  const evals: TrainResult["evals"] = history.filter((m) => m.eval_loss !== undefined).map((m) => ({ step: m.step, loss: m.eval_loss! }));
  const countTokens = tokenCounter(data);
  const { b1, b2 } = spec.optimizer;
  const read = [spec.loss, ...(spec.gradNorm ? [spec.gradNorm] : []), ...(spec.lossScale ? [spec.lossScale] : [])];
  const t0 = performance.now();
  let tokens = 0;
  let lastCheckpoint: string | undefined;

  const sources = async (): Promise<Map<string, HostArray>> => backend.read([...spec.params.map((p) => p.path), ...spec.state.map((s) => s.name)]);

  /** Reads a finished step's loss: logs it, records it, stops on a non-finite one. */
  const finish = async (p: Pending): Promise<void> => {
    const outs = await Promise.all(p.runs);
    const loss = outs.reduce((a, o) => a + o.get(spec.loss)![0], 0) / outs.length;
    if (!Number.isFinite(loss)) {
      throw new NonFiniteLossError(p.step, loss);
    }
    const gradNorm = spec.gradNorm ? outs[outs.length - 1].get(spec.gradNorm)![0] : undefined;
    const lossScale = spec.lossScale ? outs[outs.length - 1].get(spec.lossScale)![0] : undefined;
    const secs = (performance.now() - t0) / 1000;
    const done = p.step + 1 - start;
    const report: StepReport = {
      step: p.step,
      total,
      loss,
      lr: p.lr,
      gradNorm,
      stepsPerSec: done / secs,
      tokensPerSec: countTokens ? tokens / secs : undefined,
      etaSec: ((total - p.step - 1) * secs) / done,
    };
    progress.update(report);
    if (p.step % logEvery === 0 || p.step === total - 1) {
      const rec: MetricRecord = { step: p.step, loss, lr: p.lr };
      if (gradNorm !== undefined) rec.grad_norm = gradNorm;
      if (lossScale !== undefined) rec.loss_scale = lossScale;
      metrics.add(rec);
      losses.push({ step: p.step, loss });
      if (progress.wantsStepLines) progress.line(stepLine(report));
    }
  };

  const evaluate = async (step: number): Promise<void> => {
    const ev = opts.eval;
    const es = spec.eval;
    if (!ev || !es) return;
    const params = await backend.read(spec.params.map((p) => p.path));
    for (const [k, v] of params) ev.backend.write(k, v);
    let sum = 0;
    const batches = evalBatches(ev.data, es.batch, es.steps);
    for (const b of batches) {
      for (const f of es.fields) ev.backend.write(f.input, toStorage(b.get(f.field)!, f.dtype));
      sum += (await ev.backend.run([es.loss])).get(es.loss)![0];
    }
    const loss = sum / batches.length;
    metrics.add({ step, eval_loss: loss });
    evals.push({ step, loss });
    progress.line(`eval at step ${step + 1}: loss ${loss.toFixed(4)} (${batches.length} batch${batches.length > 1 ? "es" : ""} of ${es.batch})`);
  };

  const checkpoint = async (step: number): Promise<void> => {
    if (!opts.dir) return;
    const all = await sources();
    const trainer: TrainerState = {
      version: 1,
      step,
      seed: opts.seed,
      horizon: spec.steps,
      data: batcher.position(),
      metrics: metrics.records(),
      ...(opts.metadata?.job ? { job: opts.metadata.job } : {}),
    };
    // stacked tensors are saved slice by slice, under each layer's own name
    const params = new Map(spec.params.flatMap((p) => splitValues(p, all.get(p.path)!).map((t) => [t.name, { shape: t.shape, data: t.data }] as const)));
    const state = new Map(spec.state.flatMap((s) => splitValues({ path: s.name, shape: s.shape, stacked: s.stacked }, all.get(s.name)!).map((t) => [t.name, { shape: t.shape, data: t.data }] as const)));
    lastCheckpoint = await saveCheckpoint(opts.dir, { params, state, trainer, files: opts.files ?? new Map() }, { keep: opts.keep, metadata: opts.metadata });
    await metrics.flush();
    await opts.onCheckpoint?.(metrics.records());
  };

  let pending: Pending | undefined;
  let lastSnapshot: { sources: Map<string, HostArray>; step: number } | undefined;
  let step = start;
  let interrupted = false;
  try {
    for (; step < total; step++) {
      if (opts.signal) {
        // Let a signal handler run: the reference back end never waits, so without this
        // the loop would hold the event loop until the end of the run.
        await new Promise((r) => (globalThis.setImmediate ?? setTimeout)(r));
        if (opts.signal.aborted) {
          interrupted = true;
          break;
        }
      }
      const lr = learningRate(spec, step);
      backend.write(spec.scalars.lr, Float32Array.of(lr));
      if (spec.scalars.c1) backend.write(spec.scalars.c1, Float32Array.of(1 / (1 - b1 ** (step + 1))));
      if (spec.scalars.c2) backend.write(spec.scalars.c2, Float32Array.of(1 / Math.sqrt(1 - b2 ** (step + 1))));
      const cur: Pending = { step, lr, runs: [] };
      for (let k = 0; k < K; k++) {
        const batch = batcher.next();
        if (countTokens) tokens += countTokens(batch);
        for (const f of spec.fields) backend.write(f.input, toStorage(batch.get(f.field)!, f.dtype));
        if (spec.scalars.apply) backend.write(spec.scalars.apply, Float32Array.of(k === K - 1 ? 1 : 0));
        // the random numbers (dropout) of micro-batch k of step t: a function of t·K + k, so resumable
        if (spec.scalars.rngStep) backend.write(spec.scalars.rngStep, Int32Array.of(step * K + k));
        if (opts.debug) {
          // --debug: no pipelining; snapshot what this run reads, check its loss at once
          const snap = await sources();
          for (const f of spec.fields) snap.set(f.input, toStorage(batch.get(f.field)!, f.dtype));
          const scalars = [[spec.scalars.lr, lr], [spec.scalars.c1, 1 / (1 - b1 ** (step + 1))], [spec.scalars.c2, 1 / Math.sqrt(1 - b2 ** (step + 1))], [spec.scalars.apply, k === K - 1 ? 1 : 0]] as const;
          for (const [name, v] of scalars) if (name) snap.set(name, Float32Array.of(v));
          if (spec.scalars.rngStep) snap.set(spec.scalars.rngStep, Int32Array.of(step * K + k));
          const out = await backend.run(read);
          const v = out.get(spec.loss)![0];
          if (!Number.isFinite(v)) {
            // Parameters already non-finite came from the previous run's update: look there.
            const bad = [...spec.params.map((q) => q.path), ...spec.state.map((q) => q.name)].some((n) => !allFinite(snap.get(n)!));
            const diagnosis = bad && lastSnapshot ? await opts.debug.diagnose(lastSnapshot.sources, lastSnapshot.step) : await opts.debug.diagnose(snap, step);
            throw new NonFiniteLossError(step, v, diagnosis);
          }
          lastSnapshot = { sources: snap, step };
          cur.runs.push(Promise.resolve(out));
          continue;
        }
        cur.runs.push(backend.run(read));
      }
      // One step behind: the device runs step t while the host reads step t-1's loss.
      if (pending) await finish(pending);
      pending = cur;
      const done = step + 1;
      // at every `every` steps and at the job's last step — not where a shorter run stops, so a
      // stopped-and-resumed run logs the same evaluations as one that ran through
      const atEval = spec.eval && opts.eval && (done % spec.eval.every === 0 || done === spec.steps);
      const atSave = opts.saveEvery && done % opts.saveEvery === 0 && done < total;
      if (atEval || atSave) {
        await finish(pending);
        pending = undefined;
        if (atEval) await evaluate(step);
        if (atSave) await checkpoint(done);
      }
    }
    if (pending) await finish(pending);
    pending = undefined;
    await checkpoint(step);
  } finally {
    progress.done();
  }
  const params = await backend.read(spec.params.map((p) => p.path));
  await metrics.flush();
  return { losses, evals, metrics: metrics.records(), params, seconds: (performance.now() - t0) / 1000, step, interrupted, checkpoint: lastCheckpoint };
}

function allFinite(a: HostArray): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}
