// The compiler as a library: load + check a program, lower a fn or a train job to a
// Graph, differentiate it, compile it to a Bundle. The CLI, the language server and the
// tests all go through these calls.
import { readFileSync } from "node:fs";
import { Code } from "./check/codes.ts";
import { fileURLToPath } from "node:url";
import type { FnItem, Span, TrainItem } from "../grammar/ast.ts";
import type { DType } from "../runtime/bundle.ts";
import { check, type CheckResult } from "./check/index.ts";
import { error, hasErrors, InternalError, UserError, type Diagnostic } from "./diagnostics.ts";
import { Graph } from "./ir/graph.ts";
import { loadModules, type LoadedModules, type Module } from "./modules.ts";
import { Lowering, type LowerOptions, type ParamInfo } from "./lower/lower.ts";
import { lowerTrain, type ReadFields, type TrainJob } from "./lower/train.ts";
import { NotDifferentiableError } from "./autodiff/vjp.ts";
import type { Value } from "./lower/values.ts";
import { Scope } from "./lower/scope.ts";

/** The command line names an entry fn, train job or --wrt target that does not exist. */
export const UNKNOWN_ENTRY = "W0111";

export const MODELS_DIR = fileURLToPath(new URL("../models", import.meta.url));

export interface LoadedProgram {
  modules: LoadedModules;
  entry: Module;
  checked: CheckResult;
  /** parse, import and check diagnostics, in source order */
  diagnostics: Diagnostic[];
}

export type Result<T> = { ok: true; value: T } | { ok: false; diagnostics: Diagnostic[] };

export function fileHost(modelsDir = MODELS_DIR) {
  return {
    modelsDir,
    readFile(path: string): string | undefined {
      try {
        return readFileSync(path, "utf8");
      } catch {
        return undefined;
      }
    },
  };
}

export function loadProgram(file: string, opts: { dims?: Record<string, number>; host?: ReturnType<typeof fileHost> } = {}): LoadedProgram {
  const modules = loadModules(file, opts.host ?? fileHost());
  const checked = check(modules, { dims: opts.dims });
  const entry = modules.modules.get(modules.entry) ?? [...modules.modules.values()][0];
  return { modules, entry, checked, diagnostics: checked.diagnostics };
}

/** Runs a lowering step, turning its located UserErrors into diagnostics. */
function attempt<T>(f: () => T): Result<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof UserError) return { ok: false, diagnostics: [e.diagnostic] };
    throw e;
  }
}

export interface LoweredFn {
  graph: Graph;
  lowering: Lowering;
  fn: FnItem;
  /** fn parameters that became graph inputs, in order */
  inputs: { name: string; shape: number[]; dtype: DType }[];
  params: ParamInfo[];
}

export interface InputType {
  shape: number[];
  dtype: DType;
}

function findItem<K extends "fn" | "train">(p: LoadedProgram, kind: K, name: string | undefined): (K extends "fn" ? FnItem : TrainItem) | undefined {
  const items = p.entry.program.items.filter((i) => i.kind === kind) as (K extends "fn" ? FnItem : TrainItem)[];
  if (name === undefined) return items.length === 1 ? items[0] : undefined;
  return items.find((i) => i.name?.name === name);
}

