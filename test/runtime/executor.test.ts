import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { BUNDLE_VERSION, type Bundle, type KernelSpec } from "../../runtime/bundle.ts";
import { Executor, validateBundle } from "../../runtime/webgpu/executor.ts";
import type { GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";

const N = 100;

const ADD = `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i < arrayLength(&c)) { c[i] = a[i] + b[i]; }
}`;

const POST = `
@group(0) @binding(0) var<storage, read> c: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<i32>;
@group(0) @binding(2) var<storage, read_write> m: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<i32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i < arrayLength(&m)) { m[i] = select(0u, 1u, c[i] > 50.0); q[i] = i32(c[i]) * k[0]; }
}`;

/** c = a + b; m = c > 50; q = trunc(c) * k; then acc (a param) ← c. */
function addBundle(extra?: Partial<Bundle>): Bundle {
  return {
    version: BUNDLE_VERSION,
    buffers: [
      { id: 0, length: N, type: "f32", role: "input", name: "a" },
      { id: 1, length: N, type: "f32", role: "input", name: "b" },
      { id: 2, length: N, type: "f32", role: "temp" },
      { id: 3, length: 1, type: "i32", role: "const", data: [-2] },
      { id: 4, length: N, type: "u32", role: "temp" },
      { id: 5, length: N, type: "i32", role: "temp" },
      { id: 6, length: N, type: "f32", role: "param", name: "acc" },
    ],
    kernels: [
      { name: "add", wgsl: ADD, bindings: [0, 1, 2], readOnly: 2, workgroups: [Math.ceil(N / 64), 1, 1] },
      { name: "post", wgsl: POST, bindings: [2, 3, 4, 5], readOnly: 2, workgroups: [Math.ceil(N / 64), 1, 1] },
    ],
    copies: [{ src: 2, dst: 6 }],
    inputs: [
      { name: "a", buffer: 0, shape: [N], dtype: "f32" },
      { name: "b", buffer: 1, shape: [N], dtype: "f32" },
    ],
    outputs: [
      { name: "sum", buffer: 2, shape: [N], dtype: "f32" },
      { name: "big", buffer: 4, shape: [N], dtype: "bool" },
      { name: "q", buffer: 5, shape: [N], dtype: "i32" },
    ],
    params: [{ name: "acc", buffer: 6, shape: [N], dtype: "f32" }],
    state: [],
    ...extra,
  };
}

const range = (f: (i: number) => number) => Float32Array.from({ length: N }, (_, i) => f(i));

describe("Executor on WebGPU", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });
  afterEach(() => {
    vi.restoreAllMocks();
    delete process.env.WEFT_DEBUG;
  });

  it("runs kernels in order, then copies, and reads typed outputs", async () => {
    const ex = await Executor.load(h, addBundle());
    ex.write("a", range((i) => i));
    ex.write("b", range((i) => 2 * i + 0.5));
    const out = await ex.run({ read: ["sum", "big", "q", "acc"] });
    const sum = out.get("sum")!;
    expect(sum).toBeInstanceOf(Float32Array);
    expect(Array.from(sum)).toEqual(Array.from(range((i) => 3 * i + 0.5)));
    expect(out.get("big")).toBeInstanceOf(Uint32Array);
    expect(Array.from(out.get("big")!)).toEqual(Array.from({ length: N }, (_, i) => (3 * i + 0.5 > 50 ? 1 : 0)));
    expect(out.get("q")).toBeInstanceOf(Int32Array);
    expect(Array.from(out.get("q")!)).toEqual(Array.from({ length: N }, (_, i) => (Math.trunc(3 * i + 0.5) * -2) | 0));
    expect(Array.from(out.get("acc")!)).toEqual(Array.from(sum));

    // Params persist across runs and can be read on their own.
    ex.write("a", range(() => 1));
    ex.write("b", range(() => 1));
    expect((await ex.run()).size).toBe(0);
    expect(Array.from(await ex.read("acc"))).toEqual(Array(N).fill(2));
    const all = await ex.readAll("params");
    expect([...all.keys()]).toEqual(["acc"]);
    const some = await ex.readNames(["sum", "acc"]);
    expect(Array.from(some.get("sum")!)).toEqual(Array(N).fill(2));
    ex.destroy();
    await expect(ex.run()).rejects.toThrow(/after destroy/);
  });

  it("checks what is written", async () => {
    const ex = await Executor.load(h, addBundle());
    expect(() => ex.write("nope", new Float32Array(N))).toThrow(/no input, param or state/);
    expect(() => ex.write("a", new Int32Array(N))).toThrow(/expected f32/);
    expect(() => ex.write("a", new Float32Array(3))).toThrow(/expected 100 elements/);
    expect(() => ex.writeBuffer(0, new Float32Array(N + 1))).toThrow(/do not fit/);
    await expect(ex.run({ read: ["nope"] })).rejects.toThrow(/no output, param, state or input/);
    ex.destroy();
  });

  it("names the kernel and quotes the WGSL compiler on a syntax error", async () => {
    const b = addBundle();
    b.kernels[1] = { ...b.kernels[1], name: "broken_post", wgsl: POST.replace("m[i] = select", "m[i] = +; select") };
    const err = await Executor.load(h, b).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain('kernel "broken_post"');
    expect(err!.message).toMatch(/WGSL compile error\n\s+\d+:\d+: /);
    expect(err!.message).not.toContain('kernel "add"');
  });

  it("names the kernel when the WGSL disagrees with the bundle's read-only bindings", async () => {
    const b = addBundle();
    b.kernels[0] = { ...b.kernels[0], name: "add_rw", readOnly: 1 };
    await expect(Executor.load(h, b)).rejects.toThrow(/kernel "add_rw": pipeline creation failed/);
  });

  it("rejects a bundle that exceeds the device's limits, naming kernel and limit", async () => {
    const lim = h.device.limits;
    const b1 = addBundle();
    b1.kernels[0] = { ...b1.kernels[0], name: "too_wide", workgroups: [lim.maxComputeWorkgroupsPerDimension + 1, 1, 1] };
    await expect(Executor.load(h, b1)).rejects.toThrow(/kernel "too_wide".*maxComputeWorkgroupsPerDimension/);

    const many = lim.maxStorageBuffersPerShaderStage + 1;
    const b2 = addBundle();
    const k: KernelSpec = { name: "too_many", wgsl: ADD, bindings: Array.from({ length: many }, (_, i) => i % 2), readOnly: many, workgroups: [1, 1, 1] };
    b2.kernels.push(k);
    await expect(Executor.load(h, b2)).rejects.toThrow(/kernel "too_many" binds \d+ storage buffers.*maxStorageBuffersPerShaderStage/);

    const b3 = addBundle();
    b3.buffers[2] = { ...b3.buffers[2], length: lim.maxStorageBufferBindingSize / 4 + 1 };
    await expect(Executor.load(h, b3)).rejects.toThrow(/kernel "add" binding 2 .*maxStorageBufferBindingSize/);
  });

  it("run() without reads never waits for the GPU", async () => {
    const ITER = `
@group(0) @binding(0) var<storage, read> n: array<u32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  var x = f32(g.x);
  for (var i = 0u; i < n[0]; i++) { x = x * 0.9999 + 1.0; }
  o[g.x] = x;
}`;
    const bundle: Bundle = {
      version: BUNDLE_VERSION,
      buffers: [
        { id: 0, length: 1, type: "u32", role: "const", data: [600_000] },
        { id: 1, length: 64 * 64, type: "f32", role: "temp" },
      ],
      kernels: [{ name: "spin", wgsl: ITER, bindings: [0, 1], readOnly: 1, workgroups: [64, 1, 1] }],
      copies: [],
      inputs: [],
      outputs: [{ name: "o", buffer: 1, shape: [64 * 64], dtype: "f32" }],
      params: [],
      state: [],
    };
    const ex = await Executor.load(h, bundle);
    await ex.read("o"); // warm up
    const waits = [
      vi.spyOn(GPUBuffer.prototype, "mapAsync"),
      vi.spyOn(GPUQueue.prototype, "onSubmittedWorkDone"),
      vi.spyOn(GPUDevice.prototype, "popErrorScope"),
    ];
    const t0 = performance.now();
    await ex.run();
    const tRun = performance.now() - t0;
    for (const w of waits) expect(w).not.toHaveBeenCalled();
    await ex.read("o");
    const tAll = performance.now() - t0;
    expect(tRun).toBeLessThan(tAll / 3);
    ex.destroy();
  });

  it("WEFT_DEBUG logs kernels and runs at 1, launches with bytes and fused ops at 2, times at 3", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((s: unknown) => void lines.push(String(s)));
    const b = addBundle();
    b.kernels[0] = { ...b.kernels[0], fused: [{ node: 4, op: "add", at: "t.weft:3:12" }] };
    const at = async (level: string, handle = h) => {
      lines.length = 0;
      process.env.WEFT_DEBUG = level;
      const ex = await Executor.load(handle, b);
      await ex.run();
      ex.destroy();
      return lines.join("\n");
    };
    const one = await at("1");
    expect(one).toMatch(/loaded bundle on .*: 7 buffers, \d+ bytes \(input 800, temp \d+, const 4, param 400\); 2 kernels \(2 distinct shaders\), 1 copies/);
    expect(one).toMatch(/kernel add workgroups=\[2,1,1\] bindings=3/);
    expect(one).toMatch(/run 1: 2 launches, 1 copies \(400 bytes\); host wrote 0 bytes/);
    expect(one).not.toMatch(/launch |fuses|gpu |cpu /);
    const two = await at("2");
    expect(two).toMatch(/launch post \[2,1,1\] reads 404 bytes, writes 800 bytes/);
    expect(two).toMatch(/fuses %4 add \(t\.weft:3:12\)/);
    expect(two).not.toMatch(/gpu |cpu /);
    const three = await at("3");
    if (h.features.includes("timestamp-query")) expect(three).toMatch(/gpu add: [\d.]+ us[\s\S]*gpu total: [\d.]+ us over 2 kernels/);
    // without timestamp queries: each kernel in a submit of its own, timed on the host, and it says so
    const noTimestamps = await at("3", { ...h, features: h.features.filter((f) => f !== "timestamp-query") });
    expect(noTimestamps).toMatch(/cpu add: [\d.]+ us \([\d.]+%\)\nweft: cpu post: [\d.]+ us/);
    expect(noTimestamps).toMatch(/cpu run 1: [\d.]+ ms over 2 kernels, one submit and wait each \(the adapter has no 'timestamp-query'/);
    // and the run still computes: the outputs read after the kernels ran one by one
    process.env.WEFT_DEBUG = "3";
    const ex = await Executor.load({ ...h, features: h.features.filter((f) => f !== "timestamp-query") }, b);
    const a = Float32Array.from({ length: N }, (_, i) => i);
    ex.write("a", a);
    ex.write("b", a);
    const sum = (await ex.run({ read: ["sum"] })).get("sum")!;
    ex.destroy();
    expect([...sum]).toEqual([...a].map((x) => 2 * x));
  });

  it("poison mode: an output element no kernel writes reads as NaN, not as a stale or zero value", async () => {
    // a kernel that forgets the second half of its output
    const HALF = ADD.replace("if (i < arrayLength(&c))", "if (i < arrayLength(&c) / 2u)");
    const b = addBundle();
    b.kernels[0] = { ...b.kernels[0], wgsl: HALF };
    for (const poison of [false, true]) {
      const ex = await Executor.load(h, b, { poison });
      ex.write("a", range((i) => i));
      ex.write("b", range(() => 1));
      const sum = (await ex.run({ read: ["sum"] })).get("sum")!;
      expect(sum[0]).toBe(1);
      expect(Number.isNaN(sum[N - 1])).toBe(poison);
      expect(new Uint32Array(sum.buffer)[N - 1]).toBe(poison ? 0x7fc00000 : 0);
      ex.destroy();
    }
  });
});

