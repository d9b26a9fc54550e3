// A train job becomes one step graph: the loss, its gradient with respect to every
// trainable parameter, and the optimizer update — all generated as graph nodes, so the
// whole step compiles to kernels and the host never loops over parameters. Gradient
// accumulation, global-norm clipping and weight decay are graph nodes too; the host
// writes only scalars (the learning rate, Adam's bias corrections, whether this
// micro-batch applies the update).
//
// With `eval = { every = N, data = jsonl(...) }`, a second graph — the same loss with
// `training = false`, no gradient, no update — is lowered for the held-out set.
import type { Expr, Field, Span, TrainItem } from "../../grammar/ast.ts";
import type { DataOptions, FieldInfo } from "../../runtime/data.ts";
import type { FieldSpec, OptimizerSpec, ParamSpec, ScheduleSpec, TrainSpec } from "../../runtime/train.ts";
import type { Stacked } from "../../runtime/stacked.ts";
import { TOKENIZERS, type TokenizerKind } from "../../runtime/tokenize.ts";
import { vjp, NotDifferentiableError } from "../autodiff/vjp.ts";
import type { Graph } from "../ir/graph.ts";
import { add, cast, constant, div, fill, mul, nary, reduce, scale, sub } from "../ops/build.ts";
import { RNG_STEP } from "./builtins.ts";
import { Lowering, didYouMean } from "./lower.ts";
import { Scope, type Module } from "./scope.ts";
import { describe, type Instance, type Value } from "./values.ts";

export type ReadFields = (file: string, span: Span, opts: DataOptions & { evalOf?: string }) => FieldInfo[];

export interface DataRef {
  file: string;
  span: Span;
  options: DataOptions;
}

export interface TrainJob {
  spec: TrainSpec;
  /** source name → node that replaces it after each step */
  updates: Map<string, number>;
  data: DataRef;
  /** checkpoints named by `from` on instances: instance path → file */
  from: Map<string, string>;
  /** the held-out loss: its own graph (training = false), fed the params after a step */
  eval?: { graph: Graph; data: DataRef };
}

const FIELDS = ["model", "loss", "data", "batch", "steps", "optimizer", "schedule", "trainable", "eval", "clip", "accumulate", "decay", "loss_scale"];

interface Setting {
  kind: "number" | "bool";
  def: number;
}
const num = (def: number): Setting => ({ kind: "number", def });
const OPTIMIZERS: Record<OptimizerSpec["kind"], Record<string, Setting>> = {
  // PyTorch's defaults (Lion: Chen et al. 2023 / optax).
  sgd: { lr: num(0.01), momentum: num(0), nesterov: { kind: "bool", def: 0 }, weight_decay: num(0) },
  adam: { lr: num(1e-3), b1: num(0.9), b2: num(0.999), eps: num(1e-8), weight_decay: num(0) },
  adamw: { lr: num(1e-3), b1: num(0.9), b2: num(0.999), eps: num(1e-8), weight_decay: num(0.01) },
  lion: { lr: num(1e-4), b1: num(0.9), b2: num(0.99), weight_decay: num(0) },
};
const SCHEDULES: Record<ScheduleSpec["kind"], Record<string, Setting>> = {
  constant: { warmup: num(0) },
  linear: { warmup: num(0), min_lr: num(0) },
  cosine: { warmup: num(0), min_lr: num(0) },
  inverse_sqrt: { warmup: num(0) },
  step: { warmup: num(0), every: num(0), gamma: num(0.1) },
};

