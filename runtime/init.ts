// Parameter initialisation on the host, deterministic in (seed, parameter path): the
// same seed gives the same weights on every back end and every machine.
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

export class InitError extends Error {
  override name = "InitError";
}

/**
 * Initial values for the params under `prefix` (an instance path), read from a
 * checkpoint's tensors. A tensor is found by the param's full path, by its path inside
 * the instance (`embed.table` for `policy.embed.table`), or by a unique name ending in
 * that (`model.embed.table`: a checkpoint of a run whose model field had another name).
 * Every missing or mis-shaped tensor is named, all in one error.
 */
export function valuesFrom(
  file: string,
  tensors: ReadonlyMap<string, { shape: readonly number[]; data: ArrayLike<number> }>,
  params: readonly { path: string; shape: readonly number[] }[],
  prefix: string,
): Map<string, Float32Array | Float64Array> {
  const out = new Map<string, Float32Array | Float64Array>();
  const problems: string[] = [];
  const names = [...tensors.keys()];
  for (const p of params) {
    if (prefix && !(p.path.startsWith(`${prefix}.`) || p.path.startsWith(`${prefix}[`))) continue;
    const inner = prefix ? p.path.slice(prefix.length + 1) : p.path;
    const ends = names.filter((n) => n.endsWith(`.${inner}`));
    const name = tensors.has(p.path) ? p.path : tensors.has(inner) ? inner : ends.length === 1 ? ends[0] : undefined;
    if (!name) {
      problems.push(`  missing: ${p.path} [${p.shape.join(", ")}] (looked for '${p.path}'${inner !== p.path ? `, '${inner}' or '*.${inner}'` : ""})`);
      continue;
    }
    const t = tensors.get(name)!;
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`  wrong shape: ${p.path} needs [${p.shape.join(", ")}], '${name}' is [${t.shape.join(", ")}]`);
      continue;
    }
    out.set(p.path, t.data instanceof Float64Array ? Float64Array.from(t.data) : Float32Array.from(t.data));
  }
  if (problems.length) {
    const have = names.length > 12 ? `${names.slice(0, 12).join(", ")}, … (${names.length} in all)` : names.join(", ") || "none";
    throw new InitError(`${file} cannot initialise ${prefix || "the model"}:\n${problems.join("\n")}\n  the file has: ${have}`);
  }
  return out;
}
