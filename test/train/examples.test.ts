// The examples train from the command line, as their READMEs say, at small sizes (the
// --dim flags shrink the models so that the float64 reference trains them in seconds):
// charlm learns, and `weft sample` writes text from its checkpoint; copy's
// encoder–decoder learns the reversal. Full-size runs and their numbers: the READMEs.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanup, ROOT, tempDir } from "./helpers.ts";

const BIN = join(ROOT, "bin/weft.mjs");

function weft(cwd: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const metrics = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss?: number; eval_loss?: number });

afterAll(cleanup);

describe("examples/charlm", () => {
  it("trains a character LM on the sonnets, and weft sample writes from it", async () => {
    const cwd = tempDir();
    const file = join(ROOT, "examples/charlm/charlm.weft");
    const small = ["--dim", "D=16", "--dim", "F=32", "--dim", "L=1"];
    const t = await weft(cwd, "train", file, "--backend", "reference", "--steps", "8", "--log-every", "1", "--out", "run", ...small);
    expect(t.code, t.stderr).toBe(0);
    const m = metrics(join(cwd, "run"));
    expect(m).toHaveLength(8);
    expect(m[0].loss!).toBeGreaterThan(3.5); // ≈ ln(vocabulary size) at the start
    expect(m[7].loss!).toBeLessThan(m[0].loss! - 0.05);
    const tok = JSON.parse(readFileSync(join(cwd, "run", "checkpoints", "step-000008", "tokenizer.json"), "utf8"));
    expect(tok.kind).toBe("chars");
    expect(tok.chars).toContain("S");

    // sampled, and greedy twice (with different seeds: greedy is deterministic)
    const [s, g1, g2] = await Promise.all([
      weft(cwd, "sample", file, "--from", "run", "--prompt", "Shall I", "--length", "24", "--seed", "3", "--backend", "reference"),
      weft(cwd, "sample", file, "--from", "run", "--prompt", "O", "--length", "8", "--temperature", "0", "--backend", "reference"),
      weft(cwd, "sample", file, "--from", "run", "--prompt", "O", "--length", "8", "--temperature", "0", "--backend", "reference", "--seed", "9"),
    ]);
    expect(s.code, s.stderr).toBe(0);
    const text = s.stdout.replace(/\n$/, "");
    expect(text.startsWith("Shall I")).toBe(true);
    expect([...text].length).toBe("Shall I".length + 24);
    for (const c of text) expect(tok.chars).toContain(c);
    expect(g1.code, g1.stderr).toBe(0);
    expect(g1.stdout).toBe(g2.stdout);
  });
});

describe("examples/copy", () => {
  it("an encoder–decoder with cross-attention learns to reverse digits (the loss falls; curves and params written)", async () => {
    const cwd = tempDir();
    const t = await weft(cwd, "train", join(ROOT, "examples/copy/copy.weft"), "--backend", "reference", "--steps", "30", "--log-every", "1", "--out", "run", "--dim", "D=16", "--dim", "F=32");
    expect(t.code, t.stderr).toBe(0);
    const m = metrics(join(cwd, "run"));
    const losses = m.filter((x) => x.loss !== undefined).map((x) => x.loss!);
    expect(losses).toHaveLength(30);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeLessThan(0.85 * mean(losses.slice(0, 5)));
    for (const f of ["loss.svg", "loss.png", "params.safetensors"]) expect(existsSync(join(cwd, "run", f)), f).toBe(true);
  });
});
