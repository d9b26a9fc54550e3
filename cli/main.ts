// The `weft` command: a thin shell over the compiler and runtime libraries.
// Exit codes: 0 ok, 1 a problem with the user's program or data (a located message),
// 2 a usage error, 3 a bug in Weft (reported as one).
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { compileBundle } from "../compiler/codegen/bundle.ts";
import { planMemory } from "../compiler/opt/memory.ts";
import { gradcheckCmd } from "./gradcheck.ts";
import { writeBundle } from "../runtime/bundle-io.ts";
import { formatDiagnostic, hasErrors, type Diagnostic } from "../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, lowerJob, type InputType, type LoadedProgram } from "../compiler/index.ts";
import { printGraph, type Graph } from "../compiler/ir/graph.ts";
import { evaluators } from "../compiler/ops/index.ts";
import type { Backend, HostArray } from "../runtime/backend.ts";
import { toStorage } from "../runtime/backend.ts";
import { shaderKey, type DType } from "../runtime/bundle.ts";
import { DataError } from "../runtime/data.ts";
import { paramValues as initialParamValues, type InitSpec } from "../runtime/init.ts";
import { joinValues, type FileTensor, type MaybeStacked } from "../runtime/stacked.ts";
import { ReferenceBackend } from "../runtime/reference/backend.ts";
import { loadSafetensors, SafetensorsError } from "../runtime/safetensors.ts";
import { NonFiniteLossError } from "../runtime/train.ts";
import { DeviceLimitError, requirements } from "../runtime/limits.ts";
import { PORTABLE, type DeviceLimits, type DeviceProfile } from "../runtime/profile.ts";
import { acquireDevice } from "../runtime/webgpu/device.ts";
import { GpuBackend } from "../runtime/webgpu/backend.ts";
import { dataReader, SAMPLE_HELP, SAMPLE_OPTIONS, sampleCmd, TRAIN_HELP, TRAIN_OPTIONS, trainCmd } from "./train.ts";
import { CheckpointError } from "../runtime/checkpoint.ts";
import { InitError } from "../runtime/init.ts";
import { TokenizerError } from "../runtime/tokenize.ts";
import { InputError, readInputs, resultsJson, UsageError, writeResults, type NamedResult } from "./io.ts";
import { FMT_HELP, fmtCmd } from "../compiler/format/cli.ts";

