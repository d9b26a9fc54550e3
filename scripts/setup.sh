#!/usr/bin/env bash
# Make sure Weft has a WebGPU adapter. Idempotent: safe to run again.
# On Debian 12 without a GPU, installs Mesa lavapipe (a Vulkan driver that runs on the
# CPU) from bookworm-backports: the 22.x in bookworm lacks a feature Dawn requires.
# Where that cannot be done, says so once and exits 0: Weft then runs on the
# reference back end (CPU, float64).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ]; then
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/weft-xdg-$(id -u)"
  mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
fi

probe() { node scripts/probe-gpu.mjs 2>/dev/null; }

if info=$(probe); then
  echo "WebGPU adapter: $info"
  exit 0
fi

cannot() {
  echo "no WebGPU adapter and cannot install Mesa lavapipe ($1); Weft will run on the reference back end (CPU, float64)"
  exit 0
}

[ "$(id -u)" -eq 0 ] || cannot "not root: as root, apt-get install -t bookworm-backports mesa-vulkan-drivers"
command -v apt-get >/dev/null || cannot "no apt-get"
codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
[ "$codename" = bookworm ] || cannot "not Debian 12 (bookworm): install your distribution's Mesa Vulkan drivers, version 24 or later"

if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/weft-bookworm-backports.list
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || echo "warning: apt-get update reported errors; trying the install anyway"
apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1

if info=$(probe); then
  echo "WebGPU adapter: $info"
else
  cannot "mesa-vulkan-drivers installed but dawn-node still finds no adapter; see WEFT_PROBE_VERBOSE=1 node scripts/probe-gpu.mjs"
fi
