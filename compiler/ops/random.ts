// Counter-based random numbers: every element is a pure function of (seed, stream,
// element index), computed with 32-bit integer hashing that JavaScript reproduces
// exactly (Math.imul, >>>), so the GPU and the float64 reference draw the SAME numbers.
//
//   pcg(x)            = the PCG-RXS-M-XS hash of Jarzynski & Olano (JCGT 2020)
//   key(seed, stream, lane) = pcg(pcg(pcg(seed) ^ stream) ^ lane)   (host side, baked into the kernel)
//   bits(i, key)      = pcg(pcg(i ^ key) + key)                      (per element, i = row-major index)
//
// random_uniform uses lane 0: u = (bits >> 8)·2^-24, a multiple of 2^-24 in [0, 1 − 2^-24],
// exact in f32. random_normal uses lanes 1 and 2 (so it never reuses the uniform's bits):
// u1 = ((bits₁ >> 8) + 1)·2^-24 in (0, 1] (never 0, so the log is finite; |z| ≤ 5.8),
// u2 = (bits₂ >> 8)·2^-24, z = sqrt(−2·ln u1)·cos(2π·u2) (Box–Muller, cosine branch).
// On the GPU, ln and cos are evaluated with our own f32 range reductions (not the
// driver's, whose accuracy WGSL leaves loose): |z_gpu − z_ref| ≲ 1e-6.
//
// These ops are pure — equal attributes give equal numbers — so CSE may share two
// nodes with the same (shape, seed, stream) without changing any value. Distinct
// draws are the lowering's job: it gives each call site its own `stream`.
import type { KernelSpec } from "../../runtime/bundle.ts";
import { refTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, TensorType } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import { defineOp, OpTypeError, type BatchArgs, type Batched, type KernelArgs } from "./registry.ts";
import { Bindings, kernel, u } from "../codegen/wgsl.ts";
import { contiguous } from "../kernel/view.ts";
import { wgslFloat } from "./elementwise.ts";

/** PCG-RXS-M-XS 32-bit hash, as u32 arithmetic in JavaScript. */
export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export function randomKey(seed: number, stream: number, lane: number): number {
  return pcgHash((pcgHash((pcgHash(seed >>> 0) ^ (stream >>> 0)) >>> 0) ^ lane) >>> 0);
}

export function randomBits(i: number, key: number): number {
  return pcgHash((pcgHash((i ^ key) >>> 0) + key) >>> 0);
}

const TWO_M24 = 2 ** -24;

/** The i-th number of random_uniform(seed, stream). */
export function uniformAt(i: number, seed: number, stream: number): number {
  return (randomBits(i, randomKey(seed, stream, 0)) >>> 8) * TWO_M24;
}

/** The i-th number of random_normal(seed, stream), in float64. */
export function normalAt(i: number, seed: number, stream: number): number {
  const u1 = ((randomBits(i, randomKey(seed, stream, 1)) >>> 8) + 1) * TWO_M24;
  const k2 = randomBits(i, randomKey(seed, stream, 2)) >>> 8;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * k2 * TWO_M24);
}

function randomRule(op: string) {
  return (inputs: readonly TensorType[], attrs: Attrs): TensorType => {
    if (inputs.length > 1 || (inputs.length === 1 && (inputs[0].dtype !== "i32" || inputs[0].shape.length !== 0))) {
      throw new OpTypeError(`${op}: takes no input, or one i32 scalar counter (e.g. the training step)`);
    }
    const shape = attrs.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new OpTypeError(`${op}: 'shape' must be a list of sizes ≥ 0, got ${JSON.stringify(shape)}`);
    }
    for (const key of ["seed", "stream"]) {
      const v = attrs[key];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new OpTypeError(`${op}: '${key}' must be an integer in [0, 2^32), got ${JSON.stringify(v)}`);
      }
    }
    if (numel(shape as number[]) > 0xffffffff) throw new OpTypeError(`${op}: more than 2^32 elements`);
    return { shape: shape as number[], dtype: "f32" };
  };
}

// WGSL: the hash, and ln / cos with explicit range reduction (accurate to a few f32 ulps).
const PCG_WGSL = `
fn weft_pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn weft_bits(i: u32, key: u32) -> u32 {
  return weft_pcg(weft_pcg(i ^ key) + key);
}
`;

const inv = (n: number) => wgslFloat(1 / n);
const NORMAL_WGSL = `
// ln(x) for normal x > 0: x = m·2^e with m in [√½, √2], ln m = 2·atanh(s), s = (m−1)/(m+1)
fn weft_ln(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  var e = i32(bits >> 23u) - 127;
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (m > 1.41421356) { m = m * 0.5; e = e + 1; }
  let s = (m - 1.0) / (m + 1.0);
  let s2 = s * s;
  let p = s2 * (${inv(3)} + s2 * (${inv(5)} + s2 * (${inv(7)} + s2 * (${inv(9)} + s2 * (${inv(11)} + s2 * ${inv(13)})))));
  let fe = f32(e);
  return fe * 0.693145751953125 + (fe * ${wgslFloat(Math.LN2 - 0.693145751953125)} + (2.0 * s + 2.0 * s * p));
}
// cos(2π·k/2^24) for k < 2^24: exact reduction to the nearest quarter turn, then |a| ≤ π/4
fn weft_cos_turns(k: u32) -> f32 {
  let q = (k + 0x200000u) >> 22u;
  let a = f32(i32(k) - i32(q << 22u)) * ${wgslFloat((2 * Math.PI) / 2 ** 24)};
  let a2 = a * a;
  let c = 1.0 + a2 * (-0.5 + a2 * (${inv(24)} + a2 * (${inv(-720)} + a2 * (${inv(40320)} + a2 * ${inv(-3628800)}))));
  let s = a * (1.0 + a2 * (${inv(-6)} + a2 * (${inv(120)} + a2 * (${inv(-5040)} + a2 * ${inv(362880)}))));
  switch (q & 3u) {
    case 0u: { return c; }
    case 1u: { return -s; }
    case 2u: { return -c; }
    default: { return s; }
  }
}
`;

