// Comparing f16 results: distances in f16 ulps of the reference value.
import type { DType } from "../../runtime/bundle.ts";

/** One f16 ulp at |v|: 2^(e−10) for a normal half of exponent e, 2^-24 below 2^-14. */
export function halfUlp(v: number): number {
  const a = Math.abs(v);
  if (!(a >= 2 ** -14)) return 2 ** -24;
  return 2 ** (Math.floor(Math.log2(a)) - 10);
}

/** The worst element past the tolerance: `ulps` f16 ulps for floats, exact for the rest (0 when all pass). */
export function worstExcess(got: ArrayLike<number>, want: ArrayLike<number>, dtype: DType, ulps = 2): { excess: number; at: number } {
  let excess = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    const o = got[i];
    let e: number;
    if (Number.isNaN(w) || Number.isNaN(o)) e = Number.isNaN(w) && Number.isNaN(o) ? 0 : Infinity;
    else if (!Number.isFinite(w) || !Number.isFinite(o)) e = w === o ? 0 : Infinity;
    else e = Math.abs(o - w) - (dtype === "f16" || dtype === "f32" ? ulps * halfUlp(w) : 0);
    if (e > excess) {
      excess = e;
      at = i;
    }
  }
  return { excess, at };
}

