// Footprints (runtime/bundle.ts): what each workgroup of a kernel touches of each binding,
// written beside the WGSL so that a launch binding more than the device's
// maxStorageBufferBindingSize can be split into chunks (runtime/split.ts). Kernel
// templates describe their indexing with these steps; the renderer adds the views of
// the buffers and fused nodes it reads through.
import type { IndexStep, KernelSpec } from "../../runtime/bundle.ts";
import { OFFSET_ALIGN, planChunks } from "../../runtime/split.ts";
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
  const limit = target.device.limits.maxStorageBufferBindingSize;
  // Most kernels reach less than the limit through any index they could form: no plan needed.
  if (k.footprint?.access.every((list) => list.every((a) => a !== "whole" && reachBytes(a.steps) <= limit))) return true;
  return !("failure" in planChunks(k, [], limit));
}

/** At most the bytes a chunk binds for these steps: what the last one reaches from its whole domain (elements of at most 4 bytes). */
function reachBytes(steps: readonly IndexStep[]): number {
  const last = steps[steps.length - 1];
  if (!last || "axes" in last) return Infinity;
  let lo = 0;
  let hi = 0;
  last.strides.forEach((s, i) => {
    const span = s * Math.max(0, last.shape[i] - 1);
    if (span < 0) lo += span;
    else hi += span;
  });
  // (a chunk's range starts at an aligned offset before its first element, and ends on a whole vec4)
  return (hi - lo + 1) * 4 + OFFSET_ALIGN + 16;
}
