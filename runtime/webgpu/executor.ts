// Runs a Bundle on a WebGPU device: every buffer, pipeline and bind group is made at
// load; a run is one command encoder and one submit; the host waits for the GPU only
// when it asks to read something back.

import { BUNDLE_VERSION, MIN_BUNDLE_VERSION, bufferBytes, elementBytes, shaderKey, storageOf, type Bundle, type BufferSpec, type KernelSpec, type StorageType, type TensorRef } from "../bundle.ts";
import { awaitGpu, type GpuHandle } from "./device.ts";
import { CHECKED_LIMITS, checkDevice, DeviceLimitError, type Limits } from "../limits.ts";
import { fromF16Array, toF16Array } from "../f16.ts";
import { CHUNK_UNIFORM_STRIDE, chunkBinding, chunkUniform, fitBundle, OFFSET_ALIGN } from "../split.ts";

/**
 * Host data: f32 and f16 tensors as Float32Array (an f16 tensor's values are converted to
 * and from half bits at the boundary: written rounded to the nearest half, read exactly),
 * i32 as Int32Array, bool as Uint32Array (0 or 1).
 */
export type HostArray = Float32Array | Int32Array | Uint32Array;

const debugLevel = (): number =>
  typeof process !== "undefined" ? Number(process.env?.WEFT_DEBUG ?? 0) || 0 : 0;
const log = (msg: string): void => console.error(`weft: ${msg}`);

const bytesOf = (spec: BufferSpec): number => bufferBytes(spec.length, spec.type);
const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** The host view of the bytes of a buffer of `type` (f16 converted to numbers). */
function arrayFor(type: StorageType, buf: ArrayBuffer): HostArray {
  if (type === "f16") return fromF16Array(new Uint16Array(buf, 0, Math.floor(buf.byteLength / 2)));
  return type === "f32" ? new Float32Array(buf) : type === "i32" ? new Int32Array(buf) : new Uint32Array(buf);
}

/** The host array type a buffer of `type` is written from. */
function hostTypeOf(type: StorageType): StorageType {
  return type === "f16" ? "f32" : type;
}

function typeOfArray(data: HostArray): StorageType {
  return data instanceof Float32Array ? "f32" : data instanceof Int32Array ? "i32" : "u32";
}

/** Values (a const buffer's) as the host array of a buffer of `type`. */
function hostArrayOf(type: StorageType, values: readonly number[]): HostArray {
  return type === "f32" || type === "f16" ? Float32Array.from(values) : type === "i32" ? Int32Array.from(values) : Uint32Array.from(values);
}

/**
 * queue.writeBuffer takes whole 4-byte words: an odd count of halves is padded with a zero
 * half, which lands in the buffer's next element (past a whole tensor: the buffer's padding).
 */
function wordAligned<T extends Float32Array | Int32Array | Uint32Array | Uint16Array>(a: T): T | Uint16Array {
  if (!(a instanceof Uint16Array) || a.length % 2 === 0) return a;
  const padded = new Uint16Array(a.length + 1);
  padded.set(a);
  return padded;
}

/** What is uploaded into a buffer of `type`: f16 values become half bits. */
function deviceData(type: StorageType, data: HostArray): Float32Array | Int32Array | Uint32Array | Uint16Array {
  return type === "f16" ? toF16Array(data) : data;
}

export interface ExecutorOptions {
  /**
   * Fill every temporary buffer (every one that is not an input, parameter, state or
   * constant) with a NaN bit pattern before each run, so an output element no kernel
   * wrote reads as NaN (or 0x7fc00000 as an integer) instead of a stale or zero value.
   * A test mode; WEFT_POISON=1 turns it on too.
   */
  poison?: boolean;
  /**
   * Limits lower than the device's to run the bundle within (as if on a smaller device):
   * launches binding more than `maxStorageBufferBindingSize` are split (runtime/split.ts),
   * or the load fails naming what does not fit. For tests, and to check a bundle for
   * another device.
   */
  limits?: Limits;
}

/** The quiet-NaN bit pattern poisoned buffers are filled with. */
export const POISON = 0x7fc00000;
/** The same for f16 buffers: two half quiet NaNs (0x7e00) per word. */
export const POISON_F16 = 0x7e007e00;

