// WEFT_DEBUG=1..3 on the command line: each level prints what it promises (on stderr,
// leaving stdout's results alone). 1: the bundle's kernels and a summary per run;
// 2: + every launch with the bytes it binds, and the graph ops (with source positions)
// fused into each kernel; 3: + time per kernel (GPU timestamps, or CPU time per submit).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), "weft-debug-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function weft(level: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", WEFT_DEBUG: level };
  if (!env.XDG_RUNTIME_DIR) {
    env.XDG_RUNTIME_DIR = join(TMP, "xdg");
    mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin/weft.mjs"), ...args], { cwd: TMP, env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

const run = (level: string) =>
  weft(level, "run", join(ROOT, "test/fixtures/cli/tanhsum.weft"), "--entry", "f", "--dim", "B=2", "--dim", "D=3", "--backend", "webgpu", "--inputs", '{"x": [[1, 2, 3], [4, 5, 6]]}');

describe("WEFT_DEBUG on `weft run`", () => {
  it("1: kernels at load and a summary of each run", async () => {
    const r = await run("1");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty("out");
    expect(r.stderr).toMatch(/weft: loaded bundle on .+: \d+ buffers, \d+ bytes \(.*\); \d+ kernels \(\d+ distinct shaders\), 0 copies \(pipelines ready in \d+ ms\)/);
    expect(r.stderr).toMatch(/weft: {3}kernel \S+ workgroups=\[\d+,\d+,\d+\] bindings=\d+/);
    expect(r.stderr).toMatch(/weft: run 1: \d+ launches, 0 copies \(0 bytes\); host wrote 24 bytes/);
    expect(r.stderr).not.toMatch(/launch |fuses|gpu |cpu run/);
  }, 120_000);

  it("2: every launch with its bytes, and the graph ops fused into each kernel with their source positions", async () => {
    const r = await run("2");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/weft: launch \S+ \[\d+,\d+,\d+\] reads \d+ bytes, writes \d+ bytes/);
    // sum(tanh(x) * 2.0, D) is one kernel: the reduction with its prologue
    expect(r.stderr).toMatch(/fuses %\d+ tanh \(tanhsum\.weft:4:\d+\), %\d+ mul \(tanhsum\.weft:4:\d+\), %\d+ sum \(tanhsum\.weft:4:\d+\)/);
    expect(r.stderr).not.toMatch(/gpu |cpu run/);
  }, 120_000);

  it("3: the time of each kernel (timestamp queries, else CPU time per submit, saying so)", async () => {
    const r = await run("3");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/weft: launch /);
    expect(r.stderr).toMatch(/weft: gpu \S+: [\d.]+ us\n[\s\S]*weft: gpu total: [\d.]+ us over \d+ kernels|weft: cpu run 1: [\d.]+ ms from submit to done.*no 'timestamp-query'/);
  }, 120_000);
});
