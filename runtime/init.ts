// Parameter initialisation on the host, deterministic in (seed, parameter path): the
// same seed gives the same weights on every back end and every machine.
//
// A param of a `repeat` stack (one tensor, the repeat counts as leading dims; see
// stacked.ts) is initialised slice by slice, each slice exactly as the layer's own param
// would be: the initialiser sees the per-layer shape (glorot's fan-in and fan-out are
// the layer's, not the stack's), and each slice draws from its own random stream, keyed
// by the layer's path (`stack.layers[3].ff.w1`). So the numbers do not depend on whether
// the layers are stacked, nor on how many there are: layer 3 of a 4-layer stack starts
// where layer 3 of an 8-layer stack, or an instance declared on its own at that path, does.
import type { HostArray } from "./backend.ts";
import { fileTensors, joinValues, type MaybeStacked } from "./stacked.ts";
export interface InitSpec {
  kind: "zeros" | "ones" | "glorot" | "normal" | "uniform" | "constant";
  /** std for normal, bound for uniform */
  scale?: number;
}

/** FNV-1a of a string, mixed with the seed. */
function hash(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export function uniformStream(seed: number, key: string): () => number {
  let a = hash(seed, key);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Values for a parameter. glorot is Glorot/Xavier uniform with fan_in = shape[-2]
 * (1 for vectors) and fan_out = shape[-1], times the product of any leading dims'
 * receptive field — the PyTorch convention for a [in, out] weight.
 */
export function initialValues(spec: InitSpec, shape: readonly number[], seed: number, path: string): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const u = uniformStream(seed, path);
  switch (spec.kind) {
    case "zeros":
      break;
    case "constant":
      out.fill(spec.scale ?? 0);
      break;
    case "ones":
      out.fill(1);
      break;
    case "uniform": {
      const b = spec.scale ?? 1;
      for (let i = 0; i < n; i++) out[i] = (2 * u() - 1) * b;
      break;
    }
    case "glorot": {
      const fanOut = shape[shape.length - 1] ?? 1;
      const fanIn = shape.length >= 2 ? shape[shape.length - 2] : 1;
      const b = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = (2 * u() - 1) * b;
      break;
    }
    case "normal": {
      const std = spec.scale ?? 1;
      for (let i = 0; i < n; i += 2) {
        // Box–Muller: two normals per two uniforms
        const r = Math.sqrt(-2 * Math.log(1 - u()));
        const th = 2 * Math.PI * u();
        out[i] = r * Math.cos(th) * std;
        if (i + 1 < n) out[i + 1] = r * Math.sin(th) * std;
      }
      break;
    }
  }
  return out;
}

/**
 * The starting values of a param: `initial` (by the param's path, or slice by slice by the
 * slices' own names for a stacked param), else fresh ones from the seed — slice by slice.
 */
export function paramValues(p: MaybeStacked & { init: InitSpec }, seed: number, initial?: ReadonlyMap<string, HostArray>): Float32Array | Float64Array | Int32Array | Uint32Array {
  const whole = initial?.get(p.path);
  if (whole) return whole;
  return joinValues(p, (f) => initial?.get(f.name), (f) => initialValues(p.init, f.shape, seed, f.name));
}

export class InitError extends Error {
  override name = "InitError";
}

/**
 * Initial values for the params under `prefix` (an instance path), read from a
 * checkpoint's tensors. A tensor is found by the param's full path, by its path inside
 * the instance (`embed.table` for `policy.embed.table`), or by a unique name ending in
 * that (`model.embed.table`: a checkpoint of a run whose model field had another name).
 * A stacked param is read slice by slice, each slice by its layer's own name
 * (`stack.layers[3].ff.w1`), or whole when the file holds the stacked tensor itself.
 * The result is keyed by those names (give it to `paramValues`). Every missing or
 * mis-shaped tensor is named, all in one error.
 */
export function valuesFrom(
  file: string,
  tensors: ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  params: readonly MaybeStacked[],
  prefix: string,
): Map<string, Float32Array | Float64Array> {
  const out = new Map<string, Float32Array | Float64Array>();
  const problems: string[] = [];
  const names = [...tensors.keys()];
  const under = (path: string) => !prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  /** the file's tensor for `path`, by full name, name inside the instance or unique suffix */
  const find = (path: string) => {
    const inner = prefix ? path.slice(prefix.length).replace(/^\./, "") : path;
    const suffix = inner.startsWith("[") ? inner : `.${inner}`;
    const ends = names.filter((n) => n.endsWith(suffix));
    const name = tensors.has(path) ? path : tensors.has(inner) ? inner : ends.length === 1 ? ends[0] : undefined;
    return { name, inner, suffix };
  };
  const copy = (d: ArrayLike<number>) => (d instanceof Float64Array ? Float64Array.from(d) : Float32Array.from(d));
  for (const p of params) {
    if (p.stacked && under(p.path)) {
      // a stacked tensor saved whole (as JAX/flax write one) serves every slice
      const { name } = find(p.path);
      const t = name === undefined ? undefined : tensors.get(name)!;
      if (t && same(t.shape, p.shape)) {
        out.set(p.path, copy(t.data));
        continue;
      }
    }
    for (const f of fileTensors(p)) {
      if (!under(f.name)) continue;
      const { name, inner, suffix } = find(f.name);
      if (!name) {
        problems.push(`  missing: ${f.name} [${f.shape.join(", ")}] (looked for '${f.name}'${inner !== f.name ? `, '${inner}' or '*${suffix}'` : ""})`);
        continue;
      }
      const t = tensors.get(name)!;
      if (!same(t.shape, f.shape)) {
        problems.push(`  wrong shape: ${f.name} needs [${f.shape.join(", ")}], '${name}' is [${t.shape.join(", ")}]`);
        continue;
      }
      out.set(f.name, copy(t.data));
    }
  }
  if (problems.length) {
    const have = names.length > 12 ? `${names.slice(0, 12).join(", ")}, … (${names.length} in all)` : names.join(", ") || "none";
    throw new InitError(`${file} cannot initialise ${prefix || "the model"}:\n${problems.join("\n")}\n  the file has: ${have}`);
  }
  return out;
}
