import { acquireDevice, awaitGpu } from "../../runtime/webgpu/device.ts";
const h = (await acquireDevice({ requireGpu: true }))!;
const dev = h.device, adapter = h.adapter;
const fakeAdapter = {
  features: adapter.features, limits: adapter.limits, info: adapter.info, isFallbackAdapter: false,
  requestDevice: async () => dev,
  requestAdapterInfo: async () => adapter.info,
};
const fakeGpu = { requestAdapter: async () => fakeAdapter, getPreferredCanvasFormat: () => "rgba8unorm", wgslLanguageFeatures: new Set() };
Object.defineProperty(globalThis, "navigator", { value: { gpu: fakeGpu, userAgent: "node", hardwareConcurrency: 2 }, configurable: true, writable: true });
let t = performance.now();
const tf = await import("@tensorflow/tfjs");
await import("@tensorflow/tfjs-backend-webgpu");
console.log("tf import", performance.now() - t);
await tf.setBackend("webgpu"); await tf.ready();
console.log("tf backend", tf.getBackend());
const a = tf.randomNormal([256, 256]); const b = tf.randomNormal([256, 256]);
t = performance.now();
const c = tf.matMul(a, b);
console.log(await awaitGpu(c.data()).then(d => d[0]), "tf mm first", performance.now() - t);
const be = tf.backend() as unknown as { device: GPUDevice };
console.log("same device", be.device === dev);
t = performance.now();
const jax = await import("@jax-js/jax");
console.log("jax import", performance.now() - t);
console.log(await jax.init("webgpu"));
jax.defaultDevice("webgpu");
console.log("jax same device", jax.getWebGPUDevice() === dev);
const np = jax.numpy;
const x = np.ones([256, 256]); const y = np.ones([256, 256]);
const f = jax.jit((p: jax.Array, q: jax.Array) => np.matmul(p, q));
t = performance.now();
const z = f(x, y);
const zd = await awaitGpu(z.data());
console.log(zd[0], "jax mm first", performance.now() - t);
