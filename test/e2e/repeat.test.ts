// `repeat(L) Block`: the params of the repeated block are stacked — one tensor per param,
// f32[L, …] — and layer i reads its slice as a view. Checked against the same model with
// its layers declared one by one (separate params, no stacking anywhere), evaluated by the
// float64 reference interpreter: forward, loss, gradients (by `weft grad`'s path and by
// `grad` in the language), training, checkpoints with per-layer tensor names, the
// per-layer initialisation, and the kernels (no copy per layer, no padded gradient sums).
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dataReader } from "../../cli/train.ts";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { formatDiagnostic } from "../../compiler/diagnostics.ts";
import { hasErrors, loadProgram, lowerFunction, lowerJob } from "../../compiler/index.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { CheckpointError, loadCheckpoint } from "../../runtime/checkpoint.ts";
import { initialValues, InitError, paramValues, valuesFrom } from "../../runtime/init.ts";
import { decodeSafetensors } from "../../runtime/safetensors.ts";
import { fileTensors } from "../../runtime/stacked.ts";
import { gpu } from "../gpu.ts";
import { cleanup, expectClose, gpuBackend, reference, run, tempDir, type Job } from "../train/helpers.ts";
import { ROOT, runFn, uniforms } from "../util/weft.ts";

const FILE = "test/fixtures/e2e/repeat.weft";
const L = 3;
const D = 4;
const F = 6;
const ROLES: [string, number[]][] = [
  ["ln.scale", [D]],
  ["ln.shift", [D]],
  ["ff.up.w", [D, F]],
  ["ff.up.b", [F]],
  ["ff.down.w", [F, D]],
  ["ff.down.b", [D]],
];
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const layers = [0, 1, 2];

/** Random values for every layer's params, keyed by `name(i, role)`. */
function layerValues(name: (i: number, role: string) => string): Map<string, number[]> {
  return new Map(layers.flatMap((i) => ROLES.map(([role, shape], r) => [name(i, role), uniforms(numel(shape), 100 + 10 * i + r, role === "ln.scale" ? 0.5 : -0.8, role === "ln.scale" ? 1.5 : 0.8)] as const)));
}
// The same numbers under the stack's per-layer names and under the explicit model's.
const stackParams = layerValues((i, role) => `m.layers[${i}].${role}`);
const explicitParams = layerValues((i, role) => `m.l${i}.${role}`);
const x = { shape: [2, 3, D], data: uniforms(2 * 3 * D, 7, -1.5, 1.5) };
const concat = (parts: ArrayLike<number>[]) => parts.flatMap((p) => Array.from(p));

function lowerNamed(file: string, job: string, dims?: Record<string, number>): Job {
  const p = loadProgram(file, { dims });
  if (hasErrors(p.diagnostics)) throw new Error(p.diagnostics.map((d) => formatDiagnostic(d, undefined, false)).join("\n"));
  const r = dataReader();
  const res = lowerJob(p, job, r.read, { dims });
  if (!res.ok) throw new Error(res.diagnostics.map((d) => formatDiagnostic(d, undefined, false)).join("\n"));
  return { lowered: res.value, data: r.get(res.value.job.data.file, res.value.job.data.options) };
}

afterAll(cleanup);

