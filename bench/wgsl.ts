// The kernel baseline: a hand-written, register-blocked fp32 matmul in WGSL. Each
// invocation computes 8 rows × 4 columns of C from vec4 loads straight from global
// memory (no workgroup tiles): on lavapipe this beats shared-memory tiling
// (DEVICE-NOTES item 4). Square n×n, n a multiple of 64.

export function handMatmulWgsl(n: number): string {
  const n4 = n / 4;
  const rows = [0, 1, 2, 3, 4, 5, 6, 7];
  return `// C = A @ B, ${n}×${n} row-major; 8×4 outputs per invocation
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  let row0 = gid.y * 8u;
${rows.map((r) => `  var acc${r} = vec4<f32>(0.0);`).join("\n")}
  for (var k = 0u; k < ${n4}u; k++) {
    let kb = 4u * k * ${n4}u + col;
    let b0 = B[kb];
    let b1 = B[kb + ${n4}u];
    let b2 = B[kb + ${2 * n4}u];
    let b3 = B[kb + ${3 * n4}u];
${rows.map((r) => `    let a${r} = A[(row0 + ${r}u) * ${n4}u + k];\n    acc${r} = fma(vec4<f32>(a${r}.x), b0, fma(vec4<f32>(a${r}.y), b1, fma(vec4<f32>(a${r}.z), b2, fma(vec4<f32>(a${r}.w), b3, acc${r}))));`).join("\n")}
  }
${rows.map((r) => `  C[(row0 + ${r}u) * ${n4}u + col] = acc${r};`).join("\n")}
}
`;
}

/** The baseline on a device: buffers, one pipeline, one bind group; step() is one submit. */
export class HandMatmul {
  readonly a: GPUBuffer;
  readonly b: GPUBuffer;
  readonly c: GPUBuffer;
  private pipeline: GPUComputePipeline | null = null;
  private bindGroup: GPUBindGroup | null = null;

  constructor(private readonly device: GPUDevice, readonly n: number) {
    if (n % 64 !== 0) throw new Error(`hand matmul needs n a multiple of 64, got ${n}`);
    const size = n * n * 4;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    this.a = device.createBuffer({ label: "hand A", size, usage });
    this.b = device.createBuffer({ label: "hand B", size, usage });
    this.c = device.createBuffer({ label: "hand C", size, usage });
  }

  /** Creates the pipeline (compiles the shader). */
  async load(wait: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    const module = this.device.createShaderModule({ label: "hand matmul", code: handMatmulWgsl(this.n) });
    const pipeline = await wait(this.device.createComputePipelineAsync({ label: "hand matmul", layout: "auto", compute: { module, entryPoint: "main" } }));
    this.pipeline = pipeline;
    this.bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [this.a, this.b, this.c].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }

  write(a: Float32Array, b: Float32Array): void {
    this.device.queue.writeBuffer(this.a, 0, a);
    this.device.queue.writeBuffer(this.b, 0, b);
  }

  step(): void {
    if (!this.pipeline || !this.bindGroup) throw new Error("HandMatmul.step before load");
    const enc = this.device.createCommandEncoder({ label: "hand matmul" });
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(this.n / 32, this.n / 64, 1);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }

  async read(wait: <T>(p: Promise<T>) => Promise<T>): Promise<Float32Array> {
    const size = this.n * this.n * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(this.c, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await wait(staging.mapAsync(GPUMapMode.READ));
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    return out;
  }

  destroy(): void {
    this.a.destroy();
    this.b.destroy();
    this.c.destroy();
  }
}
