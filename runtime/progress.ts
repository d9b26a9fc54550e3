// What a person watching a run sees: a progress bar redrawn in place on a terminal,
// plain periodic lines otherwise (CI logs, pipes); and DIR/metrics.jsonl, one JSON
// object per logged step or evaluation, appended as the run goes and rewritten whole
// (atomically) at each checkpoint.
import { appendFileSync } from "node:fs";
import type { MetricRecord } from "./checkpoint.ts";
import { writeFileAtomic } from "./safetensors.ts";

export interface StepReport {
  /** 0-based index of the step just finished */
  step: number;
  total: number;
  loss: number;
  lr: number;
  gradNorm?: number;
  stepsPerSec: number;
  tokensPerSec?: number;
  etaSec: number;
}

export interface Progress {
  /** after every step */
  update(r: StepReport): void;
  /** a message that must stay on screen (an evaluation, a checkpoint, a logged step) */
  line(text: string): void;
  /** whether logged steps should also be printed as lines */
  readonly wantsStepLines: boolean;
  done(): void;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}

function si(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x >= 100 ? 0 : 1);
}

/** The text of a logged step (the line format scripts and tests parse). */
export function stepLine(r: StepReport): string {
  const w = String(r.total).length;
  const parts = [`step ${String(r.step + 1).padStart(w)}/${r.total}`, `loss ${r.loss.toFixed(4)}`, `lr ${r.lr.toExponential(2)}`];
  if (r.gradNorm !== undefined) parts.push(`|g| ${r.gradNorm.toFixed(3)}`);
  parts.push(`${r.stepsPerSec.toFixed(1)} steps/s`);
  if (r.tokensPerSec !== undefined) parts.push(`${si(r.tokensPerSec)} tok/s`);
  parts.push(`ETA ${formatDuration(r.etaSec)}`);
  return parts.join("  ");
}

/** Plain lines through `log` (a pipe or a CI log): the caller prints logged steps. */
export function plainProgress(log: (line: string) => void): Progress {
  return { update: () => {}, line: log, wantsStepLines: true, done: () => {} };
}

/** A bar redrawn in place (at most 10 times a second) on a terminal stream. */
export function ttyProgress(out: NodeJS.WriteStream): Progress {
  let last = 0;
  let bar = "";
  const draw = () => out.write(`\r\x1b[K${bar}`);
  return {
    wantsStepLines: false,
    update(r) {
      const now = performance.now();
      if (now - last < 100 && r.step + 1 < r.total) return;
      last = now;
      const width = Math.max(10, Math.min(30, (out.columns ?? 80) - 70));
      const frac = Math.min(1, (r.step + 1) / r.total);
      const filled = Math.round(frac * width);
      const w = String(r.total).length;
      const parts = [
        `${String(r.step + 1).padStart(w)}/${r.total}`,
        `${"█".repeat(filled)}${"░".repeat(width - filled)}`,
        `${String(Math.floor(frac * 100)).padStart(3)}%`,
        `loss ${r.loss.toFixed(4)}`,
        `${r.stepsPerSec.toFixed(1)} it/s`,
      ];
      if (r.tokensPerSec !== undefined) parts.push(`${si(r.tokensPerSec)} tok/s`);
      parts.push(`ETA ${formatDuration(r.etaSec)}`);
      bar = parts.join("  ");
      draw();
    },
    line(text) {
      out.write(`\r\x1b[K${text}\n`);
      if (bar) draw();
    },
    done() {
      if (bar) out.write("\n");
      bar = "";
    },
  };
}

/** DIR/metrics.jsonl: the history so far, then one line per record as it comes. */
export class MetricsLog {
  private readonly all: MetricRecord[];

  constructor(readonly path: string | undefined, history: readonly MetricRecord[] = []) {
    this.all = [...history];
  }

  /** Rewrites the file with the history (a resumed run drops what came after its checkpoint). */
  async start(): Promise<void> {
    await this.flush();
  }

  add(r: MetricRecord): void {
    this.all.push(r);
    if (this.path) appendFileSync(this.path, JSON.stringify(r) + "\n");
  }

  records(): MetricRecord[] {
    return [...this.all];
  }

  async flush(): Promise<void> {
    if (!this.path) return;
    await writeFileAtomic(this.path, new TextEncoder().encode(this.all.map((r) => JSON.stringify(r) + "\n").join("")));
  }
}
