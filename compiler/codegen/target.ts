// What code generation is for: the device's profile (its class, optional features and
// limits, reported by the runtime: GpuHandle.profile), and overrides for tuning and tests.
import { PORTABLE, type DeviceProfile } from "../../runtime/profile.ts";

export interface Target {
  readonly device: DeviceProfile;
  /** every matmul uses this tile ("8x8:8x4", "16x16:4x4:k16"); else WEFT_MATMUL_TILE, else the measured table */
  readonly matmulTile?: string;
  /**
   * Matmul kernels read their sizes and strides from a uniform, so matmuls of one structure
   * (tile, vec4 reads, epilogue) over different shapes share one shader: fewer driver
   * compiles (lavapipe JITs each shader at its first dispatch). Default true; false
   * bakes every size into the WGSL.
   */
  readonly genericMatmul?: boolean;
}

/** No device given: WebGPU's default limits, no optional features: the bundle runs anywhere. */
export const DEFAULT_TARGET: Target = { device: PORTABLE };
