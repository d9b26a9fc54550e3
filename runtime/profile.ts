// What the compiler may assume about the device a bundle will run on. The runtime
// describes its own device (runtime/webgpu/device.ts); the compiler picks kernel shapes
// (matmul tiles, subgroup reductions) and checks workgroup sizes, shared memory and
// dispatch sizes against it. Plain data, so a bundle can be compiled for a device
// the compiler never opened.

export interface DeviceProfile {
  /**
   * "cpu": a software adapter (Mesa lavapipe, SwiftShader), limited by memory access,
   * where register blocking from global memory beats shared-memory tiles;
   * "gpu": a hardware adapter; "unknown": nothing assumed.
   */
  readonly kind: "cpu" | "gpu" | "unknown";
  /** optional features enabled on the device that kernels may use ("subgroups") */
  readonly features: readonly string[];
  /** smallest subgroup size the adapter reports, when it has subgroups */
  readonly subgroupMinSize?: number;
  readonly limits: DeviceLimits;
}

export interface DeviceLimits {
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupSizeZ: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeWorkgroupSizeY: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

/** WebGPU's default limits: what every device offers, so a bundle compiled for it runs anywhere. */
export const PORTABLE: DeviceProfile = {
  kind: "unknown",
  features: [],
  limits: {
    maxBufferSize: 268435456,
    maxComputeWorkgroupSizeZ: 64,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupsPerDimension: 65535,
    maxStorageBufferBindingSize: 134217728,
    maxStorageBuffersPerShaderStage: 8,
  },
};

/** Software adapters, by the names they report. */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|warp|basic render/i;

/** The profile of an opened device: its adapter's class, the features enabled, its limits. */
export function profileOf(info: GPUAdapterInfo, limits: GPUSupportedLimits, features: readonly string[]): DeviceProfile {
  const extra = info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number };
  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");
  const kind = extra.isFallbackAdapter || SOFTWARE.test(names) ? "cpu" : "gpu";
  const pick = {} as Record<keyof DeviceLimits, number>;
  for (const k of Object.keys(PORTABLE.limits) as (keyof DeviceLimits)[]) pick[k] = limits[k];
  const sub = features.includes("subgroups") && typeof extra.subgroupMinSize === "number" ? { subgroupMinSize: extra.subgroupMinSize } : {};
  return { kind, features: [...features], ...sub, limits: pick };
}
