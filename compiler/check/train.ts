// Train jobs: `train name { model = ..., loss = ..., data = jsonl(...), ... }`. Fields that
// hold instances are in scope in `loss` and `trainable`; `batch.<field>` is data whose type
// is known only when the data is read (the lowering checks it against the file).
import type { Expr, Field, Ident, TrainItem } from "../../grammar/ast.ts";
import { warning } from "../diagnostics.ts";
import { OPTIMIZERS, SCHEDULES } from "./builtins.ts";
import type { Checker } from "./checker.ts";
import { Code } from "./codes.ts";
import { Frame } from "./frame.ts";
import { type ModuleScope, hintFor } from "./scope.ts";
import { type Type, describe, printType } from "./types.ts";
import { Unifier } from "./unify.ts";

export interface TrainInfo {
  name: string;
  node: TrainItem;
  file: string;
  /** fields holding instances (`model`, `policy`, `ref`, ...) */
  instances: Map<string, Type>;
  loss?: Type;
  data?: string;
  batch?: number;
  steps?: number;
  optimizer?: { name: string; args: Record<string, number> };
  schedule?: { name: string; args: Record<string, number> };
  eval?: { every?: number; data?: string; batch?: number; steps?: number };
}

const KNOWN = ["model", "loss", "data", "batch", "steps", "optimizer", "schedule", "trainable", "eval", "clip", "accumulate", "decay", "loss_scale"];
const EVAL_FIELDS = ["every", "data", "batch", "steps"];
/** `loss_scale = dynamic(...)`: torch.cuda.amp.GradScaler's settings (compiler/lower/train.ts) */
const DYNAMIC_SCALE = new Map([["dynamic", { args: ["init", "growth", "backoff", "every"] }]]);