const HELP: Record<string, string> = {
  main: `weft — compile and run Weft models on WebGPU

usage: weft <command> [options]

commands:
  check FILE...            check programs; print diagnostics (file:line:col)
  run FILE --entry FN      evaluate a fn on inputs, print its outputs as JSON
  gradcheck FILE --entry FN  check a fn's gradients against finite differences
  grad FILE --entry FN --wrt NAME[,NAME]
                           gradients of a scalar fn, printed as JSON
  train FILE [--entry JOB] train a model; write params as safetensors
  sample FILE --from DIR   generate text from a trained language model
  compile FILE --entry FN|JOB --emit ast|ir|wgsl
                           print a stage of the compiler
  fmt FILE... [--check|--write]
                           format files in the canonical style

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
  gradcheck: `usage: weft gradcheck FILE --entry FN [--inputs IN] [--params P.safetensors] [--dim N=V]... [--seed S]

Checks the gradients Weft derives for the scalar fn FN against float64 central
differences (on the reference back end), for every f32 input and parameter, and prints
the worst relative error of each. Exit 1 if any exceeds 1e-4.`,
  grad: `usage: weft grad FILE --entry FN --wrt NAME[,NAME] [run's options]

Gradients of the scalar fn FN with respect to inputs or parameter paths, as JSON.`,
  train: TRAIN_HELP,
  sample: SAMPLE_HELP,
  fmt: FMT_HELP,
  compile: `usage: weft compile FILE --entry FN|JOB (--emit ast|ir|wgsl|kernels|memory | -o DIR)
                    [run's --inputs, --dim] [--limit NAME=VALUE]...

--emit prints one stage: the AST, the Graph IR (with gradients and updates for a train
job), the WGSL kernels, a kernel list (name, workgroups, buffers, split launches), or the
memory plan (planned bytes vs one buffer per temporary and the liveness lower bound).
-o DIR writes a bundle (manifest.json + kernels/*.wgsl) that runtime/ loads alone.
--limit compiles for a device with that WebGPU limit instead of the default (e.g.
--limit maxStorageBufferBindingSize=65536: launches binding more are split into chunks)
and checks the bundle against it.`,
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
  gradcheck: { entry: { type: "string" }, inputs: { type: "string" }, params: { type: "string" } },
  train: TRAIN_OPTIONS,
  sample: SAMPLE_OPTIONS,
  compile: { entry: { type: "string" }, emit: { type: "string" }, inputs: { type: "string" }, out: { type: "string", short: "o" }, limit: { type: "string", multiple: true } },
  lsp: { stdio: { type: "boolean" }, clientProcessId: { type: "string" } },
  fmt: { check: { type: "boolean" }, write: { type: "boolean" } },
};

export type Values = Record<string, string | boolean | string[] | undefined>;

export class UserFailure extends Error {
  constructor(readonly diagnostics: Diagnostic[], readonly program?: LoadedProgram) {
    super("user error");
  }
}

export function intOption(v: Values, name: string): number | undefined {
  const s = v[name];
  if (s === undefined) return undefined;
  const n = Number(s);
  if (typeof s !== "string" || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got '${String(s)}'`);
  return n;
}

export function dims(v: Values): Record<string, number> {
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

export function load(file: string, v: Values): LoadedProgram {
  const p = loadProgram(resolve(file), { dims: dims(v) });
  if (hasErrors(p.diagnostics)) throw new UserFailure(p.diagnostics, p);
  return p;
}

export async function backendFor(v: Values, graph: Graph, updates?: Map<string, number>): Promise<Backend> {
  const want = (v.backend as string | undefined) ?? "webgpu";
  if (want !== "webgpu" && want !== "reference") throw new UsageError(`--backend is webgpu or reference, got '${want}'`);
  if (want === "webgpu") {
    let handle;
    try {
      handle = await acquireDevice({ requireGpu: v.backend === "webgpu" || process.env.WEFT_REQUIRE_GPU === "1" });
    } catch (e) {
      throw new InputError((e as Error).message);
    }
    // compiled for this device: its limits are checked now (DeviceLimitError), not at dispatch
    if (handle) return GpuBackend.load(handle, compileBundle(graph, { updates, device: handle.profile }));
    process.stderr.write("weft: no WebGPU adapter found (run `npm run setup` to install Mesa lavapipe); using the reference back end (CPU, float64)\n");
  }
  return new ReferenceBackend(graph, evaluators(), updates);
}

/** Initial parameter values: from --params, else seeded fresh ones. */
async function paramValues(v: Values, params: (MaybeStacked & { init: InitSpec })[], seed: number): Promise<Map<string, ArrayLike<number>>> {
  const out = new Map<string, ArrayLike<number>>();
  const file = v.params as string | undefined;
  const loaded = file ? await loadSafetensors(file) : undefined;
  for (const p of params) {
    if (!loaded) {
      out.set(p.path, initialParamValues(p, seed));
      continue;
    }
    // a stacked param (a repeat's) is read slice by slice, each by its layer's own name
    const read = (f: FileTensor): ArrayLike<number> => {
      const t = loaded.get(f.name);
      if (!t) throw new InputError(`${file}: no tensor '${f.name}' (it has: ${[...loaded.keys()].join(", ") || "none"})`);
      if (t.shape.length !== f.shape.length || t.shape.some((d, i) => d !== f.shape[i])) {
        throw new InputError(`${file}: '${f.name}' has shape [${t.shape.join(", ")}], the model needs [${f.shape.join(", ")}]`);
      }
      return t.data as ArrayLike<number>;
    };
    out.set(p.path, joinValues(p, read, read));
  }
  return out;
}

function inputTypes(p: LoadedProgram, entry: string, given: Map<string, { shape: number[]; data: number[] }>): Map<string, InputType> {
  const fn = p.entry.program.items.find((i) => i.kind === "fn" && i.name?.name === entry);
  const out = new Map<string, InputType>();
  for (const [name, t] of given) {
    const prm = fn?.kind === "fn" ? fn.params.find((q) => q.name.name === name) : undefined;
    const declared = prm?.type?.kind === "tensorType" ? prm.type.dtype.name : undefined;
    const dtype: DType = declared === "i32" || declared === "bool" || declared === "f32" || declared === "f16" ? declared : t.data.every(Number.isInteger) ? "i32" : "f32";
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

async function compileCmd(file: string, v: Values): Promise<number> {
  const emit = v.emit as string | undefined;
  if (!v.out && (!emit || !["ast", "ir", "wgsl", "kernels", "memory"].includes(emit))) throw new UsageError("give -o DIR, or --emit ast|ir|wgsl|kernels|memory");
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
    const lowered = lowerJob(p, entry, dataReader().read, { dims: dims(v) });
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
  const device = targetWithLimits(v.limit);
  const plan = planMemory(compileBundle(graph, { updates, plan: false, ...(device ? { device } : {}) }));
  const bundle = plan.bundle;
  if (v.out) {
    writeBundle(v.out as string, bundle, { source: resolve(file), entry: entry ?? "" });
    process.stderr.write(`weft: wrote ${bundle.kernels.length} kernels to ${v.out as string}\n`);
  }
  if (emit === "wgsl") for (const k of bundle.kernels) process.stdout.write((k.params ? `// params (P): [${k.params.join(", ")}]\n` : "") + k.wgsl + "\n");
  if (emit === "kernels") {
    const keys = bundle.kernels.map(shaderKey);
    const shares = (i: number) => {
      const first = keys.indexOf(keys[i]);
      return first < i ? `  shader of ${bundle.kernels[first].name}` : "";
    };
    bundle.kernels.forEach((k, i) => {
      const split = k.chunks ? `  split into ${k.chunks.length} chunks (${k.footprint?.round !== undefined ? "in rounds, " : ""}at most ${Math.max(...k.chunks.flatMap((c) => c.ranges.map((r) => r[1])))} bytes bound)` : "";
      process.stdout.write(`${k.name.padEnd(28)} groups [${k.workgroups.join(", ")}]  buffers ${k.bindings.join(", ")}${shares(i)}${split}\n`);
    });
    process.stdout.write(`${bundle.kernels.length} kernels (${new Set(keys).size} distinct shaders), ${bundle.copies.length} copies after them\n`);
    const need = requirements(bundle);
    const l = need.limits;
    process.stdout.write(
      `needs: largest buffer ${l.maxBufferSize} bytes (binding ${l.maxStorageBufferBindingSize}), ${l.maxStorageBuffersPerShaderStage} storage buffers per kernel, ` +
        `${l.maxComputeWorkgroupStorageSize} bytes of workgroup storage, ${l.maxComputeInvocationsPerWorkgroup} invocations per workgroup, ` +
        `${l.maxComputeWorkgroupsPerDimension} workgroups per dimension; features: ${need.features.join(", ") || "none"}${need.lanes ? ` (subgroups of at least ${need.lanes} lanes)` : ""}\n`,
    );
  }
  if (emit === "memory") {
    const r = plan.report;
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    process.stdout.write(`temporaries, planned:            ${kb(r.plannedBytes)}  (${r.strategy} assignment)\n`);
    process.stdout.write(`temporaries, one buffer each:    ${kb(r.unplannedBytes)}\n`);
    process.stdout.write(`lower bound (largest live set):  ${kb(r.lowerBoundBytes)}  (plan = ${(r.plannedBytes / Math.max(1, r.lowerBoundBytes)).toFixed(2)}× the bound, in this launch order)\n`);
    process.stdout.write(`inputs, params, state, constants: ${kb(r.fixedBytes)}\n`);
    process.stdout.write(`peak device memory of a run:     ${kb(r.plannedBytes + r.fixedBytes)}  (${bundle.kernels.length} kernels, ${bundle.copies.length} copies)\n`);
  }
  return 0;
}

/** The default compile target with some limits given as NAME=VALUE (--limit), or undefined. */
function targetWithLimits(given: Values[string]): DeviceProfile | undefined {
  const list = Array.isArray(given) ? given : typeof given === "string" ? [given] : [];
  if (!list.length) return undefined;
  const limits: { -readonly [K in keyof DeviceLimits]: number } = { ...PORTABLE.limits };
  const names = Object.keys(PORTABLE.limits);
  const isName = (n: string): n is keyof DeviceLimits => names.includes(n);
  for (const item of list) {
    const m = /^(\w+)=(\d+)$/.exec(item);
    if (!m || !isName(m[1])) throw new UsageError(`--limit takes NAME=VALUE with NAME one of ${names.join(", ")}; got '${item}'`);
    limits[m[1]] = Number(m[2]);
  }
  return { ...PORTABLE, limits };
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

/** A reader that went away (`weft compile ... | head`) ends the output quietly. */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe();
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
    if (cmd === "lsp") return v.help ? (process.stdout.write("usage: weft lsp [--stdio] [--clientProcessId=PID]\n\nServes the Weft language server (LSP) over stdin/stdout.\n"), 0) : await (await import("../lsp/server.ts")).startServer();
    if (v.help) {
      process.stdout.write(HELP[cmd] + "\n");
      return 0;
    }
    const files = parsed.positionals;
    if (cmd === "check") return await checkCmd(files, v);
    if (cmd === "fmt") return fmtCmd(files, { check: v.check === true, write: v.write === true });
    if (files.length !== 1) throw new UsageError(`weft ${cmd} takes one FILE, got ${files.length}`);
    if (cmd === "run" || cmd === "grad") return await evaluate(cmd, files[0], v);
    if (cmd === "gradcheck") return await gradcheckCmd(files[0], v);
    if (cmd === "train") return await trainCmd(files[0], v);
    if (cmd === "sample") return await sampleCmd(files[0], v);
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
    if (e instanceof InputError || e instanceof DataError || e instanceof SafetensorsError || e instanceof CheckpointError || e instanceof InitError || e instanceof TokenizerError) {
      process.stderr.write(`weft ${cmd}: error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NonFiniteLossError || e instanceof DeviceLimitError) {
      process.stderr.write(`weft ${cmd}: error: ${e.message}\n`);
      return 1;
    }
    // A file the user named cannot be read or written: their problem to fix, not a bug.
    const sys = e as NodeJS.ErrnoException;
    if (sys && typeof sys.code === "string" && typeof sys.path === "string" && /^E[A-Z]+$/.test(sys.code)) {
      const why: Record<string, string> = { ENOENT: "no such file or folder", EEXIST: "already exists (and is not a folder)", EACCES: "permission denied", ENOTDIR: "a part of the path is not a folder", EISDIR: "is a folder", ENOSPC: "no space left on the device", EROFS: "read-only file system" };
      process.stderr.write(`weft ${cmd}: error: ${sys.path}: ${why[sys.code] ?? sys.code}\n`);
      return 1;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`weft ${cmd}: internal error (a bug in Weft, please report it): ${err.message}\n${err.stack ?? ""}\n`);
    return 3;
  }
}

export type { HostArray };
