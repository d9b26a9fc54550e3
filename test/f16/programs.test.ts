// Weft programs on f16 tensors, through the whole compiler: the fusion patterns of the
// f32 suite (test/codegen/fusion.test.ts) in f16 compile to as many kernels as in f32 and
// compute, on the GPU, what the reference interpreter computes with its f16 rounding.
// Plus what the checker and the lowering say about f16 programs.
//
// Tolerance: 3 f16 ulps of the reference value per element (test/f16/ops.test.ts says
// where one or two come from; a fused chain can carry one node's 1-ulp difference into
// the next), and exact for integers.
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, MODELS_DIR, type InputType } from "../../compiler/index.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { toStorage } from "../../runtime/backend.ts";
import type { DType } from "../../runtime/bundle.ts";
import { f16Round } from "../../runtime/f16.ts";
import { interpret } from "../../runtime/reference/interpret.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { checkSource } from "../check/harness.ts";
import { uniforms } from "../util/weft.ts";
import { worstExcess } from "./half.ts";

const SRC = `
dim N = 4096, R = 37, C = 129, K = 21
fn gelu_affine(x: f16[N], a: f16[N], b: f16[N], c: f16[N]) -> f16[N] = gelu(x * a + b) * c
fn rows(x: f16[R, C]) -> f16[R, C] = softmax(x, C)
fn norm(x: f16[R, C]) -> f16[R, C] = layer_norm(x, C) * 2.0 + 1.0
fn dense(x: f16[R, C], w: f16[C, K], b: f16[K], y: f16[R, K]) -> f16[R, K] = tanh(x @ w + b) * y
fn xent(z: f16[R, K], t: i32[R]) -> f16 = cross_entropy(z, t)
fn stats(x: f16[R, C]) -> f16[R] = std(x, C) + mean(x, C)
fn big_mean(x: f16[N, K]) -> f16 = mean(x * 100.0)
fn mixed(x: f16[R, C], w: f32[C, K]) -> f32[R, K] = cast(x) @ w + 0.5
fn half_from_f32(x: f32[R, C]) -> f16[R, C] = cast(x, f16) * 3.0
`;

/** The same program with every f16 made f32 (casts to f16 dropped), for the kernel counts. */
const SRC32 = SRC.replace(/, f16\)/g, ")").replace(/f16/g, "f32");

function lower(source: string, entry: string, inputs: Record<string, { shape: number[]; dtype: DType }>) {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/t.weft" ? source : undefined) };
  const p = loadProgram("/virtual/t.weft", { host });
  if (p.diagnostics.length) throw new Error(p.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  const l = lowerFunction(p, entry, new Map<string, InputType>(Object.entries(inputs)));
  if (!l.ok) throw new Error(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return l.value.graph;
}

type Inputs = Record<string, { shape: number[]; dtype: DType; range?: [number, number] }>;

async function check(entry: string, inputs: Inputs, kernels: number) {
  const g = lower(SRC, entry, inputs);
  const bundle = compileBundle(g);
  expect(bundle.kernels.length, bundle.kernels.map((k) => k.name).join(", ")).toBe(kernels);
  // as many kernels as the same program in f32
  const as32 = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { ...t, dtype: t.dtype === "f16" ? "f32" : t.dtype }]));
  expect(compileBundle(lower(SRC32, entry, as32)).kernels.length).toBe(kernels);
  // every kernel reading or writing f16 enables it
  for (const k of bundle.kernels) if (/\bf16\b/.test(k.wgsl.replace(/\/\/[^\n]*/g, ""))) expect(k.wgsl.startsWith("enable f16;")).toBe(true);
  const feeds = new Map(
    Object.entries(inputs).map(([k, t], i) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const [lo, hi] = t.range ?? [-2, 2];
      let data = Float64Array.from(uniforms(n, 200 + i, lo, hi));
      if (t.dtype === "i32") data = data.map(Math.floor);
      if (t.dtype === "f16") data = data.map(f16Round);
      return [k, { shape: t.shape, data }];
    }),
  );
  const want = interpret(g, feeds, evaluators()).get("out")!;
  const backend = await GpuBackend.load(await gpu(), bundle, { poison: true });
  try {
    for (const [k, v] of feeds) backend.write(k, toStorage(v.data, inputs[k].dtype));
    const got = (await backend.run(["out"])).get("out")!;
    const dtype = g.type(g.outputs.get("out")!).dtype;
    const { excess, at } = worstExcess(got, want.data, dtype, 3);
    expect(excess, at >= 0 ? `element ${at}: gpu ${got[at]} vs reference ${want.data[at]}` : "").toBeLessThanOrEqual(0);
    return got;
  } finally {
    backend.destroy();
  }
}

