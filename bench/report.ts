// Results: the JSON file under bench/results/ and the markdown table.
import { PEERS, type PeerName, type Stat } from "./harness.ts";
import type { Row } from "./row.ts";

export interface Results {
  date: string;
  device: string;
  node: string;
  /** the machine's CPUs, e.g. "2 × AMD EPYC 7B13" (absent in older results) */
  host?: string;
  /** how waits on the GPU were done, for every peer alike */
  poll: "timer" | "spin";
  shaderCache: string;
  quick: boolean;
  only: string[] | null;
  peers: Partial<Record<PeerName, string>>;
  seconds: number;
  rows: Row[];
}

function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

function cell(s: Stat | undefined): string {
  if (!s) return "—";
  if (s.n <= 1 || s.min === s.max) return num(s.median);
  return `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
}

function ratioCell(s: Stat | undefined): string {
  if (!s) return "—";
  return s.n <= 1 ? `${num(s.median)}×` : `${num(s.median)}× (${num(s.min)}–${num(s.max)})`;
}

export function markdown(r: Results): string {
  const present = PEERS.filter((p) => r.rows.some((row) => row.values[p.name] || row.errors[p.name]));
  const others = present.filter((p) => p.name !== "weft");
  const head = ["workload", "unit", ...present.map((p) => p.label), ...others.map((p) => `Weft vs ${p.label}`)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`];
  const foot: string[] = [];
  const mark = (text: string): string => {
    let i = foot.indexOf(text);
    if (i < 0) i = foot.push(text) - 1;
    return `[${i + 1}]`;
  };
  for (const row of r.rows) {
    const vals = present.map((p) => {
      const e = row.errors[p.name];
      if (e && !row.values[p.name]) return `n/a ${mark(`${p.label}: ${e}`)}`;
      return cell(row.values[p.name]);
    });
    const ratios = others.map((p) => ratioCell(row.ratios[p.name]));
    lines.push(`| ${row.title} | ${row.unit}${row.higherIsBetter ? " ↑" : " ↓"} | ${vals.join(" | ")} | ${ratios.join(" | ")} |`);
  }
  const out = [lines.join("\n"), ""];
  out.push(
    `Medians over interleaved repetitions, (min–max) in brackets; ↑ higher is better, ↓ lower. ` +
      `"Weft vs X" is X's time over Weft's, paired within each round: above 1× Weft is faster.`,
  );
  // One line per workload: its notes, then each peer's check.
  const notes = r.rows.flatMap((row) => {
    const parts = [
      ...row.notes,
      ...PEERS.filter((p) => row.checks[p.name]).map((p) => `${p.label}: ${row.checks[p.name]}`),
    ];
    return parts.length ? [`${row.title} — ${parts.join("; ")}`] : [];
  });
  if (notes.length) out.push("", ...notes.map((n) => `- ${n}`));
  if (foot.length) out.push("", ...foot.map((f, i) => `[${i + 1}] ${f}`));
  return out.join("\n");
}

export function header(r: Results): string {
  const peers = Object.entries(r.peers).map(([k, v]) => `${k} ${v}`).join(", ");
  return [
    `Device: ${r.device}${r.host ? ` on ${r.host}` : ""}; Node ${r.node}; ${r.date}${r.quick ? " (--quick)" : ""}${r.only ? ` (--only ${r.only.join(",")})` : ""}.`,
    `Peers: ${peers}. All share one dawn-node GPUDevice in one process; GPU waits: ${r.poll === "timer" ? "dawn's busy-poll redirected to a ~1 ms timer for every peer" : "dawn's busy-poll (spinning) for every peer"}. ${r.shaderCache}`,
  ].join("\n");
}

/** Replaces (or appends) the README's closing "## Speed" section. */
export function readmeWithSpeed(readme: string, rs: readonly Results[], made: string): string {
  const section = [
    "## Speed",
    "",
    "`npm run bench` measures Weft against TensorFlow.js (WebGPU back end) and jax-js (jit) on one",
    "shared WebGPU device, interleaved in one process, with a hand-written WGSL matmul as the",
    "kernel baseline; it writes `bench/results/<date>.json` and prints a table (`-- --quick` for",
    "fewer repetitions, `-- --only matmul,mlp` for some workloads, `-- --list` for their names).",
    "The method is described at the top of `bench/harness.ts`; `node bench/pack.mjs` packs the",
    "bench to run on a machine with a GPU but no npm. The tables below come from",
    `\`${made}\`:`,
    "",
    ...rs.flatMap((r) => [header(r), "", markdown(r), ""]),
  ].join("\n");
  const at = readme.search(/^## Speed\s*$/m);
  const base = at >= 0 ? readme.slice(0, at) : readme.replace(/\s*$/, "\n\n");
  return base + section;
}
