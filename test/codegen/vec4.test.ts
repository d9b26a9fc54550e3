// Element kernels that compute four elements a thread (vec4 loads and stores of the
// tensors read at the kernel's own elements), against the float64 reference on the GPU,
// poisoned: every output element must be written. Tolerance: f32 rounding of a few ops.
import { describe, expect, it } from "vitest";
import { compileBundle, type CompileOptions } from "../../compiler/codegen/bundle.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, MODELS_DIR, type InputType } from "../../compiler/index.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { mT } from "../../compiler/ops/build.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";

const SRC = `
dim N = 4096, R = 6, C = 12, O = 7
fn chain(x: f32[N], a: f32[N], b: f32[N], c: f32[N]) -> f32[N] = gelu(x * a + b, approximate = "tanh") * c
fn bias(x: f32[R, C], v: f32[C]) -> f32[R, C] = relu(x + v) * 2.0
fn rows(x: f32[R, C], m: f32[R]) -> f32[R, C] = x - m[:, None] + cast(positions(C))
fn odd(x: f32[O]) -> f32[O] = tanh(x) * x
fn compare(x: f32[R, C], y: f32[R, C]) -> f32[R, C] = where(x > y, x * y, cast(x < 0.0))
`;

function lower(entry: string, inputs: Record<string, number[]>) {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/v.weft" ? SRC : undefined) };
  const p = loadProgram("/virtual/v.weft", { host });
  const types = new Map<string, InputType>(Object.entries(inputs).map(([k, s]) => [k, { shape: s, dtype: "f32" }]));
  const l = lowerFunction(p, entry, types);
  if (!l.ok) throw new Error(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return l.value.graph;
}

const cases: [string, Record<string, number[]>, boolean][] = [
  ["chain", { x: [4096], a: [4096], b: [4096], c: [4096] }, true],
  ["bias", { x: [6, 12], v: [12] }, true],
  ["rows", { x: [6, 12], m: [6] }, true],
  ["odd", { x: [7] }, false],
  ["compare", { x: [6, 12], y: [6, 12] }, true],
];

/** Each output of `g` on the GPU (poisoned) against the reference. */
async function compare(g: Graph, shapes: Record<string, number[]>, seed: number, options: CompileOptions = { vec4MinElements: 4 }) {
  const r = rng(seed);
  const feeds: Record<string, RefTensor> = {};
  for (const [k, s] of Object.entries(shapes)) {
    const t = randomTensor(s, r);
    t.data.set(Float32Array.from(t.data));
    feeds[k] = t;
  }
  const outs = [...g.outputs.keys()];
  const { got, want } = await runBoth(g, feeds, outs, () => options);
  for (const o of outs) {
    const w = want.get(o)!.data;
    const v = got.get(o)!;
    expect(v.length).toBe(w.length);
    for (let i = 0; i < w.length; i++) expect(Math.abs(v[i] - w[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(w[i])));
  }
}

// (small tensors here: the default threshold, 2^20 elements, is lowered to 4)
const heads = (g: Graph) => compileBundle(g, { vec4MinElements: 4 }).kernels.map((k) => k.wgsl.split("\n")[0]);

describe("vec4 element kernels (WebGPU)", () => {
  it("apply from 2^20 elements by default (below, the JIT cost of the longer kernel outweighs its runs)", () => {
    const small = lower("chain", { x: [4096], a: [4096], b: [4096], c: [4096] });
    expect(compileBundle(small).kernels[0].wgsl).not.toContain("4 elements a thread");
    const g = new Graph();
    const x = g.source("input", "x", { shape: [1 << 20], dtype: "f32" });
    g.output("y", g.add("tanh", [x]));
    expect(compileBundle(g).kernels[0].wgsl).toContain("4 elements a thread");
  });

  it("x + transpose(exp(x)) of a square x: the x under the transpose is read at other elements", async () => {
    const g = new Graph();
    const x = g.source("input", "x", { shape: [8, 8], dtype: "f32" });
    g.output("y", g.add("add", [x, mT(g, g.add("exp", [x]))]));
    expect(heads(g).some((h) => h.includes("(4 elements a thread)"))).toBe(true);
    await compare(g, { x: [8, 8] }, 5);
  });

  it("split past a small binding limit: chunks of the vec4 launch", async () => {
    const g = new Graph();
    const n = 100_000; // 400 KB a tensor, a 64 KiB limit
    const x = g.source("input", "x", { shape: [n], dtype: "f32" });
    const y = g.source("input", "y", { shape: [n], dtype: "f32" });
    g.output("z", g.add("mul", [g.add("tanh", [x]), y]));
    const options: CompileOptions = { vec4MinElements: 4, device: { ...PORTABLE, limits: { ...PORTABLE.limits, maxStorageBufferBindingSize: 64 << 10 } } };
    const [k] = compileBundle(g, options).kernels;
    expect(k.wgsl).toContain("4 elements a thread");
    expect(k.chunks?.length).toBeGreaterThan(1);
    await compare(g, { x: [n], y: [n] }, 9, options);
  });

  for (const [entry, shapes, vec] of cases) {
    it(`${entry}: ${vec ? "four elements a thread" : "one element a thread"}, as the reference`, async () => {
      const g = lower(entry, shapes);
      expect(heads(g).some((h) => h.includes("(4 elements a thread)")), heads(g).join("; ")).toBe(vec);
      await compare(g, shapes, entry.length * 7);
    });
  }
});
