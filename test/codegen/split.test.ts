// Launches that bind more of a buffer than the device's maxStorageBufferBindingSize run
// split into chunks (runtime/split.ts). Compiled for a small binding limit (64 KiB) and
// run on the test device with tensors of a few hundred KB, every output equals the
// unsplit bundle's bit for bit where a split leaves each element's arithmetic as it was
// (element kernels, reductions split along their outputs or folded serially in slices,
// matmuls split along M, the batch or K — a K slice continues from the sums stored
// before it), and the float64 reference interpreter within f32 rounding. What cannot be
// split is refused with the kernel, the tensor, its bytes, the limit and why.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph, type TensorType } from "../../compiler/ir/graph.ts";
import { add, broadcastTo, mul, reduce, reshape, scale, sub, transpose, unary } from "../../compiler/ops/build.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { toStorage, type HostArray } from "../../runtime/backend.ts";
import type { Bundle, ChunkSpec } from "../../runtime/bundle.ts";
import { readBundle, writeBundle } from "../../runtime/bundle-io.ts";
import { DeviceLimitError } from "../../runtime/limits.ts";
import { PORTABLE, type DeviceProfile } from "../../runtime/profile.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { ReferenceBackend } from "../../runtime/reference/backend.ts";
import { train } from "../../runtime/train.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { validateBundle } from "../../runtime/webgpu/executor.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { main } from "../../cli/main.ts";
import { gpu } from "../gpu.ts";
import { run as reference } from "../util/graphs.ts";
import { cleanup, expectClose, lowerFile, writeJob } from "../train/helpers.ts";
import { ROOT } from "../util/weft.ts";

const LIMIT = 64 * 1024;
const small = (bytes = LIMIT): DeviceProfile => ({ ...PORTABLE, limits: { ...PORTABLE.limits, maxStorageBufferBindingSize: bytes } });

/** Deterministic f32-exact values in [lo, hi). */
function values(n: number, seed: number, lo = -2, hi = 2): Float64Array {
  let a = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return Math.fround(lo + ((hi - lo) * a) / 4294967296);
  });
}
const tensor = (shape: number[], seed: number, lo?: number, hi?: number): RefTensor => ({ shape, data: values(shape.reduce((x, y) => x * y, 1), seed, lo, hi) });
const ints = (shape: number[], n: number, seed: number): RefTensor => ({ shape, data: values(shape.reduce((x, y) => x * y, 1), seed, 0, n).map(Math.floor) });

/** The outputs of `bundle` run on the device with every temporary poisoned (NaN) first. */
async function runOn(h: GpuHandle, g: Graph, bundle: Bundle, feeds: Record<string, RefTensor>, names: readonly string[]): Promise<Map<string, HostArray>> {
  const b = await GpuBackend.load(h, bundle, { poison: true });
  try {
    for (const [k, v] of Object.entries(feeds)) b.write(k, toStorage(v.data, g.type(g.sources.get(k)!).dtype));
    return await b.run(names);
  } finally {
    b.destroy();
  }
}

/** Every chunk of every split launch binds at most `limit` bytes of each buffer, at aligned offsets. */
function expectWithin(bundle: Bundle, limit = LIMIT): void {
  for (const k of bundle.kernels) {
    for (const c of k.chunks ?? []) for (const [offset, size] of c.ranges) expect(offset % 256 === 0 && size <= limit, `${k.name} binds [${offset}, +${size})`).toBe(true);
  }
}

const chunksOf = (bundle: Bundle, prefix: string): number[] => bundle.kernels.filter((k) => k.name.startsWith(prefix)).map((k) => k.chunks?.length ?? 1);

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return a.length === b.length ? worst : Infinity;
}

/**
 * Compiles `g` for the small limit and for the default one, runs both and the reference:
 * each output within `tol` of the reference, and those in `exact` bit for bit the
 * unsplit bundle's. Returns the split bundle.
 */
