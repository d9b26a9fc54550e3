// Shared by the training suites: write a job to a scratch folder, lower it the way
// `weft train` does, and run it on the reference interpreter or on WebGPU.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dataReader } from "../../cli/train.ts";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { hasErrors, loadProgram, lowerJob, type LoweredJob } from "../../compiler/index.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import type { Backend } from "../../runtime/backend.ts";
import type { Dataset } from "../../runtime/data.ts";
import { ReferenceBackend } from "../../runtime/reference/backend.ts";
import { train, type TrainOptions, type TrainResult } from "../../runtime/train.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";

// dawn-node wants a private runtime dir; give it one when the environment has none.
if (!process.env.XDG_RUNTIME_DIR) {
  const dir = mkdtempSync(join(tmpdir(), "weft-xdg-"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.env.XDG_RUNTIME_DIR = dir;
}

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const FIXTURES = join(ROOT, "test/train/fixtures");
export const LINREG = readFileSync(join(FIXTURES, "linreg.jsonl"), "utf8");

const scratch: string[] = [];
export function tempDir(prefix = "weft-train-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(d);
  return d;
}
export function cleanup(): void {
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Writes `source` as job.weft beside the given data files; returns the .weft path. */
export function writeJob(source: string, files: Record<string, string> = {}, dir = tempDir()): string {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const file = join(dir, "job.weft");
  writeFileSync(file, source);
  return file;
}

export interface Job {
  lowered: LoweredJob;
  data: Dataset;
  evalData?: Dataset;
}

/** Loads, checks and lowers a file's only train job, as `weft train` does. */
export function lowerFile(file: string, dims?: Record<string, number>): Job {
  const p = loadProgram(file, { dims });
  if (hasErrors(p.diagnostics)) throw new Error(p.diagnostics.map((d) => formatDiagnostic(d, undefined, false)).join("\n"));
  const r = dataReader();
  const res = lowerJob(p, undefined, r.read, { dims });
  if (!res.ok) throw new Error(res.diagnostics.map((d) => formatDiagnostic(d, undefined, false)).join("\n"));
  const job = res.value.job;
  return {
    lowered: res.value,
    data: r.get(job.data.file, job.data.options),
    evalData: job.eval ? r.get(job.eval.data.file, { ...job.eval.data.options, evalOf: job.data.file }) : undefined,
  };
}

/** The diagnostics' text when a job fails to check or lower (throws if it lowers). */
export function lowerError(file: string): string {
  try {
    lowerFile(file);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${file} lowered without an error`);
}

export function reference(j: Job): Backend {
  return new ReferenceBackend(j.lowered.graph, evaluators(), j.lowered.job.updates);
}

export function gpuBackend(h: GpuHandle, j: Job): Promise<Backend> {
  return GpuBackend.load(h, compileBundle(j.lowered.graph, { updates: j.lowered.job.updates }));
}

export async function evalBackend(j: Job, h?: GpuHandle): Promise<Backend | undefined> {
  const ev = j.lowered.job.eval;
  if (!ev) return undefined;
  return h ? GpuBackend.load(h, compileBundle(ev.graph)) : new ReferenceBackend(ev.graph, evaluators());
}

/** Trains on `backend` (destroyed after), logging every step. */
export async function run(backend: Backend, j: Job, opts: Partial<TrainOptions> & { seed?: number } = {}): Promise<TrainResult> {
  try {
    return await train(backend, j.lowered.job.spec, j.data, { seed: 0, logEvery: 1, ...opts });
  } finally {
    backend.destroy();
  }
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, abs: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= abs + rel * Math.abs(expected[i]))) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${err.toExponential(2)}, allowed ${(abs + rel * Math.abs(expected[i])).toExponential(2)})`);
    }
  }
}
