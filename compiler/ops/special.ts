// Special functions. erf: float64 reference to ~1e-16, WGSL approximation to ~1e-7.
// gelu: exact (through erf, the default, as torch.nn.functional.gelu) or the tanh form.
import { refTensor } from "../../runtime/reference/tensor.ts";
import { fmtType } from "../ir/graph.ts";
import { add, fill, mul, scale } from "./build.ts";
import { defineOp, OpTypeError } from "./registry.ts";
import { isFloat, wgslFloat } from "./elementwise.ts";
import { batchElementwise } from "./batching.ts";

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf in float64. For |x| ≤ 6: erf(x) = 2/√π·e^{−x²}·Σ_n x·(2x²)^n / (2n+1)!!, a series of
 * positive terms (no cancellation), summed to double precision. Past 6, erf = ±1 to double
 * precision (erfc(6) ≈ 2e-17).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  const t = 2 * ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 1000; n++) {
    term *= t / (2 * n + 1);
    sum += term;
    if (term <= sum * 1e-17) break;
  }
  const r = TWO_OVER_SQRT_PI * Math.exp(-ax * ax) * sum;
  return x < 0 ? -r : r;
}

/**
 * erfc in float64, accurate in relative terms far into the tail (where 1 − erf(x) would
 * cancel): below 2, 1 − erf(x) (erfc(2) ≈ 4.7e-3 keeps the relative error near 1e-14);
 * from 2, the continued fraction e^{−x²}/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))) by
 * the modified Lentz method.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) return 1 - erf(x);
  if (x > 27) return 0; // e^{−x²} underflows
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = x + a / (Math.abs(c) < tiny ? tiny : c);
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

// WGSL: |x| < 1, the Maclaurin series 2/√π·Σ (−1)^n x^{2n+1} / (n!(2n+1)) through n = 10
// (truncation < 2e-9); |x| ≥ 1, erf = 1 − erfc with Numerical Recipes' erfcc (Chebyshev
// fit, relative error < 1.2e-7 on erfc ≤ 0.16, so < 2e-8 absolute on erf).
const SERIES = Array.from({ length: 11 }, (_, n) => {
  let fact = 1;
  for (let k = 2; k <= n; k++) fact *= k;
  return (TWO_OVER_SQRT_PI * (n % 2 ? -1 : 1)) / (fact * (2 * n + 1));
});
const ERFCC = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277];

/** Horner form c0 + v·(c1 + v·(…)) as WGSL. */
const horner = (cs: readonly number[], v: string): string => cs.reduceRight((acc, c, i) => (i === cs.length - 1 ? wgslFloat(c) : `(${wgslFloat(c)} + ${v} * ${acc})`), "");

const seriesWgsl = (x: string): string => `${x} * ${horner(SERIES, `(${x} * ${x})`)}`;

/** erfc(|x|) by erfcc, for |x| ≥ 1. */
function erfcTailWgsl(x: string): string {
  const ax = `abs(${x})`;
  const t = `(1.0 / (1.0 + 0.5 * ${ax}))`;
  return `${t} * exp(-${ax} * ${ax} + ${horner(ERFCC, t)})`;
}

export function erfWgsl(x: string): string {
  return `select(sign(${x}) * (1.0 - ${erfcTailWgsl(x)}), ${seriesWgsl(x)}, abs(${x}) < 1.0)`;
}

/** 1 + erf(x), with erfc itself for x ≤ −1 (where 1 + erf would cancel to nothing). */
function onePlusErfWgsl(x: string): string {
  const tail = erfcTailWgsl(x);
  return `select(select(2.0 - ${tail}, ${tail}, ${x} < 0.0), 1.0 + ${seriesWgsl(x)}, abs(${x}) < 1.0)`;
}

defineOp({
  name: "erf",
  arity: 1,
  doc: "the error function 2/√π·∫₀ˣ e^{−t²} dt",
  infer: ([x]) => {
    if (!isFloat(x.dtype)) throw new OpTypeError(`erf takes a float operand, got ${fmtType(x)}`);
    return x;
  },
  evaluate: ([x]) => {
    const out = refTensor(x.shape);
    for (let i = 0; i < out.data.length; i++) out.data[i] = erf(x.data[i]);
    return out;
  },
  // d/dx erf(x) = 2/√π·e^{−x²}
  vjp: ({ g, cot, node }) => {
    const x = node.inputs[0];
    const e = g.add("exp", [g.add("neg", [mul(g, x, x)])]);
    return [mul(g, cot, mul(g, fill(g, TWO_OVER_SQRT_PI, x), e))];
  },
  batch: batchElementwise,
  lower: { kind: "elementwise", expr: ([x]) => erfWgsl(x) },
});