export function checkTrain(ck: Checker, item: TrainItem, mod: ModuleScope): TrainInfo {
  const info: TrainInfo = { name: item.name.name, node: item, file: mod.file, instances: new Map() };
  const f = new Frame(mod, `train:${mod.file}:${item.name.name}`, new Unifier(), ck.diagnostics, true);
  const batchName: Ident = { kind: "ident", name: "batch", span: item.name.span };
  f.declare(batchName, { kind: "batch" }, "batch", true);

  const seen = new Map<string, Field>();
  for (const fld of item.fields) {
    const prev = seen.get(fld.name.name);
    if (prev) ck.err(f, Code.Duplicate, fld.name.span, `field \`${fld.name.name}\` is given twice`, { related: [{ span: prev.name.span, message: "first given here" }] });
    else seen.set(fld.name.name, fld);
  }

  // instances first: the loss may name any of them
  for (const fld of seen.values()) {
    const name = fld.name.name;
    if (KNOWN.includes(name) && name !== "model") continue;
    f.allowInstances = true;
    const t = ck.expr(fld.value, f);
    f.allowInstances = false;
    f.rec(fld, t);
    if (t.kind === "instance" || t.kind === "repeat") {
      f.declare(fld.name, t, "field", true);
      f.rec(fld.name, t);
      info.instances.set(name, t);
    } else if (name === "model") {
      if (t.kind !== "error") ck.err(f, Code.TrainValue, fld.value.span, `model must be an instance, like \`model = Lm(V, D)\`; found ${describe(t)}`);
    } else if (t.kind !== "error") {
      f.report(
        warning(Code.TrainField, fld.name.span, `unknown train field \`${name}\``, {
          hint: hintFor(name, KNOWN) ?? `the fields are ${KNOWN.join(", ")}, plus any instance the loss needs (ref = frozen Lm(V, D))`,
        }),
      );
    }
  }

  const lossField = seen.get("loss");
  if (!lossField) ck.err(f, Code.TrainMissing, item.name.span, `train job ${item.name.name} has no \`loss\``, { hint: "add `loss = <a scalar f32 expression>`" });
  else {
    const t = ck.expr(lossField.value, f);
    f.rec(lossField, t);
    info.loss = t;
    const scalar = t.kind === "tensor" && t.dims.length === 0 && !t.rest && (t.dtype === "f32" || t.dtype === "f16");
    if (!scalar && t.kind !== "data" && t.kind !== "error")
      ck.err(f, Code.Loss, lossField.value.span, `the loss must be a float scalar (f32 or f16), found ${describe(t)}`, {
        hint: t.kind === "tensor" && t.dims.length > 0 ? "reduce it, e.g. mean(...)" : undefined,
      });
  }

  const data = seen.get("data");
  if (data) info.data = dataset(ck, f, data.value);
  const batch = seen.get("batch");
  if (batch) info.batch = positiveInt(ck, f, batch.value, "batch");
  const steps = seen.get("steps");
  if (steps) info.steps = positiveInt(ck, f, steps.value, "steps");
  const opt = seen.get("optimizer");
  if (opt) info.optimizer = configCall(ck, f, opt.value, "optimizer", OPTIMIZERS);
  const sched = seen.get("schedule");
  if (sched) info.schedule = configCall(ck, f, sched.value, "schedule", SCHEDULES);

  const acc = seen.get("accumulate");
  if (acc) positiveInt(ck, f, acc.value, "accumulate");
  const scale = seen.get("loss_scale");
  const callee = scale?.value.kind === "call" ? scale.value.callee : scale?.value;
  if (scale && callee?.kind === "ident" && callee.name === "dynamic") configCall(ck, f, scale.value, "loss_scale", DYNAMIC_SCALE);
  else if (scale && !(scale.value.kind === "number" && scale.value.value > 0)) ck.err(f, Code.TrainValue, scale.value.span, `loss_scale (the loss's multiplier for the backward pass) must be a positive number, found \`${ck.text(scale.value.span)}\``, { hint: "a power of two, like 1024, unscales exactly; or `dynamic`, which skips steps whose gradients overflow and adapts the scale" });
  const clip = seen.get("clip");
  if (clip && !(clip.value.kind === "number" && clip.value.value > 0)) ck.err(f, Code.TrainValue, clip.value.span, `clip (the global gradient-norm limit) must be a positive number, found \`${ck.text(clip.value.span)}\``);

  for (const trainable of [seen.get("trainable"), seen.get("decay")]) {
    if (!trainable) continue;
    const v = trainable.value;
    if (v.kind !== "list") ck.err(f, Code.TrainValue, v.span, `${trainable.name.name} is a list of instances or params: [model.decoder, model.head.w]`);
    else
      for (const it of v.items) {
        const t = ck.expr(it, f);
        const ok = t.kind === "instance" || t.kind === "repeat" || (t.kind === "tensor" && (t.dtype === "f32" || t.dtype === "f16")) || t.kind === "error";
        if (!ok) ck.err(f, Code.TrainValue, it.span, `trainable lists instances or params of this job's instances, found ${describe(t)}`);
        else if (t.kind === "instance" && t.frozen && trainable.name.name === "trainable") ck.err(f, Code.TrainValue, it.span, `${printType(t)} is frozen and cannot be trained`);
      }
  }

  const ev = seen.get("eval");
  if (ev) {
    const v = ev.value;
    if (v.kind !== "record") ck.err(f, Code.TrainValue, v.span, "eval is a record: { every = 100, data = jsonl(\"valid.jsonl\") }");
    else {
      info.eval = {};
      for (const x of v.fields) {
        const n = x.name.name;
        if (n === "data") info.eval.data = dataset(ck, f, x.value);
        else if (n === "every" || n === "batch" || n === "steps") info.eval[n] = positiveInt(ck, f, x.value, `eval.${n}`);
        else f.report(warning(Code.TrainField, x.name.span, `unknown eval field \`${n}\``, { hint: hintFor(n, EVAL_FIELDS) ?? `the eval fields are ${EVAL_FIELDS.join(", ")}` }));
      }
    }
  }
  ck.flush(f);
  return info;
}

