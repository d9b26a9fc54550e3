// Special functions. erf: float64 reference to ~1e-16, WGSL approximation to ~1e-7.
import { refTensor } from "../../runtime/reference/tensor.ts";
import { fmtType } from "../ir/graph.ts";
import { fill, mul } from "./build.ts";
import { defineOp, OpTypeError } from "./registry.ts";
import { wgslFloat } from "./elementwise.ts";

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

export function erfWgsl(x: string): string {
  const ax = `abs(${x})`;
  const series = `${x} * ${horner(SERIES, `(${x} * ${x})`)}`;
  const t = `(1.0 / (1.0 + 0.5 * ${ax}))`;
  const erfc = `${t} * exp(-${ax} * ${ax} + ${horner(ERFCC, t)})`;
  return `select(sign(${x}) * (1.0 - ${erfc}), ${series}, ${ax} < 1.0)`;
}

defineOp({
  name: "erf",
  arity: 1,
  doc: "the error function 2/√π·∫₀ˣ e^{−t²} dt",
  infer: ([x]) => {
    if (x.dtype !== "f32") throw new OpTypeError(`erf takes a float operand, got ${fmtType(x)}`);
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
  lower: { kind: "elementwise", expr: ([x]) => erfWgsl(x) },
});
