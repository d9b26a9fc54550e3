// The WebGPU back end behind the Backend interface: a loaded bundle on a device.
import type { Backend, HostArray } from "../backend.ts";
import { toStorage } from "../backend.ts";
import type { Bundle, DType } from "../bundle.ts";
import { Executor, type ExecutorOptions } from "./executor.ts";
import type { GpuHandle } from "./device.ts";

export class GpuBackend implements Backend {
  readonly name: string;
  private readonly dtypes = new Map<string, DType>();

  private constructor(private readonly exec: Executor, handle: GpuHandle) {
    this.name = `webgpu (${handle.info})`;
    const b = exec.bundle;
    for (const r of [...b.inputs, ...b.params, ...b.state, ...b.outputs]) this.dtypes.set(r.name, r.dtype);
  }

  static async load(handle: GpuHandle, bundle: Bundle, opts?: ExecutorOptions): Promise<GpuBackend> {
    return new GpuBackend(await Executor.load(handle, bundle, opts), handle);
  }

  write(name: string, data: HostArray): void {
    const dtype = this.dtypes.get(name);
    if (!dtype) throw new Error(`the program has no input, parameter or state named '${name}'`);
    this.exec.write(name, data instanceof Float64Array ? toStorage(data, dtype) : data);
  }

  run(read: readonly string[] = []): Promise<Map<string, HostArray>> {
    return this.exec.run({ read: [...read] });
  }

  async read(names: readonly string[]): Promise<Map<string, HostArray>> {
    const out = new Map<string, HostArray>();
    for (const n of names) out.set(n, await this.exec.read(n));
    return out;
  }

  destroy(): void {
    this.exec.destroy();
  }
}