function dataset(ck: Checker, f: Frame, v: Expr): string | undefined {
  // jsonl("f", tokenizer = "chars", pad = T, vocab = V): the settings are read by the lowering
  const settings = ["tokenizer", "pad", "vocab"];
  if (v.kind === "call" && v.callee.kind === "ident" && v.callee.name === "jsonl" && v.args.length >= 1 && !v.args[0].name && v.args[0].value.kind === "string") {
    for (const a of v.args.slice(1)) {
      if (!a.name || !settings.includes(a.name.name)) ck.err(f, Code.TrainValue, a.span, `jsonl takes a file and the settings ${settings.join(", ")}: jsonl("train.jsonl", tokenizer = "chars", pad = T, vocab = V)`);
      else if (a.name.name === "tokenizer" && a.value.kind !== "string") ck.err(f, Code.TrainValue, a.value.span, 'tokenizer is "bytes", "chars" or "bpe"');
      else if (a.name.name === "vocab" && a.value.kind !== "ident") ck.err(f, Code.TrainValue, a.value.span, "vocab names the dim that takes the tokenizer's vocabulary size: vocab = V");
    }
    f.rec(v, { kind: "dataset", path: v.args[0].value.value });
    return v.args[0].value.value;
  }
  ck.err(f, Code.TrainValue, v.span, 'data is a file of records: data = jsonl("train.jsonl")');
  return undefined;
}

function positiveInt(ck: Checker, f: Frame, v: Expr, what: string): number | undefined {
  if (v.kind === "number" && v.isInt && v.value > 0) return v.value;
  ck.err(f, Code.TrainValue, v.span, `${what} must be a positive integer, found \`${ck.text(v.span)}\``);
  return undefined;
}

/** `adamw(lr = 3e-4, weight_decay = 0.01)` or a bare `adam`. */
function configCall(
  ck: Checker,
  f: Frame,
  v: Expr,
  what: "optimizer" | "schedule" | "loss_scale",
  table: ReadonlyMap<string, { args: string[] }>,
): { name: string; args: Record<string, number> } | undefined {
  const callee = v.kind === "call" ? v.callee : v;
  const known = [...table.keys()].join(", ");
  if (callee.kind !== "ident") {
    ck.err(f, Code.UnknownOptimizer, v.span, `${what} is one of ${known}, like ${what === "optimizer" ? "adamw(lr = 3e-4)" : what === "schedule" ? "cosine(warmup = 50)" : "dynamic(init = 32768)"}`);
    return undefined;
  }
  const spec = table.get(callee.name);
  if (!spec) {
    ck.err(f, Code.UnknownOptimizer, callee.span, `unknown ${what} \`${callee.name}\``, { hint: hintFor(callee.name, table.keys()) ?? `the ${what}s are ${known}` });
    return undefined;
  }
  if (what !== "loss_scale") f.rec(v, what === "optimizer" ? { kind: "optimizer", name: callee.name } : { kind: "schedule", name: callee.name });
  const args: Record<string, number> = {};
  let ok = true;
  for (const a of v.kind === "call" ? v.args : []) {
    if (!a.name) {
      ck.err(f, Code.OptimizerArg, a.span, `${callee.name} takes named arguments: ${callee.name}(${spec.args.map((x) => `${x} = ...`).join(", ")})`);
      ok = false;
      continue;
    }
    if (!spec.args.includes(a.name.name)) {
      ck.err(f, Code.OptimizerArg, a.name.span, `${callee.name} has no argument \`${a.name.name}\``, { hint: hintFor(a.name.name, spec.args) ?? `its arguments are ${spec.args.join(", ")}` });
      ok = false;
      continue;
    }
    const t = ck.expr(a.value, f);
    const n = t.kind === "bool" && t.value !== undefined ? +t.value : t.kind === "float" ? t.value : t.kind === "int" && t.value && t.value.terms.length <= 1 && (t.value.terms[0]?.atoms.length ?? 0) === 0 ? (t.value.terms[0]?.coef ?? 0) : undefined;
    if (n === undefined) {
      if (t.kind !== "error") ck.err(f, Code.OptimizerArg, a.value.span, `${callee.name}(${a.name.name} = ...) must be a number, found ${describe(t)}`);
      ok = false;
    } else args[a.name.name] = n;
  }
  return ok ? { name: callee.name, args } : undefined;
}
