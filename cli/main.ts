// The `weft` command: a thin shell over the compiler and runtime libraries.
// Exit codes: 0 ok, 1 a problem with the user's program or data (a located message),
// 2 a usage error, 3 a bug in Weft (reported as one).
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { compileBundle } from "../compiler/codegen/bundle.ts";
import { formatDiagnostic, hasErrors, type Diagnostic } from "../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, lowerJob, type InputType, type LoadedProgram } from "../compiler/index.ts";
import { printGraph, type Graph } from "../compiler/ir/graph.ts";
import { evaluators } from "../compiler/ops/index.ts";
import type { Backend, HostArray } from "../runtime/backend.ts";
import { toStorage } from "../runtime/backend.ts";
import type { DType } from "../runtime/bundle.ts";
import { DataError, readJsonl, type Dataset } from "../runtime/data.ts";
import { initialValues } from "../runtime/init.ts";
import { ReferenceBackend } from "../runtime/reference/backend.ts";
import { loadSafetensors, saveSafetensors, SafetensorsError, type WritableTensor } from "../runtime/safetensors.ts";
import { NonFiniteLossError, train } from "../runtime/train.ts";
import { acquireDevice } from "../runtime/webgpu/device.ts";
import { GpuBackend } from "../runtime/webgpu/backend.ts";
import { InputError, readInputs, resultsJson, UsageError, writeResults, type NamedResult } from "./io.ts";

const HELP: Record<string, string> = {
  main: `weft — compile and run Weft models on WebGPU

usage: weft <command> [options]

commands:
  check FILE...            check programs; print diagnostics (file:line:col)
  run FILE --entry FN      evaluate a fn on inputs, print its outputs as JSON
  grad FILE --entry FN --wrt NAME[,NAME]
                           gradients of a scalar fn, printed as JSON
  train FILE [--entry JOB] train a model; write params as safetensors
  compile FILE --entry FN|JOB --emit ast|ir|wgsl
                           print a stage of the compiler

Run 'weft <command> --help' for a command's options.`,
  check: `usage: weft check FILE... [--json] [--dim NAME=N]...

Checks every file (and what it imports). Prints each problem as
file:line:col: error[CODE]: message, with the source line and a hint.
  --json         print diagnostics as JSON, one array
  --dim N=V      give dim N the value V
Exit: 0 no errors, 1 errors found, 2 usage error.`,
  run: `usage: weft run FILE --entry FN [--inputs IN] [--params P.safetensors] [--dim N=V]...
                [--backend webgpu|reference] [--out OUT] [--seed S]

Evaluates fn FN. IN is JSON text or a file: {"x": [[1,2],[3,4]]} (nested arrays) or
{"x": {"shape": [2,2], "data": [1,2,3,4]}}, or a .safetensors file. Block-typed
parameters are built with fresh weights (seeded by --seed) or read from --params
(tensor names = parameter paths, e.g. m.l1.w). Prints outputs as JSON; --out writes
them to a .json or .safetensors file instead.`,
  grad: `usage: weft grad FILE --entry FN --wrt NAME[,NAME] [run's options]

Gradients of the scalar fn FN with respect to inputs or parameter paths, as JSON.`,
  train: `usage: weft train FILE [--entry JOB] [--steps N] [--seed S] [--out DIR]
                  [--backend webgpu|reference] [--dim N=V]... [--log-every K]

Trains job JOB (the file's only job by default). --steps is the total number of steps.
Writes DIR/params.safetensors (tensor names = parameter paths) and DIR/metrics.jsonl;
DIR defaults to runs/JOB.`,
  compile: `usage: weft compile FILE --entry FN|JOB --emit ast|ir|wgsl [run's --inputs, --dim]

Prints one stage: the AST, the Graph IR (with gradients for a train job), or the WGSL
kernels.`,
};

const common: ParseArgsConfig["options"] = {
  help: { type: "boolean", short: "h" },
  dim: { type: "string", multiple: true },
  backend: { type: "string" },
  seed: { type: "string" },
};

const options: Record<string, ParseArgsConfig["options"]> = {
  check: { json: { type: "boolean" } },
  run: { entry: { type: "string" }, inputs: { type: "string" }, params: { type: "string" }, out: { type: "string" } },
  grad: { entry: { type: "string" }, inputs: { type: "string" }, params: { type: "string" }, out: { type: "string" }, wrt: { type: "string" } },
  train: { entry: { type: "string" }, steps: { type: "string" }, out: { type: "string" }, "log-every": { type: "string" } },
  compile: { entry: { type: "string" }, emit: { type: "string" }, inputs: { type: "string" } },
};

