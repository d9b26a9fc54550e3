// `weft train` and `weft sample`: thin shells over runtime/train.ts (the loop,
// checkpoints, metrics, curves) and the compiler's lowering of a train job.
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Expr } from "../grammar/ast.ts";
import { lowerFunction, lowerJob, type LoweredJob } from "../compiler/index.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { evaluators } from "../compiler/ops/index.ts";
import type { Backend, HostArray } from "../runtime/backend.ts";
import { listCheckpoints, loadCheckpoint, type Checkpoint } from "../runtime/checkpoint.ts";
import { readJsonl, type DataOptions, type Dataset } from "../runtime/data.ts";
import { paramValues, uniformStream, valuesFrom } from "../runtime/init.ts";
import { splitValues } from "../runtime/stacked.ts";
import { writeCurves } from "../runtime/plot.ts";
import { plainProgress, ttyProgress } from "../runtime/progress.ts";
import { interpret, type RefNode } from "../runtime/reference/interpret.ts";
import type { RefTensor } from "../runtime/reference/tensor.ts";
import { loadSafetensors, saveSafetensors, type DecodedTensor, type WritableTensor } from "../runtime/safetensors.ts";
import { tokenizerFromJson, type Tokenizer } from "../runtime/tokenize.ts";
import { train } from "../runtime/train.ts";
import { InputError, UsageError } from "./io.ts";
import { backendFor, dims, intOption, load, UserFailure, type Values } from "./main.ts";

export const TRAIN_HELP = `usage: weft train FILE [--entry JOB] [--steps N] [--seed S] [--out DIR]
                  [--backend webgpu|reference] [--dim N=V]... [--log-every K]
                  [--resume DIR] [--save-every K] [--keep K] [--init [PATH=]FILE]...
                  [--overwrite] [--debug]

Trains job JOB (the file's only job by default). --steps is the total number of steps
to reach (default: the job's); the learning-rate schedule always spans the job's own
\`steps\`, so a run stopped early and resumed is the run that never stopped.
Writes to DIR (default runs/JOB):
  params.safetensors      the parameters (tensor names = parameter paths, F32)
  metrics.jsonl           {"step", "loss", "lr", …} per logged step, {"step", "eval_loss"}
  loss.svg, loss.png      the loss curve (and the eval curve), redrawn at each checkpoint
  checkpoints/step-N/     params, optimizer state, step, data position; 'latest' names one
  --resume DIR            continue DIR's latest checkpoint up to --steps, bit-identically
  --save-every K          also checkpoint every K steps (always: at the end and on Ctrl-C)
  --keep K                checkpoints to keep (default 2)
  --init [PATH=]FILE      initialise the instance at PATH (default: every param) from a
                          safetensors file; each missing or mis-shaped tensor is named
  --overwrite             start afresh in a DIR that holds an earlier run's checkpoints
  --debug                 on a non-finite loss, find the first op that produced one
On a terminal a progress bar shows step, loss, steps/s, tokens/s and the ETA; otherwise
a line every --log-every steps. Ctrl-C finishes the step, saves a checkpoint, exits 130.`;

export const SAMPLE_HELP = `usage: weft sample FILE --from DIR [--entry FN] [--prompt TEXT] [--length N]
                   [--temperature T] [--top-k K] [--seed S] [--backend webgpu|reference]

Generates text from a trained language model. FN (default: logits) takes the model
and token ids, and returns next-token logits: fn logits(model: Lm, ids: i32[B, T]) ->
f32[B, T, V]. Its params come from DIR's latest checkpoint (by path: name the block
parameter like the job's field, \`model\`), its dims from the run, the tokenizer from
DIR. Each new token is sampled from softmax(logits / T) at the last position of the
context (the last T tokens); --temperature 0 is greedy. Prints the prompt and the text.`;

export const TRAIN_OPTIONS = {
  entry: { type: "string" },
  steps: { type: "string" },
  out: { type: "string" },
  "log-every": { type: "string" },
  resume: { type: "string" },
  "save-every": { type: "string" },
  keep: { type: "string" },
  init: { type: "string", multiple: true },
  overwrite: { type: "boolean" },
  debug: { type: "boolean" },
} as const;

