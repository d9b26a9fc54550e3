import { openDevice, uniforms } from "../harness.ts";
import { loadTf } from "../peers.ts";
const h = await openDevice();
const tf = await loadTf(h);
if (!tf.ok) throw new Error(tf.error);
const t = tf.value.tf;
for (const n of [4, 64, 256]) {
  const A = uniforms(n * n, 1), B = uniforms(n * n, 2);
  const c = await t.matMul(t.tensor2d(A, [n, n]), t.tensor2d(B, [n, n])).data();
  let s = 0; for (let k = 0; k < n; k++) s += A[k] * B[k * n];
  let s2 = 0; for (let k = 0; k < n; k++) s2 += A[n+k] * B[k * n + 1];
  console.log(n, c[0], s, c[n + 1], s2, t.getBackend());
}
const x = t.tensor1d([1, 2, 3]); console.log(await t.mul(x, x).data());