type Values = Record<string, string | boolean | string[] | undefined>;

class UserFailure extends Error {
  constructor(readonly diagnostics: Diagnostic[], readonly program?: LoadedProgram) {
    super("user error");
  }
}

function intOption(v: Values, name: string): number | undefined {
  const s = v[name];
  if (s === undefined) return undefined;
  const n = Number(s);
  if (typeof s !== "string" || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got '${String(s)}'`);
  return n;
}

function dims(v: Values): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of (v.dim as string[] | undefined) ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$/.exec(d);
    if (!m || Number(m[2]) < 1) throw new UsageError(`--dim takes NAME=N with N ≥ 1, got '${d}'`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function sourcesOf(p: LoadedProgram): Map<string, string> {
  return new Map([...p.modules.modules.values()].map((m) => [m.file, m.source]));
}

function printDiagnostics(ds: Diagnostic[], sources: Map<string, string>): void {
  const color = process.stderr.isTTY === true && !process.env.NO_COLOR;
  for (const d of ds) process.stderr.write(formatDiagnostic(d, sources.get(d.span.file), color) + "\n");
}

function load(file: string, v: Values): LoadedProgram {
  const p = loadProgram(resolve(file), { dims: dims(v) });
  if (hasErrors(p.diagnostics)) throw new UserFailure(p.diagnostics, p);
  return p;
}

async function backendFor(v: Values, graph: Graph, updates?: Map<string, number>): Promise<Backend> {
  const want = (v.backend as string | undefined) ?? "webgpu";
  if (want !== "webgpu" && want !== "reference") throw new UsageError(`--backend is webgpu or reference, got '${want}'`);
  if (want === "webgpu") {
    const handle = await acquireDevice({ requireGpu: v.backend === "webgpu" || process.env.WEFT_REQUIRE_GPU === "1" });
    if (handle) return GpuBackend.load(handle, compileBundle(graph, { updates }));
    process.stderr.write("weft: no WebGPU adapter found (run `npm run setup` to install Mesa lavapipe); using the reference back end (CPU, float64)\n");
  }
  return new ReferenceBackend(graph, evaluators(), updates);
}

/** Initial parameter values: from --params, else seeded fresh ones. */
async function paramValues(v: Values, params: { path: string; shape: number[]; init: Parameters<typeof initialValues>[0] }[], seed: number): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const file = v.params as string | undefined;
  const loaded = file ? await loadSafetensors(file) : undefined;
  for (const p of params) {
    const t = loaded?.get(p.path);
    if (loaded && !t) throw new InputError(`${file}: no tensor '${p.path}' (it has: ${[...loaded.keys()].join(", ") || "none"})`);
    if (t) {
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        throw new InputError(`${file}: '${p.path}' has shape [${t.shape.join(", ")}], the model needs [${p.shape.join(", ")}]`);
      }
      out.set(p.path, Float32Array.from(t.data as ArrayLike<number>));
    } else {
      out.set(p.path, initialValues(p.init, p.shape, seed, p.path));
    }
  }
  return out;
}

function inputTypes(p: LoadedProgram, entry: string, given: Map<string, { shape: number[]; data: number[] }>): Map<string, InputType> {
  const fn = p.entry.program.items.find((i) => i.kind === "fn" && i.name?.name === entry);
  const out = new Map<string, InputType>();
  for (const [name, t] of given) {
    const prm = fn?.kind === "fn" ? fn.params.find((q) => q.name.name === name) : undefined;
    const declared = prm?.type?.kind === "tensorType" ? prm.type.dtype.name : undefined;
    const dtype: DType = declared === "i32" || declared === "bool" ? declared : declared === "f32" ? "f32" : t.data.every(Number.isInteger) ? "i32" : "f32";
    out.set(name, { shape: t.shape, dtype });
  }
  return out;
}

async function evaluate(cmd: "run" | "grad", file: string, v: Values): Promise<number> {
  const entry = v.entry as string | undefined;
  if (!entry) throw new UsageError(`weft ${cmd} needs --entry FN`);
  const wrt = cmd === "grad" ? String(v.wrt ?? "").split(",").filter(Boolean) : undefined;
  if (cmd === "grad" && !wrt?.length) throw new UsageError("weft grad needs --wrt NAME[,NAME]");
  const p = load(file, v);
  const given = v.inputs ? readInputs(v.inputs as string) : new Map();
  const lowered = lowerFunction(p, entry, inputTypes(p, entry, given), { dims: dims(v), wrt });
  if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
  const { graph, params, inputs } = lowered.value;
  const backend = await backendFor(v, graph);
  try {
    const seed = intOption(v, "seed") ?? 0;
    for (const [path, values] of await paramValues(v, params, seed)) backend.write(path, toStorage(values, params.find((q) => q.path === path)!.dtype));
    for (const inp of inputs) backend.write(inp.name, toStorage(given.get(inp.name)!.data, inp.dtype));
    const names = [...graph.outputs.keys()].filter((k) => (cmd === "grad" ? k.startsWith("grad.") : true));
    const out = await backend.run(names);
    const results = new Map<string, NamedResult>();
    for (const k of names) {
      const t = graph.type(graph.outputs.get(k)!);
      results.set(cmd === "grad" ? k.slice(5) : k, { shape: [...t.shape], dtype: t.dtype, data: out.get(k)! });
    }
    if (v.out) await writeResults(v.out as string, results);
    else process.stdout.write(resultsJson(results) + "\n");
    return 0;
  } finally {
    backend.destroy();
  }
}

async function trainCmd(file: string, v: Values): Promise<number> {
  const p = load(file, v);
  const datasets = new Map<string, Dataset>();
  const readFields = (f: string) => {
    let d = datasets.get(f);
    if (!d) {
      d = readJsonl(f);
      datasets.set(f, d);
    }
    return d.fields;
  };
  const lowered = lowerJob(p, v.entry as string | undefined, readFields, { dims: dims(v) });
  if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
  const { graph, job, item } = lowered.value;
  const backend = await backendFor(v, graph, job.updates);
  try {
    const seed = intOption(v, "seed") ?? 0;
    const steps = intOption(v, "steps") ?? job.spec.steps;
    const dir = resolve((v.out as string | undefined) ?? join("runs", item.name.name));
    mkdirSync(dir, { recursive: true });
    const log = (line: string) => process.stdout.write(line + "\n");
    log(`weft: training ${item.name.name} on ${backend.name}: ${job.spec.params.length} tensors, ${job.spec.params.reduce((n, q) => n + q.shape.reduce((a, b) => a * b, 1), 0)} parameters, ${steps} steps of batch ${job.spec.batch}`);
    const initial = new Map<string, Float32Array>();
    for (const [prefix, ckpt] of job.from) {
      const t = await loadSafetensors(ckpt);
      for (const q of job.spec.params.filter((x) => x.path.startsWith(`${prefix}.`))) {
        const name = q.path.slice(prefix.length + 1);
        const src = t.get(q.path) ?? t.get(name);
        if (!src) throw new InputError(`${ckpt}: no tensor '${name}' for ${q.path}`);
        initial.set(q.path, Float32Array.from(src.data as ArrayLike<number>));
      }
    }
    const res = await train(backend, job.spec, datasets.get(job.data.file)!, { seed, steps, logEvery: intOption(v, "log-every"), log, initial });
    const tensors = new Map<string, WritableTensor>();
    for (const q of job.spec.params) {
      const data = res.params.get(q.path)!;
      tensors.set(q.path, q.dtype === "f32" ? { dtype: "F32", shape: q.shape, data: Float32Array.from(data) } : { dtype: "I32", shape: q.shape, data: Int32Array.from(data) });
    }
    await saveSafetensors(join(dir, "params.safetensors"), tensors, { job: item.name.name, steps: String(steps), seed: String(seed) });
    const metrics = res.losses.map((m) => JSON.stringify({ step: m.step, loss: m.loss })).join("\n") + "\n";
    const { writeFileAtomic } = await import("../runtime/safetensors.ts");
    await writeFileAtomic(join(dir, "metrics.jsonl"), new TextEncoder().encode(metrics));
    const first = res.losses[0]?.loss;
    const last = res.losses[res.losses.length - 1]?.loss;
    log(`weft: done in ${res.seconds.toFixed(1)} s; loss ${first?.toFixed(4)} → ${last?.toFixed(4)}; wrote ${join(dir, "params.safetensors")}`);
    return 0;
  } finally {
    backend.destroy();
  }
}

async function compileCmd(file: string, v: Values): Promise<number> {
  const emit = v.emit as string | undefined;
  if (!emit || !["ast", "ir", "wgsl"].includes(emit)) throw new UsageError("--emit is one of ast, ir, wgsl");
  const p = load(file, v);
  if (emit === "ast") {
    process.stdout.write(JSON.stringify(p.entry.program, (k, x) => (k === "span" || k === "opSpan" || k === "argsSpan" || k === "pathSpan" ? undefined : x), 2) + "\n");
    return 0;
  }
  const entry = v.entry as string | undefined;
  const isJob = p.entry.program.items.some((i) => i.kind === "train" && (entry === undefined || i.name.name === entry));
  let graph: Graph;
  let updates: Map<string, number> | undefined;
  if (isJob) {
    const lowered = lowerJob(p, entry, (f) => readJsonl(f).fields, { dims: dims(v) });
    if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
    graph = lowered.value.graph;
    updates = lowered.value.job.updates;
  } else {
    if (!entry) throw new UsageError("weft compile needs --entry FN|JOB");
    const given = v.inputs ? readInputs(v.inputs as string) : new Map();
    const lowered = lowerFunction(p, entry, inputTypes(p, entry, given), { dims: dims(v) });
    if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
    graph = lowered.value.graph;
  }
  if (emit === "ir") {
    process.stdout.write(printGraph(graph) + "\n");
    if (updates) for (const [k, id] of updates) process.stdout.write(`update ${k} <- %${id}\n`);
    return 0;
  }
  const bundle = compileBundle(graph, { updates });
  for (const k of bundle.kernels) process.stdout.write(k.wgsl + "\n");
  return 0;
}

async function checkCmd(files: string[], v: Values): Promise<number> {
  if (!files.length) throw new UsageError("weft check needs at least one FILE");
  const all: Diagnostic[] = [];
  const sources = new Map<string, string>();
  for (const f of files) {
    const p = loadProgram(resolve(f), { dims: dims(v) });
    for (const [k, s] of sourcesOf(p)) sources.set(k, s);
    for (const d of p.diagnostics) if (!all.some((x) => x.span.file === d.span.file && x.span.start === d.span.start && x.code === d.code)) all.push(d);
  }
  if (v.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
  else printDiagnostics(all, sources);
  const errors = all.filter((d) => d.severity === "error").length;
  if (!v.json && errors === 0) process.stderr.write(`weft: ${files.length} file${files.length > 1 ? "s" : ""} checked, no errors\n`);
  return errors ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(HELP.main + "\n");
    return cmd ? 0 : 2;
  }
  if (!(cmd in options)) {
    process.stderr.write(`weft: unknown command '${cmd}'\n\n${HELP.main}\n`);
    return 2;
  }
  let program: LoadedProgram | undefined;
  try {
    const parsed = parseArgs({ args: rest, options: { ...common, ...options[cmd] }, allowPositionals: true, strict: true });
    const v = parsed.values as Values;
    if (v.help) {
      process.stdout.write(HELP[cmd] + "\n");
      return 0;
    }
    const files = parsed.positionals;
    if (cmd === "check") return await checkCmd(files, v);
    if (files.length !== 1) throw new UsageError(`weft ${cmd} takes one FILE, got ${files.length}`);
    if (cmd === "run" || cmd === "grad") return await evaluate(cmd, files[0], v);
    if (cmd === "train") return await trainCmd(files[0], v);
    return await compileCmd(files[0], v);
  } catch (e) {
    if (e instanceof UserFailure) {
      program = e.program;
      printDiagnostics(e.diagnostics, program ? sourcesOf(program) : new Map());
      return 1;
    }
    if (e instanceof UsageError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      process.stderr.write(`weft ${cmd}: ${e.message}\n(see 'weft ${cmd} --help')\n`);
      return 2;
    }
    if (e instanceof InputError || e instanceof DataError || e instanceof SafetensorsError) {
      process.stderr.write(`weft ${cmd}: error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NonFiniteLossError) {
      process.stderr.write(`weft ${cmd}: error: ${e.message}\n`);
      return 1;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`weft ${cmd}: internal error (a bug in Weft, please report it): ${err.message}\n${err.stack ?? ""}\n`);
    return 3;
  }
}

export type { HostArray };