export function lowerTrain(l: Lowering, job: TrainItem, module: Module, readFields: ReadFields): TrainJob {
  const fields = new Map<string, Field>();
  for (const f of job.fields) {
    if (fields.has(f.name.name)) l.fail(f.name.span, `field '${f.name.name}' is set twice`, "W0302");
    fields.set(f.name.name, f);
  }
  const need = (name: string): Field => fields.get(name) ?? l.fail(job.name.span, `train job ${job.name.name} has no '${name}' field`, "W0303");
  if (!fields.has("model")) need("model");
  const scope0 = new Scope();

  const steps = positiveInt(l, need("steps"), scope0, module);
  const batch = positiveInt(l, need("batch"), scope0, module);

  // The data first: a tokenizer's vocabulary can size the model (`vocab = V`).
  const dataField = need("data");
  const data = dataRef(l, dataField.value, scope0, module);
  const infos = readFields(data.ref.file, data.ref.span, data.ref.options);
  bindVocab(l, data, infos, module);

  const { loss, instances, scope } = lossGraph(l, job, module, batch, infos, data.ref);
  l.g.output("loss", loss);

  const trainable = paramList(l, fields.get("trainable"), scope, module, "trainable") ?? [...l.params.values()].filter((p) => !p.frozen).map((p) => p.path);
  for (const p of trainable) if (l.params.get(p)?.frozen) l.fail(fields.get("trainable")!.value.span, `${p} belongs to a frozen instance and cannot be trained`, "W0308");
  // Weight decay: by default every trainable matrix, not vectors (biases, norm scales).
  // (A stacked param's rank is its layers': the repeat dims do not count.)
  const decay = new Set(paramList(l, fields.get("decay"), scope, module, "decay") ?? trainable.filter((p) => l.params.get(p)!.shape.length - (l.params.get(p)!.stacked?.lead ?? 0) >= 2));
  const optimizer = optimizerSpec(l, fields.get("optimizer"), scope, module);
  const schedule = scheduleSpec(l, fields.get("schedule"), scope, module);
  const clipField = fields.get("clip");
  const clip = clipField ? positiveNumber(l, clipField, scope, module) : undefined;
  const accField = fields.get("accumulate");
  const accumulate = accField ? positiveInt(l, accField, scope, module) : 1;
  // Loss scaling for f16: the backward pass starts from the scale instead of 1, so small
  // f16 cotangents stay above f16's underflow; the (f32) gradients are divided by it
  // before clipping and the update. `loss_scale = S` is static; `loss_scale = dynamic(...)`
  // is torch.cuda.amp.GradScaler's: a step whose gradients are not all finite is skipped
  // (no parameter or optimizer state changes) and the scale multiplied by `backoff`; after
  // `every` finite steps in a row it is multiplied by `growth`. The scale and the count are
  // optimizer state (checkpointed), and the scale each step used is the output loss_scale.
  const scaleField = fields.get("loss_scale");
  const lossType = l.g.type(loss).dtype;
  const dyn = scaleField && isDynamic(scaleField.value) ? dynamicScale(l, scaleField, scope, module, lossType) : undefined;
  const lossScale = scaleField && !dyn ? positiveNumber(l, scaleField, scope, module) : 1;
  if (scaleField && lossType === "f16" && lossScale > 65504) {
    l.fail(scaleField.value.span, `loss_scale ${lossScale} is past f16's largest number, 65504, and the loss is f16`, "W0307", "use at most 32768, or compute the loss in f32 (cast the logits first)");
  }
  const scaleNow = dyn ? l.g.source("state", SCALE_STATE, { shape: [], dtype: "f32" }) : undefined;

  let grads: number[];
  try {
    const seed = scaleNow !== undefined ? cast(l.g, scaleNow, lossType) : lossScale === 1 ? undefined : fill(l.g, lossScale, loss);
    grads = vjp(l.g, loss, trainable.map((p) => l.g.sources.get(p)!), seed);
  } catch (e) {
    if (e instanceof NotDifferentiableError) l.fail(e.span ?? need("loss").value.span, `${e.message}; wrap it in stop(...) if no gradient should flow there`, "W0235");
    throw e;
  }
  if (lossScale !== 1) grads = grads.map((gr) => scale(l.g, gr, 1 / lossScale));
  if (scaleNow !== undefined) {
    // (a power of two's reciprocal: exact)
    const inv = div(l.g, constant(l.g, 1, []), scaleNow);
    grads = grads.map((gr) => mul(l.g, gr, cast(l.g, inv, l.g.type(gr).dtype)));
  }
  const { updates, state, scalars, gradNorm, finite, apply } = optimizerStep(l.g, trainable, grads, { optimizer, decay, clip, accumulate, stacked: (p) => l.params.get(p)?.stacked, skipNonFinite: dyn !== undefined });
  if (gradNorm !== undefined) l.g.output("grad_norm", gradNorm);
  if (dyn && scaleNow !== undefined && finite !== undefined) {
    const g = l.g;
    const k = (v: number) => constant(g, v, []);
    const good = g.source("state", GOOD_STATE, { shape: [], dtype: "f32" });
    const counted = add(g, good, k(1));
    const grow = nary(g, "ge", [counted, k(dyn.every)]);
    // (capped: a scale that reached Inf would stay Inf through every backoff)
    const grown = nary(g, "min", [mul(g, scaleNow, k(dyn.growth)), k(MAX_SCALE)]);
    let nextScale = nary(g, "where", [finite, nary(g, "where", [grow, grown, scaleNow]), mul(g, scaleNow, k(dyn.backoff))]);
    let nextGood = nary(g, "where", [finite, nary(g, "where", [grow, k(0), counted]), k(0)]);
    // with accumulation: only the micro-batch that applies the update moves them
    if (apply !== undefined) {
      nextScale = nary(g, "where", [apply, nextScale, scaleNow]);
      nextGood = nary(g, "where", [apply, nextGood, good]);
    }
    updates.set(SCALE_STATE, nextScale);
    updates.set(GOOD_STATE, nextGood);
    state.push({ name: SCALE_STATE, shape: [], fill: dyn.init }, { name: GOOD_STATE, shape: [] });
    g.output("loss_scale", scaleNow);
  }

  const from = new Map<string, string>();
  for (const inst of instances) collectFrom(inst, from);
  const spec: TrainSpec = {
    steps,
    batch,
    accumulate,
    ...(clip !== undefined ? { clip } : {}),
    optimizer,
    schedule,
    fields: fieldSpecs(infos),
    loss: "loss",
    ...(gradNorm !== undefined ? { gradNorm: "grad_norm" } : {}),
    ...(dyn ? { lossScale: "loss_scale" } : {}),
    params: [...l.params.values()].map((p): ParamSpec => ({
      path: p.path, shape: p.shape, dtype: p.dtype, init: p.init, trainable: trainable.includes(p.path), decay: decay.has(p.path),
      ...(p.stacked ? { stacked: p.stacked } : {}),
      ...(p.master ? { master: true } : {}),
    })),
    state,
    scalars,
  };
  // dropout draws new numbers every micro-batch: the loop feeds it a step counter
  if (l.g.sources.has(RNG_STEP)) spec.scalars.rngStep = RNG_STEP;
  const out: TrainJob = { spec, updates, data: data.ref, from };

  const evalField = fields.get("eval");
  if (evalField) {
    const ev = evalJob(l, job, module, evalField, batch, data, readFields);
    out.eval = { graph: ev.graph, data: ev.data };
    spec.eval = { every: ev.every, batch: ev.batch, ...(ev.steps ? { steps: ev.steps } : {}), fields: fieldSpecs(ev.infos), loss: "loss" };
  }
  return out;
}

