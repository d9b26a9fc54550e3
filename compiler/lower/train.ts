// A train job becomes one step graph: the loss, its gradient with respect to every
// trainable parameter, and the optimizer update — all generated as graph nodes, so the
// whole step compiles to kernels and the host never loops over parameters.
import type { Expr, Field, Span, TrainItem } from "../../grammar/ast.ts";
import type { FieldInfo } from "../../runtime/data.ts";
import type { OptimizerSpec, ScheduleSpec, TrainSpec } from "../../runtime/train.ts";
import { vjp, NotDifferentiableError } from "../autodiff/vjp.ts";
import { add, constant, div, fill, mul, sub } from "../ops/build.ts";
import type { Lowering } from "./lower.ts";
import { didYouMean } from "./lower.ts";
import { Scope, type Module } from "./scope.ts";
import { describe, type Instance, type Value } from "./values.ts";

export interface TrainJob {
  spec: TrainSpec;
  /** source name → node that replaces it after each step */
  updates: Map<string, number>;
  data: { file: string; span: Span };
  /** checkpoints named by `from` on instances: path prefix → file */
  from: Map<string, string>;
}

const FIELDS = ["model", "loss", "data", "batch", "steps", "optimizer", "schedule", "trainable", "eval"];
const OPTIMIZERS: Record<string, Partial<OptimizerSpec>> = {
  sgd: { momentum: 0 },
  adam: { b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0 },
  adamw: { b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0.01 },
};

