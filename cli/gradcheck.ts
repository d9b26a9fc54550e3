// `weft gradcheck FILE --entry FN`: the compiler's gradients of a user's scalar fn against
// float64 central differences, for every f32 input and parameter, on the reference back end.
import { readInputs, InputError } from "./io.ts";
import { evaluators } from "../compiler/ops/index.ts";
import { lowerFunction } from "../compiler/index.ts";
import { paramValues } from "../runtime/init.ts";
import { fileTensors } from "../runtime/stacked.ts";
import { interpret } from "../runtime/reference/interpret.ts";
import type { RefTensor } from "../runtime/reference/tensor.ts";
import { loadSafetensors } from "../runtime/safetensors.ts";
import { dims, intOption, load, UserFailure, type Values } from "./main.ts";

/** Elements probed per tensor: all of a small one, an even spread of a large one. */
const PROBES = 24;

export interface GradcheckRow {
  name: string;
  shape: number[];
  probed: number;
  worstRelError: number;
  /** every path to the output passes through stop(...) */
  stopped?: boolean;
}

export async function gradcheckCmd(file: string, v: Values): Promise<number> {
  const entry = v.entry as string | undefined;
  if (!entry) throw new InputError("weft gradcheck needs --entry FN");
  const p = load(file, v);
  const given = v.inputs ? readInputs(v.inputs as string) : new Map<string, { shape: number[]; data: number[] }>();
  const fn = p.entry.program.items.find((i) => i.kind === "fn" && i.name?.name === entry);
  const types = new Map(
    [...given].map(([k, t]) => {
      const prm = fn?.kind === "fn" ? fn.params.find((q) => q.name.name === k) : undefined;
      const declared = prm?.type?.kind === "tensorType" ? prm.type.dtype.name : undefined;
      const dtype = declared === "i32" || declared === "bool" || declared === "f16" ? declared : "f32";
      return [k, { shape: t.shape, dtype }] as const;
    }),
  );
  // First lowering: which tensors there are; the second differentiates with respect to all f32 ones.
  const first = lowerFunction(p, entry, types, { dims: dims(v) });
  if (!first.ok) throw new UserFailure(first.diagnostics, p);
  const wrt = [
    ...first.value.inputs.filter((i) => i.dtype === "f32").map((i) => i.name),
    ...first.value.params.filter((q) => q.dtype === "f32").map((q) => q.path),
  ];
  // (f16 values are left out: finite differences of a program that rounds to halves measure the rounding)
  if (!wrt.length) throw new InputError(`${entry} has no f32 input or parameter to differentiate${[...first.value.inputs, ...first.value.params].some((t) => t.dtype === "f16") ? " (gradcheck differentiates f32 values only: check an f16 program's f32 twin)" : ""}`);
  const lowered = lowerFunction(p, entry, types, { dims: dims(v), wrt });
  if (!lowered.ok) throw new UserFailure(lowered.diagnostics, p);
  const { graph, params } = lowered.value;

  const seed = intOption(v, "seed") ?? 0;
  const ckpt = v.params ? await loadSafetensors(v.params as string) : undefined;
  const sources = new Map<string, RefTensor>();
  for (const q of params) {
    // a stacked param (a repeat's) is read slice by slice, by each layer's own name
    const given = ckpt && new Map(fileTensors(q).flatMap((f) => (ckpt.has(f.name) ? [[f.name, Float64Array.from(ckpt.get(f.name)!.data as ArrayLike<number>)] as const] : [])));
    sources.set(q.path, { shape: q.shape, data: Float64Array.from(paramValues(q, seed, given)) });
  }
  for (const [k, t] of given) sources.set(k, { shape: t.shape, data: Float64Array.from(t.data) });

  const table = evaluators();
  const analytic = interpret(graph, sources, table);
  const f = (src: Map<string, RefTensor>) => interpret({ nodes: graph.nodes, outputs: new Map([["out", graph.outputs.get("out")!]]) }, src, table).get("out")!.data[0];

  // Inputs whose every path to the output passes through stop(...) have a zero gradient by
  // design, though finite differences see them: report them as stopped, not as errors.
  const out = graph.outputs.get("out")!;
  const reaches = (source: number): boolean => {
    const live = new Uint8Array(graph.nodes.length);
    live[source] = 1;
    for (const node of graph.nodes) {
      if (node.id > source && node.op !== "stop" && node.inputs.some((i) => live[i])) live[node.id] = 1;
    }
    return live[out] === 1;
  };

  const rows: GradcheckRow[] = [];
  for (const name of wrt) {
    if (!reaches(graph.sources.get(name)!)) {
      rows.push({ name, shape: [...sources.get(name)!.shape], probed: 0, worstRelError: 0, stopped: true });
      continue;
    }
    const x = sources.get(name)!;
    const g = analytic.get(`grad.${name}`)!.data;
    const n = x.data.length;
    const picks = n <= PROBES ? [...Array(n).keys()] : [...Array(PROBES).keys()].map((k) => Math.floor((k * (n - 1)) / (PROBES - 1)));
    let worst = 0;
    for (const i of picks) {
      const h = 1e-6 * Math.max(1, Math.abs(x.data[i]));
      const saved = x.data[i];
      x.data[i] = saved + h;
      const up = f(sources);
      x.data[i] = saved - h;
      const down = f(sources);
      x.data[i] = saved;
      const num = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(g[i] - num) / Math.max(Math.abs(g[i]), Math.abs(num), 1e-8));
    }
    rows.push({ name, shape: x.shape as number[], probed: picks.length, worstRelError: worst });
  }
  const width = Math.max(...rows.map((r) => r.name.length), 5);
  process.stdout.write(`${"input".padEnd(width)}  shape            probed  worst relative error\n`);
  for (const r of rows) {
    const flag = r.worstRelError > 1e-4 ? "   <- check this" : "";
    const err = r.stopped ? "— (only through stop(...): no gradient by design)" : `${r.worstRelError.toExponential(2)}${flag}`;
    process.stdout.write(`${r.name.padEnd(width)}  ${`[${r.shape.join(", ")}]`.padEnd(15)}  ${String(r.probed).padStart(6)}  ${err}\n`);
  }
  // float64 central differences agree with exact gradients to ~1e-8 on smooth functions;
  // a kink (relu, max, abs) within h of a probed point can exceed it legitimately.
  return rows.some((r) => r.worstRelError > 1e-4) ? 1 : 0;
}
