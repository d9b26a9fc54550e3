// The host's f16 conversion (runtime/f16.ts), which defines f16 for the reference
// interpreter and converts f16 buffers at the WebGPU boundary. Known values from IEEE
// 754 binary16 (max 65504, min subnormal 2^-24, min normal 2^-14, 0.1 = 0x2e66), then
// every one of the 65536 bit patterns and every midpoint between neighbouring halves.
import { describe, expect, it } from "vitest";
import { f16Bits, f16FromBits, f16Round, fromF16Array, roundF16, toF16Array, F16_MAX, F16_MIN_SUBNORMAL } from "../../runtime/f16.ts";

const hex = (h: number) => `0x${h.toString(16).padStart(4, "0")}`;

describe("f16 rounding of known values", () => {
  const table: [string, number, number][] = [
    ["zero", 0, 0x0000],
    ["negative zero", -0, 0x8000],
    ["one", 1, 0x3c00],
    ["minus two", -2, 0xc000],
    ["the largest finite half", 65504, 0x7bff],
    ["just under the overflow midpoint", 65519.99, 0x7bff],
    ["the overflow midpoint 65520 (ties to even: 2^16, which overflows)", 65520, 0x7c00],
    ["far past the range", 1e6, 0x7c00],
    ["the f32 maximum", 3.4028234663852886e38, 0x7c00],
    ["minus infinity", -Infinity, 0xfc00],
    ["the smallest subnormal 2^-24", 2 ** -24, 0x0001],
    ["half of it (a tie: to even, zero)", 2 ** -25, 0x0000],
    ["just over half of it", 2 ** -25 + 2 ** -40, 0x0001],
    ["1.5 subnormal ulps (a tie: to even, 2)", 3 * 2 ** -25, 0x0002],
    ["the largest subnormal", 2 ** -14 - 2 ** -24, 0x03ff],
    ["the smallest normal 2^-14", 2 ** -14, 0x0400],
    ["1 + 2^-11 (a tie: to even, 1)", 1 + 2 ** -11, 0x3c00],
    ["1 + 3·2^-11 (a tie: to even, 1 + 2^-9)", 1 + 3 * 2 ** -11, 0x3c02],
    ["just above the first tie", 1 + 2 ** -11 + 2 ** -30, 0x3c01],
    ["2049 (a tie between 2048 and 2050)", 2049, 0x6800],
    ["2051 (a tie between 2050 and 2052)", 2051, 0x6802],
    ["0.1", 0.1, 0x2e66],
    ["1/3", 1 / 3, 0x3555],
    ["pi", Math.PI, 0x4248],
    ["-1e-5 (subnormal)", -1e-5, 0x80a8],
  ];
  for (const [what, x, bits] of table) {
    it(`${what}: ${x} → ${hex(bits)}`, () => expect(hex(f16Bits(x))).toBe(hex(bits)));
  }
  it("NaN is the quiet NaN 0x7e00, and NaN bit patterns read as NaN", () => {
    expect(hex(f16Bits(NaN))).toBe("0x7e00");
    expect(f16FromBits(0x7e00)).toBeNaN();
    expect(f16FromBits(0x7c01)).toBeNaN();
    expect(f16FromBits(0xfe00)).toBeNaN();
    expect(f16Round(NaN)).toBeNaN();
  });
  it("the constants", () => {
    expect(f16FromBits(0x7bff)).toBe(F16_MAX);
    expect(f16FromBits(0x0001)).toBe(F16_MIN_SUBNORMAL);
    expect(f16FromBits(0x7c00)).toBe(Infinity);
    expect(Object.is(f16FromBits(0x8000), -0)).toBe(true);
  });
});

describe("f16 rounding, exhaustively", () => {
  it("every bit pattern reads as a number that rounds back to the same bits (NaNs aside)", () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16FromBits(h);
      if (Number.isNaN(x)) continue;
      if (f16Bits(x) !== h) throw new Error(`${hex(h)} → ${x} → ${hex(f16Bits(x))}`);
    }
  });

  it("between neighbouring halves: below the midpoint to the lower, above to the upper, the midpoint to the even one", () => {
    // positive finite halves in increasing order are the bit patterns 0 … 0x7bff, then +inf;
    // the midpoint 65520 between 65504 and the next (2^16, not finite) overflows, as IEEE says
    for (let h = 0; h < 0x7bff; h++) {
      const lo = f16FromBits(h);
      const hi = f16FromBits(h + 1);
      const mid = (lo + hi) / 2; // exact in float64
      const eps = (hi - lo) * 2 ** -20;
      const even = h % 2 === 0 ? h : h + 1;
      if (f16Bits(mid - eps) !== h || f16Bits(mid + eps) !== h + 1 || f16Bits(mid) !== even || f16Bits(-mid) !== (even | 0x8000)) {
        throw new Error(`between ${lo} and ${hi}: ${hex(f16Bits(mid - eps))} ${hex(f16Bits(mid))} ${hex(f16Bits(mid + eps))}`);
      }
    }
  });

  it("arrays: to bits and back, and roundF16 copies only when something changes", () => {
    const xs = Float32Array.of(1, 0.1, -65504, 70000, 2 ** -26);
    expect([...fromF16Array(toF16Array(xs))]).toEqual([1, f16Round(0.1), -65504, Infinity, 0]);
    const halves = Float64Array.of(1, 0.5, -2);
    expect(roundF16(halves)).toBe(halves);
    const other = Float64Array.of(1, 0.1);
    const r = roundF16(other);
    expect(r).not.toBe(other);
    expect([...other]).toEqual([1, 0.1]);
    expect([...r]).toEqual([1, 0.0999755859375]);
  });
});
