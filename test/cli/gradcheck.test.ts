// `weft gradcheck`: a subprocess on a small program, once where every gradient is right and
// once at relu's kink, where finite differences and the derivative must disagree.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../util/weft.ts";
import { spawnAsync } from "../util/spawn.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-gradcheck-"));
const file = join(dir, "g.weft");
writeFileSync(
  file,
  `dim N = 3
block Lin {
  param w: f32[N, N] = glorot
  fn (x: f32[N]) -> f32[N] = x @ w
}
fn smooth(m: Lin, x: f32[N], y: f32[N]) -> f32 = sum(tanh(m(x)) * stop(y))
fn kink(x: f32[N]) -> f32 = sum(relu(x))
`,
);
const weft = (...args: string[]) => spawnAsync(process.execPath, [join(ROOT, "bin/weft.mjs"), "gradcheck", file, ...args], { timeout: 60_000 });

describe("weft gradcheck", () => {
  it("reports tiny errors for correct gradients, and inputs behind stop() as stopped", async () => {
    const r = await weft("--entry", "smooth", "--inputs", '{"x": [0.3, -1.2, 0.8], "y": [1, 2, 3]}');
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/worst relative error/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))!;
    for (const name of ["x", "m.w"]) expect(Number(row(name).trim().split(/\s+/).pop())).toBeLessThan(1e-6);
    expect(row("y")).toMatch(/stop/);
  });

  it("flags a disagreement and exits 1 (relu at its kink)", async () => {
    const r = await weft("--entry", "kink", "--inputs", '{"x": [0, 1, -1]}');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/check this/);
  });
});