function fieldSpecs(infos: FieldInfo[]): FieldSpec[] {
  return infos.map((f) => ({ field: f.name, input: `batch.${f.name}`, dtype: f.dtype }));
}

/** The instances of a job and its loss, in a lowering of its own (train or eval). */
function lossGraph(l: Lowering, job: TrainItem, module: Module, batch: number, infos: FieldInfo[], data: DataRef): { loss: number; instances: Instance[]; scope: Scope } {
  const scope = new Scope();
  const instances: Instance[] = [];
  for (const f of job.fields) {
    if (FIELDS.includes(f.name.name) && f.name.name !== "model") continue;
    if (!isInstanceExpr(f.value)) {
      if (!FIELDS.includes(f.name.name)) {
        const near = didYouMean(f.name.name, FIELDS);
        l.fail(f.name.span, `unknown train field '${f.name.name}'`, "W0304", near ? `did you mean \`${near}\`?` : `fields: ${FIELDS.join(", ")}`);
      }
      if (f.name.name === "model") l.fail(f.value.span, `model must be an instance of a block, like Mlp(D, H, C)`, "W0305");
      continue;
    }
    const v = l.evalInstance(f.value, scope, module, f.name.name);
    if (v.kind !== "instance" && v.kind !== "instances") l.fail(f.value.span, `expected an instance of a block, found ${describe(v)}`, "W0305");
    if (v.kind === "instance") instances.push(v.inst);
    else instances.push(...v.items);
    scope.define(f.name.name, v);
  }

  // batch.<field>: one graph input per data field, with a leading batch dim.
  const lossField = job.fields.find((f) => f.name.name === "loss") ?? l.fail(job.name.span, `train job ${job.name.name} has no 'loss' field`, "W0303");
  const known = new Set(infos.map((f) => f.name));
  for (const use of batchUses(lossField.value)) {
    if (!known.has(use.name)) {
      const near = didYouMean(use.name, [...known]);
      l.fail(use.span, `the data ${data.file} has no field '${use.name}' (its fields: ${[...known].join(", ")})`, "W0311", near ? `did you mean \`batch.${near}\`?` : undefined);
    }
  }
  const batchFields = new Map<string, Value>();
  for (const fi of infos) {
    const id = l.g.source("input", `batch.${fi.name}`, { shape: [batch, ...fi.shape], dtype: fi.dtype });
    batchFields.set(fi.name, { kind: "tensor", id, labels: [undefined, ...fi.shape.map(() => undefined)] });
  }
  scope.define("batch", { kind: "record", fields: batchFields, span: data.span });

  const loss = l.tensor(l.evalExpr(lossField.value, scope, module), lossField.value.span);
  const lt = l.g.type(loss.id);
  if (lt.shape.length !== 0 || (lt.dtype !== "f32" && lt.dtype !== "f16")) l.fail(lossField.value.span, `the loss must be a float scalar (f32 or f16), found ${l.typeText(loss)}`, "W0306", "reduce it: mean(...) or sum(...)");
  return { loss: loss.id, instances, scope };
}

