// f16 at the runtime's edges: buffers of 2 bytes an element (rounded up to 4-byte
// words), the host API (numbers in, rounded to halves; halves out, as Float32Array),
// poisoned f16 temporaries, bundles on disk, the device feature a bundle needs (a clear
// error where `shader-f16` is missing, at compile time and at load), the reference back
// end, and F16 tensors in safetensors files.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { loadProgram, lowerFunction, MODELS_DIR, type InputType } from "../../compiler/index.ts";
import { evaluators } from "../../compiler/ops/index.ts";
import { planMemory } from "../../compiler/opt/memory.ts";
import { readBundle, writeBundle } from "../../runtime/bundle-io.ts";
import { BUNDLE_VERSION, bufferBytes, type Bundle } from "../../runtime/bundle.ts";
import { f16Bits, f16Round } from "../../runtime/f16.ts";
import { DeviceLimitError, requirements } from "../../runtime/limits.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import { ReferenceBackend } from "../../runtime/reference/backend.ts";
import { decodeSafetensors } from "../../runtime/safetensors.ts";
import { Executor, validateBundle } from "../../runtime/webgpu/executor.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";

const SRC = `
dim N = 7, R = 5, C = 12, K = 9
fn twice(x: f16[N]) -> f16[N] = x * 2.0
fn head(x: f16[R, C], w: f16[C, K]) -> f16[R, K] = softmax(x @ w, K)
`;

function lower(entry: string, inputs: Record<string, number[]>) {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/t.weft" ? SRC : undefined) };
  const p = loadProgram("/virtual/t.weft", { host });
  const l = lowerFunction(p, entry, new Map<string, InputType>(Object.entries(inputs).map(([k, shape]) => [k, { shape, dtype: "f16" }])));
  if (!l.ok) throw new Error(l.diagnostics.map((d) => formatDiagnostic(d)).join("\n"));
  return l.value.graph;
}

describe("f16 buffers and the host API", () => {
  it("buffers take 2 bytes an element, in whole 4-byte words", () => {
    expect(bufferBytes(7, "f16")).toBe(16);
    expect(bufferBytes(8, "f16")).toBe(16);
    expect(bufferBytes(1, "f16")).toBe(4);
    expect(bufferBytes(7, "f32")).toBe(28);
    const b = compileBundle(lower("twice", { x: [7] }));
    expect(b.buffers.map((x) => x.type)).toEqual(["f16", "f16"]);
    // the input and the output: 16 bytes each
    const { report } = planMemory(b);
    expect(report.fixedBytes + report.plannedBytes).toBe(32);
  });

  it("writing rounds numbers to halves, reading gives them back as Float32Array; past 65504 is inf", async () => {
    const ex = await Executor.load(await gpu(), compileBundle(lower("twice", { x: [7] })), { poison: true });
    try {
      const x = Float32Array.of(0.1, 1 / 3, 65504, 40000, -1e-6, 1e5, 3);
      ex.write("x", x);
      expect([...(await ex.read("x"))]).toEqual([...x].map(f16Round));
      const y = (await ex.run({ read: ["out"] })).get("out")!;
      expect(y).toBeInstanceOf(Float32Array);
      expect([...y]).toEqual([...x].map((v) => f16Round(2 * f16Round(v))));
      expect(y[2]).toBe(Infinity);
      expect(() => ex.write("x", Int32Array.of(1, 2, 3, 4, 5, 6, 7))).toThrow('write("x"): expected f16 data, a Float32Array (numbers, rounded to halves) for f16[7], got Int32Array');
    } finally {
      ex.destroy();
    }
  });

  it("a poisoned f16 temporary reads as NaN where no kernel wrote it", async () => {
    // a kernel writing only element 0 of a 3-element f16 output
    const bundle: Bundle = {
      version: BUNDLE_VERSION,
      buffers: [
        { id: 0, length: 3, type: "f16", role: "input", name: "x" },
        { id: 1, length: 3, type: "f16", role: "temp" },
      ],
      kernels: [
        {
          name: "first",
          wgsl: "enable f16;\n@group(0) @binding(0) var<storage, read> x: array<f16>;\n@group(0) @binding(1) var<storage, read_write> out: array<f16>;\n@compute @workgroup_size(1) fn main() { out[0] = x[0] + 1.0h; }\n",
          bindings: [0, 1],
          readOnly: 1,
          workgroups: [1, 1, 1],
        },
      ],
      copies: [],
      inputs: [{ name: "x", buffer: 0, shape: [3], dtype: "f16" }],
      outputs: [{ name: "y", buffer: 1, shape: [3], dtype: "f16" }],
      params: [],
      state: [],
    };
    const ex = await Executor.load(await gpu(), bundle, { poison: true });
    try {
      ex.write("x", Float32Array.of(2, 3, 4));
      const y = (await ex.run({ read: ["y"] })).get("y")!;
      expect(y[0]).toBe(3);
      expect(Number.isNaN(y[1]) && Number.isNaN(y[2])).toBe(true);
    } finally {
      ex.destroy();
    }
  });

  it("the reference back end holds f16 sources as halves", async () => {
    const g = lower("twice", { x: [7] });
    const ref = new ReferenceBackend(g, evaluators());
    ref.write("x", Float64Array.of(0.1, 0.2, 0.3, 1, 2, 3, 70000));
    expect([...(await ref.read(["x"])).get("x")!]).toEqual([0.1, 0.2, 0.3, 1, 2, 3, 70000].map(f16Round));
    const out = (await ref.run(["out"])).get("out")!;
    expect([...out]).toEqual([0.1, 0.2, 0.3, 1, 2, 3, 70000].map((v) => f16Round(2 * f16Round(v))));
  });
});