export function lowerTrain(l: Lowering, job: TrainItem, module: Module, readFields: (file: string, span: Span) => FieldInfo[]): TrainJob {
  const fields = new Map<string, Field>();
  for (const f of job.fields) {
    if (fields.has(f.name.name)) l.fail(f.name.span, `field '${f.name.name}' is set twice`, "W0302");
    fields.set(f.name.name, f);
  }
  const need = (name: string): Field => fields.get(name) ?? l.fail(job.name.span, `train job ${job.name.name} has no '${name}' field`, "W0303");
  const scope = new Scope();

  // Instances first (model, and any other field that builds one: `ref = frozen Lm(...)`).
  const instances: Instance[] = [];
  for (const f of job.fields) {
    if (FIELDS.includes(f.name.name) && f.name.name !== "model") continue;
    if (!isInstanceExpr(f.value)) {
      if (!FIELDS.includes(f.name.name)) {
        const near = didYouMean(f.name.name, FIELDS);
        l.fail(f.name.span, `unknown train field '${f.name.name}'`, "W0304", near ? `did you mean \`${near}\`?` : `fields: ${FIELDS.join(", ")}`);
      }
      continue;
    }
    const v = l.evalInstance(f.value, scope, module, f.name.name);
    if (v.kind !== "instance") l.fail(f.value.span, `expected an instance of a block, found ${describe(v)}`, "W0305");
    instances.push(v.inst);
    scope.define(f.name.name, v);
  }
  if (!scope.lookup("model")) need("model");

  const steps = positiveInt(l, need("steps"), scope, module);
  const batch = positiveInt(l, need("batch"), scope, module);
  const dataField = need("data");
  const data = l.evalExpr(dataField.value, scope, module);
  if (data.kind !== "data") l.fail(dataField.value.span, `expected jsonl("file"), found ${describe(data)}`, "W0301");

  // batch.<field>: one graph input per data field, with a leading batch dim.
  const infos = readFields(data.file, data.span);
  const batchFields = new Map<string, Value>();
  for (const fi of infos) {
    const id = l.g.source("input", `batch.${fi.name}`, { shape: [batch, ...fi.shape], dtype: fi.dtype });
    batchFields.set(fi.name, { kind: "tensor", id, labels: [undefined, ...fi.shape.map(() => undefined)] });
  }
  scope.define("batch", { kind: "record", fields: batchFields, span: dataField.span });

  const lossField = need("loss");
  const loss = l.tensor(l.evalExpr(lossField.value, scope, module), lossField.value.span);
  const lt = l.g.type(loss.id);
  if (lt.shape.length !== 0 || lt.dtype !== "f32") l.fail(lossField.value.span, `the loss must be an f32 scalar, found ${l.typeText(loss)}`, "W0306", "reduce it: mean(...) or sum(...)");
  l.g.output("loss", loss.id);

  const trainable = trainableParams(l, fields.get("trainable"), scope, module);
  const optimizer = optimizerSpec(l, fields.get("optimizer"), scope, module);
  const schedule = scheduleSpec(l, fields.get("schedule"), scope, module);

  let grads: number[];
  try {
    grads = vjp(l.g, loss.id, trainable.map((p) => l.g.sources.get(p)!));
  } catch (e) {
    if (e instanceof NotDifferentiableError) l.fail(e.span ?? lossField.value.span, `${e.message}; wrap it in stop(...) if no gradient should flow there`, "W0235");
    throw e;
  }
  const updates = new Map<string, number>();
  const state: { name: string; shape: number[] }[] = [];
  const lr = l.g.source("input", "opt.lr", { shape: [], dtype: "f32" });
  const scalars: TrainSpec["scalars"] = { lr: "opt.lr" };
  const g = l.g;
  trainable.forEach((path, k) => {
    const p = g.sources.get(path)!;
    const grad = grads[k];
    const shape = [...g.type(p).shape];
    const stateOf = (kind: string) => {
      const name = `opt.${kind}.${path}`;
      state.push({ name, shape });
      return { name, id: g.source("state", name, { shape, dtype: "f32" }) };
    };
    const o = optimizer;
    if (o.kind === "sgd") {
      let step = grad;
      if (o.momentum) {
        // PyTorch's SGD: buf = momentum·buf + g; p -= lr·buf
        const buf = stateOf("momentum");
        step = add(g, mul(g, fill(g, o.momentum, p), buf.id), grad);
        updates.set(buf.name, step);
      }
      updates.set(path, sub(g, p, mul(g, lr, step)));
      return;
    }
    // Adam(W): m̂ = m/(1−b1^t), v̂ = v/(1−b2^t); p −= lr·m̂/(√v̂ + eps). c1, c2 are the host's
    // bias corrections 1/(1−b1^t) and 1/√(1−b2^t). AdamW first decays p by lr·wd.
    const c1 = g.source("input", "opt.c1", { shape: [], dtype: "f32" });
    const c2 = g.source("input", "opt.c2", { shape: [], dtype: "f32" });
    scalars.c1 = "opt.c1";
    scalars.c2 = "opt.c2";
    const m = stateOf("m");
    const v = stateOf("v");
    const m2 = add(g, mul(g, fill(g, o.b1, p), m.id), mul(g, fill(g, 1 - o.b1, p), grad));
    const v2 = add(g, mul(g, fill(g, o.b2, p), v.id), mul(g, fill(g, 1 - o.b2, p), mul(g, grad, grad)));
    const denom = add(g, mul(g, g.add("sqrt", [v2]), c2), fill(g, o.eps, p));
    const stepv = div(g, mul(g, mul(g, lr, c1), m2), denom);
    let base = p;
    if (o.kind === "adamw" && o.weightDecay) base = sub(g, p, mul(g, mul(g, lr, constant(g, o.weightDecay, [])), p));
    updates.set(m.name, m2);
    updates.set(v.name, v2);
    updates.set(path, sub(g, base, stepv));
  });

  const from = new Map<string, string>();
  for (const inst of instances) collectFrom(inst, from);
  const spec: TrainSpec = {
    steps,
    batch,
    optimizer,
    schedule,
    fields: infos.map((f) => ({ field: f.name, input: `batch.${f.name}`, dtype: f.dtype })),
    loss: "loss",
    params: [...l.params.values()].map((p) => ({ path: p.path, shape: p.shape, dtype: p.dtype, init: p.init, trainable: trainable.includes(p.path) })),
    state,
    scalars,
  };
  return { spec, updates, data: { file: data.file, span: data.span }, from };
}

function collectFrom(inst: Instance, out: Map<string, string>): void {
  if (inst.from) out.set(inst.path, inst.from);
}