describe("repeat: stacked params", () => {
  it("each param of the repeated block is one tensor with a leading L dim, its slices named per layer", () => {
    const p = loadProgram(join(ROOT, FILE));
    const r = lowerFunction(p, "stack_out", new Map([["x", { shape: x.shape, dtype: "f32" as const }]]));
    if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
    expect(r.value.params.map((q) => [q.path, q.shape])).toEqual(ROLES.map(([role, shape]) => [`m.layers.${role}`, [L, ...shape]]));
    const w = r.value.params.find((q) => q.path === "m.layers.ff.up.w")!;
    expect(w.stacked).toEqual({ lead: 1, names: layers.map((i) => `m.layers[${i}].ff.up.w`) });
    expect(fileTensors(w).map((f) => [f.name, f.shape, f.offset])).toEqual(layers.map((i) => [`m.layers[${i}].ff.up.w`, [D, F], i * D * F]));
  });

  for (const backend of ["reference", "webgpu"] as const) {
    const tol = backend === "reference" ? { rel: 1e-12, abs: 1e-14 } : { rel: 2e-4, abs: 2e-6 };
    it(`forward, loss and gradients equal the model with its layers declared one by one (${backend})`, async () => {
      const wrtStack = [...ROLES.map(([role]) => `m.layers.${role}`), "m.layers[1].ff.up.w", "m.layers[0].ln.scale"];
      const wrtExplicit = layers.flatMap((i) => ROLES.map(([role]) => `m.l${i}.${role}`));
      const [s, e, so, eo] = await Promise.all([
        runFn(FILE, "stack_loss", { x }, { backend, params: stackParams, wrt: wrtStack }),
        runFn(FILE, "explicit_loss", { x }, { backend: "reference", params: explicitParams, wrt: wrtExplicit }),
        runFn(FILE, "stack_out", { x }, { backend, params: stackParams }),
        runFn(FILE, "explicit_out", { x }, { backend: "reference", params: explicitParams }),
      ]);
      expect(s.params.size).toBe(stackParams.size); // every given layer value was used
      expectClose(so.outputs.get("out")!, eo.outputs.get("out")!, tol.rel, tol.abs, "output");
      expectClose(s.outputs.get("out")!, e.outputs.get("out")!, tol.rel, tol.abs, "loss");
      // the stacked gradient is the layers' gradients, stacked
      for (const [role] of ROLES) {
        const want = concat(layers.map((i) => e.outputs.get(`grad.m.l${i}.${role}`)!));
        expectClose(s.outputs.get(`grad.m.layers.${role}`)!, want, tol.rel, tol.abs, `grad ${role}`);
      }
      // a layer's own path differentiates its slice (layer 0 is called twice)
      expectClose(s.outputs.get("grad.m.layers[1].ff.up.w")!, e.outputs.get("grad.m.l1.ff.up.w")!, tol.rel, tol.abs, "grad layer 1 up.w");
      expectClose(s.outputs.get("grad.m.layers[0].ln.scale")!, e.outputs.get("grad.m.l0.ln.scale")!, tol.rel, tol.abs, "grad layer 0 ln.scale");
    });

    it(`grad in the language: wrt the repeat (stacked), wrt one layer, flattened; member access (${backend})`, async () => {
      const [sg, lg, flat, w, w2, sizes, eg] = await Promise.all([
        runFn(FILE, "stack_grads", { x }, { backend, params: stackParams }),
        runFn(FILE, "layer1_grads", { x }, { backend, params: stackParams }),
        runFn(FILE, "stack_flat", { x }, { backend, params: stackParams }),
        runFn(FILE, "stacked_w", {}, { backend, params: stackParams }),
        runFn(FILE, "layer2_w", {}, { backend, params: stackParams }),
        runFn(FILE, "sizes", {}, { backend, params: stackParams }),
        runFn(FILE, "explicit_grads", { x }, { backend: "reference", params: explicitParams }),
      ]);
      const egrad = (i: number, role: string) => eg.outputs.get(`out.l${i}.${role}`)!;
      for (const [role] of ROLES) {
        expectClose(sg.outputs.get(`out.${role}`)!, concat(layers.map((i) => egrad(i, role))), tol.rel, tol.abs, `grad(m.layers).${role}`);
        expectClose(lg.outputs.get(`out.${role}`)!, egrad(1, role), tol.rel, tol.abs, `grad(m.layers[1]).${role}`);
      }
      // flatten: the record's leaves in order (params, then sub-instances), each stacked
      const perLayer = ROLES.reduce((n, [, s]) => n + numel(s), 0);
      expect(flat.outputs.get("out")!.length).toBe(L * perLayer);
      expectClose(flat.outputs.get("out")!, concat(ROLES.flatMap(([role]) => layers.map((i) => egrad(i, role)))), tol.rel, tol.abs, "flatten");
      expect(sizes.outputs.get("out")!.length).toBe(L * perLayer * perLayer); // f32[sizeof(m.layers), sizeof(m.layers[1])]
      expect(Array.from(w.outputs.get("out")!)).toEqual(concat(layers.map((i) => stackParams.get(`m.layers[${i}].ff.up.w`)!)));
      expect(Array.from(w2.outputs.get("out")!)).toEqual(stackParams.get("m.layers[2].ff.up.w"));
    });
  }
});