describe("f16 bundles on disk and on devices without shader-f16", () => {
  const bundle = compileBundle(lower("head", { x: [5, 12], w: [12, 9] }));

  it("every kernel touching f16 enables it, and the bundle says it needs shader-f16", () => {
    const touches = (wgsl: string) => /\bf16\b/.test(wgsl.replace(/\/\/[^\n]*/g, ""));
    expect(bundle.kernels.filter((k) => touches(k.wgsl)).length).toBeGreaterThan(1);
    // (softmax runs in f32 inside: its reductions read the f32 values the matmul's epilogue wrote)
    for (const k of bundle.kernels) expect(k.wgsl.startsWith("enable f16;"), k.name).toBe(touches(k.wgsl));
    expect(requirements(bundle).features).toEqual(["shader-f16"]);
  });

  it("round-trips through disk and runs the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-f16-bundle-"));
    try {
      writeBundle(dir, bundle, { entry: "head" });
      const back = readBundle(dir);
      expect(back).toEqual(bundle);
      const x = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i));
      const w = Float32Array.from({ length: 108 }, (_, i) => Math.cos(i * 0.7));
      const outs: Float32Array[] = [];
      for (const b of [bundle, back]) {
        const be = await GpuBackend.load(await gpu(), b, { poison: true });
        be.write("x", x);
        be.write("w", w);
        outs.push((await be.run(["out"])).get("out") as Float32Array);
        be.destroy();
      }
      expect([...outs[1]]).toEqual([...outs[0]]);
      // rows of a softmax sum to 1 (in f16: within a few ulps)
      for (let r = 0; r < 5; r++) expect(Math.abs(outs[0].slice(r * 9, r * 9 + 9).reduce((a, b) => a + b, 0) - 1)).toBeLessThan(5e-3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a device without shader-f16 is refused at load, naming the feature and why", () => {
    let msg = "";
    try {
      validateBundle(bundle, PORTABLE.limits, ["timestamp-query"], "the device (no f16)");
    } catch (e) {
      expect(e).toBeInstanceOf(DeviceLimitError);
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^the device \(no f16\) cannot run this bundle:\n/);
    expect(msg).toContain('uses feature "shader-f16", which the device does not have (it computes on f16 tensors; declare them f32 to run on this device)');
    expect(() => validateBundle(bundle, PORTABLE.limits, ["shader-f16"])).not.toThrow();
  });

  it("and at compile time, when the target device is known", () => {
    const g = lower("head", { x: [5, 12], w: [12, 9] });
    expect(() => compileBundle(g, { device: PORTABLE })).toThrow(/the target device cannot run this bundle:[\s\S]*uses feature "shader-f16"/);
    expect(() => compileBundle(g, { device: { ...PORTABLE, features: ["shader-f16"] } })).not.toThrow();
  });
});

describe("F16 tensors in safetensors files", () => {
  it("are read as the numbers they hold", () => {
    const values = [1, -0.5, 65504, 0.1, 2 ** -24, -Infinity];
    const bits = Uint16Array.from(values, f16Bits);
    const header = new TextEncoder().encode(JSON.stringify({ w: { dtype: "F16", shape: [2, 3], data_offsets: [0, bits.byteLength] } }).padEnd(64, " "));
    const file = new Uint8Array(8 + header.length + bits.byteLength);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(header, 8);
    file.set(new Uint8Array(bits.buffer), 8 + header.length);
    const t = decodeSafetensors(file).get("w")!;
    expect(t.dtype).toBe("F16");
    expect(t.shape).toEqual([2, 3]);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect([...(t.data as Float32Array)]).toEqual(values.map(f16Round));
  });
});