/** Every `batch.<name>` in an expression. */
function batchUses(e: unknown, out: { name: string; span: Span }[] = []): { name: string; span: Span }[] {
  if (Array.isArray(e)) {
    for (const x of e) batchUses(x, out);
  } else if (e && typeof e === "object") {
    const o = e as { kind?: string; object?: { kind?: string; name?: string }; name?: { name: string; span: Span } };
    if (o.kind === "member" && o.object?.kind === "ident" && o.object.name === "batch" && o.name) out.push({ name: o.name.name, span: o.name.span });
    for (const [k, v] of Object.entries(e)) if (k !== "span" && v && typeof v === "object") batchUses(v, out);
  }
  return out;
}

// ------------------------------------------------------------------ the optimizer step

interface StepOptions {
  optimizer: OptimizerSpec;
  decay: ReadonlySet<string>;
  clip?: number;
  accumulate: number;
  /** a stacked param's slices (its optimizer state is stacked like it, and saved per slice) */
  stacked?: (path: string) => Stacked | undefined;
  /** leave params and optimizer state as they were where a gradient is not finite (dynamic loss scaling) */
  skipNonFinite?: boolean;
}

/**
 * The update of every trainable parameter, as graph nodes. With accumulate = K the
 * gradients add up in state `opt.acc.<path>` and the update (of the mean gradient)
 * applies only when the host sets `opt.apply` — on the K-th micro-batch of a step.
 */
