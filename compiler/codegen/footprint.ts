// Footprints (runtime/bundle.ts): what each workgroup of a kernel touches of each binding,
// written beside the WGSL so that a launch binding more than the device's
// maxStorageBufferBindingSize can be split into chunks (runtime/split.ts). Kernel
// templates describe their indexing with these steps; the renderer adds the views of
// the buffers and fused nodes it reads through.
import type { IndexStep, KernelSpec } from "../../runtime/bundle.ts";
import { planChunks } from "../../runtime/split.ts";
import type { Target } from "./target.ts";

/**
 * An index step with several result axes: result axis j is `Σ rows[j][i]·x[i]` over the
 * axes i of `shape` (a missing axis counts 0).
 */
export function affine(shape: readonly number[], rows: readonly Readonly<Record<number, number>>[]): IndexStep {
  return {
    shape: [...shape],
    axes: rows.map((row) => ({ strides: shape.map((_, i) => row[i] ?? 0), offset: 0 })),
  };
}

/**
 * Whether the kernel can run on the target: no binding over its
 * maxStorageBufferBindingSize, or a split launch whose every chunk is within it.
 * (Buffer sizes are not known here: a buffer bound whole is taken to fit.)
 */
export function fitsBindingLimit(k: KernelSpec, target: Target): boolean {
  return !("failure" in planChunks(k, [], target.device.limits.maxStorageBufferBindingSize));
}
