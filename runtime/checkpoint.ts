// Checkpoints: everything a run needs to continue exactly where it stopped.
//
//   DIR/checkpoints/step-000120/params.safetensors     parameters, named by path (HF/PyTorch readable)
//                              optimizer.safetensors  optimizer state (opt.m.<path>, opt.v.<path>, …)
//                              trainer.json           step, seed, data position, metrics so far
//                              tokenizer.json         when the data went through one
//   DIR/checkpoints/latest                            "step-000120"
//
// A checkpoint is written into a temporary folder, every file fsynced, and the folder
// renamed into place; only then does `latest` move (written atomically), and only then
// are older checkpoints deleted. A kill at any moment leaves `latest` naming a whole
// checkpoint. Tensors keep the back end's precision: f32 on WebGPU; f64 on the float64
// reference, so that a resumed reference run is bit-identical too.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { HostArray } from "./backend.ts";
import { decodeSafetensors, encodeSafetensors, safetensorsMetadata, SafetensorsError, syncDir, writeFileAtomic, writeSynced, type WritableTensor } from "./safetensors.ts";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** One line of metrics.jsonl. */
export interface MetricRecord {
  step: number;
  loss?: number;
  eval_loss?: number;
  lr?: number;
  grad_norm?: number;
  /** the loss scale the step used (dynamic loss scaling) */
  loss_scale?: number;
}

export interface TrainerState {
  version: 1;
  /** optimizer steps completed */
  step: number;
  seed: number;
  /** the schedule's length (the job's `steps`) */
  horizon: number;
  /** where the training batcher stands */
  data: { epoch: number; pos: number };
  /** metrics logged so far (what metrics.jsonl held at this step) */
  metrics: MetricRecord[];
  job?: string;
}

export interface NamedTensor {
  shape: number[];
  data: HostArray;
}

export interface Checkpoint {
  dir: string;
  params: Map<string, NamedTensor>;
  state: Map<string, NamedTensor>;
  trainer: TrainerState;
  /** other files saved beside (tokenizer.json), by name */
  files: Map<string, Uint8Array>;
}

const STEP_DIR = /^step-(\d+)$/;
export const stepDirName = (step: number): string => `step-${String(step).padStart(6, "0")}`;

function toWritable(name: string, t: NamedTensor): WritableTensor {
  const d = t.data;
  if (d instanceof Float64Array) return { dtype: "F64", shape: t.shape, data: d };
  if (d instanceof Float32Array) return { dtype: "F32", shape: t.shape, data: d };
  if (d instanceof Int32Array) return { dtype: "I32", shape: t.shape, data: d };
  if (d instanceof Uint32Array) return { dtype: "I32", shape: t.shape, data: new Int32Array(d.buffer, d.byteOffset, d.length) };
  throw new CheckpointError(`tensor ${name}: cannot save this array type`);
}


export function encodeTensors(tensors: Map<string, NamedTensor>, metadata?: Record<string, string>): Uint8Array {
  const m = new Map<string, WritableTensor>();
  for (const [k, t] of tensors) m.set(k, toWritable(k, t));
  return encodeSafetensors(m, metadata);
}

