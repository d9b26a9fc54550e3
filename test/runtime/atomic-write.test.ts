// writeFileAtomic must leave the target either old or new, whole, whenever the
// writer dies. Simulated for real: a child process writes a large file and is
// SIGKILLed while the temp file is half written.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { writeFileAtomic } from "../../runtime/safetensors.ts";

const root = resolve(import.meta.dirname, "../..");
const NEW_SIZE = 128 << 20;
const OLD = Buffer.alloc(1 << 20, "O");

function startWriter(dir: string, target: string): ChildProcess {
  const url = pathToFileURL(join(root, "runtime/safetensors.ts")).href;
  const script = join(dir, "writer.mts");
  writeFileSync(
    script,
    `import { writeFileAtomic } from ${JSON.stringify(url)};
     await writeFileAtomic(${JSON.stringify(target)}, new Uint8Array(${NEW_SIZE}).fill(0x4e));`,
  );
  return spawn(process.execPath, ["--import", "tsx", script], { cwd: root, stdio: "ignore" });
}

const exited = (c: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => c.once("exit", (code, signal) => r({ code, signal })));

const temps = (dir: string) => readdirSync(dir).filter((f) => f.startsWith(".target.bin.") && f.endsWith(".tmp"));

/** The target is whole: all old bytes, or all new bytes. */
function checkWhole(target: string): "old" | "new" {
  const got = readFileSync(target);
  if (got.equals(OLD)) return "old";
  expect(got.length).toBe(NEW_SIZE);
  expect(got.every((b) => b === 0x4e)).toBe(true);
  return "new";
}

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "weft-atomic-"));
  dirs.push(d);
  return d;
};

describe("writeFileAtomic", () => {
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("leaves the old file intact when the writer is killed mid-write", async () => {
    let interrupted = 0;
    for (let attempt = 0; attempt < 4 && interrupted === 0; attempt++) {
      const dir = tempDir();
      const target = join(dir, "target.bin");
      writeFileSync(target, OLD);
      const child = startWriter(dir, target);
      const done = exited(child);
      let finished = false;
      void done.then(() => (finished = true));
      // Kill once the temp file holds some, not all, of the new bytes.
      while (!finished) {
        const t = temps(dir)[0];
        const size = t ? (statSync(join(dir, t), { throwIfNoEntry: false })?.size ?? 0) : 0;
        if (size > 0 && size < NEW_SIZE) {
          child.kill("SIGKILL");
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      const { signal } = await done;
      const state = checkWhole(target);
      if (signal === "SIGKILL") {
        expect(state).toBe("old");
        interrupted++;
      }
    }
    expect(interrupted).toBeGreaterThan(0);
  });

  it("replaces the file when the writer finishes, leaving no temp file", async () => {
    const dir = tempDir();
    const target = join(dir, "target.bin");
    writeFileSync(target, OLD);
    const { code } = await exited(startWriter(dir, target));
    expect(code).toBe(0);
    expect(checkWhole(target)).toBe("new");
    expect(temps(dir)).toEqual([]);
  });

  it("fails cleanly when the folder does not exist", async () => {
    const dir = tempDir();
    await expect(writeFileAtomic(join(dir, "no/such/dir/x.bin"), new Uint8Array(4))).rejects.toThrow(/ENOENT/);
    await writeFileAtomic(join(dir, "small.bin"), new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(join(dir, "small.bin")))).toEqual([1, 2, 3]);
    expect(existsSync(join(dir, "small.bin"))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