async function compare(h: GpuHandle, g: Graph, feeds: Record<string, RefTensor>, exact: readonly string[], tol = 2e-6, inexact: readonly string[] = [], profile = PORTABLE): Promise<Bundle> {
  const names = [...exact, ...inexact];
  const split = compileBundle(g, { device: { ...profile, limits: { ...profile.limits, maxStorageBufferBindingSize: LIMIT } } });
  expectWithin(split);
  const [got, base] = [await runOn(h, g, split, feeds, names), await runOn(h, g, compileBundle(g, { device: profile }), feeds, names)];
  const want = reference(g, feeds);
  for (const n of names) expect(maxRel(got.get(n)!, want.get(n)!.data), `${n} against the reference`).toBeLessThan(tol);
  for (const n of exact) expect([...got.get(n)!], `${n} split against unsplit`).toEqual([...base.get(n)!]);
  return split;
}

const f32 = (shape: number[]): TensorType => ({ shape, dtype: "f32" });

describe("split launches run as the unsplit ones (WebGPU)", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });
  afterAll(cleanup);

  it("element kernels, with broadcast rows and columns", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129])); // 309,600 bytes
    const b = g.source("input", "b", f32([129]));
    const c = g.source("input", "c", f32([600, 1]));
    g.output("y", sub(g, add(g, mul(g, unary(g, "tanh", x), x), b), scale(g, broadcastTo(g, c, [600, 129]), 2)));
    g.output("noise", g.add("random_uniform", [], { shape: [600, 129], seed: 7, stream: 1 })); // a kernel of its own
    const split = await compare(h, g, { x: tensor([600, 129], 1), b: tensor([129], 2), c: tensor([600, 1], 3) }, ["y", "noise"]);
    expect(chunksOf(split, "random_uniform")[0]).toBeGreaterThan(1);
    // 309,600 bytes in chunks of at most 64 KiB: 5 at least
    expect(Math.max(...split.kernels.map((k) => k.chunks?.length ?? 1))).toBeGreaterThanOrEqual(5);
  });

  it("chunks of over 65,535 workgroups, of a launch over 65,535 (2-D grids)", async () => {
    const g = new Graph();
    // 24 MB, 93,751 workgroups; 20 MiB chunks of 81,920 (a length not a multiple of 4 keeps
    // one element a thread: a vec4 kernel would need a quarter of the workgroups)
    const n = 6_000_001;
    const x = g.source("input", "x", f32([n]));
    g.output("y", scale(g, unary(g, "tanh", x), 3));
    const split = compileBundle(g, { device: small(20 << 20) });
    expectWithin(split, 20 << 20);
    const [k] = split.kernels;
    expect(k.workgroups[1]).toBeGreaterThan(1);
    expect(k.chunks!.map((c) => c.workgroups[1] > 1)).toEqual([true, false]);
    const feeds = { x: tensor([n], 29) };
    const [got, base] = [await runOn(h, g, split, feeds, ["y"]), await runOn(h, g, compileBundle(g), feeds, ["y"])];
    expect(got.get("y")!.every((v, i) => v === base.get("y")![i])).toBe(true);
    expect(Math.abs(got.get("y")![n - 1] - 3 * Math.tanh(feeds.x.data[n - 1]))).toBeLessThan(1e-6);
  });

  it("reductions: split along the outputs, or over slices of the reduced axis", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    const t = g.source("input", "t", f32([2048, 40])); // 327,680 bytes, 2048 ≥ 1024: a workgroup per output
    g.output("rows", reduce(g, "sum", unary(g, "exp", scale(g, x, 0.5)), [1])); // each output a row: split along outputs
    g.output("cols", reduce(g, "sum", x, [0])); // each output a column of 600: serial, in slices of rows
    g.output("tmax", reduce(g, "max", t, [0])); // workgroups in slices: max is exact in any order
    g.output("tsum", reduce(g, "sum", t, [0])); // workgroups in slices: a different order of additions
    g.output("all", reduce(g, "sum", t, [0, 1])); // one output over 81,920 elements
    // one index of the first reduced axis is over the limit (80,000 and 163,840 bytes): slices of the second
    const u = g.source("input", "u", f32([2, 500, 40]));
    const v = g.source("input", "v", f32([2, 1024, 40]));
    g.output("deep", reduce(g, "sum", u, [0, 1])); // serial, in slices of rows of axis 1
    g.output("deepw", reduce(g, "sum", v, [0, 1])); // workgroups, in slices of rows of axis 1
    const feeds = { x: tensor([600, 129], 4), t: tensor([2048, 40], 5), u: tensor([2, 500, 40], 27), v: tensor([2, 1024, 40], 28) };
    // compiled for a device of no optional features, then for this one (subgroups, where it has them)
    for (const profile of [PORTABLE, h.profile]) {
      const split = await compare(h, g, feeds, ["rows", "cols", "tmax", "deep"], 2e-5, ["tsum", "all", "deepw"], profile);
      const sliced = split.kernels.filter((k) => k.footprint?.round !== undefined);
      expect(sliced.length).toBe(6); // cols, tmax, tsum, all, deep, deepw
      // a round at most per chunk, and the rounds in order
      for (const k of sliced) for (const c of k.chunks!) expect(c.end - c.first).toBeLessThanOrEqual(k.footprint!.round!);
      if (profile.features.includes("subgroups")) expect(sliced.some((k) => k.wgsl.includes("enable subgroups;"))).toBe(true);
    }
  });

  it("matmul: odd sizes, batched, transposed, with an epilogue, and K in slices", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([301, 129])); // 155,316 bytes
    const w = g.source("input", "w", f32([129, 67])); // 34,572: B fits whole
    const bias = g.source("input", "bias", f32([67]));
    const a = g.source("input", "a", f32([4, 130, 70]));
    const b = g.source("input", "b", f32([4, 70, 90])); // 100,800 bytes, 25,200 per batch
    const p = g.source("input", "p", f32([65, 300]));
    const q = g.source("input", "q", f32([300, 129])); // 154,800 bytes: B over the limit
    g.output("m", g.add("matmul", [x, w]));
    g.output("relu", unary(g, "relu", add(g, g.add("matmul", [x, w]), bias)));
    g.output("batched", g.add("matmul", [a, b]));
    g.output("gram", g.add("matmul", [transpose(g, x, [1, 0]), x])); // A = xᵀ: K = 301 rows of x, in slices
    g.output("pq", g.add("matmul", [p, q]));
    // stored in the order its transpose reads it (bundle.ts transposedStores), split along the batch
    const c = g.source("input", "c", f32([4, 70, 90]));
    g.output("heads", reshape(g, transpose(g, g.add("matmul", [a, c]), [1, 0, 2]), [130, 360]));
    const feeds = { x: tensor([301, 129], 6), w: tensor([129, 67], 7), bias: tensor([67], 8), a: tensor([4, 130, 70], 9), b: tensor([4, 70, 90], 10), p: tensor([65, 300], 11), q: tensor([300, 129], 12), c: tensor([4, 70, 90], 13) };
    // register-blocked tiles (no device, and this one's), and shared-memory tiles (a GPU's)
    for (const profile of [PORTABLE, h.profile, { ...PORTABLE, kind: "gpu" as const }]) {
      // (sums of up to 301 products of values in [-2, 2]: f32 rounding, the same split or not)
      const split = await compare(h, g, feeds, ["m", "relu", "batched", "gram", "pq", "heads"], 1e-4, [], profile);
      const byK = split.kernels.filter((k) => k.footprint?.round !== undefined);
      expect(byK.length, profile.kind).toBe(2); // gram and pq
      if (profile.kind === "gpu") expect(byK.every((k) => k.wgsl.includes("var<workgroup> As"))).toBe(true);
      expect(split.kernels.filter((k) => k.name.startsWith("matmul") || k.name.includes("_matmul_")).every((k) => (k.chunks?.length ?? 1) > 1)).toBe(true);
    }
  });

  it("gathers: the table bound whole, the indices and the output split", async () => {
    const g = new Graph();
    const emb = g.source("input", "emb", f32([50, 16]));
    const idx = g.source("input", "idx", { shape: [3000], dtype: "i32" });
    const x = g.source("input", "x", f32([600, 129]));
    const cols = g.source("input", "cols", { shape: [40], dtype: "i32" });
    g.output("rows", g.add("gather", [emb, idx], { axis: 0 })); // [3000, 16]: 192,000 bytes
    g.output("picked", g.add("gather", [x, cols], { axis: 1 })); // [600, 40]: rows of x per chunk
    const split = await compare(h, g, { emb: tensor([50, 16], 13), idx: ints([3000], 50, 14), x: tensor([600, 129], 15), cols: ints([40], 129, 16) }, ["rows", "picked"]);
    expect(chunksOf(split, "gather").every((n) => n > 1)).toBe(true);
  });

  it("concat, take_along and pad", async () => {
    const g = new Graph();
    const a = g.source("input", "a", f32([300, 129]));
    const b = g.source("input", "b", f32([300, 129]));
    const x = g.source("input", "x", f32([600, 129]));
    const idx = g.source("input", "idx", { shape: [600, 5], dtype: "i32" });
    const small = g.source("input", "small", f32([100, 129])); // 51,600 bytes: a pad's input is bound whole
    g.output("rows", g.add("concat", [unary(g, "tanh", a), b], { axis: 0 })); // [600, 129]
    g.output("cols", g.add("concat", [a, scale(g, b, 3)], { axis: 1 })); // [300, 258]
    g.output("along", g.add("take_along", [x, idx], { axis: 1 })); // rows of x per chunk
    g.output("padded", g.add("pad", [small], { starts: [3, 0], steps: [5, 1], shape: [600, 129] }));
    const feeds = { a: tensor([300, 129], 20), b: tensor([300, 129], 21), x: tensor([600, 129], 22), idx: ints([600, 5], 129, 23), small: tensor([100, 129], 24) };
    const split = await compare(h, g, feeds, ["rows", "cols", "along", "padded"]);
    for (const prefix of ["concat", "take_along", "pad"]) expect(chunksOf(split, prefix).every((n) => n > 1), prefix).toBe(true);
  });

  it("scans and selections along rows", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    g.output("cum", g.add("cumsum", [x], { axis: 1 }));
    g.output("rcum", g.add("cumsum", [x], { axis: 1, reverse: true }));
    g.output("arg", g.add("argmax", [x], { axis: 1 }));
    g.output("third", g.add("kth_largest", [x], { axis: 1, k: 3 }));
    g.output("top", g.add("argsort", [x], { axis: 1, start: 0, count: 5, descending: true }));
    // (prefix sums of up to 129 values: f32 rounding, the same split or not)
    const split = await compare(h, g, { x: tensor([600, 129], 26) }, ["cum", "rcum", "arg", "third", "top"], 1e-5);
    for (const prefix of ["cumsum", "argmax", "kth_largest", "argsort"]) expect(chunksOf(split, prefix).every((n) => n > 1), prefix).toBe(true);
  });

  it("a training step (MLP, Adam) trains bit for bit as the unsplit one", async () => {
    // x: [128, 64], W1: [64, 300] (76,800 bytes), hidden [128, 300] (153,600 bytes): the
    // forward matmuls split along M or K, the weight gradients (K = the batch) in K
    // slices, Adam's in-place updates of W1, m and v along their elements.
    const rows = Array.from({ length: 256 }, (_, i) => JSON.stringify({ x: [...values(64, 100 + i, -1, 1)], y: [...values(10, 900 + i, -1, 1)] }));
    const file = writeJob(
      `import "std/nn"
dim I = 64, H = 300, O = 10
block Net(I, H, O) {
  a = Linear(I, H)
  b = Linear(H, O)
  fn (x: f32[.., I]) -> f32[.., O] = b(tanh(a(x)))
}
train t {
  model = Net(I, H, O)
  loss = mean((model(batch.x) - batch.y) ** 2)
  data = jsonl("data.jsonl")
  batch = 128
  steps = 3
  optimizer = adam(lr = 0.01)
}
`,
      { "data.jsonl": rows.join("\n") + "\n" },
    );
    const j = lowerFile(file);
    const { graph, job } = j.lowered;
    const split = compileBundle(graph, { updates: job.updates, device: small() });
    expectWithin(split);
    expect(split.kernels.some((k) => k.name.startsWith("update_") && (k.chunks?.length ?? 1) > 1)).toBe(true);
    expect(split.kernels.some((k) => k.footprint?.round !== undefined)).toBe(true);
    const steps = async (bundle: Bundle) => {
      const b = await GpuBackend.load(h, bundle, { poison: true });
      try {
        const r = await train(b, job.spec, j.data, { seed: 5, steps: 3, logEvery: 1 });
        return { losses: r.losses.map((l) => l.loss), params: r.params, state: await b.read(job.spec.state.map((s) => s.name)) };
      } finally {
        b.destroy();
      }
    };
    const [s, u] = [await steps(split), await steps(compileBundle(graph, { updates: job.updates }))];
    expect(s.losses).toEqual(u.losses);
    for (const [k, v] of u.params) expect([...s.params.get(k)!], k).toEqual([...v]);
    for (const [k, v] of u.state) expect([...s.state.get(k)!], k).toEqual([...v]);
    const ref = new ReferenceBackend(graph, evaluators(), job.updates);
    const r = await train(ref, job.spec, j.data, { seed: 5, steps: 3, logEvery: 1 });
    ref.destroy();
    expectClose(s.losses, r.losses.map((l) => l.loss), 1e-4, 1e-6, "losses");
    for (const [k, v] of r.params) expectClose(s.params.get(k)!, v, 1e-4, 1e-6, k);
  });

  it("a bundle compiled for a larger limit is split at load; one that cannot be is refused there", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    const w = g.source("input", "w", f32([129, 67]));
    g.output("y", g.add("matmul", [unary(g, "tanh", x), w]));
    const feeds = { x: tensor([600, 129], 17), w: tensor([129, 67], 18) };
    const bundle = compileBundle(g); // the default limit: nothing split
    expect(bundle.kernels.some((k) => k.chunks)).toBe(false);
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    process.env.WEFT_DEBUG = "1";
    let b: GpuBackend | undefined;
    try {
      b = await GpuBackend.load(h, bundle, { poison: true, limits: { maxStorageBufferBindingSize: LIMIT } });
      for (const [k, v] of Object.entries(feeds)) b.write(k, toStorage(v.data, "f32"));
      const got = (await b.run(["y"])).get("y")!;
      expect([...got]).toEqual([...(await runOn(h, g, bundle, feeds, ["y"])).get("y")!]);
      expect(log.mock.calls.map((c) => String(c[0])).join("\n")).toMatch(/kernel \S+ workgroups=\[\d+,1,1\] bindings=\d split into \d+ chunks/);
    } finally {
      b?.destroy();
      delete process.env.WEFT_DEBUG;
      log.mockRestore();
    }
    // xᵀx needs K in slices, which only the compiler renders: compiled for 64 KiB, its
    // chunks are planned again for 48 KiB at load (its slices' workgroups read 39,456
    // bytes: not for 32 KiB); compiled for the default limit, it is refused
    const g2 = new Graph();
    const y = g2.source("input", "y", f32([600, 129]));
    g2.output("gram", g2.add("matmul", [transpose(g2, y, [1, 0]), y]));
    const sliced = compileBundle(g2, { device: small() });
    await expect(GpuBackend.load(h, sliced, { limits: { maxStorageBufferBindingSize: 32768 } })).rejects.toThrow(
      /kernel "matmul_2" binding 0 \(buffer 0, input "y"\) is 309600 bytes, bound \d+ bytes at a time, over the device's maxStorageBufferBindingSize 32768, and cannot be split: one workgroup alone touches/,
    );
    const yFeed = { y: tensor([600, 129], 25) };
    const half = await GpuBackend.load(h, sliced, { poison: true, limits: { maxStorageBufferBindingSize: 48 * 1024 } });
    try {
      half.write("y", toStorage(yFeed.y.data, "f32"));
      const got = (await half.run(["gram"])).get("gram")!;
      expect([...got]).toEqual([...(await runOn(h, g2, sliced, yFeed, ["gram"])).get("gram")!]);
    } finally {
      half.destroy();
    }
    await expect(GpuBackend.load(h, compileBundle(g2), { limits: { maxStorageBufferBindingSize: LIMIT } })).rejects.toThrow(
      /within limits maxStorageBufferBindingSize 65536 cannot run this bundle:\n {2}kernel "matmul_2" binding 0 \(buffer 0, input "y"\) is 309600 bytes, over the device's maxStorageBufferBindingSize 65536, and cannot be split: one workgroup alone touches \d+ bytes of it/,
    );
  });

  it("split launches round-trip through disk", async () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    g.output("s", reduce(g, "sum", unary(g, "tanh", x), [0]));
    g.output("m", g.add("matmul", [transpose(g, x, [1, 0]), x]));
    const bundle = compileBundle(g, { device: small() });
    expect(bundle.kernels.every((k) => k.chunks && k.footprint)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "weft-split-"));
    try {
      writeBundle(dir, bundle);
      const back = readBundle(dir);
      expect(back).toEqual(bundle);
      const feeds = { x: tensor([600, 129], 19) };
      const [a, b] = [await runOn(h, g, bundle, feeds, ["s", "m"]), await runOn(h, g, back, feeds, ["s", "m"])];
      for (const n of ["s", "m"]) expect([...b.get(n)!]).toEqual([...a.get(n)!]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("what cannot be split is refused at compile time, saying why", () => {
  const refusal = (g: Graph, device = small()): string => {
    try {
      compileBundle(g, { device });
    } catch (e) {
      expect(e).toBeInstanceOf(DeviceLimitError);
      return (e as Error).message;
    }
    throw new Error("compiled");
  };

  it("a transposed read whose range a split does not shrink", () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    const z = g.source("input", "z", f32([129, 600]));
    g.output("y", add(g, x, transpose(g, z, [1, 0])));
    expect(refusal(g)).toMatch(
      /kernel "\w+" binding 1 \(buffer 1, input "z"\) is 309600 bytes, over the device's maxStorageBufferBindingSize 65536, and cannot be split: one workgroup alone touches \d+ bytes of it \(it is read through a broadcast, transpose or stride that a split does not shrink\)/,
    );
    // the same with z within the limit splits the rest
    const g2 = new Graph();
    const x2 = g2.source("input", "x", f32([600, 27]));
    const z2 = g2.source("input", "z", f32([27, 600])); // 64,800 bytes
    g2.output("y", add(g2, x2, transpose(g2, z2, [1, 0])));
    expect(compileBundle(g2, { device: small() }).kernels[0].chunks).toBeUndefined(); // 64,800 bytes each: fits
    const g3 = new Graph();
    const x3 = g3.source("input", "x", f32([1200, 27]));
    const z3 = g3.source("input", "z", f32([27, 1200])); // 129,600: over, and read by columns
    g3.output("y", add(g3, x3, transpose(g3, z3, [1, 0])));
    expect(refusal(g3)).toMatch(/input "z"\) is 129600 bytes.*cannot be split/);
  });

  it("a gather's table over the limit", () => {
    const g = new Graph();
    const emb = g.source("param", "emb", f32([2000, 16]));
    const idx = g.source("input", "idx", { shape: [100], dtype: "i32" });
    g.output("rows", g.add("gather", [emb, idx], { axis: 0 }));
    expect(refusal(g)).toContain(
      `kernel "gather_2" binding 0 (buffer 0, param "emb") is 128000 bytes, over the device's maxStorageBufferBindingSize 65536, and cannot be split: it is read at indices that come from data (a gather's table): one workgroup may touch 128000 bytes of it`,
    );
  });

  it("a scan along columns (each thread reads one of them whole), and a buffer over maxBufferSize", () => {
    const g = new Graph();
    const x = g.source("input", "x", f32([600, 129]));
    g.output("c", g.add("cumsum", [x], { axis: 0 }));
    expect(refusal(g)).toMatch(/kernel "cumsum_1" binding 0 \(buffer 0, input "x"\) is 309600 bytes, over the device's maxStorageBufferBindingSize 65536, and cannot be split: one workgroup alone touches \d+ bytes of it/);
    const g2 = new Graph();
    const y = g2.source("input", "y", f32([600, 129]));
    g2.output("t", unary(g2, "tanh", y));
    const device = { ...PORTABLE, limits: { ...PORTABLE.limits, maxBufferSize: 200_000, maxStorageBufferBindingSize: LIMIT } };
    const msg = refusal(g2, device);
    expect(msg).toContain("buffer 0 (y) is 309600 bytes, over the device's maxBufferSize 200000");
    expect(msg).not.toContain("maxStorageBufferBindingSize"); // the launch itself is split
  });
});

describe("the loader checks split launches (no device)", () => {
  const g = new Graph();
  const x = g.source("input", "x", f32([600, 129]));
  g.output("gram", g.add("matmul", [transpose(g, x, [1, 0]), x]));
  const bundle = compileBundle(g, { device: small() });
  const limits = { ...PORTABLE.limits };

  it("accepts the compiler's chunks", () => {
    expect(validateBundle(bundle, limits).size).toBe(bundle.buffers.length);
  });
  it("refuses a misaligned or out-of-bounds range, chunks out of order, and an accumulating kernel run whole", () => {
    const k = bundle.kernels[0];
    const with_ = (chunks: ChunkSpec[] | undefined): Bundle => ({ ...bundle, kernels: [{ ...k, chunks }] });
    const c0 = k.chunks![0];
    expect(() => validateBundle(with_([{ ...c0, ranges: [[100, 256], ...c0.ranges.slice(1)] }, ...k.chunks!.slice(1)]), limits)).toThrow(/chunk 0 binds bytes \[100, 356\) of buffer 0 .*offsets are multiples of 256/);
    expect(() => validateBundle(with_([{ ...c0, ranges: [[0, 400000], ...c0.ranges.slice(1)] }, ...k.chunks!.slice(1)]), limits)).toThrow(/chunk 0 binds bytes \[0, 400000\) of buffer 0 \(309600 bytes/);
    expect(() => validateBundle(with_([...k.chunks!.slice(1), c0]), limits)).toThrow(/chunk 0 runs workgroups \[\d+, \d+\) of \d+, after 0/);
    expect(() => validateBundle(with_(undefined), limits)).toThrow(/adds into its outputs in rounds and must run as chunks, but has none/);
  });
});

describe("weft compile --emit kernels shows split launches", () => {
  it("with --limit maxStorageBufferBindingSize=65536", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-split-"));
    const inputs = join(dir, "x.json");
    writeFileSync(inputs, JSON.stringify({ x: { shape: [600, 129], data: new Array<number>(600 * 129).fill(0) } }));
    const out: string[] = [];
    const write = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      const args = ["compile", join(ROOT, "test/fixtures/cli/tanhsum.weft"), "--entry", "f", "--inputs", inputs, "--emit", "kernels", "--limit", "maxStorageBufferBindingSize=65536"];
      expect(await main(args)).toBe(0);
    } finally {
      write.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    const text = out.join("");
    // 600 rows of 129 (309,600 bytes), a thread per row: 64 rows (33,024 bytes) per workgroup
    const m = /^sum_\d+ +groups \[10, 1, 1\] {2}buffers 0, 1 {2}split into (\d+) chunks \(at most (\d+) bytes bound\)$/m.exec(text);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(5);
    expect(Number(m![2])).toBeLessThanOrEqual(65536);
    expect(text).toContain(`needs: largest buffer 309600 bytes (binding ${m![2]})`);
  });
});
