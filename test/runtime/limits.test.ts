// Device limits: what a bundle needs is read from the bundle (sizes, launch list, WGSL)
// and checked at load — and at compile time when the device is known — so a bundle
// that asks too much is refused naming the limit, what it needs and what the device has.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { add } from "../../compiler/ops/build.ts";
import { BUNDLE_VERSION, type Bundle } from "../../runtime/bundle.ts";
import { checkDevice, DeviceLimitError, kernelNeeds, requirements } from "../../runtime/limits.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import { Executor, validateBundle } from "../../runtime/webgpu/executor.ts";
import { requestAdapter, type GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";

/** A one-kernel bundle: out[i] = x[i] * 2 over n elements, with extra WGSL declarations. */
function bundle(n: number, opts: { decls?: string; enable?: string; workgroup?: string } = {}): Bundle {
  const wgsl = `${opts.enable ? `enable ${opts.enable};\n` : ""}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${opts.decls ?? ""}
@compute @workgroup_size(${opts.workgroup ?? "64"})
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < ${n}u) { out[g.x] = x[g.x] * 2.0; }
}`;
  return {
    version: BUNDLE_VERSION,
    buffers: [
      { id: 0, length: n, type: "f32", role: "input", name: "x" },
      { id: 1, length: n, type: "f32", role: "temp" },
    ],
    kernels: [{ name: "double", wgsl, bindings: [0, 1], readOnly: 1, workgroups: [Math.ceil(n / 64), 1, 1] }],
    copies: [],
    inputs: [{ name: "x", buffer: 0, shape: [n], dtype: "f32" }],
    outputs: [{ name: "y", buffer: 1, shape: [n], dtype: "f32" }],
    params: [],
    state: [],
  };
}

const error = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DeviceLimitError);
    return (e as Error).message;
  }
  throw new Error("no error");
};

describe("what a kernel's WGSL needs", () => {
  it("reads workgroup sizes (literals and constants), workgroup storage and enabled features", () => {
    const k = kernelNeeds(`
enable f16, subgroups;
const TILE: u32 = 16u;
struct Pair { a: vec3<f32>, b: f32, c: array<f16, 3> }
var<workgroup> tile: array<array<f32, TILE>, 16>; // 1024 bytes
var<workgroup> v: array<vec4f, 10>;               // 160
var<workgroup> p: Pair;                           // 16 + 4 → 24 (align 16 → 32)
var<workgroup> flag: u32;                         // 4 → 16
@compute @workgroup_size(TILE, 8) fn main() {}`);
    expect(k.features.sort()).toEqual(["shader-f16", "subgroups"]);
    expect(k.workgroupSizes).toEqual([[16, 8, 1]]);
    expect(k.workgroupBytes).toBe(1024 + 160 + 32 + 16);
  });

  it("names every shortfall: limit, what the bundle needs, what the device has", () => {
    const b = bundle(1000, { decls: "var<workgroup> big: array<f32, 8192>;", workgroup: "512, 2", enable: "f16" });
    const limits = { ...PORTABLE.limits, maxStorageBufferBindingSize: 2048 };
    const text = checkDevice(b, limits, []).map((s) => `${s.limit} ${s.need} ${s.have}`);
    expect(text).toEqual(
      expect.arrayContaining([
        "maxStorageBufferBindingSize 4000 2048",
        'feature "shader-f16" 1 0',
        "maxComputeWorkgroupStorageSize 32768 16384",
        "maxComputeInvocationsPerWorkgroup 1024 256",
        "maxComputeWorkgroupSizeX 512 256",
      ]),
    );
    const msg = error(() => validateBundle(b, limits, [], "the test device"));
    expect(msg).toMatch(/^the test device cannot run this bundle:/);
    expect(msg).toContain('kernel "double" uses 32768 bytes of workgroup storage, over the device\'s maxComputeWorkgroupStorageSize 16384');
    expect(msg).toContain(
      'kernel "double" binding 0 (buffer 0, input "x") is 4000 bytes, over the device\'s maxStorageBufferBindingSize 2048, and cannot be split: the kernel has no footprint',
    );
    expect(msg).toContain('kernel "double" uses feature "shader-f16", which the device does not have');
    expect(msg).toContain("has @workgroup_size(512, 2, 1): 1024 invocations, over the device's maxComputeInvocationsPerWorkgroup 256");
    // and a bundle within the limits passes
    expect(validateBundle(bundle(1000), PORTABLE.limits, []).size).toBe(2);
  });

  it("refuses a kernel that shares values across more subgroup lanes than the device's subgroups may have", () => {
    const b = bundle(1000, { enable: "subgroups" });
    b.kernels[0] = { ...b.kernels[0], lanes: 8 };
    expect(checkDevice(b, PORTABLE.limits, ["subgroups"], 8)).toEqual([]);
    expect(checkDevice(b, PORTABLE.limits, ["subgroups"], 32)).toEqual([]);
    expect(checkDevice(b, PORTABLE.limits, ["subgroups"])).toEqual([]); // size not known to the caller: not checked
    const msg = error(() => validateBundle(b, PORTABLE.limits, ["subgroups"], "the test device", 4));
    expect(msg).toContain('kernel "double" shares values across a subgroup of 8 lanes (its workgroup), but the device\'s subgroups may have as few as 4');
    expect(requirements(b).lanes).toBe(8);
    expect(requirements(bundle(10)).lanes).toBe(0);
  });

  it("sums what a bundle needs beyond WebGPU's guarantees", () => {
    const r = requirements(bundle(1000, { decls: "var<workgroup> t: array<f32, 100>;", enable: "subgroups" }));
    expect(r.features).toEqual(["subgroups"]);
    expect(r.limits.maxStorageBufferBindingSize).toBe(4000);
    expect(r.limits.maxComputeWorkgroupStorageSize).toBe(400);
    expect(r.limits.maxComputeInvocationsPerWorkgroup).toBe(64);
  });
});

