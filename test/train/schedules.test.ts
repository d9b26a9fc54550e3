// Learning-rate schedules: values at known steps, from each schedule's definition
// (step t is 0-based; the warm-up is linear, lr·(t+1)/warmup).
import { describe, expect, it } from "vitest";
import { learningRate, type ScheduleSpec, type TrainSpec } from "../../runtime/train.ts";

const spec = (schedule: ScheduleSpec, steps = 100, lr = 1e-3): Pick<TrainSpec, "optimizer" | "schedule" | "steps"> => ({
  steps,
  schedule,
  optimizer: { kind: "adam", lr, momentum: 0, nesterov: false, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0 },
});
const at = (s: ScheduleSpec, ts: number[], steps = 100) => ts.map((t) => learningRate(spec(s, steps), t));
const close = (a: number[], b: number[]) => a.forEach((x, i) => expect(x, `value ${i}`).toBeCloseTo(b[i], 15));

describe("schedules", () => {
  it("constant, with and without warm-up", () => {
    close(at({ kind: "constant", warmup: 0 }, [0, 50, 99]), [1e-3, 1e-3, 1e-3]);
    close(at({ kind: "constant", warmup: 4 }, [0, 1, 3, 4, 99]), [0.25e-3, 0.5e-3, 1e-3, 1e-3, 1e-3]);
  });

  it("linear decay to min_lr over the steps after the warm-up", () => {
    // p = (t − 10)/90
    close(at({ kind: "linear", warmup: 10, minLr: 1e-4 }, [9, 10, 55, 100]), [1e-3, 1e-3, 1e-4 + 0.9e-3 * 0.5, 1e-4]);
  });

  it("cosine: half-way is the mean of lr and min_lr; a fractional warm-up is a share of the steps", () => {
    close(at({ kind: "cosine", warmup: 0 }, [0, 50, 100]), [1e-3, 0.5e-3, 0]);
    close(at({ kind: "cosine", warmup: 0, minLr: 2e-4 }, [25]), [2e-4 + 8e-4 * 0.5 * (1 + Math.cos(Math.PI / 4))]);
    // warmup = 0.1 of 100 steps = 10 steps
    close(at({ kind: "cosine", warmup: 0.1 }, [0, 9, 10, 55]), [1e-4, 1e-3, 1e-3, 0.5e-3]);
  });

  it("inverse square root (fairseq): lr·sqrt(warmup/step) after the warm-up, continuous at its end", () => {
    // steps 1-based: at step s = t + 1 ≥ warmup, lr·sqrt(4000/s)
    const s = { kind: "inverse_sqrt", warmup: 4000 } as const;
    close(at(s, [0, 1999, 3999, 15999, 63999], 100000), [1e-3 / 4000, 0.5e-3, 1e-3, 0.5e-3, 0.25e-3]);
    close(at({ kind: "inverse_sqrt", warmup: 0 }, [0, 3, 99]), [1e-3, 0.5e-3, 1e-4]);
  });

  it("step decay: ×gamma every `every` steps after the warm-up (PyTorch StepLR)", () => {
    const s = { kind: "step", warmup: 0, every: 30, gamma: 0.1 } as const;
    close(at(s, [0, 29, 30, 59, 60, 95]), [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-6]);
    close(at({ kind: "step", warmup: 5, every: 10, gamma: 0.5 }, [4, 5, 14, 15]), [1e-3, 1e-3, 1e-3, 0.5e-3]);
  });

  it("the schedule spans the job's steps, not the steps a run stops at", () => {
    // what makes `--steps 10` then `--steps 20 --resume` equal one `--steps 20` run
    const s = spec({ kind: "cosine", warmup: 0 }, 20);
    expect(learningRate(s, 9)).toBeCloseTo(1e-3 * 0.5 * (1 + Math.cos((Math.PI * 9) / 20)), 15);
  });
});