function isInstanceExpr(e: Expr): boolean {
  if (e.kind === "frozen" || e.kind === "from" || e.kind === "repeat") return true;
  if (e.kind === "paren") return isInstanceExpr(e.expr);
  return e.kind === "call" && e.callee.kind === "ident" && /^[A-Z]/.test(e.callee.name);
}

function positiveInt(l: Lowering, f: Field, scope: Scope, module: Module): number {
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "number" || !v.isInt || v.value < 1) l.fail(f.value.span, `${f.name.name} must be a positive integer, found ${describe(v)}`, "W0307");
  return v.value;
}

function trainableParams(l: Lowering, f: Field | undefined, scope: Scope, module: Module): string[] {
  const all = [...l.params.values()];
  if (!f) return all.filter((p) => !p.frozen).map((p) => p.path);
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "list") l.fail(f.value.span, "trainable must be a list of instances or parameters: [model.decoder, model.head.w]", "W0308");
  const out = new Set<string>();
  v.items.forEach((item) => {
    if (item.kind === "instance") {
      for (const p of all) if (p.path.startsWith(`${item.inst.path}.`)) out.add(p.path);
    } else if (item.kind === "tensor" && l.g.node(item.id).op === "param") {
      out.add(String(l.g.node(item.id).attrs.name));
    } else {
      l.fail(f.value.span, `trainable lists instances or parameters, found ${describe(item)}`, "W0308");
    }
  });
  for (const p of out) {
    if (l.params.get(p)?.frozen) l.fail(f.value.span, `${p} belongs to a frozen instance and cannot be trained`, "W0308");
  }
  return [...out];
}

function named(l: Lowering, v: Value & { kind: "config" }, key: string, fallback: number): number {
  const x = v.named.get(key);
  if (x === undefined) return fallback;
  if (x.kind !== "number") return l.fail(v.span, `${v.name}: ${key} must be a number, found ${describe(x)}`, "W0309");
  return x.value;
}

function optimizerSpec(l: Lowering, f: Field | undefined, scope: Scope, module: Module): OptimizerSpec {
  if (!f) return { kind: "sgd", lr: 0.01, momentum: 0, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0 };
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "config" || !(v.name in OPTIMIZERS)) return l.fail(f.value.span, `expected an optimizer: sgd(lr=...), adam(lr=...) or adamw(lr=...), found ${describe(v)}`, "W0309");
  const allowed = v.name === "sgd" ? ["lr", "momentum"] : ["lr", "b1", "b2", "eps", ...(v.name === "adamw" ? ["weight_decay"] : [])];
  for (const k of v.named.keys()) {
    if (!allowed.includes(k)) l.fail(v.span, `${v.name} has no setting '${k}'`, "W0309", `its settings: ${allowed.join(", ")}`);
  }
  if (!v.named.has("lr")) l.fail(v.span, `${v.name} needs a learning rate: ${v.name}(lr = ...)`, "W0309");
  const d = OPTIMIZERS[v.name];
  return {
    kind: v.name as OptimizerSpec["kind"],
    lr: named(l, v, "lr", 0),
    momentum: named(l, v, "momentum", d.momentum ?? 0),
    b1: named(l, v, "b1", d.b1 ?? 0.9),
    b2: named(l, v, "b2", d.b2 ?? 0.999),
    eps: named(l, v, "eps", d.eps ?? 1e-8),
    weightDecay: named(l, v, "weight_decay", d.weightDecay ?? 0),
  };
}

function scheduleSpec(l: Lowering, f: Field | undefined, scope: Scope, module: Module): ScheduleSpec {
  if (!f) return { kind: "constant", warmup: 0 };
  const v = l.evalExpr(f.value, scope, module);
  if (v.kind !== "config" || !["constant", "cosine", "linear"].includes(v.name)) {
    return l.fail(f.value.span, `expected a schedule: constant(), cosine(warmup = N) or linear(warmup = N), found ${describe(v)}`, "W0310");
  }
  for (const k of v.named.keys()) if (k !== "warmup") l.fail(v.span, `${v.name} has no setting '${k}'`, "W0310");
  return { kind: v.name as ScheduleSpec["kind"], warmup: named(l, v, "warmup", 0) };
}