export function optimizerStep(g: Graph, trainable: string[], grads: number[], o: StepOptions) {
  const updates = new Map<string, number>();
  const state: TrainSpec["state"] = [];
  const scalar = (name: string) => g.source("input", name, { shape: [], dtype: "f32" });
  const lr = scalar("opt.lr");
  const scalars: TrainSpec["scalars"] = { lr: "opt.lr" };
  const stateOf = (kind: string, path: string) => {
    const name = `opt.${kind}.${path}`;
    const shape = [...g.type(g.sources.get(path)!).shape];
    const st = o.stacked?.(path);
    state.push(st ? { name, shape, stacked: { lead: st.lead, names: st.names.map((n) => `opt.${kind}.${n}`) } } : { name, shape });
    return { name, id: g.source("state", name, { shape, dtype: "f32" }) };
  };

  // Gradient accumulation: the mean of the K micro-batches' gradients.
  let apply: number | undefined;
  let gs = grads;
  if (o.accumulate > 1) {
    scalars.apply = "opt.apply";
    apply = nary(g, "gt", [scalar("opt.apply"), constant(g, 0.5, [])]);
    gs = trainable.map((path, k) => {
      const acc = stateOf("acc", path);
      const total = add(g, acc.id, grads[k]);
      updates.set(acc.name, nary(g, "where", [apply!, fill(g, 0, total), total]));
      return mul(g, total, fill(g, 1 / o.accumulate, total));
    });
  }

  // Global-norm clipping, as torch.nn.utils.clip_grad_norm_: g·min(1, clip/(‖g‖ + 1e-6)).
  let gradNorm: number | undefined;
  if (o.clip !== undefined) {
    // (Fusion keeps each kernel within the device's storage-buffer limit.)
    let sq = constant(g, 0, []);
    for (const x of gs) sq = add(g, sq, reduce(g, "sum", mul(g, x, x), g.type(x).shape.map((_, i) => i)));
    gradNorm = g.add("sqrt", [sq]);
    const coef = nary(g, "min", [constant(g, 1, []), div(g, constant(g, o.clip, []), add(g, gradNorm, constant(g, 1e-6, [])))]);
    gs = gs.map((x) => mul(g, x, coef));
  }

  const opt = o.optimizer;
  // Dynamic loss scaling: every gradient finite (from the bits: is_finite), or the step is skipped.
  let finite: number | undefined;
  if (o.skipNonFinite) {
    let bad = constant(g, 0, []);
    for (const x of gs) bad = add(g, bad, reduce(g, "sum", nary(g, "where", [g.add("is_finite", [x]), fill(g, 0, x), fill(g, 1, x)]), g.type(x).shape.map((_, i) => i)));
    finite = nary(g, "eq", [bad, constant(g, 0, [])]);
  }
  const set = (name: string, old: number, next: number) => {
    const kept = finite === undefined ? next : nary(g, "where", [finite, next, old]);
    updates.set(name, apply === undefined ? kept : nary(g, "where", [apply, kept, old]));
  };
  // Adam's bias corrections 1/(1−b1^t) and 1/√(1−b2^t): from the host's step count, or,
  // where steps may be skipped, over the updates applied, as torch.optim.Adam's step
  // count, which a step GradScaler skips does not advance. There q = 1 − b^t is state,
  // advanced as q ← (1 − b) + b·q where an update applies: 1 − b^t computed in f32 would
  // cancel (1 − 0.999 is 1.3e-5 off in f32).
  let c1: number | undefined;
  let c2: number | undefined;
  if ((opt.kind === "adam" || opt.kind === "adamw") && finite !== undefined) {
    const one = () => constant(g, 1, []);
    const advanced = (name: string, b: number): number => {
      const q = g.source("state", name, { shape: [], dtype: "f32" });
      state.push({ name, shape: [] });
      const next = add(g, constant(g, 1 - b, []), mul(g, constant(g, b, []), q));
      set(name, q, next);
      return next;
    };
    c1 = div(g, one(), advanced(ADAM_Q1, opt.b1));
    c2 = div(g, one(), g.add("sqrt", [advanced(ADAM_Q2, opt.b2)]));
  } else if (opt.kind === "adam" || opt.kind === "adamw") {
    scalars.c1 = "opt.c1";
    scalars.c2 = "opt.c2";
    c1 = scalar("opt.c1");
    c2 = scalar("opt.c2");
  }

  trainable.forEach((path, k) => {
    const p = g.sources.get(path)!;
    let grad = gs[k];
    const wd = o.decay.has(path) ? opt.weightDecay : 0;
    const c = (v: number) => fill(g, v, p);
    switch (opt.kind) {
      case "sgd": {
        // torch.optim.SGD (dampening 0): g += wd·p; buf = μ·buf + g; step = nesterov ? g + μ·buf : buf
        if (wd) grad = add(g, grad, mul(g, c(wd), p));
        let step = grad;
        if (opt.momentum) {
          const buf = stateOf("momentum", path);
          const buf2 = add(g, mul(g, c(opt.momentum), buf.id), grad);
          set(buf.name, buf.id, buf2);
          step = opt.nesterov ? add(g, grad, mul(g, c(opt.momentum), buf2)) : buf2;
        }
        set(path, p, sub(g, p, mul(g, lr, step)));
        return;
      }
      case "lion": {
        // Lion (Chen et al. 2023): p ← p·(1 − lr·wd) − lr·sign(b1·m + (1−b1)·g); m ← b2·m + (1−b2)·g
        const m = stateOf("m", path);
        const dir = g.add("sign", [add(g, mul(g, c(opt.b1), m.id), mul(g, c(1 - opt.b1), grad))]);
        const base = wd ? mul(g, p, sub(g, constant(g, 1, []), mul(g, lr, constant(g, wd, [])))) : p;
        set(path, p, sub(g, base, mul(g, lr, dir)));
        set(m.name, m.id, add(g, mul(g, c(opt.b2), m.id), mul(g, c(1 - opt.b2), grad)));
        return;
      }
      default: {
        // Adam(W), torch.optim: m̂ = m/(1−b1^t), v̂ = v/(1−b2^t); p −= lr·m̂/(√v̂ + eps). c1, c2
        // are the host's 1/(1−b1^t) and 1/√(1−b2^t). Adam's weight decay is L2 on the
        // gradient; AdamW's decays p by lr·wd first.
        if (opt.kind === "adam" && wd) grad = add(g, grad, mul(g, c(wd), p));
        const m = stateOf("m", path);
        const v = stateOf("v", path);
        const m2 = add(g, mul(g, c(opt.b1), m.id), mul(g, c(1 - opt.b1), grad));
        const v2 = add(g, mul(g, c(opt.b2), v.id), mul(g, c(1 - opt.b2), mul(g, grad, grad)));
        const denom = add(g, mul(g, g.add("sqrt", [v2]), c2!), c(opt.eps));
        const stepv = div(g, mul(g, mul(g, lr, c1!), m2), denom);
        const base = opt.kind === "adamw" && wd ? sub(g, p, mul(g, mul(g, lr, constant(g, wd, [])), p)) : p;
        set(m.name, m.id, m2);
        set(v.name, v.id, v2);
        set(path, p, sub(g, base, stepv));
      }
    }
  });
  return { updates, state, scalars, gradNorm, finite, apply };
}

const SCALE_STATE = "opt.loss_scale";
/** 1 − b1^t and 1 − b2^t over the updates applied (Adam under dynamic loss scaling) */
const ADAM_Q1 = "opt.adam.q1";
const ADAM_Q2 = "opt.adam.q2";
const GOOD_STATE = "opt.loss_scale.good";
/** The largest dynamic loss scale (2^64): far above any useful one, far below f32's overflow. */
const MAX_SCALE = 2 ** 64;

