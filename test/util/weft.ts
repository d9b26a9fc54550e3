// Running a Weft fn from a test, through the same library calls the CLI uses.
import { resolve } from "node:path";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { hasErrors, formatDiagnostic } from "../../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, type InputType } from "../../compiler/index.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { toStorage, type Backend, type HostArray } from "../../runtime/backend.ts";
import type { DType } from "../../runtime/bundle.ts";
import { paramValues } from "../../runtime/init.ts";
import { splitValues } from "../../runtime/stacked.ts";
import { ReferenceBackend } from "../../runtime/reference/backend.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";

export const ROOT = resolve(import.meta.dirname, "../..");

export interface TensorIn {
  shape: number[];
  data: ArrayLike<number>;
  dtype?: DType;
}

export interface FnRun {
  outputs: Map<string, HostArray>;
  /** the parameter values used, by path (a repeat's stacked params: per layer, by each layer's own path) */
  params: Map<string, Float64Array>;
}

export async function runFn(
  file: string,
  entry: string,
  inputs: Record<string, TensorIn>,
  opts: { dims?: Record<string, number>; backend: "reference" | "webgpu"; seed?: number; params?: Map<string, ArrayLike<number>>; wrt?: string[] },
): Promise<FnRun> {
  const p = loadProgram(resolve(ROOT, file), { dims: opts.dims });
  if (hasErrors(p.diagnostics)) throw new Error(p.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  const types = new Map<string, InputType>(Object.entries(inputs).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype ?? "f32" }]));
  const lowered = lowerFunction(p, entry, types, { dims: opts.dims, wrt: opts.wrt });
  if (!lowered.ok) throw new Error(lowered.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  const { graph, params } = lowered.value;
  const backend: Backend = opts.backend === "reference" ? new ReferenceBackend(graph, evaluators()) : await GpuBackend.load(await gpu(), compileBundle(graph));
  try {
    const used = new Map<string, Float64Array>();
    // given values by path; a stacked param (a repeat's) also slice by slice, by each layer's own name
    const given = new Map([...(opts.params ?? [])].map(([k, x]) => [k, Float64Array.from(x)]));
    for (const q of params) {
      const v = Float64Array.from(paramValues(q, opts.seed ?? 0, given));
      for (const t of splitValues(q, v)) used.set(t.name, t.data);
      backend.write(q.path, toStorage(v, q.dtype));
    }
    for (const [k, t] of Object.entries(inputs)) backend.write(k, toStorage(t.data, t.dtype ?? "f32"));
    const outputs = await backend.run([...graph.outputs.keys()]);
    return { outputs, params: used };
  } finally {
    backend.destroy();
  }
}

/** max over elements of |a − b| / max(|b|, floor) */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
}

/** Deterministic uniform numbers in [lo, hi), rounded to float32 so both back ends see the same inputs. */
export function uniforms(n: number, seed: number, lo = -1, hi = 1): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(Math.fround(lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296)));
  }
  return out;
}
