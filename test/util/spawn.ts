// A child process run to completion without blocking this one. vitest's worker answers its
// RPC on the event loop: spawnSync calls that add up to a minute (under load: a few `weft`
// commands) made it time out ("Timeout calling onTaskUpdate"), which fails the run.
import { spawn, type SpawnOptions } from "node:child_process";

export interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` to completion; `timeout` (ms) kills it (status null), as spawnSync's does. */
export function spawnAsync(cmd: string, args: readonly string[], opts: Pick<SpawnOptions, "cwd" | "env"> & { timeout?: number } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = opts.timeout ? setTimeout(() => child.kill("SIGKILL"), opts.timeout) : undefined;
    child.on("error", reject);
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      resolve({ status: code, stdout, stderr });
    });
  });
}
