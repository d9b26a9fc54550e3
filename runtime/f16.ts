// IEEE 754 binary16 ("half", WGSL f16) on the host. Node 20 has neither Math.f16round
// nor Float16Array, so the conversions are written out: from any JS number (a float64,
// rounded once, not through f32), round to nearest with ties to even, overflow to ±Inf
// (|x| ≥ 65520, the midpoint between the largest finite half 65504 and 2^16), subnormals
// kept (down to 2^-24). NaN becomes the quiet NaN 0x7e00 with the input's sign.
//
// The reference interpreter rounds every f16 node's value with f16Round, and the WebGPU
// executor converts f16 buffers to and from these bits at the host boundary.

/** The largest finite f16, 65504. */
export const F16_MAX = 65504;
/** The smallest positive (subnormal) f16, 2^-24. */
export const F16_MIN_SUBNORMAL = 2 ** -24;
/** The smallest positive normal f16, 2^-14. */
export const F16_MIN_NORMAL = 2 ** -14;
/** One unit in the last place at 1: 2^-10. */
export const F16_EPSILON = 2 ** -10;

/** `v` rounded to an integer, halfway cases to the even neighbour (v ≥ 0). */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** The binary16 bits (0 … 0xffff) of the half nearest to `x`. */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < F16_MIN_NORMAL) {
    // subnormal: a multiple of 2^-24 (a·2^24 is exact in float64); 1024 rounds up to the
    // smallest normal, whose bits 0x0400 are exactly 1024
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let e = Math.floor(Math.log2(a));
  // Math.log2 may be off by one next to a power of two
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  // a < 65520 keeps e ≤ 15 here
  return sign | ((e + 15) << 10) | m;
}

/** The number that binary16 bits `h` hold. */
export function f16FromBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** `x` rounded to the nearest f16 (ties to even), as a number. */
export function f16Round(x: number): number {
  // fast path: already a half (most values the interpreter rounds again are)
  if (!Number.isFinite(x)) return x;
  return f16FromBits(f16Bits(x));
}

/** Host values as binary16 bits, ready for an f16 storage buffer. */
export function toF16Array(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f16Bits(data[i]);
  return out;
}

/** binary16 bits as the numbers they hold (every f16 is exact in f32). */
export function fromF16Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16FromBits(bits[i]);
  return out;
}

/** Every element rounded to f16, in a new array (or `data` itself when each one is a half already). */
export function roundF16<T extends Float64Array | Float32Array>(data: T): T {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (f16Round(v) !== v && !Number.isNaN(v)) {
      const out = data.slice() as T;
      for (let j = i; j < out.length; j++) out[j] = f16Round(out[j]);
      return out;
    }
  }
  return data;
}