/** `loss_scale = dynamic` or `dynamic(init = …, growth = …, backoff = …, every = …)`. */
function isDynamic(e: Expr): boolean {
  const callee = e.kind === "call" ? e.callee : e;
  return callee.kind === "ident" && callee.name === "dynamic";
}

function dynamicScale(l: Lowering, f: Field, scope: Scope, module: Module, lossType: string): { init: number; growth: number; backoff: number; every: number } {
  // torch.cuda.amp.GradScaler's defaults, but an f16 loss starts below f16's largest number
  const table = { dynamic: { init: num(lossType === "f16" ? 32768 : 65536), growth: num(2), backoff: num(0.5), every: num(2000) } };
  const c = config(l, f.value, scope, module, table, "dynamic(init = …, growth = …, backoff = …, every = …)", "W0307");
  const d = { init: c.get("init"), growth: c.get("growth"), backoff: c.get("backoff"), every: c.get("every") };
  if (!(d.init > 0)) l.fail(f.value.span, `dynamic: init must be positive, found ${d.init}`, "W0307");
  if (lossType === "f16" && d.init > 65504) l.fail(f.value.span, `dynamic: init ${d.init} is past f16's largest number, 65504, and the loss is f16`, "W0307", "start at 32768 or below");
  if (!(d.growth > 1)) l.fail(f.value.span, `dynamic: growth must be above 1, found ${d.growth}`, "W0307");
  if (!(d.backoff > 0 && d.backoff < 1)) l.fail(f.value.span, `dynamic: backoff must be in (0, 1), found ${d.backoff}`, "W0307");
  if (!(d.every >= 1 && Number.isInteger(d.every))) l.fail(f.value.span, `dynamic: every must be a whole number of steps ≥ 1, found ${d.every}`, "W0307");
  return d;
}

// ------------------------------------------------------------------ evaluation

function evalJob(l: Lowering, job: TrainItem, module: Module, f: Field, trainBatch: number, train: { ref: DataRef; vocab?: { name: string; span: Span } }, readFields: ReadFields) {
  if (f.value.kind !== "record") l.fail(f.value.span, 'eval is a record: { every = 100, data = jsonl("valid.jsonl") }', "W0312");
  const rec = new Map(f.value.fields.map((x) => [x.name.name, x]));
  for (const k of rec.keys()) if (!["every", "data", "batch", "steps"].includes(k)) l.fail(rec.get(k)!.name.span, `eval has no setting '${k}'`, "W0312", "its settings: every, data, batch, steps");
  const scope = new Scope();
  const every = rec.has("every") ? positiveInt(l, rec.get("every")!, scope, module) : l.fail(f.value.span, "eval needs `every = N` (steps between evaluations)", "W0312");
  const dataF = rec.get("data") ?? l.fail(f.value.span, 'eval needs `data = jsonl("valid.jsonl")`', "W0312");
  const batch = rec.has("batch") ? positiveInt(l, rec.get("batch")!, scope, module) : trainBatch;
  const steps = rec.has("steps") ? positiveInt(l, rec.get("steps")!, scope, module) : undefined;
  const d = dataRef(l, dataF.value, scope, module);
  // The held-out set goes through the training set's tokenizer and sequence lengths.
  const options = { ...train.ref.options, ...d.ref.options };
  const ref: DataRef = { ...d.ref, options };
  const infos = readFields(ref.file, ref.span, { ...options, evalOf: train.ref.file });
  // A fresh lowering with training = false, the same dims (and vocabulary size).
  const dims: Record<string, number> = { ...l.opts.dims };
  if (train.vocab) dims[train.vocab.name] = l.globalDim(train.vocab.name, module, train.vocab.span)!;
  const le = new Lowering(l.modules, l.entry, { ...l.opts, dims, training: false });
  const { loss } = lossGraph(le, job, module, batch, infos, ref);
  le.g.output("loss", loss);
  return { graph: le.g, data: ref, every, batch, steps, infos };
}

// ------------------------------------------------------------------ settings

