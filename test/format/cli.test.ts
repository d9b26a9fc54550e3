// `weft fmt` as a subprocess (node bin/weft.mjs fmt ...): stdout, --check and --write, on
// copies in a scratch folder.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers.ts";
import { spawnAsync } from "../util/spawn.ts";

const BIN = join(ROOT, "bin/weft.mjs");

const FORMATTED = `dim B, D

fn f(x: f32[B, D]) -> f32[B] = sum(x * 2, D) // doubled
`;
const UNFORMATTED = `dim B,D

fn f(x: f32[B,D]) -> f32[B] =
  sum(x*2, D)   // doubled
`;
const BROKEN = `dim B, D
fn f(x: f32[B, D]) -> f32[B] = sum(tanh(x) * , D)
`;

let TMP = "";

async function weft(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await spawnAsync(process.execPath, [BIN, "fmt", ...args], { cwd: TMP, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function setUp(dir: string): void {
  rmSync(join(TMP, dir), { recursive: true, force: true });
  mkdirSync(join(TMP, dir, "sub"), { recursive: true });
  writeFileSync(join(TMP, dir, "good.weft"), FORMATTED);
  writeFileSync(join(TMP, dir, "sub/ugly.weft"), UNFORMATTED);
  writeFileSync(join(TMP, dir, "notes.txt"), "not weft");
}

beforeAll(() => {
  TMP = mkdtempSync(join(tmpdir(), "weft-fmt-"));
});
afterAll(() => {
  rmSync(TMP, { recursive: true, force: true });
});

describe("weft fmt (subprocess)", () => {
  it("prints the formatted text of one file to stdout and changes nothing", async () => {
    setUp("print");
    const r = await weft("print/sub/ugly.weft");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(FORMATTED);
    expect(readFileSync(join(TMP, "print/sub/ugly.weft"), "utf8")).toBe(UNFORMATTED);
  });

  it("--check lists the files that are not formatted and exits 1; 0 once all are", async () => {
    setUp("check");
    const bad = await weft("--check", "check");
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout.trim().split("\n")).toEqual([join("check", "sub", "ugly.weft")]);
    expect(bad.stderr).toContain("1 file not formatted");
    expect(readFileSync(join(TMP, "check/sub/ugly.weft"), "utf8")).toBe(UNFORMATTED);
    const good = await weft("--check", "check/good.weft");
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toBe("");
  });

  it("--write rewrites the files that are not formatted (keeping their mode), then --check passes", async () => {
    setUp("write");
    const ugly = join(TMP, "write/sub/ugly.weft");
    chmodSync(ugly, 0o640);
    const goodMtime = statSync(join(TMP, "write/good.weft")).mtimeMs;
    const r = await weft("--write", "write");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("1 file reformatted, 1 file already formatted");
    expect(readFileSync(ugly, "utf8")).toBe(FORMATTED);
    expect(statSync(ugly).mode & 0o777).toBe(0o640);
    expect(statSync(join(TMP, "write/good.weft")).mtimeMs).toBe(goodMtime);
    expect(readdirSync(join(TMP, "write/sub"))).toEqual(["ugly.weft"]); // no temporary file left
    expect((await weft("--check", "write")).code).toBe(0);
  });

  it("leaves a file with syntax errors as it is, prints its errors and exits 1", async () => {
    setUp("broken");
    writeFileSync(join(TMP, "broken/bad.weft"), BROKEN);
    for (const mode of ["--write", "--check"]) {
      const r = await weft(mode, "broken");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("bad.weft:2:46: error[W0001]");
      expect(readFileSync(join(TMP, "broken/bad.weft"), "utf8")).toBe(BROKEN);
    }
    expect(readFileSync(join(TMP, "broken/sub/ugly.weft"), "utf8")).toBe(FORMATTED); // the --write run did the rest
  });

  it("usage errors exit 2", async () => {
    setUp("usage");
    expect((await weft()).code).toBe(2);
    expect((await weft("--check", "--write", "usage")).code).toBe(2);
    const several = await weft("usage");
    expect(several.code).toBe(2);
    expect(several.stderr).toContain("--write or --check");
    expect((await weft("--help")).stdout).toContain("usage: weft fmt FILE...");
    const missing = await weft("usage/nope.weft");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file");
  });
});

describe("the repository stays formatted", () => {
  it("`weft fmt --check` on the whole repository lists no file", async () => {
    const r = await spawnAsync(process.execPath, [BIN, "fmt", "--check", "."], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } });
    expect(r.stdout, "files that are not formatted (run `npx weft fmt --write FILE`)").toBe("");
    // the one file it may not touch is the fixture that is broken on purpose (exit 1 for it)
    const broken = [...r.stderr.matchAll(/^(\S+\.weft):\d+:\d+: error/gm)].map((m) => m[1]);
    expect([...new Set(broken)]).toEqual(["test/fixtures/cli/syntax_error.weft"]);
    expect(r.stderr).toMatch(/formatted, 1 file with syntax errors left as they are\n$/);
  }, 60_000);
});