/**
 * With a counter input (the training step), each key is mixed with it at run time:
 * key' = pcg(key ^ counter), so every step draws new numbers from one compiled kernel.
 */
export function countedKey(key: number, counter: number | undefined): number {
  return counter === undefined ? key : pcgHash((key ^ counter) >>> 0);
}

function randomKernel(body: (key: (lane: number) => string) => string[], fns: string) {
  return ({ name, node, inputs, out }: KernelArgs): KernelSpec => {
    const seed = node.attrs.seed as number;
    const stream = node.attrs.stream as number;
    const shape = node.type.shape;
    const b = new Bindings();
    const lines: string[] = [];
    if (inputs.length) {
      const c = inputs[0];
      const counter = b.bind(c.buffer, "i32");
      lines.push(`  let counter = bitcast<u32>(${counter}[${u(c.view.offset)}]);`);
      b.touch(counter, { steps: [{ shape, strides: shape.map(() => 0), offset: c.view.offset }] });
    }
    b.touch("out", { steps: [contiguous(shape)] });
    const key = (lane: number) => (inputs.length ? `weft_pcg(${u(randomKey(seed, stream, lane))} ^ counter)` : u(randomKey(seed, stream, lane)));
    const spec = kernel(name, b, "f32", out, Math.max(1, numel(shape)), [...lines, ...body(key)], shape);
    // module-scope declarations may follow their use in WGSL
    return { ...spec, wgsl: spec.wgsl + fns };
  };
}

/**
 * Inside `map`, one draw of the batched shape [N, ..shape] from the same (seed, stream):
 * example e gets its elements e·S … (e+1)·S − 1 (S the per-example size), so the examples'
 * numbers differ from each other and the whole map is one kernel. A per-example counter
 * (a batched one) is no key of a single draw: it returns undefined, and the transform
 * falls back to a draw per example.
 */
function batchRandom({ g, node, inputs, size }: BatchArgs): Batched | undefined {
  if (inputs.some((b) => b.bdim !== null)) return undefined;
  const shape = [size, ...(node.attrs.shape as number[])];
  return { id: g.add(node.op, inputs.map((b) => b.id), { ...node.attrs, shape }), bdim: 0 };
}

defineOp({
  name: "random_uniform",
  arity: -1,
  doc: "random_uniform(; shape, seed, stream): uniform numbers in [0, 1), multiples of 2^-24, a pure function of (seed, stream, index)",
  infer: randomRule("random_uniform"),
  evaluate: (inputs, attrs, out) => {
    const t = refTensor(out.shape);
    const key = countedKey(randomKey(attrs.seed as number, attrs.stream as number, 0), inputs[0]?.data[0]);
    for (let i = 0; i < t.data.length; i++) t.data[i] = (randomBits(i, key) >>> 8) * TWO_M24;
    return t;
  },
  vjp: ({ node }) => node.inputs.map(() => null),
  random: true,
  batch: batchRandom,
  lower: {
    kind: "kernel",
    emit: randomKernel((key) => [`  out[i] = f32(weft_bits(i, ${key(0)}) >> 8u) * 5.9604644775390625e-8;`], PCG_WGSL),
  },
});

defineOp({
  name: "random_normal",
  arity: -1,
  doc: "random_normal(; shape, seed, stream): standard normal numbers (Box–Muller), a pure function of (seed, stream, index)",
  infer: randomRule("random_normal"),
  evaluate: (inputs, attrs, out) => {
    const t = refTensor(out.shape);
    const k1 = countedKey(randomKey(attrs.seed as number, attrs.stream as number, 1), inputs[0]?.data[0]);
    const k2 = countedKey(randomKey(attrs.seed as number, attrs.stream as number, 2), inputs[0]?.data[0]);
    for (let i = 0; i < t.data.length; i++) {
      const u1 = ((randomBits(i, k1) >>> 8) + 1) * TWO_M24;
      const u2 = (randomBits(i, k2) >>> 8) * TWO_M24;
      t.data[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
    return t;
  },
  vjp: ({ node }) => node.inputs.map(() => null),
  random: true,
  batch: batchRandom,
  lower: {
    kind: "kernel",
    emit: randomKernel(
      (key) => [
        `  let u1 = f32((weft_bits(i, ${key(1)}) >> 8u) + 1u) * 5.9604644775390625e-8;`,
        `  let k2 = weft_bits(i, ${key(2)}) >> 8u;`,
        "  out[i] = sqrt(-2.0 * weft_ln(u1)) * weft_cos_turns(k2);",
      ],
      PCG_WGSL + NORMAL_WGSL,
    ),
  },
});
