// The transformer block of the benchmark, written once per peer with the same
// parameters (Weft's initial values) and the same arithmetic as bench/transformer.weft:
// pre-LayerNorm (eps 1e-5), 4-head self-attention without a mask, GELU (tanh
// approximation) feed-forward, loss = mean(y²).
import type * as JAX from "@jax-js/jax";
import type * as TF from "@tensorflow/tfjs";
import { initialValues, type InitSpec } from "../runtime/init.ts";
import type { Jax, Tf } from "./peers.ts";

export const TB = { B: 8, T: 64, D: 128, H: 4, F: 512 } as const;
const { B, T, D, H, F } = TB;
const E = D / H;
const K0 = Math.sqrt(2 / Math.PI);

/** Parameter roles, in the order of the Weft block (path = prefix + role). */
export const ROLES: { role: string; shape: number[]; init: InitSpec }[] = [
  { role: "ln1.scale", shape: [D], init: { kind: "ones" } },
  { role: "ln1.shift", shape: [D], init: { kind: "zeros" } },
  ...["q", "k", "v", "o"].flatMap((n) => [
    { role: `attn.${n}.w`, shape: [D, D], init: { kind: "glorot" } as InitSpec },
    { role: `attn.${n}.b`, shape: [D], init: { kind: "zeros" } as InitSpec },
  ]),
  { role: "ln2.scale", shape: [D], init: { kind: "ones" } },
  { role: "ln2.shift", shape: [D], init: { kind: "zeros" } },
  { role: "ffn.up.w", shape: [D, F], init: { kind: "glorot" } },
  { role: "ffn.up.b", shape: [F], init: { kind: "zeros" } },
  { role: "ffn.down.w", shape: [F, D], init: { kind: "glorot" } },
  { role: "ffn.down.b", shape: [D], init: { kind: "zeros" } },
];

/**
 * Initial values by role, as Weft initialises the parameter at `prefix + role` (seed 0):
 * with the initialiser the compiled program declares when it is given, else std/nn's.
 */
export function transformerInit(prefix: string, declared?: { path: string; init: InitSpec }[]): Map<string, Float32Array> {
  return new Map(
    ROLES.map((r) => {
      const init = declared?.find((q) => q.path === prefix + r.role)?.init ?? r.init;
      return [r.role, initialValues(init, r.shape, 0, prefix + r.role)];
    }),
  );
}

// ---------------------------------------------------------------- TensorFlow.js

export interface TfTransformer {
  vars: Map<string, TF.Variable>;
  /** the scalar loss of input x [B, T, D] (call inside a gradient function) */
  loss(x: TF.Tensor): TF.Scalar;
}

let tfNames = 0;
export function tfTransformer(tf: Tf, init: Map<string, Float32Array>): TfTransformer {
  const run = tfNames++;
  const vars = new Map(ROLES.map((r) => [r.role, tf.variable(tf.tensor(init.get(r.role)!, r.shape), true, `tb${run}.${r.role}`)]));
  const p = (role: string) => vars.get(role)!;
  const linear = (x: TF.Tensor, name: string, i: number, o: number) =>
    tf.reshape(tf.add(tf.matMul(tf.reshape(x, [B * T, i]), p(`${name}.w`)), p(`${name}.b`)), [B, T, o]);
  const layerNorm = (x: TF.Tensor, name: string) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), p(`${name}.scale`)), p(`${name}.shift`));
  };
  const gelu = (x: TF.Tensor) => tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(tf.mul(K0, tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x)))))));
  const heads = (x: TF.Tensor, perm: number[], shape: number[]) => tf.reshape(tf.transpose(tf.reshape(x, [B, T, H, E]), perm), shape);
  const attention = (x: TF.Tensor) => {
    const q = heads(linear(x, "attn.q", D, D), [0, 2, 1, 3], [B * H, T, E]);
    const k = heads(linear(x, "attn.k", D, D), [0, 2, 3, 1], [B * H, E, T]);
    const v = heads(linear(x, "attn.v", D, D), [0, 2, 1, 3], [B * H, T, E]);
    const att = tf.softmax(tf.mul(tf.matMul(q, k), 1 / Math.sqrt(E)), -1);
    const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, v), [B, H, T, E]), [0, 2, 1, 3]), [B, T, D]);
    return linear(o, "attn.o", D, D);
  };
  return {
    vars,
    loss(x) {
      const h = tf.add(x, attention(layerNorm(x, "ln1")));
      const y = tf.add(h, linear(gelu(linear(layerNorm(h, "ln2"), "ffn.up", D, F)), "ffn.down", F, D));
      return tf.mean(tf.square(y)) as TF.Scalar;
    },
  };
}

// ---------------------------------------------------------------- jax-js

export type JaxParams = Record<string, JAX.Array>;

export function jaxParams(jax: Jax, init: Map<string, Float32Array>): JaxParams {
  return Object.fromEntries(ROLES.map((r) => [r.role, jax.numpy.array(init.get(r.role)!).reshape(r.shape)]));
}

/** loss(p, x): takes ownership of p and x, as jax-js functions do. */
export function jaxTransformerLoss(jax: Jax): (p: JaxParams, x: JAX.Array) => JAX.Array {
  const { numpy: np, nn } = jax;
  type A = JAX.Array;
  const linear = (x: A, p: JaxParams, name: string, i: number, o: number): A =>
    np.matmul(x.reshape([B * T, i]), p[`${name}.w`]).add(p[`${name}.b`]).reshape([B, T, o]);
  const layerNorm = (x: A, p: JaxParams, name: string): A => nn.standardize(x, -1, { epsilon: 1e-5 }).mul(p[`${name}.scale`]).add(p[`${name}.shift`]);
  const heads = (x: A, perm: number[], shape: number[]): A => x.reshape([B, T, H, E]).transpose(perm).reshape(shape);
  const attention = (x: A, p: JaxParams): A => {
    const q = heads(linear(x.ref, p, "attn.q", D, D), [0, 2, 1, 3], [B * H, T, E]);
    const k = heads(linear(x.ref, p, "attn.k", D, D), [0, 2, 3, 1], [B * H, E, T]);
    const v = heads(linear(x, p, "attn.v", D, D), [0, 2, 1, 3], [B * H, T, E]);
    const att = nn.softmax(np.matmul(q, k).mul(1 / Math.sqrt(E)), -1);
    const o = np.matmul(att, v).reshape([B, H, T, E]).transpose([0, 2, 1, 3]).reshape([B, T, D]);
    return linear(o, p, "attn.o", D, D);
  };
  return (p, x) => {
    const h = x.ref.add(attention(layerNorm(x, p, "ln1"), p));
    const y = h.ref.add(linear(nn.gelu(linear(layerNorm(h, p, "ln2"), p, "ffn.up", D, F)), p, "ffn.down", F, D));
    return np.square(y).mean();
  };
}