/** Writes a checkpoint under `runDir/checkpoints/`, keeping the newest `keep`. Returns its folder. */
export async function saveCheckpoint(runDir: string, ck: Omit<Checkpoint, "dir">, opts: { keep?: number; metadata?: Record<string, string> } = {}): Promise<string> {
  const root = join(runDir, "checkpoints");
  mkdirSync(root, { recursive: true });
  const name = stepDirName(ck.trainer.step);
  const final = join(root, name);
  // A step saved before (a run resumed from it and stopped again at once) holds the
  // same values: keep it, and only point `latest` at it.
  if (!existsSync(join(final, "trainer.json"))) {
    const tmp = join(root, `.tmp-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(tmp);
    try {
      const meta = { ...opts.metadata, step: String(ck.trainer.step) };
      await writeSynced(join(tmp, "params.safetensors"), encodeTensors(ck.params, meta));
      await writeSynced(join(tmp, "optimizer.safetensors"), encodeTensors(ck.state, meta));
      for (const [f, bytes] of ck.files) await writeSynced(join(tmp, f), bytes);
      await writeSynced(join(tmp, "trainer.json"), new TextEncoder().encode(JSON.stringify(ck.trainer) + "\n"));
      await syncDir(tmp);
      rmSync(final, { recursive: true, force: true }); // a folder without trainer.json is not a checkpoint
      renameSync(tmp, final);
      await syncDir(root);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  await writeFileAtomic(join(root, "latest"), new TextEncoder().encode(name + "\n"));
  // Prune: older whole checkpoints beyond `keep`, and temp folders of dead writers.
  const keep = Math.max(1, opts.keep ?? 2);
  // Checkpoints past this step belong to a run this one replaced.
  const steps = listCheckpoints(runDir);
  const older = steps.filter((s) => s <= ck.trainer.step);
  const drop = [...older.slice(0, Math.max(0, older.length - keep)), ...steps.filter((s) => s > ck.trainer.step)];
  for (const s of drop) rmSync(join(root, stepDirName(s)), { recursive: true, force: true });
  for (const f of readdirSync(root)) if (f.startsWith(".tmp-") && !f.includes(`-${process.pid}-`)) rmSync(join(root, f), { recursive: true, force: true });
  return join(root, name);
}

/** Steps of the whole checkpoints in a run folder, ascending. */
export function listCheckpoints(runDir: string): number[] {
  const root = join(runDir, "checkpoints");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((f) => STEP_DIR.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(root, m[0], "trainer.json")))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The folder of the checkpoint to resume from: `latest`, else the newest. */
export function latestCheckpoint(runDir: string): string | undefined {
  const root = join(runDir, "checkpoints");
  try {
    const name = readFileSync(join(root, "latest"), "utf8").trim();
    if (STEP_DIR.test(name) && existsSync(join(root, name, "trainer.json"))) return join(root, name);
  } catch {
    /* no pointer: fall back to the newest folder */
  }
  const steps = listCheckpoints(runDir);
  return steps.length ? join(root, stepDirName(steps[steps.length - 1])) : undefined;
}

function readTensors(file: string): Map<string, NamedTensor> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new CheckpointError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const out = new Map<string, NamedTensor>();
    for (const [k, t] of decodeSafetensors(bytes)) {
      if (t.dtype !== "F32" && t.dtype !== "F64" && t.dtype !== "I32") throw new CheckpointError(`${file}: tensor ${k} is ${t.dtype}; checkpoints hold F32, F64 or I32`);
      out.set(k, { shape: t.shape, data: t.data });
    }
    return out;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(`${file}: ${e.message}`);
    throw e;
  }
}

/** Loads a checkpoint from a run folder (its latest) or from a checkpoint folder. */
export function loadCheckpoint(dir: string): Checkpoint {
  const ckDir = existsSync(join(dir, "trainer.json")) ? dir : latestCheckpoint(dir);
  if (!ckDir) throw new CheckpointError(`${dir}: no checkpoint to resume from (expected ${join(dir, "checkpoints", "latest")})`);
  let trainer: TrainerState;
  try {
    trainer = JSON.parse(readFileSync(join(ckDir, "trainer.json"), "utf8")) as TrainerState;
  } catch (e) {
    throw new CheckpointError(`${join(ckDir, "trainer.json")}: ${(e as Error).message}`);
  }
  if (trainer.version !== 1 || !Number.isInteger(trainer.step)) throw new CheckpointError(`${join(ckDir, "trainer.json")}: not a Weft trainer state`);
  const files = new Map<string, Uint8Array>();
  for (const f of readdirSync(ckDir)) {
    if (f === "trainer.json" || f.endsWith(".safetensors")) continue;
    files.set(f, readFileSync(join(ckDir, f)));
  }
  return { dir: ckDir, params: readTensors(join(ckDir, "params.safetensors")), state: readTensors(join(ckDir, "optimizer.safetensors")), trainer, files };
}

export { safetensorsMetadata };
