// `npm run bench [-- --quick] [-- --only NAME[,NAME]] [-- --readme] [-- --spin]`
//
// Speed of Weft against peers on one device, in one process: see bench/harness.ts for
// how it measures. Writes bench/results/<date>.json and latest.md (a partial run only
// <date>-quick.json or <date>-only.json, which git ignores) and prints a markdown table;
// --readme also rewrites the README's closing "## Speed" section with it.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus as cpus_ } from "node:os";
import { join, resolve } from "node:path";
import { openDevice, PEERS, type Bench, type PeerName } from "./harness.ts";
import { loadJax, loadTf } from "./peers.ts";
import { header, markdown, readmeWithSpeed, type Results } from "./report.ts";
import type { Ctx, Row, Workload } from "./row.ts";
import { BENCH_DIR } from "./weft.ts";
import { gelu } from "./workloads/gelu.ts";
import { matmul } from "./workloads/matmul.ts";
import { mlp } from "./workloads/mlp.ts";
import { transformer } from "./workloads/transformer.ts";
import { firstStep, runFirstStepChild } from "./workloads/ttfs.ts";
import { memory } from "./workloads/memory.ts";

export const WORKLOADS: Workload[] = [gelu, matmul, mlp, transformer, firstStep, memory];

const USAGE = `usage: npm run bench -- [--quick] [--only NAME[,NAME]] [--readme] [--spin] [--list]
       npm run bench -- --report bench/results/A.json [B.json …] [--readme]   (print results files' tables again)
  --quick      fewer repetitions (a rough figure in about a third of the time)
  --only N,M   run only these workloads (${WORKLOADS.map((w) => w.name).join(", ")})
  --readme     rewrite the "## Speed" section of README.md with this run's table
  --spin       let dawn-node busy-poll while waiting (default: a ~1 ms timer), for every peer
  --list       list the workloads`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--child") return runFirstStepChild(argv.slice(1));
  if (argv[0] === "--report") return report(argv.slice(1).filter((a) => a !== "--readme"), argv.includes("--readme"));
  let quick = false;
  let readme = false;
  let only: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") quick = true;
    else if (a === "--readme") readme = true;
    else if (a === "--spin") process.env.WEFT_SPIN_POLL = "1";
    else if (a === "--only") only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (a.startsWith("--only=")) only = a.slice(7).split(",").filter(Boolean);
    else if (a === "--list") {
      for (const w of WORKLOADS) console.log(`${w.name.padEnd(12)} ${w.about}`);
      return 0;
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else {
      console.error(`bench: unknown option ${a}\n${USAGE}`);
      return 2;
    }
  }
  const unknown = (only ?? []).filter((n) => !WORKLOADS.some((w) => w.name === n));
  if (unknown.length) {
    console.error(`bench: no workload ${unknown.join(", ")} (have: ${WORKLOADS.map((w) => w.name).join(", ")})`);
    return 2;
  }
  const chosen = WORKLOADS.filter((w) => !only || only.includes(w.name));
  const log = (m: string) => console.error(m);
  const t0 = performance.now();

  const handle = await openDevice();
  const b: Bench = { handle, device: handle.device, quick, log };
  log(`bench: device ${handle.info}`);
  const withPeers = chosen.some((w) => w.usesPeers !== false);
  const notLoaded = { ok: false, error: "not loaded (no workload of this run uses it)" } as const;
  const tf = withPeers ? await loadTf(handle) : notLoaded;
  log(tf.ok ? `bench: TF.js ${tf.value.version} (webgpu) on the shared device` : `bench: TF.js left out: ${tf.error}`);
  const jax = withPeers ? await loadJax(handle) : notLoaded;
  log(jax.ok ? `bench: jax-js ${jax.value.version} (webgpu) on the shared device` : `bench: jax-js left out: ${jax.error}`);
  const ctx: Ctx = { b, tf, jax };

  const rows: Row[] = [];
  for (const w of chosen) {
    const tw = performance.now();
    log(`bench: ${w.name}: ${w.about}`);
    try {
      const got = await w.run(ctx);
      for (const r of got) log(`  ${r.title}: ${summary(r)}`);
      rows.push(...got);
    } catch (e) {
      log(`bench: ${w.name} failed: ${(e as Error).stack ?? e}`);
    }
    log(`  (${((performance.now() - tw) / 1000).toFixed(1)} s)`);
  }

  const peers: Partial<Record<PeerName, string>> = {
    tfjs: tf.ok ? `@tensorflow/tfjs-backend-webgpu ${tf.value.version}` : `left out (${tf.error})`,
    jax: jax.ok ? `@jax-js/jax ${jax.value.version}` : `left out (${jax.error})`,
  };
  const now = new Date();
  const date = now.toISOString().slice(0, 10);
  const results: Results = {
    date: now.toISOString(),
    device: handle.info,
    node: process.version,
    host: hostDescription(),
    poll: process.env.WEFT_SPIN_POLL === "1" ? "spin" : "timer",
    shaderCache: "Warm figures run with the driver's shader cache as found; time to first step runs in child processes with the on-disk shader caches off (MESA_SHADER_CACHE_DISABLE=true, __GL_SHADER_DISK_CACHE=0: cold compile).",
    quick,
    only,
    peers,
    seconds: (performance.now() - t0) / 1000,
    rows,
  };
  const dir = join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${date}${only ? "-only" : quick ? "-quick" : ""}.json`);
  writeFileSync(file, JSON.stringify(results, null, 1) + "\n");
  const table = `${header({ ...results, date })}\n\n${markdown(results)}\n`;
  if (!only && !quick) writeFileSync(join(dir, "latest.md"), table);
  process.stdout.write(`\n${table}\n`);
  log(`bench: wrote ${file} (${results.seconds.toFixed(0)} s)`);
  if (readme) updateReadme([{ ...results, date }]);
  return 0;
}

function updateReadme(rs: Results[], made = "npm run bench -- --readme"): void {
  const path = resolve(BENCH_DIR, "..", "README.md");
  writeFileSync(path, readmeWithSpeed(readFileSync(path, "utf8"), rs, made));
  console.error(`bench: updated the Speed section of ${path}`);
}

/**
 * `--report FILE… [--readme]`: the tables of earlier runs, without measuring again; with
 * --readme the README's Speed section shows them all, in the order given (e.g. the CI
 * device's run and a real GPU's run packed with bench/pack.mjs).
 */
function report(files: string[], readme: boolean): number {
  if (!files.length) {
    console.error(USAGE);
    return 2;
  }
  const shown = files.map((file) => {
    const r = JSON.parse(readFileSync(resolve(file), "utf8")) as Results;
    return { ...r, date: r.date.slice(0, 10) };
  });
  for (const r of shown) process.stdout.write(`${header(r)}\n\n${markdown(r)}\n\n`);
  if (readme) updateReadme(shown, `npm run bench -- --report ${files.join(" ")} --readme`);
  return 0;
}

function hostDescription(): string {
  const cpus = cpus_();
  return cpus.length ? `${cpus.length} × ${cpus[0].model.trim()}` : "unknown CPUs";
}

function summary(r: Row): string {
  return PEERS.map((p) => {
    const v = r.values[p.name];
    if (v) return `${p.name} ${v.median.toPrecision(3)}`;
    return r.errors[p.name] ? `${p.name} n/a` : "";
  })
    .filter(Boolean)
    .join(", ") + ` ${r.unit}`;
}