describe("repeat: kernels", () => {
  const bundleOf = (entry: string) => {
    const p = loadProgram(join(ROOT, FILE));
    const r = lowerFunction(p, entry, new Map([["x", { shape: x.shape, dtype: "f32" as const }]]));
    if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
    return compileBundle(r.value.graph);
  };
  it("the forward reads each layer's slice through a view: the explicit model's kernels, no copies", () => {
    const s = bundleOf("stack_out");
    const e = bundleOf("explicit_out");
    expect(s.kernels.filter((k) => /^(copy|slice|reshape)_/.test(k.name))).toEqual([]);
    expect(s.kernels.length).toBe(e.kernels.length);
  });
  it("the training step joins the layers' gradients with concat kernels (no pads) and updates each stacked param once", () => {
    const s = lowerNamed(join(ROOT, FILE), "stacked");
    const e = lowerNamed(join(ROOT, FILE), "explicit");
    const bs = compileBundle(s.lowered.graph, { updates: s.lowered.job.updates });
    const be = compileBundle(e.lowered.graph, { updates: e.lowered.job.updates });
    expect(bs.kernels.some((k) => k.name.startsWith("pad_"))).toBe(false);
    // one concat per stacked param (each within the binding limit at L = 3)
    expect(bs.kernels.filter((k) => k.name.startsWith("concat_")).length).toBe(ROLES.length);
    expect(bs.kernels.every((k) => k.bindings.length <= 8)).toBe(true);
    expect(bs.kernels.length).toBeLessThan(be.kernels.length);
    expect(s.lowered.job.spec.state.map((q) => q.name)).toEqual(ROLES.flatMap(([role]) => [`opt.m.model.layers.${role}`, `opt.v.model.layers.${role}`]));
  });
  it("with more layers than a kernel may bind buffers, the concat takes several kernels", () => {
    const s = lowerNamed(join(ROOT, FILE), "stacked", { L: 12 });
    const b = compileBundle(s.lowered.graph, { updates: s.lowered.job.updates });
    const concats = b.kernels.filter((k) => k.name.startsWith("concat_"));
    expect(concats.length).toBeGreaterThan(ROLES.length);
    expect(concats.every((k) => k.bindings.length <= 8)).toBe(true);
  });
});