// erfc as its own primitive, so that Φ(x) = ½·erfc(−x/√2) keeps its relative accuracy
// for very negative x (gelu's derivative needs it: Φ(x) and x·φ(x) nearly cancel there).
defineOp({
  name: "erfc",
  arity: 1,
  doc: "the complementary error function 1 − erf(x), accurate in its tail",
  infer: ([x]) => {
    if (!isFloat(x.dtype)) throw new OpTypeError(`erfc takes a float operand, got ${fmtType(x)}`);
    return x;
  },
  evaluate: ([x]) => {
    const out = refTensor(x.shape);
    for (let i = 0; i < out.data.length; i++) out.data[i] = erfc(x.data[i]);
    return out;
  },
  // d/dx erfc(x) = −2/√π·e^{−x²}
  vjp: ({ g, cot, node }) => {
    const x = node.inputs[0];
    const e = g.add("exp", [g.add("neg", [mul(g, x, x)])]);
    return [mul(g, cot, mul(g, fill(g, -TWO_OVER_SQRT_PI, x), e))];
  },
  batch: batchElementwise,
  // 1 + erf(−x) = erfc(x)
  lower: { kind: "elementwise", expr: ([x]) => onePlusErfWgsl(`(-${x})`) },
});

// ---- gelu(x; approximate): x·Φ(x), Φ the standard normal CDF, as torch.nn.functional.gelu:
// approximate = "none" (the default) is exact, Φ(x) = ½(1 + erf(x/√2)); "tanh" is
// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
const K0 = Math.sqrt(2 / Math.PI);
const K1 = 0.044715;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function isTanh(op: string, approximate: unknown): boolean {
  if (approximate === undefined || approximate === "none") return false;
  if (approximate === "tanh") return true;
  throw new OpTypeError(`${op}: approximate must be "none" or "tanh", got ${JSON.stringify(approximate)}`);
}

export function gelu(x: number, tanhForm = false): number {
  // Φ(x) = ½·erfc(−x/√2): exact in relative terms for very negative x, where 1 + erf cancels
  return tanhForm ? 0.5 * x * (1 + Math.tanh(K0 * (x + K1 * x * x * x))) : 0.5 * x * erfc(-x * Math.SQRT1_2);
}

defineOp({
  name: "gelu",
  arity: 1,
  doc: 'gelu(x; approximate): x·Φ(x), exact through erf (approximate = "none", the default) or ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (approximate = "tanh")',
  infer: ([x], attrs) => {
    if (!isFloat(x.dtype)) throw new OpTypeError(`gelu takes a float operand, got ${fmtType(x)}`);
    isTanh("gelu", attrs.approximate);
    return x;
  },
  evaluate: ([x], attrs) => {
    const tanhForm = isTanh("gelu", attrs.approximate);
    const out = refTensor(x.shape);
    for (let i = 0; i < out.data.length; i++) out.data[i] = gelu(x.data[i], tanhForm);
    return out;
  },
  vjp: ({ g, cot, node }) => {
    const x = node.inputs[0];
    const one = fill(g, 1, x);
    let d: number;
    if (isTanh("gelu", node.attrs.approximate)) {
      // ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³))
      const x2 = mul(g, x, x);
      const t = g.add("tanh", [scale(g, add(g, x, scale(g, mul(g, x2, x), K1)), K0)]);
      const dt = scale(g, g.add("sub", [one, mul(g, t, t)]), K0);
      const du = add(g, one, scale(g, x2, 3 * K1));
      d = add(g, scale(g, add(g, one, t), 0.5), mul(g, scale(g, x, 0.5), mul(g, dt, du)));
    } else {
      // Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π)
      const cdf = scale(g, g.add("erfc", [scale(g, x, -Math.SQRT1_2)]), 0.5);
      const pdf = scale(g, g.add("exp", [scale(g, mul(g, x, x), -0.5)]), INV_SQRT_2PI);
      d = add(g, cdf, mul(g, x, pdf));
    }
    return [mul(g, cot, d)];
  },
  batch: batchElementwise,
  lower: {
    kind: "elementwise",
    expr: ([x], ctx) =>
      isTanh("gelu", ctx.attrs.approximate)
        ? // ½x(1 + tanh u) = x / (1 + e^(−2u)): in f32, 1 + tanh u cancels for u ≪ 0 (an f16 gelu near −5 came out 30% off); the
          // quotient keeps its relative precision in both tails (u clamped: e^80 is finite)
          `(${x} / (1.0 + exp(-2.0 * clamp(${wgslFloat(K0)} * (${x} + ${wgslFloat(K1)} * ${x} * ${x} * ${x}), -40.0, 40.0))))`
        : `(0.5 * ${x} * ${onePlusErfWgsl(`(${x} * ${wgslFloat(Math.SQRT1_2)})`)})`,
  },
});