/** `jsonl("train.jsonl", tokenizer = "chars", pad = T, vocab = V)` */
function dataRef(l: Lowering, e: Expr, scope: Scope, module: Module): { ref: DataRef; vocab?: { name: string; span: Span } } {
  const usage = 'expected jsonl("file"), with optional tokenizer = "bytes" | "chars" | "bpe", pad = DIM, vocab = DIM';
  if (e.kind !== "call" || e.callee.kind !== "ident" || e.callee.name !== "jsonl") return l.fail(e.span, usage, "W0301");
  const pos = e.args.filter((a) => !a.name);
  if (pos.length !== 1 || pos[0].value.kind !== "string") return l.fail(e.argsSpan, usage, "W0301");
  const options: DataOptions = {};
  let vocab: { name: string; span: Span } | undefined;
  for (const a of e.args) {
    if (!a.name) continue;
    switch (a.name.name) {
      case "tokenizer": {
        const v = l.evalExpr(a.value, scope, module);
        if (v.kind !== "string" || !TOKENIZERS.includes(v.value as TokenizerKind)) l.fail(a.value.span, `tokenizer is one of ${TOKENIZERS.map((t) => `"${t}"`).join(", ")}`, "W0301");
        options.tokenizer = (v as { value: TokenizerKind }).value;
        break;
      }
      case "pad":
        options.pad = l.evalDim(a.value, scope, module).value;
        break;
      case "vocab":
        if (a.value.kind !== "ident") l.fail(a.value.span, "vocab names a dim that takes the tokenizer's vocabulary size: vocab = V", "W0301");
        vocab = { name: (a.value as { name: string }).name, span: a.value.span };
        break;
      default:
        l.fail(a.name.span, `jsonl has no setting '${a.name.name}'`, "W0301", "its settings: tokenizer, pad, vocab");
    }
  }
  return { ref: { file: l.resolvePath(module, (pos[0].value as { value: string }).value), span: e.span, options }, vocab };
}

function bindVocab(l: Lowering, data: { ref: DataRef; vocab?: { name: string; span: Span } }, infos: FieldInfo[], module: Module): void {
  if (!data.vocab) return;
  const f = infos.find((x) => x.vocab !== undefined);
  if (!f) l.fail(data.vocab.span, `vocab = ${data.vocab.name} needs a text field read through a tokenizer (jsonl("...", tokenizer = "chars"))`, "W0301");
  const size = f!.vocab!;
  const have = l.globalDim(data.vocab.name, module, data.vocab.span);
  if (have !== undefined && have !== size) l.fail(data.vocab.span, `dim ${data.vocab.name} is ${have}, but the ${data.ref.options.tokenizer} tokenizer has ${size} ids`, "W0301", `leave ${data.vocab.name} without a value and the data sets it`);
  l.bindDim(data.vocab.name, size);
}

function collectFrom(inst: Instance, out: Map<string, string>): void {
  if (inst.from) {
    out.set(inst.path, inst.from);
    return;
  }
  for (const m of inst.members.values()) {
    if (m.kind === "instance") collectFrom(m.inst, out);
    else if (m.kind === "instances") m.items.forEach((x) => collectFrom(x, out));
  }
}

function isInstanceExpr(e: Expr): boolean {
  if (e.kind === "frozen" || e.kind === "from" || e.kind === "repeat") return true;
  if (e.kind === "paren") return isInstanceExpr(e.expr);
  return e.kind === "call" && e.callee.kind === "ident" && /^[A-Z]/.test(e.callee.name);
}

function positiveInt(l: Lowering, f: Field, scope: Scope, module: Module): number {
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "number" || !v.isInt || v.value < 1) l.fail(f.value.span, `${f.name.name} must be a positive integer, found ${describe(v)}`, "W0307");
  return (v as { value: number }).value;
}

function positiveNumber(l: Lowering, f: Field, scope: Scope, module: Module): number {
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "number" || !(v.value > 0)) l.fail(f.value.span, `${f.name.name} must be a positive number, found ${describe(v)}`, "W0307");
  return (v as { value: number }).value;
}

/** `trainable = [...]` / `decay = [...]`: instances and params, as parameter paths. */
function paramList(l: Lowering, f: Field | undefined, scope: Scope, module: Module, what: string): string[] | undefined {
  if (!f) return undefined;
  const all = [...l.params.values()];
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "list") return l.fail(f.value.span, `${what} must be a list of instances or parameters: [model.decoder, model.head.w]`, "W0308");
  const out = new Set<string>();
  // The layers of a repeat share stacked tensors: only a whole stack can be listed.
  const oneLayer = () =>
    l.fail(f.value.span, `${what} lists one layer of a repeat, whose params are slices of the stack's stacked tensors; list the whole repeat (model.layers)`, "W0308");
  const addPrefix = (prefix: string) => {
    for (const p of all) if (p.path.startsWith(`${prefix}.`) || p.path.startsWith(`${prefix}[`)) out.add(p.path);
  };
  for (const item of v.items) {
    if (item.kind === "instance") {
      if (item.inst.slots.length) oneLayer();
      addPrefix(item.inst.path);
    } else if (item.kind === "instances") {
      // the repeat itself (its layers' slots: this repeat's alone), not a repeat inside a layer of another
      if (item.items.some((i) => i.slots.length !== 1)) oneLayer();
      if (item.items.length) addPrefix(item.items[0].stackPath);
    } else if (item.kind === "tensor" && l.paramSource(item.id) !== undefined) out.add(String(l.g.node(l.paramSource(item.id)!).attrs.name));
    else if (item.kind === "tensor" && l.layerView(item.id)) oneLayer();
    else l.fail(f.value.span, `${what} lists instances or parameters, found ${describe(item)}`, "W0308");
  }
  return [...out];
}