describe("compiling for a known device", () => {
  const small = { ...PORTABLE, limits: { ...PORTABLE.limits, maxStorageBufferBindingSize: 1024 } };

  it("splits a launch binding more than the device's maxStorageBufferBindingSize (test/codegen/split.test.ts)", () => {
    const g = new Graph();
    const x = g.source("input", "x", { shape: [1000], dtype: "f32" });
    g.output("y", add(g, x, x));
    expect(compileBundle(g, { device: PORTABLE }).kernels[0].chunks).toBeUndefined();
    const [k] = compileBundle(g, { device: small }).kernels;
    expect(k.chunks!.map((c) => c.ranges.map(([, size]) => size))).toEqual([[1024, 1024], [1024, 1024], [1024, 1024], [928, 928]]);
  });

  it("refuses at compile time what cannot be split, naming the kernel, the tensor, its bytes, the limit and why", () => {
    const g = new Graph();
    const x = g.source("input", "x", { shape: [1000], dtype: "f32" });
    g.output("y", g.add("cumsum", [x], { axis: 0 })); // one thread reads all of x
    const msg = error(() => compileBundle(g, { device: small }));
    expect(msg).toMatch(/^the target device cannot run this bundle:/);
    expect(msg).toContain(
      'kernel "cumsum_1" binding 0 (buffer 0, input "x") is 4000 bytes, over the device\'s maxStorageBufferBindingSize 1024, and cannot be split: one workgroup alone touches 4000 bytes of it',
    );
  });
});

describe("loading on a device with lower limits (WebGPU)", () => {
  let h: GpuHandle;
  let plain: GPUDevice;
  beforeAll(async () => {
    h = await gpu();
    // A second device with WebGPU's default limits and no features.
    const adapter = await requestAdapter();
    if (!adapter) throw new Error("no second adapter");
    plain = await adapter.requestDevice();
  });
  afterAll(() => plain?.destroy());

  const on = (device: GPUDevice): GpuHandle => ({ ...h, device, features: [], info: "default-limits device" });

  it("fails at load naming the limit, the bundle's need and the device's value", async () => {
    const storage = bundle(1000, { decls: "var<workgroup> big: array<f32, 8192>;\nfn touch() { big[0] = 1.0; }" });
    await expect(Executor.load(on(plain), storage)).rejects.toThrow(
      `the device (default-limits device) cannot run this bundle:\n  kernel "double" uses 32768 bytes of workgroup storage, over the device's maxComputeWorkgroupStorageSize ${plain.limits.maxComputeWorkgroupStorageSize}`,
    );
    const f16 = bundle(1000, { enable: "f16" });
    await expect(Executor.load(on(plain), f16)).rejects.toThrow('kernel "double" uses feature "shader-f16", which the device does not have');
    const huge = bundle(plain.limits.maxStorageBufferBindingSize / 4 + 1);
    await expect(Executor.load(on(plain), huge)).rejects.toThrow(
      `is ${plain.limits.maxStorageBufferBindingSize + 4} bytes, over the device's maxStorageBufferBindingSize ${plain.limits.maxStorageBufferBindingSize}`,
    );
    // the same small bundle loads and runs there
    const ex = await Executor.load(on(plain), bundle(100));
    ex.write("x", Float32Array.from({ length: 100 }, (_, i) => i));
    expect([...(await ex.run({ read: ["y"] })).get("y")!].slice(0, 3)).toEqual([0, 2, 4]);
    ex.destroy();
  });
});
