// A view reads a buffer through shape, strides and offset, so that broadcast,
// transpose, reshape and slicing cost no copy: the kernel that consumes the view
// indexes the original buffer.
import { stridesOf, type Shape } from "../ir/graph.ts";

export interface View {
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

export function contiguous(shape: Shape): View {
  return { shape, strides: stridesOf(shape), offset: 0 };
}

export function isContiguous(v: View): boolean {
  const s = stridesOf(v.shape);
  return v.strides.every((st, i) => st === s[i] || v.shape[i] === 1);
}

/** NumPy broadcasting: align trailing dims; size-1 and missing dims read with stride 0. */
export function broadcastView(v: View, shape: Shape): View {
  const lead = shape.length - v.shape.length;
  const strides = shape.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    return v.shape[j] === 1 && d !== 1 ? 0 : v.strides[j];
  });
  return { shape, strides, offset: v.offset };
}

export function transposeView(v: View, perm: readonly number[]): View {
  return { shape: perm.map((p) => v.shape[p]), strides: perm.map((p) => v.strides[p]), offset: v.offset };
}

/**
 * Reshape without a copy where the strides allow it: dims of the old view are grouped
 * into runs that are contiguous among themselves, and each new dim must fall inside one run.
 * Returns undefined when a copy is needed.
 */
export function reshapeView(v: View, shape: Shape): View | undefined {
  if (isContiguous(v)) return { shape, strides: stridesOf(shape), offset: v.offset };
  // Drop size-1 dims of the source; then match new dims against merged source runs.
  const src = v.shape.map((d, i) => ({ d, s: v.strides[i] })).filter((x) => x.d !== 1);
  const strides: number[] = [];
  let k = 0;
  for (const d of shape) {
    if (d === 1) {
      strides.push(0);
      continue;
    }
    // consume source dims until their product equals d
    let prod = 1;
    let innerStride = 0;
    const start = k;
    while (k < src.length && prod < d) {
      if (k > start && src[k - 1].s !== src[k].s * src[k].d) return undefined;
      prod *= src[k].d;
      innerStride = src[k].s;
      k++;
    }
    if (prod !== d) return undefined;
    strides.push(innerStride);
  }
  if (k !== src.length) return undefined;
  return { shape, strides, offset: v.offset };
}

/** Basic slicing: per axis start and step (step > 0); the new shape is given. */
export function sliceView(v: View, starts: readonly number[], steps: readonly number[], shape: Shape): View {
  let offset = v.offset;
  const strides = v.strides.map((s, i) => {
    offset += starts[i] * s;
    return s * steps[i];
  });
  return { shape, strides, offset };
}
