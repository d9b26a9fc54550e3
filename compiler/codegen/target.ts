// What code generation is for: the device's profile (its class, optional features and
// limits, reported by the runtime: GpuHandle.profile), and overrides for tuning and tests.
import { PORTABLE, type DeviceProfile } from "../../runtime/profile.ts";

export interface Target {
  readonly device: DeviceProfile;
  /** every matmul uses this tile ("8x8:8x4", "16x16:4x4:k16"); else WEFT_MATMUL_TILE, else the measured table */
  readonly matmulTile?: string;
}

/** No device given: WebGPU's default limits, no optional features: the bundle runs anywhere. */
export const DEFAULT_TARGET: Target = { device: PORTABLE };