describe("repeat: training and checkpoints", () => {
  const fixtureDir = () => {
    const dir = tempDir("weft-repeat-");
    copyFileSync(join(ROOT, FILE), join(dir, "repeat.weft"));
    copyFileSync(join(ROOT, "test/fixtures/e2e/repeat.jsonl"), join(dir, "repeat.jsonl"));
    return dir;
  };
  // The same starting values for both models: the stack's per-layer names, the explicit one's.
  const start = (prefix: string, rename: (i: number) => string) => new Map<string, HostArray>([...layerValues((i, role) => `${prefix}.${rename(i)}.${role}`)].map(([k, v]) => [k, Float32Array.from(v)]));

  it("trains as the explicit model does (reference), and on WebGPU", async () => {
    const s = lowerNamed(join(ROOT, FILE), "stacked");
    const e = lowerNamed(join(ROOT, FILE), "explicit");
    const a = await run(reference(s), s, { initial: start("model", (i) => `layers[${i}]`) });
    const b = await run(reference(e), e, { initial: start("model", (i) => `l${i}`) });
    expectClose(a.losses.map((q) => q.loss), b.losses.map((q) => q.loss), 1e-12, 1e-14, "losses");
    for (const [role] of ROLES) {
      expectClose(a.params.get(`model.layers.${role}`)!, concat(layers.map((i) => b.params.get(`model.l${i}.${role}`)!)), 1e-10, 1e-12, role);
    }
    const g = await run(await gpuBackend(await gpu(), s), s, { initial: start("model", (i) => `layers[${i}]`) });
    expectClose(g.losses.map((q) => q.loss), b.losses.map((q) => q.loss), 1e-4, 1e-6, "webgpu losses");
  });

  it("checkpoints name each layer's tensors by its own path; resuming joins them again, bit for bit", async () => {
    const dir = fixtureDir();
    const s = lowerNamed(join(dir, "repeat.weft"), "stacked");
    for (const d of ["a", "b"]) mkdirSync(join(dir, d));
    const straight = await run(reference(s), s, { dir: join(dir, "a"), saveEvery: 2 });
    const ck = loadCheckpoint(join(dir, "a", "checkpoints", "step-000002"));
    const names = [...ck.params.keys()].sort();
    expect(names).toEqual(layers.flatMap((i) => ROLES.map(([role]) => `model.layers[${i}].${role}`)).sort());
    expect(ck.params.get("model.layers[2].ff.down.w")!.shape).toEqual([F, D]);
    expect([...ck.state.keys()]).toContain("opt.v.model.layers[1].ff.up.b");
    expect(ck.state.get("opt.m.model.layers[0].ff.up.w")!.shape).toEqual([D, F]);
    // the same files hold layer 1's slice under its name
    const whole = straight.params; // (after 4 steps: compare with the step-4 checkpoint)
    const last = loadCheckpoint(join(dir, "a"));
    expect(Array.from(last.params.get("model.layers[1].ff.up.w")!.data)).toEqual(Array.from(whole.get("model.layers.ff.up.w")!.slice(D * F, 2 * D * F)));
    const resumed = await run(reference(s), s, { resume: ck, dir: join(dir, "b") });
    for (const [role] of ROLES) expect(Array.from(resumed.params.get(`model.layers.${role}`)!)).toEqual(Array.from(straight.params.get(`model.layers.${role}`)!));

    // a missing layer, or a slice of the wrong shape, is an error that names the tensor
    const missing = loadCheckpoint(join(dir, "a", "checkpoints", "step-000002"));
    missing.params.delete("model.layers[1].ff.up.w");
    await expect(run(reference(s), s, { resume: missing })).rejects.toThrow(CheckpointError);
    await expect(run(reference(s), s, { resume: missing })).rejects.toThrow(/no parameter 'model\.layers\[1\]\.ff\.up\.w'/);
    const wrong = loadCheckpoint(join(dir, "a", "checkpoints", "step-000002"));
    wrong.params.set("model.layers[2].ff.up.w", { shape: [F, D], data: new Float64Array(F * D) });
    await expect(run(reference(s), s, { resume: wrong })).rejects.toThrow(/'model\.layers\[2\]\.ff\.up\.w' has shape \[6, 4\], the job needs \[4, 6\]/);
  });

  it("--init and `from` read per-layer tensors (or a stacked one whole); a missing layer is named", () => {
    const s = lowerNamed(join(ROOT, FILE), "stacked");
    const params = s.lowered.job.spec.params;
    const file = new Map(layers.flatMap((i) => ROLES.map(([role, shape]) => [`model.layers[${i}].${role}`, { shape, data: Float32Array.from(stackParams.get(`m.layers[${i}].${role}`)!) }] as const)));
    const found = valuesFrom("x.safetensors", file, params, "model");
    const w = paramValues(params.find((q) => q.path === "model.layers.ff.up.w")!, 0, found);
    expect(Array.from(w)).toEqual(concat(layers.map((i) => Float32Array.from(stackParams.get(`m.layers[${i}].ff.up.w`)!))));
    // one layer of the stack only (--init model.layers[2]=FILE): the others start fresh
    const one = valuesFrom("x.safetensors", file, params, "model.layers[2]");
    expect([...one.keys()].sort()).toEqual(ROLES.map(([role]) => `model.layers[2].${role}`).sort());
    // the stacked tensor whole, as a JAX/flax checkpoint holds it
    const stacked = new Map<string, { shape: number[]; data: Float32Array }>([...file].filter(([k]) => !k.includes(".ff.up.w")));
    stacked.set("model.layers.ff.up.w", { shape: [L, D, F], data: Float32Array.from(w) });
    expect(Array.from(paramValues(params.find((q) => q.path === "model.layers.ff.up.w")!, 0, valuesFrom("y.safetensors", stacked, params, "model")))).toEqual(Array.from(w));
    file.delete("model.layers[1].ff.down.b");
    expect(() => valuesFrom("x.safetensors", file, params, "model")).toThrow(InitError);
    expect(() => valuesFrom("x.safetensors", file, params, "model")).toThrow(/missing: model\.layers\[1\]\.ff\.down\.b \[4\]/);
  });

  it("a frozen repeat keeps its stacked params constant: no gradient, no optimizer state", () => {
    const s = lowerNamed(join(ROOT, FILE), "frozen_stack");
    const spec = s.lowered.job.spec;
    expect(spec.params.filter((q) => !q.trainable).map((q) => q.path)).toEqual(ROLES.map(([role]) => `base.layers.${role}`));
    expect(spec.state.some((q) => q.name.includes("base."))).toBe(false);
    expect([...s.lowered.job.updates.keys()].some((k) => k.startsWith("base."))).toBe(false);
  });

  it("trainable may list the whole repeat, not one layer (its params are slices of stacked tensors)", () => {
    const dir = fixtureDir();
    const src = readFileSync(join(dir, "repeat.weft"), "utf8");
    const job = (trainable: string) => `\ntrain only {\n  model = Stack(L, D, F)\n  loss = stack_loss(model, batch.x)\n  data = jsonl("repeat.jsonl")\n  batch = 2\n  steps = 1\n  trainable = [${trainable}]\n}\n`;
    writeFileSync(join(dir, "whole.weft"), src + job("model.layers.ff"));
    const ok = lowerNamed(join(dir, "whole.weft"), "only").lowered.job.spec;
    expect(ok.params.filter((q) => q.trainable).map((q) => q.path)).toEqual(["model.layers.ff.up.w", "model.layers.ff.up.b", "model.layers.ff.down.w", "model.layers.ff.down.b"]);
    writeFileSync(join(dir, "one.weft"), src + job("model.layers[1]"));
    expect(() => lowerNamed(join(dir, "one.weft"), "only")).toThrow(/one layer of a repeat/);
  });
});