export class Executor {
  private destroyed = false;
  private bytesWritten = 0;
  private runs = 0;
  private poisonData: Uint32Array | null = null;
  private poisonHalf: Uint32Array | null = null;
  /** every named tensor (what run/read accept), and the ones the host may write */
  private readonly byName = new Map<string, TensorRef>();
  private readonly writable = new Map<string, TensorRef>();
  /** staging (MAP_READ) buffers by byte size, reused across runs */
  private readonly staging = new Map<number, GPUBuffer[]>();
  private timing: { set: GPUQuerySet; resolve: GPUBuffer } | null = null;

  private constructor(
    readonly handle: GpuHandle,
    readonly bundle: Bundle,
    private readonly specs: Map<number, BufferSpec>,
    private readonly buffers: Map<number, GPUBuffer>,
    private readonly pipelines: GPUComputePipeline[],
    /** per kernel: one bind group, or one per chunk of a split launch */
    private readonly bindGroups: GPUBindGroup[][],
    /** uniform buffers: the kernels' sizes (KernelSpec.params), split launches' chunk numbers */
    private readonly uniforms: GPUBuffer[],
    private readonly opts: ExecutorOptions = {},
  ) {
    for (const r of [...bundle.inputs, ...bundle.params, ...bundle.state, ...bundle.outputs]) {
      if (!this.byName.has(r.name)) this.byName.set(r.name, r);
    }
    for (const r of [...bundle.inputs, ...bundle.params, ...bundle.state]) {
      if (!this.writable.has(r.name)) this.writable.set(r.name, r);
    }
  }