const h = (...shape: number[]) => ({ shape, dtype: "f16" as const });

describe("f16 programs: fusion as in f32, values as the reference's", () => {
  it("gelu(x*a+b)*c is one kernel", () => check("gelu_affine", { x: h(4096), a: h(4096), b: h(4096), c: h(4096) }, 1));
  it("softmax over an axis: 3 kernels (computed in f32 inside, read and written as f16)", () => check("rows", { x: h(37, 129) }, 3));
  it("layer_norm with an affine epilogue: 3 kernels", () => check("norm", { x: h(37, 129) }, 3));
  it("a matmul with its epilogue (bias, tanh, another tensor): one kernel", () => check("dense", { x: h(37, 129), w: h(129, 21), b: h(21), y: h(37, 21) }, 1));
  it("cross_entropy of f16 logits", () => check("xent", { z: { ...h(37, 21), range: [-4, 4] }, t: { shape: [37], dtype: "i32", range: [0, 21] } }, 4));
  it("std and mean along an axis", () => check("stats", { x: h(37, 129) }, 3));
  it("the mean of 86,016 values near 100: its sum (~8.6e6) is past f16's range, the mean is not", async () => {
    const got = await check("big_mean", { x: { ...h(4096, 21), range: [0.5, 1.5] } }, 3);
    expect(got[0]).toBeGreaterThan(90);
    expect(got[0]).toBeLessThan(110);
  });
  // (a matmul reads its operands from buffers: the cast is a kernel of its own, as in f32)
  it("f16 and f32 meet through cast: cast(x) @ w in f32", () => check("mixed", { x: h(37, 129), w: { shape: [129, 21], dtype: "f32" } }, 2));
  it("cast(x, f16) of f32 input", () => check("half_from_f32", { x: { shape: [37, 129], dtype: "f32", range: [-30000, 30000] } }, 1));
});

describe("the checker and the lowering on f16", () => {
  it("f32 and f16 do not mix without a cast, and the hint says which", () => {
    const r = checkSource("dim N\nfn f(x: f16[N], y: f32[N]) -> f16[N] = x + y");
    expect(r.lines).toEqual(["2:40 W0201 `+` needs operands of one dtype: f16[N] and f32[N] (f16 vs f32)"]);
    expect(r.errors[0].hint).toBe("convert with cast(x, f16)");
    const m = checkSource("dim N, K\nfn f(x: f16[N, K], w: f32[K, N]) -> f16[N, N] = x @ w");
    expect(m.lines).toEqual(["2:49 W0201 `@` needs operands of one dtype: f16[N, K] @ f32[K, N] (f16 vs f32)"]);
  });
  it("a number adopts the f16 of the tensor it meets; casts convert both ways", () => {
    const r = checkSource("dim N\nfn f(x: f16[N], y: f32[N]) -> f32[N] = cast(x * 0.5 + 1) + y\nfn g(y: f32[N]) -> f16[N] = cast(y, f16)");
    expect(r.lines).toEqual([]);
    expect(r.typeOf("x * 0.5 + 1")).toBe("f16[N]");
    const g = lower("dim N = 3\nfn f(x: f16[N]) -> f16[N] = x * 0.1", "f", { x: h(3) });
    const c = g.nodes.find((n) => n.op === "const")!;
    expect(c.type.dtype).toBe("f16");
  });
  it("an unknown dtype is located and lists f16 among the dtypes", () => {
    const r = checkSource("dim N\nfn f(x: f8[N]) -> f32[N] = x");
    expect(r.lines[0]).toMatch(/^2:9 W\d+ unknown dtype `f8`/);
  });
});