function entrySpan(p: LoadedProgram): Span {
  return { file: p.entry.file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}

/**
 * Lowers fn `name` for `weft run` / `weft grad`: tensor parameters become graph inputs
 * of the given types, block-typed parameters become instances whose params are named
 * by the parameter (`m.l1.w`). The fn's result is the output `out` (tuples: `out.0`, …).
 */
export function lowerFunction(p: LoadedProgram, name: string, inputs: ReadonlyMap<string, InputType>, opts: LowerOptions & { wrt?: string[] } = {}): Result<LoweredFn> {
  const fn = findItem(p, "fn", name);
  if (!fn) {
    const names = p.entry.program.items.flatMap((i) => (i.kind === "fn" && i.name ? [i.name.name] : []));
    return { ok: false, diagnostics: [error(UNKNOWN_ENTRY, entrySpan(p), `no fn named '${name}' in ${p.entry.file}`, { hint: names.length ? `its fns: ${names.join(", ")}` : undefined })] };
  }
  const l = new Lowering(p.modules.modules, p.entry, opts);
  return attempt(() => {
    const args: Value[] = [];
    const used: LoweredFn["inputs"] = [];
    for (const prm of fn.params) {
      const t = prm.type;
      const given = inputs.get(prm.name.name);
      if (t?.kind === "namedType") {
        args.push(instanceFor(l, p, t.name.name, prm.name.name, prm.span));
      } else if (given) {
        const id = l.g.source("input", prm.name.name, given, prm.span);
        used.push({ name: prm.name.name, ...given });
        args.push({ kind: "tensor", id, labels: given.shape.map(() => undefined) });
      } else if (prm.default) {
        args.push(l.evalExpr(prm.default, new Scope(), p.entry));
      } else {
        l.fail(prm.span, `no value for input '${prm.name.name}'`, Code.MissingArg, `pass it in --inputs: {"${prm.name.name}": ...}`);
      }
    }
    for (const k of inputs.keys()) {
      if (!fn.params.some((q) => q.name.name === k)) l.fail(fn.name?.span ?? fn.span, `${name} has no parameter '${k}' (given in the inputs)`, Code.UnknownNamedArg);
    }
    const result = l.callFn(fn, p.entry, undefined, args, new Map(), fn.span);
    const outs = flattenOutputs(l, result, "out", fn.span);
    for (const [k, id] of outs) l.g.output(k, id);
    if (opts.wrt?.length) addGradients(l, outs, opts.wrt, fn);
    return { graph: l.g, lowering: l, fn, inputs: used, params: [...l.params.values()] };
  });
}

function instanceFor(l: Lowering, p: LoadedProgram, blockName: string, path: string, span: Span): Value {
  const v = l.evalExpr({ kind: "ident", name: blockName, span }, new Scope(), p.entry);
  if (v.kind !== "block") return l.fail(span, `'${blockName}' is not a block`, Code.TypeMismatch);
  const dims = v.block.dims.map((d) => {
    const val = l.globalDim(d.name, p.entry, span);
    if (val === undefined) l.fail(span, `to build ${blockName} for '${path}', dim ${d.name} needs a value`, Code.NoValue, `a block-typed parameter of the entry fn takes its dims from the global dims of the same names: declare \`dim ${d.name} = N\``);
    return { value: val, label: d.name };
  });
  return { kind: "instance", inst: l.instantiate(v.block, v.module, dims, path, span) };
}

function flattenOutputs(l: Lowering, v: Value, name: string, span: Span): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (x: Value, n: string) => {
    if (x.kind === "tuple" || x.kind === "list") x.items.forEach((y, i) => walk(y, `${n}.${i}`));
    else if (x.kind === "record") for (const [k, y] of x.fields) walk(y, `${n}.${k}`);
    else out.set(n, l.tensor(x, span).id);
  };
  walk(v, name);
  return out;
}

/** `weft grad --wrt a,m.l1.w`: gradients of the scalar output, as outputs `grad.<name>`. */
function addGradients(l: Lowering, outs: Map<string, number>, wrt: string[], fn: FnItem): void {
  const y = outs.get("out");
  const span = fn.ret?.span ?? fn.span;
  const isFloat = (id: number) => l.g.type(id).dtype === "f32" || l.g.type(id).dtype === "f16";
  if (y === undefined || l.g.type(y).shape.length !== 0 || !isFloat(y)) {
    l.fail(span, `grad needs ${fn.name?.name} to return a float scalar (f32 or f16)`, Code.Grad, "reduce it: sum(...) or mean(...)");
  }
  const ids = wrt.map((w) => {
    // a layer's param in a repeat stack (`stack.layers[3].ff.w1`): its slice of the stacked param
    const id = l.layerParams.get(w)?.view ?? l.g.sources.get(w);
    if (id === undefined) {
      const known = [...l.g.sources.keys()].filter((k) => !k.startsWith("opt."));
      return l.fail(span, `--wrt ${w}: no input or parameter of that name`, UNKNOWN_ENTRY, `known: ${known.join(", ")}`);
    }
    if (!isFloat(id)) l.fail(span, `--wrt ${w}: an ${l.g.type(id).dtype} tensor has no gradient`, Code.Grad);
    return id;
  });
  try {
    l.gradients(y!, ids).forEach((gid, i) => l.g.output(`grad.${wrt[i]}`, gid));
  } catch (e) {
    if (e instanceof NotDifferentiableError) l.fail(e.span ?? span, `${e.message}; wrap it in stop(...)`, Code.Grad);
    throw e;
  }
}

export interface LoweredJob {
  graph: Graph;
  lowering: Lowering;
  job: TrainJob;
  item: TrainItem;
}

export function lowerJob(p: LoadedProgram, name: string | undefined, readFields: ReadFields, opts: LowerOptions = {}): Result<LoweredJob> {
  const item = findItem(p, "train", name);
  if (!item) {
    const names = p.entry.program.items.flatMap((i) => (i.kind === "train" ? [i.name.name] : []));
    const msg = name ? `no train job named '${name}' in ${p.entry.file}` : names.length ? `${p.entry.file} has ${names.length} train jobs; pick one with --entry` : `${p.entry.file} has no train job`;
    return { ok: false, diagnostics: [error(UNKNOWN_ENTRY, entrySpan(p), msg, names.length ? { hint: `jobs: ${names.join(", ")}` } : {})] };
  }
  // f16 params train with f32 masters (LowerOptions.masterWeights), in the eval graph too
  const l = new Lowering(p.modules.modules, p.entry, { ...opts, training: true, masterWeights: true });
  return attempt(() => ({ graph: l.g, lowering: l, job: lowerTrain(l, item, p.entry, readFields), item }));
}

export { hasErrors, InternalError };
