// Bundles round-trip through disk and run with the runtime alone.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { loadProgram, lowerJob } from "../../compiler/index.ts";
import { BundleError, readBundle, writeBundle } from "../../runtime/bundle-io.ts";
import { readJsonl } from "../../runtime/data.ts";
import { train } from "../../runtime/train.ts";
import { GpuBackend } from "../../runtime/webgpu/backend.ts";
import { gpu } from "../gpu.ts";
import { ROOT } from "../util/weft.ts";

describe("bundles on disk", () => {
  const data = readJsonl(`${ROOT}/examples/mlp/train.jsonl`);
  const lowered = lowerJob(loadProgram(`${ROOT}/examples/mlp/mlp.weft`), undefined, () => data.fields);
  if (!lowered.ok) throw new Error("the MLP example must lower");
  const { graph, job } = lowered.value;
  const bundle = compileBundle(graph, { updates: job.updates });

  it("read back equal to what was written", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bundle-"));
    try {
      writeBundle(dir, bundle, { entry: "spirals" });
      expect(readBundle(dir)).toEqual(bundle);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a bundle from disk trains exactly like the one in memory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bundle-"));
    try {
      writeBundle(dir, bundle);
      const h = await gpu();
      const losses: number[][] = [];
      for (const b of [bundle, readBundle(dir)]) {
        const backend = await GpuBackend.load(h, b);
        losses.push((await train(backend, job.spec, data, { seed: 2, steps: 6, logEvery: 1 })).losses.map((l) => l.loss));
        backend.destroy();
      }
      expect(losses[1]).toEqual(losses[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing, foreign or newer bundle is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bundle-"));
    try {
      expect(() => readBundle(dir)).toThrow(BundleError);
      writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "other" }));
      expect(() => readBundle(dir)).toThrow(/not a Weft bundle/);
      writeFileSync(join(dir, "manifest.json"), JSON.stringify({ format: "weft-bundle", version: 99, kernels: [] }));
      expect(() => readBundle(dir)).toThrow(/version 99/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