describe("validateBundle (no device needed)", () => {
  const limits = {
    maxBufferSize: 1 << 20,
    maxStorageBufferBindingSize: 1 << 16,
    maxStorageBuffersPerShaderStage: 8,
    maxComputeWorkgroupsPerDimension: 65535,
  } as GPUSupportedLimits;

  it("accepts the test bundle", () => {
    expect(validateBundle(addBundle(), limits).size).toBe(7);
  });
  it("rejects broken references and aliasing", () => {
    const b = addBundle();
    b.kernels[0] = { ...b.kernels[0], bindings: [0, 1, 9] };
    expect(() => validateBundle(b, limits)).toThrow(/kernel "add" refers to buffer 9/);
    const c = addBundle();
    c.kernels[0] = { ...c.kernels[0], bindings: [0, 2, 2] };
    expect(() => validateBundle(c, limits)).toThrow(/binds buffer 2 at 1 and 2/);
    const d = addBundle({ outputs: [{ name: "sum", buffer: 2, shape: [N], dtype: "i32" }] });
    expect(() => validateBundle(d, limits)).toThrow(/"sum" is i32 but buffer 2 stores f32/);
    const e = addBundle({ version: 99 });
    expect(() => validateBundle(e, limits)).toThrow(/version 99/);
    const f = addBundle();
    f.buffers[0] = { ...f.buffers[0], length: (1 << 20) / 4 + 1 };
    expect(() => validateBundle(f, limits)).toThrow(/maxBufferSize/);
  });
});
