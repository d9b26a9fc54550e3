#!/usr/bin/env node
// Prints the WebGPU adapter dawn-node finds (and checks a device can be made on it),
// or "none". Exit 0 when there is one, 1 when not. Used by scripts/setup.sh and CI.
import { mkdirSync, mkdtempSync, lstatSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// dawn-node needs XDG_RUNTIME_DIR to be an existing 0700 folder (as runtime/webgpu/device.ts does).
const cur = process.env.XDG_RUNTIME_DIR;
if (!cur || !statSync(cur, { throwIfNoEntry: false })?.isDirectory()) {
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `weft-xdg-${uid}`);
  try { mkdirSync(dir, { mode: 0o700 }); } catch { /* exists */ }
  const st = lstatSync(dir, { throwIfNoEntry: false });
  const ok = st?.isDirectory() && (st.mode & 0o777) === 0o700 && st.uid === uid;
  process.env.XDG_RUNTIME_DIR = ok ? dir : mkdtempSync(join(tmpdir(), "weft-xdg-"));
}

let gpu;
try {
  const { create, globals } = await import("webgpu");
  Object.assign(globalThis, globals);
  gpu = create([]);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error("requestAdapter() found no adapter");
  const device = await adapter.requestDevice();
  const i = adapter.info;
  console.log(`${i.description || i.device || i.vendor} [${i.vendor}, ${i.architecture}]`);
  device.destroy();
  process.exit(0);
} catch (e) {
  console.log("none");
  if (process.env.WEFT_PROBE_VERBOSE === "1") console.error(String(e?.message ?? e));
  process.exit(1);
}
