#!/usr/bin/env node
// `node bench/pack.mjs [REF]`: packs the benchmark at a git commit (default HEAD) to run
// on a machine that has a GPU but no npm, no registry and maybe no Node (the lent
// device machine). Everything lands in the git-ignored folder .devbench/:
//
//   src.tar.xz   the repository at REF, plus bench/packed.mjs: the whole bench (Weft,
//                TF.js, jax-js) bundled into one ES module that sits in bench/ as
//                bench/main.ts does, so the paths it derives (bench/*.weft, models/) hold
//   node.xz      this machine's Node binary
//   webgpu/      the `webgpu` package for linux-x64 only (dawn.node xz'd)
//   *.deb        the Vulkan loader (libvulkan1), for machines whose image lacks it
//   run.sh       unpacks all that under /tmp and runs the bench with the arguments
//                given; results are copied to $OUT when it is set
//
// Then: device run, carry [".devbench"], command `bash .devbench/run.sh --quick`.
import { build } from "esbuild";
import { execFileSync, execSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PACK = join(ROOT, ".devbench");
const ref = process.argv[2] ?? "HEAD";
mkdirSync(join(PACK, "webgpu/dist/linux-x64"), { recursive: true });

// The source at REF, so that work in progress in the checkout does not leak in.
const src = mkdtempSync(join(tmpdir(), "weft-pack-"));
execSync(`git -C "${ROOT}" archive --format=tar "${ref}" | tar -x -C "${src}"`);
symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"));
const versions = Object.fromEntries(
  ["@tensorflow/tfjs-backend-webgpu", "@jax-js/jax"].map((p) => [p, JSON.parse(readFileSync(join(ROOT, "node_modules", p, "package.json"), "utf8")).version]),
);
await build({
  stdin: {
    contents: `import { main } from "./main.ts";\nprocess.exitCode = await main(process.argv.slice(2));\n`,
    resolveDir: join(src, "bench"),
    sourcefile: "entry.ts",
    loader: "ts",
  },
  outfile: join(src, "bench/packed.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["webgpu"],
  // CommonJS dependencies (TF.js) call require() for Node built-ins; and the packed
  // bench cannot look the peers' versions up in node_modules, so they ride along.
  banner: {
    js: `import { createRequire as __weftRequire } from "node:module"; const require = __weftRequire(import.meta.url); globalThis.__weftPeerVersions = ${JSON.stringify(versions)};`,
  },
  logLevel: "warning",
});
rmSync(join(src, "node_modules"));
execSync(`tar -C "${src}" -cf - . | xz -T0 -6 > "${join(PACK, "src.tar.xz")}"`);
const commit = execSync(`git -C "${ROOT}" rev-parse --short "${ref}"`).toString().trim();
rmSync(src, { recursive: true, force: true });

// Compressing Node takes a minute: an xz already packed from the same source is kept.
const xz = (from, to) => {
  if (existsSync(to) && statSync(to).mtimeMs > statSync(from).mtimeMs) return;
  writeFileSync(to, execFileSync("xz", ["-T0", "-6", "-c", from], { maxBuffer: 1 << 30 }));
};
xz(process.execPath, join(PACK, "node.xz"));
const wg = join(ROOT, "node_modules/webgpu");
for (const f of ["package.json", "index.js"]) copyFileSync(join(wg, f), join(PACK, "webgpu", f));
xz(join(wg, "dist/linux-x64/dawn.node"), join(PACK, "webgpu/dist/linux-x64/dawn.node.xz"));
// The Vulkan loader, and libglvnd that NVIDIA's Vulkan driver (libGLX_nvidia) links to.
const DEBS = ["libvulkan1", "libglvnd0", "libgl1", "libglx0", "libegl1", "libopengl0", "libgles2"];
if (!DEBS.every((d) => readdirSync(PACK).some((f) => f.startsWith(`${d}_`)))) {
  try {
    const o = "-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/weft-apt-lists";
    execSync(`mkdir -p /tmp/weft-apt-lists/partial && apt-get ${o} update -qq && cd "${PACK}" && apt-get ${o} download ${DEBS.join(" ")}`, { stdio: "ignore" });
  } catch {
    console.warn("pack: could not download the Vulkan loader's packages; the target must have them");
  }
}
writeFileSync(
  join(PACK, "run.sh"),
  `#!/bin/bash
# Made by bench/pack.mjs from commit ${commit}. Run from the folder holding .devbench:
#   bash .devbench/run.sh [bench options]
set -e
P="$(cd "$(dirname "$0")" && pwd)"
W=/tmp/weft-packed
rm -rf "$W" && mkdir -p "$W/src" "$W/bin" "$W/root"
xz -dc "$P/src.tar.xz" | tar -x -C "$W/src"
xz -dc "$P/node.xz" > "$W/bin/node" && chmod +x "$W/bin/node"
mkdir -p "$W/src/node_modules/webgpu/dist/linux-x64"
cp "$P/webgpu/package.json" "$P/webgpu/index.js" "$W/src/node_modules/webgpu/"
xz -dc "$P/webgpu/dist/linux-x64/dawn.node.xz" > "$W/src/node_modules/webgpu/dist/linux-x64/dawn.node"
# A bare image (the lent GPU machines) lacks the Vulkan loader and libglvnd: unpack them
# into / (as that machine's notes advise) when running as root, else beside the bench.
if ! ldconfig -p | grep -q 'libGLdispatch.so.0' || ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  if [ "$(id -u)" = 0 ]; then
    for f in "$P"/*.deb; do dpkg -x "$f" /; done; ldconfig
  else
    for f in "$P"/*.deb; do dpkg -x "$f" "$W/root"; done
    export LD_LIBRARY_PATH="$W/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "$VK_DRIVER_FILES" ]; then export VK_DRIVER_FILES="$icd"; fi
done
export XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR:-/tmp/weft-xdg}; mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
export WEFT_BENCH_RUNNER="$W/src/bench/packed.mjs"
cd "$W/src"
set +e
"$W/bin/node" bench/packed.mjs "$@"
rc=$?
if [ -n "$OUT" ]; then cp bench/results/*.json bench/results/latest.md "$OUT/" 2>/dev/null; fi
exit $rc
`,
);
chmodSync(join(PACK, "run.sh"), 0o755);
console.log(`packed commit ${commit} into ${PACK}/ (${Math.round(Number(execSync(`du -sk "${PACK}"`).toString().split("\t")[0]) / 1024)} MiB); carry ".devbench", run "bash .devbench/run.sh"`);
