// One line of the results: a workload's figure for every peer, and Weft's ratio to each.
import { stat, type Bench, type PeerName, type Stat, type Timings } from "./harness.ts";
import type { JaxPeer, Loaded, TfPeer } from "./peers.ts";

export interface Row {
  id: string;
  title: string;
  /** unit of `values` */
  unit: string;
  higherIsBetter: boolean;
  values: Partial<Record<PeerName, Stat>>;
  /** milliseconds per iteration */
  ms: Partial<Record<PeerName, Stat>>;
  /**
   * Weft's speed relative to each other peer: peer time / Weft time, paired within
   * each round (so slow drift of the machine cancels); > 1 means Weft is faster.
   */
  ratios: Partial<Record<PeerName, Stat>>;
  errors: Partial<Record<PeerName, string>>;
  /** correctness checks against a reference, per peer */
  checks: Partial<Record<PeerName, string>>;
  notes: string[];
  iters?: number;
  rounds?: number;
}

export interface Ctx {
  b: Bench;
  tf: Loaded<TfPeer>;
  jax: Loaded<JaxPeer>;
}

export interface Workload {
  name: string;
  about: string;
  /** false for workloads that need no peer library loaded in this process */
  usesPeers?: boolean;
  run(ctx: Ctx): Promise<Row[]>;
}

export function emptyRow(id: string, title: string, unit: string, higherIsBetter: boolean): Row {
  return { id, title, unit, higherIsBetter, values: {}, ms: {}, ratios: {}, errors: {}, checks: {}, notes: [] };
}

/** Fills a row from measured timings; `toUnit` converts ms per iteration to the row's unit. */
export function fillRow(row: Row, t: Timings, toUnit: (ms: number) => number, rounds: number): Row {
  row.iters = t.iters;
  row.rounds = rounds;
  for (const [peer, xs] of t.ms) {
    if (xs.length === 0) continue;
    row.ms[peer] = stat(xs);
    row.values[peer] = stat(xs.map(toUnit));
  }
  for (const [peer, e] of t.errors) row.errors[peer] = e;
  const weft = t.ms.get("weft");
  if (weft && weft.length > 0 && !t.errors.has("weft")) {
    for (const [peer, xs] of t.ms) {
      if (peer === "weft" || t.errors.has(peer) || xs.length !== weft.length) continue;
      row.ratios[peer] = stat(xs.map((x, i) => x / weft[i]));
    }
  }
  return row;
}

export function fmtErr(e: number): string {
  return e === 0 ? "0" : e.toExponential(1);
}