export const SAMPLE_OPTIONS = {
  entry: { type: "string" },
  from: { type: "string" },
  prompt: { type: "string" },
  length: { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
} as const;

const enc = (s: string) => new TextEncoder().encode(s);

/** Reads a job's data files, once each; an evaluation set reuses its training set's tokenizer. */
export function dataReader() {
  const sets = new Map<string, Dataset>();
  const key = (file: string, o: DataOptions & { evalOf?: string }) => JSON.stringify([file, o.tokenizer ?? null, o.pad ?? null, o.evalOf ?? null]);
  const read = (file: string, _span: unknown, o: DataOptions & { evalOf?: string }) => {
    const k = key(file, o);
    let d = sets.get(k);
    if (!d) {
      const like = o.evalOf ? [...sets.entries()].find(([kk]) => JSON.parse(kk)[0] === o.evalOf && JSON.parse(kk)[3] === null)?.[1] : undefined;
      d = readJsonl(file, { tokenizer: o.tokenizer, pad: o.pad, like });
      sets.set(k, d);
    }
    return d.fields;
  };
  const get = (file: string, o: DataOptions & { evalOf?: string }) => sets.get(key(file, o))!;
  return { read, get };
}

function asHost(t: DecodedTensor): { shape: number[]; data: ArrayLike<number> } {
  return { shape: t.shape, data: t.data instanceof BigInt64Array ? Float64Array.from(t.data, Number) : t.data };
}

/** `--init` and `from "ckpt"`: initial values by path. */
async function initialValuesOf(job: LoweredJob["job"], inits: string[]): Promise<Map<string, HostArray>> {
  const out = new Map<string, HostArray>();
  const sources: [string, string][] = [...job.from];
  for (const s of inits) {
    const m = /^([A-Za-z_][\w.[\]]*)=(.+)$/.exec(s);
    sources.push(m && !existsSync(s) ? [m[1], resolve(m[2])] : ["", resolve(s)]);
  }
  for (const [prefix, file] of sources) {
    const raw = await loadSafetensors(file);
    const tensors = new Map([...raw].map(([k, t]) => [k, asHost(t)]));
    for (const [k, x] of valuesFrom(file, tensors, job.spec.params, prefix)) out.set(k, x);
  }
  return out;
}

/** --debug: evaluate the step on the float64 interpreter and name the first op gone non-finite. */
function diagnoser(graph: Graph, updates: Map<string, number>) {
  const F32_MAX = 3.4028234663852886e38;
  return (sources: Map<string, HostArray>, step: number): string | undefined => {
    const values = new Map<string, RefTensor>();
    for (const [name, id] of graph.sources) {
      const given = sources.get(name);
      if (given) values.set(name, { shape: graph.type(id).shape, data: Float64Array.from(given) });
    }
    const outputs = new Map(graph.outputs);
    for (const [name, id] of updates) outputs.set(`update:${name}`, id);
    const seen = new Map<number, RefTensor>();
    let first: { node: RefNode; bad: number; n: number } | undefined;
    try {
      interpret({ nodes: graph.nodes, outputs }, values, evaluators(), {
        onNode(node, v) {
          seen.set(node.id, v);
          if (first) return;
          let bad = 0;
          for (const x of v.data) if (!Number.isFinite(x) || Math.abs(x) > F32_MAX) bad++;
          if (bad) first = { node, bad, n: v.data.length };
        },
      });
    } catch (e) {
      return `--debug: the float64 interpreter could not replay step ${step + 1}: ${(e as Error).message}`;
    }
    if (!first) return `--debug: replayed on the float64 interpreter, step ${step + 1} stays finite (and within f32 range): the non-finite value comes from f32 rounding on the device`;
    const n = graph.node(first.node.id);
    const where = n.span ? `${n.span.file}:${n.span.line}:${n.span.col}` : "(no source position: an optimizer or autodiff node)";
    const range = (id: number) => {
      const v = seen.get(id);
      if (!v) return "?";
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of v.data) {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      return `[${lo.toPrecision(4)}, ${hi.toPrecision(4)}]`;
    };
    const src = n.op === "param" || n.op === "state" || n.op === "input" ? ` — ${n.op} '${String(n.attrs.name)}' was already non-finite when the step began` : "";
    const inputs = n.inputs.map((i) => `%${i} ${graph.node(i).op} in ${range(i)}`).join(", ");
    return `--debug: the first non-finite value at step ${step + 1} is %${n.id} = ${n.op}(${n.inputs.map((i) => `%${i}`).join(", ")}) at ${where}${src}: ${first.bad} of ${first.n} values non-finite or beyond f32 range${inputs ? `; inputs: ${inputs}` : ""}`;
  };
}

export async function trainCmd(file: string, v: Values): Promise<number> {
  const p = load(file, v);
  const resumeDir = v.resume as string | undefined;
  const ck: Checkpoint | undefined = resumeDir ? loadCheckpoint(resolve(resumeDir)) : undefined;
  const given = intOption(v, "seed");
  if (ck && given !== undefined && given !== ck.trainer.seed) throw new UsageError(`--seed ${given}, but the run in ${resumeDir} has seed ${ck.trainer.seed}; a resumed run keeps its seed`);
  const seed = ck?.trainer.seed ?? given ?? 0;

  const data = dataReader();
  // the seed keys the initial weights, the shuffle and the program's random numbers (dropout)
  const lowered = lowerJob(p, v.entry as string | undefined, data.read, { dims: dims(v), seed });
  if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
  const { graph, job, item, lowering } = lowered.value;
  const dataset = data.get(job.data.file, job.data.options);
  const evalSet = job.eval ? data.get(job.eval.data.file, { ...job.eval.data.options, evalOf: job.data.file }) : undefined;
  const dir = resolve((v.out as string | undefined) ?? resumeDir ?? join("runs", item.name.name));
  const steps = intOption(v, "steps") ?? job.spec.steps;
  if (!ck && !v.overwrite && listCheckpoints(dir).length) {
    const last = listCheckpoints(dir).pop();
    throw new UsageError(`${dir} holds an earlier run's checkpoints (up to step ${last}): continue it with --resume ${dir}, or start over with --overwrite`);
  }
  const tokenizerJson = dataset.tokenizer ? enc(JSON.stringify(dataset.tokenizer.toJSON()) + "\n") : undefined;
  if (ck) {
    const saved = ck.files.get("tokenizer.json");
    if (saved && tokenizerJson && Buffer.compare(Buffer.from(saved), Buffer.from(tokenizerJson)) !== 0) {
      throw new InputError(`${ck.dir}/tokenizer.json differs from the tokenizer of ${job.data.file}: the data changed since the checkpoint`);
    }
    if (ck.trainer.horizon !== job.spec.steps) process.stderr.write(`weft: note: the checkpoint's schedule spans ${ck.trainer.horizon} steps, the job now says ${job.spec.steps}; the rest of the run follows the job\n`);
  }
  mkdirSync(dir, { recursive: true });

  const backend = await backendFor(v, graph, job.updates);
  const evalBackend = job.eval ? await backendFor(v, job.eval.graph) : undefined;
  const tty = process.stdout.isTTY === true && !process.env.CI;
  const log = (line: string) => process.stdout.write(line + "\n");
  const progress = tty ? ttyProgress(process.stdout) : plainProgress(log);
  const ac = new AbortController();
  let hits = 0;
  const onSignal = () => {
    if (++hits > 1) process.exit(130);
    progress.line("weft: interrupted: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)");
    ac.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const nParams = job.spec.params.reduce((n, q) => n + q.shape.reduce((a, b) => a * b, 1), 0);
    const acc = (job.spec.accumulate ?? 1) > 1 ? ` (${job.spec.accumulate} micro-batches of ${job.spec.batch})` : "";
    log(`weft: training ${item.name.name} on ${backend.name}: ${job.spec.params.length} tensors, ${nParams} parameters, ${steps} steps of batch ${job.spec.batch * (job.spec.accumulate ?? 1)}${acc}${ck ? `, resuming at step ${ck.trainer.step}` : ""}`);
    const initial = ck ? undefined : await initialValuesOf(job, (v.init as string[] | undefined) ?? []);
    const files = new Map<string, Uint8Array>();
    if (tokenizerJson) files.set("tokenizer.json", tokenizerJson);
    const boundDims = Object.fromEntries(lowering.boundDims());
    files.set("dims.json", enc(JSON.stringify(boundDims) + "\n"));
    const res = await train(backend, job.spec, dataset, {
      seed,
      steps,
      logEvery: intOption(v, "log-every"),
      progress,
      initial,
      resume: ck,
      dir,
      saveEvery: intOption(v, "save-every"),
      keep: intOption(v, "keep"),
      files,
      metadata: { job: item.name.name, seed: String(seed) },
      onCheckpoint: (m) => writeCurves(dir, m, `${item.name.name}: loss`),
      eval: evalBackend && evalSet ? { backend: evalBackend, data: evalSet } : undefined,
      signal: ac.signal,
      debug: v.debug ? { diagnose: diagnoser(graph, job.updates) } : undefined,
    });
    const tensors = new Map<string, WritableTensor>();
    // stacked params (a repeat's) are saved slice by slice, under each layer's own name
    for (const q of job.spec.params) {
      for (const t of splitValues(q, res.params.get(q.path)!)) {
        tensors.set(t.name, q.dtype === "f32" || q.dtype === "f16" ? { dtype: "F32", shape: t.shape, data: Float32Array.from(t.data) } : { dtype: "I32", shape: t.shape, data: Int32Array.from(t.data) });
      }
    }
    await saveSafetensors(join(dir, "params.safetensors"), tensors, { job: item.name.name, steps: String(res.step), seed: String(seed) });
    const losses = res.losses;
    const first = losses[0]?.loss;
    const last = losses[losses.length - 1]?.loss;
    const ev = res.evals.length ? `; eval loss ${res.evals[res.evals.length - 1].loss.toFixed(4)}` : "";
    if (res.interrupted) {
      log(`weft: interrupted at step ${res.step}/${steps}; checkpoint ${res.checkpoint}; continue with: weft train ${file} --resume ${dir} --steps ${steps}`);
      return 130;
    }
    log(`weft: done in ${res.seconds.toFixed(1)} s; loss ${first?.toFixed(4)} → ${last?.toFixed(4)}${ev}; wrote ${join(dir, "params.safetensors")}`);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    backend.destroy();
    evalBackend?.destroy();
  }
}

// ------------------------------------------------------------------ sample

function evalDimExpr(e: Expr, dimsOf: Record<string, number>): number | undefined {
  if (e.kind === "number") return e.value;
  if (e.kind === "ident") return dimsOf[e.name];
  if (e.kind === "paren") return evalDimExpr(e.expr, dimsOf);
  if (e.kind === "binary") {
    const a = evalDimExpr(e.left, dimsOf);
    const b = evalDimExpr(e.right, dimsOf);
    if (a === undefined || b === undefined) return undefined;
    return e.op === "+" ? a + b : e.op === "-" ? a - b : e.op === "*" ? a * b : e.op === "/" ? Math.floor(a / b) : undefined;
  }
  return undefined;
}

/** The next token from one position's logits: greedy at temperature 0, else sampled. */
export function pickToken(logits: ArrayLike<number>, temperature: number, topK: number | undefined, u: number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature <= 0) return best;
  const idx = Array.from({ length: logits.length }, (_, i) => i);
  const keep = topK && topK < idx.length ? idx.sort((a, b) => logits[b] - logits[a]).slice(0, topK) : idx;
  const w = keep.map((i) => Math.exp((logits[i] - logits[best]) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let r = u * total;
  for (let k = 0; k < keep.length; k++) {
    r -= w[k];
    if (r <= 0) return keep[k];
  }
  return keep[keep.length - 1];
}

export async function sampleCmd(file: string, v: Values): Promise<number> {
  const from = v.from as string | undefined;
  if (!from) throw new UsageError("weft sample needs --from DIR (a run folder of weft train)");
  const ck = loadCheckpoint(resolve(from));
  const tj = ck.files.get("tokenizer.json");
  if (!tj) throw new InputError(`${ck.dir} has no tokenizer.json: weft sample needs a run whose data went through a tokenizer (jsonl("...", tokenizer = "chars"))`);
  const tokenizer: Tokenizer = tokenizerFromJson(JSON.parse(new TextDecoder().decode(tj)));
  const runDims = ck.files.has("dims.json") ? (JSON.parse(new TextDecoder().decode(ck.files.get("dims.json")!)) as Record<string, number>) : {};
  const entry = (v.entry as string | undefined) ?? "logits";
  const fn = load(file, { ...v, dim: [] }).entry.program.items.find((i) => i.kind === "fn" && i.name?.name === entry);
  if (!fn || fn.kind !== "fn") throw new UsageError(`${file} has no fn '${entry}' (weft sample calls fn ${entry}(model, ids) -> logits; name another with --entry)`);
  const idsParam = fn.params.find((q) => q.type?.kind === "tensorType");
  const blockParam = fn.params.find((q) => q.type?.kind === "namedType");
  if (!idsParam || idsParam.type?.kind !== "tensorType" || !blockParam) throw new UsageError(`fn ${entry} must take the model (a block) and the token ids (i32[B, T] or i32[T])`);
  // One sequence at a time: a named leading dim of the ids (the batch) becomes 1.
  const lead = (idsParam.type.dims ?? []).slice(0, -1).flatMap((d) => (d.kind === "ident" ? [d.name] : []));
  const dimsOf = { ...runDims, ...Object.fromEntries(lead.map((n) => [n, 1])), ...dims(v) };
  const p = load(file, { ...v, dim: Object.entries(dimsOf).map(([k, x]) => `${k}=${x}`) });
  const shape = (idsParam.type.dims ?? []).map((d) => (d.kind === "restDim" || d.kind === "inferDim" ? undefined : evalDimExpr(d, dimsOf)));
  if (!shape.length || shape.some((d) => d === undefined)) throw new UsageError(`fn ${entry}: the ids parameter needs a shape of known dims (the run's dims: ${Object.entries(runDims).map(([k, x]) => `${k}=${x}`).join(", ")})`);
  const ctx = shape[shape.length - 1]!;
  const rows = shape.slice(0, -1).reduce((a: number, b) => a * b!, 1);
  const lowered = lowerFunction(p, entry, new Map([[idsParam.name.name, { shape: shape as number[], dtype: "i32" as const }]]), { dims: dimsOf });
  if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
  const { graph, params } = lowered.value;
  const backend: Backend = await backendFor(v, graph);
  try {
    const found = valuesFrom(ck.dir, ck.params, params, blockParam.name.name);
    for (const q of params) backend.write(q.path, paramValues(q, 0, found));
    const outT = graph.type(graph.outputs.get("out")!);
    const V = outT.shape[outT.shape.length - 1];
    if (V !== tokenizer.vocabSize) throw new InputError(`fn ${entry} returns logits over ${V} ids, the tokenizer has ${tokenizer.vocabSize}`);
    const prompt = (v.prompt as string | undefined) ?? "";
    const ids = prompt ? tokenizer.encode(prompt) : [0];
    const start = prompt ? ids.length : 1;
    const length = intOption(v, "length") ?? 200;
    const temperature = v.temperature === undefined ? 1 : Number(v.temperature);
    if (!(temperature >= 0)) throw new UsageError(`--temperature must be ≥ 0, got '${String(v.temperature)}'`);
    const topK = intOption(v, "top-k");
    const rand = uniformStream(intOption(v, "seed") ?? 0, "weft sample");
    process.stdout.write(prompt);
    let printed = tokenizer.decode(ids.slice(start));
    process.stdout.write(printed);
    for (let n = 0; n < length; n++) {
      const window = ids.slice(-ctx);
      const input = new Int32Array(rows * ctx);
      for (let r = 0; r < rows; r++) input.set(window, r * ctx);
      backend.write(idsParam.name.name, input);
      const out = (await backend.run(["out"])).get("out")!;
      const pos = window.length - 1;
      const next = pickToken(out.subarray(pos * V, (pos + 1) * V), temperature, topK, rand());
      ids.push(next);
      const text = tokenizer.decode(ids.slice(start));
      if (text.startsWith(printed)) process.stdout.write(text.slice(printed.length));
      printed = text;
    }
    process.stdout.write("\n");
    return 0;
  } finally {
    backend.destroy();
  }
}