describe("repeat: initialisation", () => {
  it("each layer's slice is initialised as that layer's own param would be, from its own stream", () => {
    const dims = { D: 64, F: 192, L: 6 };
    const p = loadProgram(join(ROOT, FILE), { dims });
    const r = lowerFunction(p, "stack_out", new Map([["x", { shape: [2, 3, 64], dtype: "f32" as const }]]), { dims });
    if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
    const seed = 11;
    const cases: [string, number[], number][] = [
      ["m.layers.ff.up.w", [64, 192], Math.sqrt(6 / (64 + 192))],
      ["m.layers.ff.down.w", [192, 64], Math.sqrt(6 / (192 + 64))],
    ];
    for (const [path, shape, bound] of cases) {
      const q = r.value.params.find((x) => x.path === path)!;
      expect(q.shape).toEqual([6, ...shape]);
      const all = paramValues(q, seed);
      const n = numel([...shape]);
      const slices = Array.from({ length: 6 }, (_, k) => all.slice(k * n, (k + 1) * n));
      slices.forEach((v, k) => {
        // exactly the per-layer initialiser, keyed by the layer's own path
        expect(Array.from(v)).toEqual(Array.from(initialValues({ kind: "glorot" }, shape, seed, `m.layers[${k}].${path.slice("m.layers.".length)}`)));
        // and its statistics: uniform on [−b, b] with glorot's b for the layer's fan-in and fan-out
        let sum = 0;
        let sq = 0;
        let max = 0;
        for (const y of v) {
          sum += y;
          sq += y * y;
          max = Math.max(max, Math.abs(y));
        }
        const mean = sum / n;
        expect(max).toBeLessThanOrEqual(bound);
        expect(max).toBeGreaterThan(0.99 * bound);
        expect(Math.abs(mean)).toBeLessThan((4 * bound) / Math.sqrt(3 * n));
        expect(sq / n - mean * mean).toBeGreaterThan(0.95 * (bound * bound) / 3);
        expect(sq / n - mean * mean).toBeLessThan(1.05 * (bound * bound) / 3);
      });
      // distinct streams: no two layers start alike
      expect(Array.from(slices[0])).not.toEqual(Array.from(slices[1]));
    }
    const scale = r.value.params.find((x) => x.path === "m.layers.ln.scale")!;
    expect(Array.from(paramValues(scale, seed))).toEqual(new Array(6 * 64).fill(1));
  });
});

describe("repeat: examples/charlm", () => {
  it("trains to the losses it reached before its layers' params were stacked", async () => {
    const cwd = tempDir("weft-charlm-");
    const t = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, "bin/weft.mjs"), "train", join(ROOT, "examples/charlm/charlm.weft"), "--backend", "reference", "--steps", "8", "--log-every", "1", "--out", "run", "--dim", "D=16", "--dim", "F=32", "--dim", "L=2"], { cwd });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    expect(t.code, t.stderr).toBe(0);
    const losses = readFileSync(join(cwd, "run", "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { loss: number }).loss);
    // recorded with L separate instances per layer (commit 6468273), the same command
    const before = [4.344227403748836, 4.319147741066745, 4.332894724101734, 4.310708501674663, 4.258790801614864, 4.1626430743784715, 4.172985663456721, 4.140000770478671];
    expectClose(losses, before, 1e-12, 0, "charlm losses");
    const names = [...decodeSafetensors(readFileSync(join(cwd, "run", "params.safetensors"))).keys()];
    expect(names).toContain("model.layers[1].ff.up.w");
    expect(names.some((k) => k.startsWith("model.layers."))).toBe(false);
  });
});
