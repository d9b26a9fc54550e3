// Compiling the bench's Weft programs through the library calls the CLI uses.
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { compileBundle } from "../compiler/codegen/bundle.ts";
import { formatDiagnostic, hasErrors } from "../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, lowerJob, type InputType, type LoadedProgram } from "../compiler/index.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import type { ParamInfo } from "../compiler/lower/lower.ts";
import type { TrainJob } from "../compiler/lower/train.ts";
import type { Bundle } from "../runtime/bundle.ts";
import type { FieldInfo } from "../runtime/data.ts";
import type { DeviceProfile } from "../runtime/profile.ts";

export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));

export class WeftCompileError extends Error {
  override name = "WeftCompileError";
}

function loaded(file: string, dims?: Record<string, number>): LoadedProgram {
  const p = loadProgram(resolve(BENCH_DIR, file), { dims });
  if (hasErrors(p.diagnostics)) throw new WeftCompileError(p.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return p;
}

export interface CompiledFn {
  bundle: Bundle;
  params: ParamInfo[];
}

/**
 * Lowers fn `entry` of a bench file (inputs all f32 of the given shapes); `wrt`: gradients as
 * outputs `grad.<name>`; `device`: the profile to compile for (GpuHandle.profile), as `weft run` does.
 */
export function compileFn(
  file: string,
  entry: string,
  inputs: Record<string, number[]>,
  opts: { dims?: Record<string, number>; wrt?: (params: ParamInfo[]) => string[]; device?: DeviceProfile } = {},
): CompiledFn {
  const p = loaded(file, opts.dims);
  const types = new Map<string, InputType>(Object.entries(inputs).map(([k, s]) => [k, { shape: s, dtype: "f32" }]));
  let l = lowerFunction(p, entry, types, { dims: opts.dims });
  if (l.ok && opts.wrt) l = lowerFunction(p, entry, types, { dims: opts.dims, wrt: opts.wrt(l.value.params) });
  if (!l.ok) throw new WeftCompileError(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return { bundle: compileBundle(l.value.graph, { device: opts.device }), params: l.value.params };
}

export interface CompiledJob {
  bundle: Bundle;
  job: TrainJob;
}

/** Lowers a train job of a bench file to its step graph; the data file is not read, its fields are given. */
export function lowerJobGraph(file: string, entry: string, fields: FieldInfo[], dims?: Record<string, number>): { graph: Graph; updates: Map<string, number>; job: TrainJob } {
  const p = loaded(file, dims);
  const l = lowerJob(p, entry, () => fields, { dims });
  if (!l.ok) throw new WeftCompileError(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return { graph: l.value.graph, updates: l.value.job.updates, job: l.value.job };
}

/** A train job's step as a bundle (memory-planned, as Weft runs it), for `device` if given. */
export function compileJob(file: string, entry: string, fields: FieldInfo[], dims?: Record<string, number>, device?: DeviceProfile): CompiledJob {
  const { graph, updates, job } = lowerJobGraph(file, entry, fields, dims);
  return { bundle: compileBundle(graph, { updates, device }), job };
}
