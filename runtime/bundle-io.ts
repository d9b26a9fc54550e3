// Bundles on disk: `manifest.json` (buffers, launch list, inputs/outputs/params) plus one
// WGSL file per kernel. Loading needs only the runtime — no compiler.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNDLE_VERSION, MIN_BUNDLE_VERSION, type Bundle, type KernelSpec } from "./bundle.ts";

export class BundleError extends Error {
  override name = "BundleError";
}

interface ManifestKernel extends Omit<KernelSpec, "wgsl"> {
  file: string;
}

interface Manifest extends Omit<Bundle, "kernels"> {
  format: "weft-bundle";
  kernels: ManifestKernel[];
  /** free-form facts about how it was made (entry, dims, compiler version) */
  meta?: Record<string, string>;
}

export function writeBundle(dir: string, bundle: Bundle, meta?: Record<string, string>): void {
  mkdirSync(join(dir, "kernels"), { recursive: true });
  const kernels = bundle.kernels.map((k, i) => {
    const file = `kernels/${String(i).padStart(4, "0")}_${k.name.replace(/[^A-Za-z0-9_]/g, "_")}.wgsl`;
    writeFileSync(join(dir, file), k.wgsl);
    const { wgsl: _wgsl, ...rest } = k;
    return { ...rest, file };
  });
  const manifest: Manifest = { format: "weft-bundle", ...bundle, kernels, ...(meta ? { meta } : {}) };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
}

export function readBundle(dir: string): Bundle {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
  } catch (e) {
    throw new BundleError(`${dir}: no readable manifest.json (${(e as Error).message})`);
  }
  if (manifest.format !== "weft-bundle") throw new BundleError(`${dir}/manifest.json is not a Weft bundle`);
  if (!(manifest.version >= MIN_BUNDLE_VERSION && manifest.version <= BUNDLE_VERSION)) {
    throw new BundleError(`${dir}: bundle format version ${manifest.version}, this runtime reads versions ${MIN_BUNDLE_VERSION} to ${BUNDLE_VERSION}; recompile it`);
  }
  const kernels = manifest.kernels.map(({ file, ...k }) => {
    let wgsl: string;
    try {
      wgsl = readFileSync(join(dir, file), "utf8");
    } catch {
      throw new BundleError(`${dir}: kernel ${k.name} names ${file}, which cannot be read`);
    }
    return { ...k, wgsl };
  });
  const { format: _f, meta: _m, ...rest } = manifest;
  return { ...rest, kernels };
}
