// `weft train` as a person runs it: --resume continues to --steps bit-identically,
// Ctrl-C saves a checkpoint and exits, a non-finite loss stops with the step (and with
// --debug the op), and a run never overwrites an earlier one's checkpoints unasked.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../runtime/checkpoint.ts";
import { cleanup, LINREG, ROOT, tempDir, writeJob } from "./helpers.ts";

const BIN = join(ROOT, "bin/weft.mjs");
const MLP = join(ROOT, "examples/mlp/mlp.weft");

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function weft(cwd: string, args: string[], opts: { onStdout?: (all: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      opts.onStdout?.(stdout, child);
    });
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const ok = (r: Exit) => expect(r.code, r.stderr || r.stdout).toBe(0);
const bytes = (f: string) => readFileSync(f);

afterAll(cleanup);

describe("weft train --resume", () => {
  it("--steps 10, then --steps 20 --resume DIR = one --steps 20 run: parameters and losses", async () => {
    const cwd = tempDir();
    const common = ["train", MLP, "--backend", "reference", "--log-every", "1", "--seed", "3"];
    const [once, first] = await Promise.all([weft(cwd, [...common, "--steps", "20", "--out", "once"]), weft(cwd, [...common, "--steps", "10", "--out", "twice"])]);
    ok(once);
    ok(first);
    const again = await weft(cwd, ["train", MLP, "--backend", "reference", "--log-every", "1", "--steps", "20", "--resume", "twice"]);
    ok(again);
    expect(again.stdout).toContain("resuming at step 10");
    expect(bytes(join(cwd, "twice", "params.safetensors")).equals(bytes(join(cwd, "once", "params.safetensors")))).toBe(true);
    expect(readFileSync(join(cwd, "twice", "metrics.jsonl"), "utf8")).toBe(readFileSync(join(cwd, "once", "metrics.jsonl"), "utf8"));
    for (const f of ["loss.svg", "loss.png"]) expect(existsSync(join(cwd, "twice", f)), f).toBe(true);

    // a fresh run into a folder with checkpoints is refused (nothing is overwritten unasked)
    const refused = await weft(cwd, [...common, "--steps", "5", "--out", "once"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--resume");
    expect(refused.stderr).toContain("--overwrite");
  });
});

describe("Ctrl-C", () => {
  it("finishes the step, saves a checkpoint, exits 130; resuming gives the uninterrupted run", async () => {
    const cwd = tempDir();
    let sent = false;
    const cut = await weft(cwd, ["train", MLP, "--backend", "reference", "--log-every", "1", "--steps", "400", "--out", "cut"], {
      onStdout: (all, child) => {
        if (!sent && /^step\s+5\/400/m.test(all)) {
          sent = true;
          child.kill("SIGINT");
        }
      },
    });
    expect(cut.code, cut.stderr).toBe(130);
    expect(cut.stdout).toContain("interrupted");
    const at = loadCheckpoint(join(cwd, "cut")).trainer.step;
    expect(at).toBeGreaterThanOrEqual(5);
    expect(at).toBeLessThan(400);
    const stop = at + 3;
    const [resumed, straight] = await Promise.all([
      weft(cwd, ["train", MLP, "--backend", "reference", "--log-every", "1", "--steps", String(stop), "--resume", "cut"]),
      weft(cwd, ["train", MLP, "--backend", "reference", "--log-every", "1", "--steps", String(stop), "--out", "straight"]),
    ]);
    ok(resumed);
    ok(straight);
    expect(bytes(join(cwd, "cut", "params.safetensors")).equals(bytes(join(cwd, "straight", "params.safetensors")))).toBe(true);
  });
});

describe("a non-finite loss", () => {
  const NAN = `import "std/nn"
dim I = 3, O = 2
train t {
  model = Linear(I, O)
  loss = mean(sqrt(model(batch.x) + 1.0))
  data = jsonl("linreg.jsonl")
  batch = 4
  steps = 5
  optimizer = sgd(lr = 1.0)
}
`;
  it("stops the run with the step; --debug names the first op that produced one, with its source position", async () => {
    const file = writeJob(NAN, { "linreg.jsonl": LINREG });
    const cwd = tempDir();
    const plain = await weft(cwd, ["train", file, "--backend", "reference"]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain("the loss became NaN at step 1");
    expect(plain.stderr).toContain("--debug");
    const dbg = await weft(cwd, ["train", file, "--backend", "reference", "--debug", "--out", "dbg"]);
    expect(dbg.code).toBe(1);
    expect(dbg.stderr).toMatch(/first non-finite value at step 1 is %\d+ = sqrt\(%\d+\) at .*job\.weft:5:15/);
  });
});