  static async load(handle: GpuHandle, given: Bundle, opts: ExecutorOptions = {}): Promise<Executor> {
    const { device } = handle;
    handle.throwIfFailed();
    const limits: Limits = {};
    for (const l of CHECKED_LIMITS) {
      const have = device.limits[l];
      if (typeof have === "number") limits[l] = Math.min(have, opts.limits?.[l] ?? Infinity);
    }
    // Launches over this device's binding limit (the bundle was compiled for a larger one)
    // are split here where their footprints allow; the check below names the rest.
    const binding = limits.maxStorageBufferBindingSize;
    const fits = binding !== undefined && given.version >= MIN_BUNDLE_VERSION && given.version <= BUNDLE_VERSION;
    const bundle = fits ? fitBundle(given, binding) : given;
    const lowered = opts.limits ? ` within limits ${Object.entries(opts.limits).map(([k, v]) => `${k} ${v}`).join(", ")}` : "";
    // (subgroup sizes come from the adapter; a device with subgroups of unknown size counts as 0)
    const info = handle.adapter?.info as (GPUAdapterInfo & { subgroupMinSize?: number }) | undefined;
    const lanes = device.features.has("subgroups") ? (info?.subgroupMinSize ?? handle.profile.subgroupMinSize ?? 0) : undefined;
    const specs = validateBundle(bundle, limits, device.features, `the device (${handle.info})${lowered}`, lanes);
    const level = debugLevel();
    const t0 = performance.now();

    // Everything synchronous sits in one error scope, pushed and popped with no await
    // in between, so concurrent loads on the same device cannot swap scopes.
    device.pushErrorScope("validation");
    const buffers = new Map<number, GPUBuffer>();
    for (const b of bundle.buffers) {
      const buf = device.createBuffer({
        label: b.name ?? `buffer ${b.id}`,
        size: bytesOf(b),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      buffers.set(b.id, buf);
      if (b.role === "const" && b.data && b.data.length > 0) device.queue.writeBuffer(buf, 0, wordAligned(deviceData(b.type, hostArrayOf(b.type, b.data))));
    }
    // Explicit layouts (not 'auto') so that the bundle's readOnly split is enforced
    // against the WGSL declarations and unused bindings do not break bind groups.
    const layouts = new Map<string, GPUBindGroupLayout>();
    const layoutFor = (k: KernelSpec): GPUBindGroupLayout => {
      const key = `${k.bindings.length}/${k.readOnly}/${k.params?.length ? "P" : ""}${k.chunks ? "/chunked" : ""}`;
      let l = layouts.get(key);
      if (!l) {
        const entries: GPUBindGroupLayoutEntry[] = k.bindings.map((_, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: i < k.readOnly ? "read-only-storage" : "storage" },
        }));
        // the kernel's sizes (shape-generic kernels), then a split launch's chunk numbers (runtime/split.ts)
        if (k.params?.length) entries.push({ binding: k.bindings.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } });
        if (k.chunks) entries.push({ binding: chunkBinding(k), visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } });
        l = device.createBindGroupLayout({ label: `weft ${key}`, entries });
        layouts.set(key, l);
      }
      return l;
    };
    // Kernels whose WGSL is the same but for comments (the same fused expression over
    // the same shapes, on other buffers: the layers of a block, the update of each
    // parameter of one shape) share one module and one pipeline, so the driver compiles
    // each distinct shader once; on lavapipe that compile is most of the first step.
    const shaderOf = bundle.kernels.map((k) => shaderKey(k));
    const distinct = [...new Set(shaderOf)];
    const firstOf = new Map(distinct.map((key) => [key, bundle.kernels[shaderOf.indexOf(key)]]));
    const modules = distinct.map((key) => device.createShaderModule({ label: firstOf.get(key)!.name, code: firstOf.get(key)!.wgsl }));
    const uniforms: GPUBuffer[] = [];
    // A shape-generic kernel's sizes: one uniform buffer holding every kernel's, each at
    // an offset aligned to minUniformBufferOffsetAlignment.
    const align = device.limits.minUniformBufferOffsetAlignment;
    const paramAt: number[] = [];
    let paramBytes = 0;
    for (const k of bundle.kernels) {
      paramAt.push(paramBytes);
      if (k.params?.length) paramBytes += Math.ceil((16 * Math.ceil(k.params.length / 4)) / align) * align;
    }
    const paramBuffer = paramBytes ? device.createBuffer({ label: "weft kernel sizes", size: paramBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }) : null;
    if (paramBuffer) {
      uniforms.push(paramBuffer);
      const all = new Uint32Array(paramBytes / 4);
      bundle.kernels.forEach((k, i) => k.params && all.set(k.params, paramAt[i] / 4));
      device.queue.writeBuffer(paramBuffer, 0, all);
    }
    const paramEntry = (k: KernelSpec, i: number): GPUBindGroupEntry[] =>
      k.params?.length && paramBuffer ? [{ binding: k.bindings.length, resource: { buffer: paramBuffer, offset: paramAt[i], size: 16 * Math.ceil(k.params.length / 4) } }] : [];
    const bindGroups = bundle.kernels.map((k, i): GPUBindGroup[] => {
      if (!k.chunks) {
        const entries = [...k.bindings.map((id, j) => ({ binding: j, resource: { buffer: buffers.get(id)! } })), ...paramEntry(k, i)];
        return [device.createBindGroup({ label: k.name, layout: layoutFor(k), entries })];
      }
      // One uniform buffer per split kernel, a slot per chunk; a bind group per chunk
      // binding its ranges of the buffers and its slot.
      const uniform = device.createBuffer({ label: `${k.name} chunks`, size: k.chunks.length * CHUNK_UNIFORM_STRIDE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      uniforms.push(uniform);
      const slot = Math.ceil((k.bindings.length + 2) / 4) * 16;
      return k.chunks.map((c, j) => {
        const values = chunkUniform(c);
        device.queue.writeBuffer(uniform, j * CHUNK_UNIFORM_STRIDE, values);
        const entries: GPUBindGroupEntry[] = k.bindings.map((id, b) => ({ binding: b, resource: { buffer: buffers.get(id)!, offset: c.ranges[b][0], size: c.ranges[b][1] } }));
        entries.push(...paramEntry(k, i));
        entries.push({ binding: chunkBinding(k), resource: { buffer: uniform, offset: j * CHUNK_UNIFORM_STRIDE, size: slot } });
        return device.createBindGroup({ label: `${k.name} chunk ${j}`, layout: layoutFor(k), entries });
      });
    });
    // Resolves to the first error (or null); a rejection (device lost) is an error too.
    const scope = device.popErrorScope().catch((e: Error) => e);

    const destroyAll = () => [...buffers.values(), ...uniforms].forEach((b) => b.destroy());
    try {
      // WGSL errors first: they name the kernel and line; pipeline errors would not.
      const infos = await awaitGpu(Promise.all(modules.map((m) => m.getCompilationInfo())));
      const wgslErrors = distinct
        .map((key, i) => compileErrors(firstOf.get(key)!, infos[i]))
        .filter((s): s is string => s !== null);
      if (wgslErrors.length) throw new Error(wgslErrors.join("\n"));

      const settled = await awaitGpu(
        Promise.allSettled(
          distinct.map((key, i) => {
            const k = firstOf.get(key)!;
            const layout = device.createPipelineLayout({ bindGroupLayouts: [layoutFor(k)] });
            return device.createComputePipelineAsync({ label: k.name, layout, compute: { module: modules[i] } });
          }),
        ),
      );
      const pipeErrors = settled.flatMap((s, i) =>
        s.status === "rejected" ? [`kernel "${firstOf.get(distinct[i])!.name}": pipeline creation failed: ${String((s.reason as Error)?.message ?? s.reason).trim()}`] : [],
      );
      if (pipeErrors.length) throw new Error(pipeErrors.join("\n"));
      const scopeError = await awaitGpu(scope);
      if (scopeError) throw new Error(`bundle load failed: ${scopeError.message.trim()}`);
      const byKey = new Map(distinct.map((key, i) => [key, (settled[i] as PromiseFulfilledResult<GPUComputePipeline>).value]));
      const pipelines = shaderOf.map((key) => byKey.get(key)!);

      if (level >= 1) logLoad(bundle, handle.info, performance.now() - t0, level, distinct.length);
      const poison = opts.poison ?? (typeof process !== "undefined" && process.env?.WEFT_POISON === "1");
      return new Executor(handle, bundle, specs, buffers, pipelines, bindGroups, uniforms, { poison });
    } catch (e) {
      destroyAll();
      throw e;
    }
  }

  /**
   * Write an input, parameter or optimizer-state tensor by name. An f16 tensor takes a
   * Float32Array, each value rounded to the nearest half on the way.
   */
  write(name: string, data: HostArray): void {
    const ref = this.writable.get(name);
    if (!ref) throw new Error(`write("${name}"): no input, param or state of that name in the bundle`);
    const spec = this.specs.get(ref.buffer)!;
    if (typeOfArray(data) !== hostTypeOf(spec.type)) {
      const want = { f32: "Float32Array", f16: "Float32Array", i32: "Int32Array", u32: "Uint32Array" }[spec.type];
      throw new Error(`write("${name}"): expected ${ref.dtype} data, a ${want}${spec.type === "f16" ? " (numbers, rounded to halves)" : ""} for ${ref.dtype}[${ref.shape.join(", ")}], got ${data.constructor.name}`);
    }
    const n = numel(ref.shape);
    if (data.length !== n) throw new Error(`write("${name}"): expected ${n} elements for shape [${ref.shape}], got ${data.length}`);
    this.writeBuffer(ref.buffer, data);
  }

  /** Write data into buffer `id` from offset 0 (into an f16 buffer: numbers, converted to half bits). */
  writeBuffer(id: number, data: HostArray): void {
    this.alive();
    const spec = this.specs.get(id);
    if (!spec) throw new Error(`writeBuffer(${id}): no such buffer`);
    if (data.length > spec.length) throw new Error(`writeBuffer(${id}): ${data.length} elements do not fit in ${spec.length}`);
    if (data.length === 0) return;
    const dev = wordAligned(deviceData(spec.type, data));
    this.handle.device.queue.writeBuffer(this.buffers.get(id)!, 0, dev);
    this.bytesWritten += dev.byteLength;
  }

  /**
   * Encode every kernel then every copy, in one command encoder and one submit. With
   * `read`, also copy those tensors out and wait for them; without, never wait.
   */
  async run(opts?: { read?: string[] }): Promise<Map<string, HostArray>> {
    this.alive();
    this.handle.throwIfFailed();
    const { device } = this.handle;
    const { kernels, copies } = this.bundle;
    const level = debugLevel();
    const timed = level >= 3 && this.handle.features.includes("timestamp-query") && kernels.length > 0;
    const run = ++this.runs;
    if (this.opts.poison) this.poisonTemps();
    // Debug level 3 without timestamp queries: each kernel in its own submit, waited for
    // (serialized, so the sum is above the step's time; the shares are what it shows).
    const cpuTimed = level >= 3 && !timed && kernels.length > 0;
    if (cpuTimed) await this.timeOnCpu(run);
    const enc = device.createCommandEncoder({ label: "weft run" });

    if (timed) {
      const t = this.timingBuffers();
      kernels.forEach((k, i) => {
        const pass = enc.beginComputePass({
          label: k.name,
          timestampWrites: { querySet: t.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
        this.dispatch(pass, i);
        pass.end();
      });
    } else if (!cpuTimed) {
      // One pass: WebGPU orders storage writes between dispatches of one pass.
      const pass = enc.beginComputePass({ label: "weft step" });
      for (let i = 0; i < kernels.length; i++) this.dispatch(pass, i);
      pass.end();
    }

    let copied = 0;
    for (const c of copies) {
      // The destination's size: a planned source buffer may be larger (it is shared).
      const size = bytesOf(this.specs.get(c.dst)!);
      enc.copyBufferToBuffer(this.buffers.get(c.src)!, 0, this.buffers.get(c.dst)!, 0, size);
      copied += size;
    }
    if (level >= 2) {
      for (const k of kernels) {
        const bytes = (ids: number[]) => ids.reduce((a, id) => a + bytesOf(this.specs.get(id)!), 0);
        const split = k.chunks ? ` in ${k.chunks.length} chunks` : "";
        log(`launch ${k.name} [${k.workgroups.join(",")}]${split} reads ${bytes(k.bindings.slice(0, k.readOnly))} bytes, writes ${bytes(k.bindings.slice(k.readOnly))} bytes`);
      }
    }
    const dispatches = kernels.reduce((n, k) => n + (k.chunks?.length ?? 1), 0);
    const chunked = dispatches !== kernels.length ? ` (${dispatches} dispatches: split launches)` : "";
    if (level >= 1) log(`run ${run}: ${kernels.length} launches${chunked}, ${copies.length} copies (${copied} bytes); host wrote ${this.bytesWritten} bytes`);
    this.bytesWritten = 0;

    const refs = (opts?.read ?? []).map((n) => this.ref(n, "run"));
    let timingRead: (() => Promise<ArrayBuffer>) | null = null;
    if (timed) {
      const t = this.timing!;
      enc.resolveQuerySet(t.set, 0, 2 * kernels.length, t.resolve, 0);
      timingRead = this.readBack(enc, t.resolve, 16 * kernels.length);
    }
    const results = this.readRefs(enc, refs);
    device.queue.submit([enc.finish()]);
    // Debug level 3 waits for the timings; otherwise nothing here waits unless asked to read.
    if (timingRead) this.logTimes(new BigInt64Array(await awaitGpu(timingRead)));
    return results();
  }

  /** Read one tensor (output, param, state or input) as it is now on the device. */
  async read(name: string): Promise<HostArray> {
    const out = await this.readMany([this.ref(name, "read")]);
    return out.get(name)!;
  }

  /** Several tensors by name, with one wait. */
  async readNames(names: readonly string[]): Promise<Map<string, HostArray>> {
    return this.readMany(names.map((n) => this.ref(n, "read")));
  }

  /** All parameters (or all optimizer state), by path, with one wait. */
  async readAll(kind: "params" | "state"): Promise<Map<string, HostArray>> {
    return this.readMany(this.bundle[kind]);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.buffers.forEach((b) => b.destroy());
    this.staging.forEach((list) => list.forEach((b) => b.destroy()));
    this.timing?.set.destroy();
    this.timing?.resolve.destroy();
  }

  // ------------------------------------------------------------------------------

  private alive(): void {
    if (this.destroyed) throw new Error("Executor used after destroy()");
  }

  private dispatch(pass: GPUComputePassEncoder, i: number): void {
    const k = this.bundle.kernels[i];
    const [x, y, z] = k.workgroups;
    if (x * y * z === 0) return;
    pass.setPipeline(this.pipelines[i]);
    // a split launch: one dispatch per chunk, in order (a pass orders their storage writes)
    const grids = k.chunks ? k.chunks.map((c) => c.workgroups) : [k.workgroups];
    grids.forEach((g, j) => {
      pass.setBindGroup(0, this.bindGroups[i][j]);
      pass.dispatchWorkgroups(g[0], g[1], g[2]);
    });
  }

  private ref(name: string, what: string): TensorRef {
    const r = this.byName.get(name);
    if (!r) {
      const known = [...this.byName.keys()].slice(0, 20).join(", ");
      throw new Error(`${what}("${name}"): no output, param, state or input of that name (have: ${known})`);
    }
    return r;
  }

  private async readMany(refs: TensorRef[]): Promise<Map<string, HostArray>> {
    this.alive();
    this.handle.throwIfFailed();
    const enc = this.handle.device.createCommandEncoder({ label: "weft read" });
    const results = this.readRefs(enc, refs);
    this.handle.device.queue.submit([enc.finish()]);
    return results();
  }

  /** Encode copies of `refs` into staging buffers; the returned function maps them all in one wait. */
  private readRefs(enc: GPUCommandEncoder, refs: TensorRef[]): () => Promise<Map<string, HostArray>> {
    const pending = refs.map((r) => {
      const spec = this.specs.get(r.buffer)!;
      const bytes = numel(r.shape) * elementBytes(spec.type);
      const map = bytes === 0 ? async () => new ArrayBuffer(0) : this.readBack(enc, this.buffers.get(r.buffer)!, bytes);
      return { r, spec, map };
    });
    return async () => {
      const out = new Map<string, HostArray>();
      if (pending.length === 0) return out;
      // One wait for all: every mapAsync is issued before any is awaited.
      const datas = await awaitGpu(Promise.all(pending.map((p) => p.map())));
      pending.forEach((p, i) => out.set(p.r.name, arrayFor(p.spec.type, datas[i])));
      this.handle.throwIfFailed();
      if (debugLevel() >= 2) log(`read ${datas.reduce((a, d) => a + d.byteLength, 0)} bytes (${pending.map((p) => p.r.name).join(", ")})`);
      return out;
    };
  }

  /**
   * Encode a copy of `bytes` of `src` into a staging buffer. Call the returned function
   * after submitting `enc` (mapping a buffer a pending submit still writes would fail).
   */
  private readBack(enc: GPUCommandEncoder, src: GPUBuffer, bytes: number): () => Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const list = this.staging.get(size) ?? [];
    this.staging.set(size, list);
    let buf = list.find((b) => b.mapState === "unmapped" && !busy.has(b));
    if (!buf) {
      buf = this.handle.device.createBuffer({ label: "weft staging", size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      list.push(buf);
    }
    const staging = buf;
    busy.add(staging);
    enc.copyBufferToBuffer(src, 0, staging, 0, size);
    return async () => {
      try {
        await staging.mapAsync(GPUMapMode.READ);
        const copy = staging.getMappedRange().slice(0, bytes);
        staging.unmap();
        return copy;
      } finally {
        busy.delete(staging);
      }
    };
  }

  /**
   * Queue a NaN fill of every temporary (ExecutorOptions.poison); it lands before the next
   * submit. f16 buffers get the half quiet NaN in both halves of each word.
   */
  private poisonTemps(): void {
    const temps = this.bundle.buffers.filter((b) => b.role === "temp");
    const words = (b: BufferSpec) => bytesOf(b) / 4;
    const most = temps.reduce((a, b) => Math.max(a, words(b)), 0);
    if (!this.poisonData || this.poisonData.length < most) {
      this.poisonData = new Uint32Array(most).fill(POISON);
      this.poisonHalf = new Uint32Array(most).fill(POISON_F16);
    }
    for (const b of temps) this.handle.device.queue.writeBuffer(this.buffers.get(b.id)!, 0, b.type === "f16" ? this.poisonHalf! : this.poisonData, 0, words(b));
  }

  private timingBuffers(): { set: GPUQuerySet; resolve: GPUBuffer } {
    const n = 2 * this.bundle.kernels.length;
    this.timing ??= {
      set: this.handle.device.createQuerySet({ type: "timestamp", count: n }),
      resolve: this.handle.device.createBuffer({ size: 8 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
    };
    return this.timing;
  }

  /** Run each kernel in its own submit and wait: wall-clock per kernel, as the host sees it. */
  private async timeOnCpu(run: number): Promise<void> {
    const { device } = this.handle;
    const kernels = this.bundle.kernels;
    const times: number[] = [];
    const all = performance.now();
    for (let i = 0; i < kernels.length; i++) {
      const t0 = performance.now();
      const enc = device.createCommandEncoder({ label: `weft ${kernels[i].name}` });
      const pass = enc.beginComputePass({ label: kernels[i].name });
      this.dispatch(pass, i);
      pass.end();
      device.queue.submit([enc.finish()]);
      await awaitGpu(device.queue.onSubmittedWorkDone());
      times.push(performance.now() - t0);
    }
    const total = performance.now() - all;
    kernels.forEach((k, i) => log(`cpu ${k.name}: ${(times[i] * 1000).toFixed(1)} us (${((100 * times[i]) / total).toFixed(1)}%)`));
    log(`cpu run ${run}: ${total.toFixed(2)} ms over ${kernels.length} kernels, one submit and wait each (the adapter has no 'timestamp-query': host-side times, each with a submit's overhead)`);
  }

  private logTimes(ts: BigInt64Array): void {
    let total = 0;
    this.bundle.kernels.forEach((k, i) => {
      const us = Number(ts[2 * i + 1] - ts[2 * i]) / 1000;
      total += us;
      log(`gpu ${k.name}: ${us.toFixed(1)} us`);
    });
    log(`gpu total: ${total.toFixed(1)} us over ${this.bundle.kernels.length} kernels`);
  }
}

/** WEFT_DEBUG ≥ 1 at load: the bundle's buffers and kernels; ≥ 2: which graph ops each kernel computes. */
function logLoad(bundle: Bundle, device: string, ms: number, level: number, shaders: number): void {
  const byRole = new Map<string, number>();
  for (const b of bundle.buffers) byRole.set(b.role, (byRole.get(b.role) ?? 0) + bytesOf(b));
  const total = [...byRole.values()].reduce((a, b) => a + b, 0);
  const roles = [...byRole].map(([r, n]) => `${r} ${n}`).join(", ");
  log(`loaded bundle on ${device}: ${bundle.buffers.length} buffers, ${total} bytes (${roles}); ${bundle.kernels.length} kernels (${shaders} distinct shaders), ${bundle.copies.length} copies (pipelines ready in ${ms.toFixed(0)} ms)`);
  for (const k of bundle.kernels) {
    log(`  kernel ${k.name} workgroups=[${k.workgroups.join(",")}] bindings=${k.bindings.length}${k.chunks ? ` split into ${k.chunks.length} chunks` : ""}`);
    if (level >= 2 && k.fused?.length) log(`    fuses ${k.fused.map((f) => `%${f.node} ${f.op}${f.at ? ` (${f.at})` : ""}`).join(", ")}`);
  }
}

/** Staging buffers handed out but not yet mapped (mapState stays "unmapped" until mapAsync). */
const busy = new WeakSet<GPUBuffer>();

function compileErrors(k: KernelSpec, info: GPUCompilationInfo): string | null {
  const errs = info.messages.filter((m) => m.type === "error");
  if (!errs.length) return null;
  const lines = k.wgsl.split("\n");
  const msgs = errs.map((m) => {
    const src = m.lineNum > 0 ? `\n      ${lines[m.lineNum - 1] ?? ""}\n      ${" ".repeat(Math.max(0, m.linePos - 1))}^` : "";
    return `    ${m.lineNum}:${m.linePos}: ${m.message}${src}`;
  });
  return `kernel "${k.name}": WGSL compile error\n${msgs.join("\n")}`;
}

/** A split launch's chunks: in order, each within its buffers at aligned offsets, one round at most where the kernel accumulates. */
function validateChunks(k: KernelSpec, bytes: (id: number) => number, fail: (msg: string) => never): void {
  const where = `kernel "${k.name}"`;
  const total = k.workgroups[0] * k.workgroups[1] * k.workgroups[2];
  let next = 0;
  k.chunks!.forEach((c, j) => {
    const at = `${where} chunk ${j}`;
    if (!Number.isInteger(c.first) || c.first !== next || !(c.end > c.first) || c.end > total) fail(`${at} runs workgroups [${c.first}, ${c.end}) of ${total}, after ${next}`);
    next = c.end;
    if (c.workgroups.length !== 3 || c.workgroups[0] * c.workgroups[1] * c.workgroups[2] < c.end - c.first) fail(`${at} dispatches [${c.workgroups}] for ${c.end - c.first} workgroups`);
    if (k.footprint?.round !== undefined && c.end - c.first > k.footprint.round) fail(`${at} runs ${c.end - c.first} workgroups, more than one round (${k.footprint.round})`);
    if (c.ranges.length !== k.bindings.length || c.bases.length !== k.bindings.length) fail(`${at} has ${c.ranges.length} ranges for ${k.bindings.length} bindings`);
    c.ranges.forEach(([offset, size], i) => {
      if (offset % OFFSET_ALIGN !== 0 || size <= 0 || size % 4 !== 0 || offset + size > bytes(k.bindings[i])) {
        fail(`${at} binds bytes [${offset}, ${offset + size}) of buffer ${k.bindings[i]} (${bytes(k.bindings[i])} bytes; offsets are multiples of ${OFFSET_ALIGN})`);
      }
    });
  });
}

/**
 * Check the bundle's shape, then what it needs of the device (runtime/limits.ts: buffer
 * and binding sizes, storage buffers per kernel, workgroup sizes and storage, dispatch
 * sizes, and — when `features` is given — the features its WGSL enables), before
 * creating anything. A shortfall throws a DeviceLimitError naming each limit, what the
 * bundle needs and what the device offers.
 */
export function validateBundle(
  bundle: Bundle,
  limits: Limits | GPUSupportedLimits,
  features?: readonly string[] | ReadonlySet<string>,
  device?: string,
  /** the device's smallest subgroup, where it has subgroups (checkDevice) */
  subgroupMinSize?: number,
): Map<number, BufferSpec> {
  const fail = (msg: string): never => {
    throw new Error(`invalid bundle: ${msg}`);
  };
  if (!(bundle.version >= MIN_BUNDLE_VERSION && bundle.version <= BUNDLE_VERSION)) fail(`version ${bundle.version}, this runtime reads versions ${MIN_BUNDLE_VERSION} to ${BUNDLE_VERSION}`);
  const specs = new Map<number, BufferSpec>();
  for (const b of bundle.buffers) {
    if (specs.has(b.id)) fail(`buffer id ${b.id} appears twice`);
    if (!Number.isInteger(b.length) || b.length < 0) fail(`buffer ${b.id} has length ${b.length}`);
    if (b.data && b.data.length > b.length) fail(`const buffer ${b.id} has ${b.data.length} values for length ${b.length}`);
    specs.set(b.id, b);
  }
  const buf = (id: number, where: string): BufferSpec => specs.get(id) ?? fail(`${where} refers to buffer ${id}, which does not exist`);

  for (const k of bundle.kernels) {
    const where = `kernel "${k.name}"`;
    const n = k.bindings.length;
    if (!Number.isInteger(k.readOnly) || k.readOnly < 0 || k.readOnly > n) fail(`${where} has readOnly ${k.readOnly} for ${n} bindings`);
    k.bindings.forEach((id, i) => {
      buf(id, where);
      // WebGPU forbids a buffer bound writable twice, or writable and read-only, in one dispatch.
      const j = k.bindings.indexOf(id);
      if (j !== i && (i >= k.readOnly || j >= k.readOnly)) fail(`${where} binds buffer ${id} at ${j} and ${i} with one of them writable`);
    });
    if (k.workgroups.length !== 3) fail(`${where} workgroups must be [x, y, z]`);
    k.workgroups.forEach((w, d) => {
      if (!Number.isInteger(w) || w < 0) fail(`${where} workgroups[${d}] = ${w}`);
    });
    if (k.footprint?.round !== undefined && !k.chunks) fail(`${where} adds into its outputs in rounds and must run as chunks, but has none`);
    if (k.chunks) validateChunks(k, (id) => Math.max(4, buf(id, where).length * 4), fail);
  }
  for (const c of bundle.copies) {
    const s = buf(c.src, "copy"), d = buf(c.dst, "copy");
    if (c.src === c.dst) fail(`copy from buffer ${c.src} to itself`);
    if (s.type !== d.type) fail(`copy from buffer ${c.src} (${s.type}) into buffer ${c.dst} of another type (${d.type})`);
    if (s.length < d.length) fail(`copy from buffer ${c.src} (${s.length}) into larger buffer ${c.dst} (${d.length})`);
  }
  for (const [kind, refs] of Object.entries({ inputs: bundle.inputs, outputs: bundle.outputs, params: bundle.params, state: bundle.state })) {
    for (const r of refs) {
      const b = buf(r.buffer, `${kind} "${r.name}"`);
      if (numel(r.shape) > b.length) fail(`${kind} "${r.name}" of shape [${r.shape}] does not fit buffer ${r.buffer} (${b.length})`);
      if (storageOf(r.dtype) !== b.type) fail(`${kind} "${r.name}" is ${r.dtype} but buffer ${r.buffer} stores ${b.type}`);
    }
  }
  const have: Limits = {};
  for (const l of CHECKED_LIMITS) if (typeof limits[l] === "number") have[l] = limits[l];
  const short = checkDevice(bundle, have, features ?? null, subgroupMinSize);
  if (short.length) throw new DeviceLimitError(short, device);
  return specs;
}
