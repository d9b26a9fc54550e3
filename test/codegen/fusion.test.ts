// Fusion: how many kernels a program compiles to, and that fused kernels compute what
// the reference interpreter computes.
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, MODELS_DIR, type InputType } from "../../compiler/index.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { toStorage } from "../../runtime/backend.ts";
import { interpret } from "../../runtime/reference/interpret.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { maxRelError, uniforms } from "../util/weft.ts";

function lower(source: string, entry: string, inputs: Record<string, number[]>) {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/t.weft" ? source : undefined) };
  const p = loadProgram("/virtual/t.weft", { host });
  const types = new Map<string, InputType>(Object.entries(inputs).map(([k, s]) => [k, { shape: s, dtype: "f32" }]));
  const l = lowerFunction(p, entry, types);
  if (!l.ok) throw new Error(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return l.value.graph;
}

const SRC = `
dim N = 4096, R = 37, C = 129
fn gelu_affine(x: f32[N], a: f32[N], b: f32[N], c: f32[N]) -> f32[N] = gelu(x * a + b) * c
fn rows(x: f32[R, C]) -> f32[R, C] = softmax(x, C)
fn norm(x: f32[R, C]) -> f32[R, C] = layer_norm(x, C) * 2.0 + 1.0
fn broadcasted(x: f32[R, C], v: f32[C]) -> f32 = sum(tanh(x + v) * exp(v))
dim K = 21
fn dense(x: f32[R, C], w: f32[C, K], b: f32[K], y: f32[R, K]) -> f32[R, K] = tanh(x @ w + b) * y
fn dense_t(x: f32[C, R], w: f32[C, K], y: f32[K, R]) -> f32[K, R] = transpose(transpose(x, [R, C]) @ w, [K, R]) - y
dim B = 3, H = 5, T = 7, E = 6, F = 9, HF = 45, HE = 30
fn merge_heads(a: f32[B, H, T, E], w: f32[E, F]) -> f32[B, T, HF] = reshape(transpose(a @ w, [0, 2, 1, 3]), [B, T, HF])
fn merge_keys(x: f32[B, H, E, F], y: f32[B, H, F, T], w: f32[HE, F]) -> f32[B, T, F] =
  reshape(transpose(x @ y, [0, 3, 1, 2]), [B, T, HE]) @ w + 1.0
`;

async function check(entry: string, shapes: Record<string, number[]>, maxKernels: number) {
  const g = lower(SRC, entry, shapes);
  const bundle = compileBundle(g);
  expect(bundle.kernels.length, bundle.kernels.map((k) => k.name).join(", ")).toBeLessThanOrEqual(maxKernels);
  const feeds = new Map(Object.entries(shapes).map(([k, s], i) => {
    const n = s.reduce((a, b) => a * b, 1);
    return [k, { shape: s, data: Float64Array.from(uniforms(n, 100 + i, -2, 2)) }];
  }));
  const want = interpret(g, feeds, evaluators()).get("out")!;
  // poisoned: every temporary starts as NaN, so an element no kernel writes shows up
  const backend = await GpuBackend.load(await gpu(), bundle, { poison: true });
  for (const [k, v] of feeds) backend.write(k, toStorage(v.data, "f32"));
  const got = (await backend.run(["out"])).get("out")!;
  backend.destroy();
  // |gpu − ref| ≤ 1e-4·max(|ref|, 0.1): f32 rounding, relative for large values, absolute near 0
  expect(maxRelError(got, want.data, 0.1)).toBeLessThan(1e-4);
}

describe("fusion", () => {
  it("gelu(x*a+b)*c is one kernel", () => check("gelu_affine", { x: [4096], a: [4096], b: [4096], c: [4096] }, 1));
  it("softmax over an axis: max, sum of exp, and the normalised values — 3 kernels", () => check("rows", { x: [37, 129] }, 3));
  it("layer_norm with an affine epilogue: mean, variance and the output — 3 kernels", () => check("norm", { x: [37, 129] }, 3));
  it("a reduction absorbs its elementwise prologue through a broadcast", () => check("broadcasted", { x: [37, 129], v: [129] }, 1));
  it("a matmul runs its elementwise epilogue (bias, activation, another tensor): one kernel", () =>
    check("dense", { x: [37, 129], w: [129, 21], b: [21], y: [37, 21] }, 1));
  it("a matmul read through a transpose is computed on its own, then the epilogue reads it", () =>
    check("dense_t", { x: [129, 37], w: [129, 21], y: [21, 37] }, 2));
  it("a matmul read only through a transpose and reshapes (heads merged) stores in that order: no copy kernel", async () => {
    await check("merge_heads", { a: [3, 5, 7, 6], w: [6, 9] }, 1);
    // [B, H, E, T] read as [B, T, H·E]: the product's M is stored with stride 1, N with stride H·E
    await check("merge_keys", { x: [3, 5, 6, 9], y: [3, 5, 9, 7], w: [30, 9] }, 2);
    const k = compileBundle(lower(SRC, "merge_keys", { x: [3, 5, 6, 9], y: [3, 5, 9, 7], w: [30, 9] })).kernels[0];
    expect(k.wgsl).toContain("* osN");
  });
  it("no fused kernel binds more storage buffers than a device must offer (8)", () => {
    const names = "abcdefghijkl".split("");
    const src = `dim N = 5\nfn many(${names.map((n) => `${n}: f32[N]`).join(", ")}) -> f32[N] = ${names.join(" * ")}`;
    const g = lower(src, "many", Object.fromEntries(names.map((n) => [n, [5]])));
    const bundle = compileBundle(g);
    for (const k of bundle.kernels) expect(k.bindings.length).toBeLessThanOrEqual(8);
    expect(bundle.kernels.length).toBeLessThanOrEqual(3);
  });
  it("without fusion every op is its own kernel", () => {
    const g = lower(SRC, "gelu_affine", { x: [4096], a: [4096], b: [4096], c: [4096] });
    // mul, add, gelu, mul
    expect(compileBundle(g, { fuse: false }).kernels.length).toBe(4);
  });
});