/** `adamw(lr = 3e-4, weight_decay = 0.1)` or a bare `adam`: a name and its settings. */
function config<K extends string>(l: Lowering, e: Expr, scope: Scope, module: Module, table: Record<K, Record<string, Setting>>, what: string, code: string): { name: K; get(key: string): number } {
  const callee = e.kind === "call" ? e.callee : e;
  const names = Object.keys(table) as K[];
  if (callee.kind !== "ident" || !names.includes(callee.name as K)) {
    const near = callee.kind === "ident" ? didYouMean(callee.name, names) : undefined;
    return l.fail(e.span, `expected ${what}: ${names.join(", ")}`, code, near ? `did you mean \`${near}\`?` : undefined);
  }
  const name = callee.name as K;
  const settings = table[name];
  const given = new Map<string, number>();
  for (const a of e.kind === "call" ? e.args : []) {
    if (!a.name) l.fail(a.span, `${name} takes named settings: ${name}(${Object.keys(settings).map((k) => `${k} = ...`).join(", ")})`, code);
    const s = settings[a.name!.name];
    if (!s) {
      const near = didYouMean(a.name!.name, Object.keys(settings));
      l.fail(a.name!.span, `${name} has no setting '${a.name!.name}'`, code, near ? `did you mean \`${near}\`?` : `its settings: ${Object.keys(settings).join(", ")}`);
    }
    const v = l.evalExpr(a.value, scope, module);
    if (s.kind === "bool" && v.kind === "bool") given.set(a.name!.name, v.value ? 1 : 0);
    else if (v.kind === "number") given.set(a.name!.name, v.value);
    else l.fail(a.value.span, `${name}(${a.name!.name} = ...) must be a ${s.kind === "bool" ? "true or false" : "number"}, found ${describe(v)}`, code);
  }
  return { name, get: (k) => given.get(k) ?? settings[k].def };
}

function optimizerSpec(l: Lowering, f: Field | undefined, scope: Scope, module: Module): OptimizerSpec {
  if (!f) return { kind: "sgd", lr: 0.01, momentum: 0, nesterov: false, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0 };
  const c = config(l, f.value, scope, module, OPTIMIZERS, "an optimizer, like adamw(lr = 3e-4)", "W0309");
  const has = (k: string) => k in OPTIMIZERS[c.name];
  const o: OptimizerSpec = {
    kind: c.name,
    lr: c.get("lr"),
    momentum: has("momentum") ? c.get("momentum") : 0,
    nesterov: has("nesterov") ? c.get("nesterov") !== 0 : false,
    b1: has("b1") ? c.get("b1") : 0.9,
    b2: has("b2") ? c.get("b2") : 0.999,
    eps: has("eps") ? c.get("eps") : 1e-8,
    weightDecay: c.get("weight_decay"),
  };
  if (!(o.lr > 0)) l.fail(f.value.span, `${c.name}: lr must be positive, found ${o.lr}`, "W0309");
  if (o.nesterov && !(o.momentum > 0)) l.fail(f.value.span, "sgd: nesterov = true needs a momentum above 0", "W0309");
  for (const k of ["b1", "b2"] as const) if (!(o[k] >= 0 && o[k] < 1)) l.fail(f.value.span, `${c.name}: ${k} must be in [0, 1), found ${o[k]}`, "W0309");
  return o;
}

function scheduleSpec(l: Lowering, f: Field | undefined, scope: Scope, module: Module): ScheduleSpec {
  if (!f) return { kind: "constant", warmup: 0 };
  const c = config(l, f.value, scope, module, SCHEDULES, "a schedule: constant, linear, cosine, inverse_sqrt or step (with warmup = N)", "W0310");
  const s: ScheduleSpec = { kind: c.name, warmup: c.get("warmup") };
  if (!(s.warmup >= 0)) l.fail(f.value.span, `${c.name}: warmup must be ≥ 0`, "W0310");
  if (c.name === "linear" || c.name === "cosine") s.minLr = c.get("min_lr");
  if (c.name === "step") {
    s.every = c.get("every");
    s.gamma = c.get("gamma");
    if (!(s.every >= 1) || !Number.isInteger(s.every)) l.fail(f.value.span, "step needs every = N: multiply the rate by gamma every N steps", "W0310");
  }
  return s;
}
