// The `weft` command, run as a subprocess (node bin/weft.mjs ...), against the contract
// in cli/main.ts's HELP text: exit codes (0 ok, 1 a located problem with the user's
// program or data, 2 usage, never a JS stack trace), outputs checked against values
// computed here in plain JS.
//
// Every call runs with its cwd in a scratch directory that holds none of the .weft files,
// so paths written inside .weft files (imports, jsonl data) must resolve against the file.
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initialValues } from "../../runtime/init.ts";
import { decodeSafetensors, encodeSafetensors, safetensorsMetadata, type WritableTensor } from "../../runtime/safetensors.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "bin/weft.mjs");
const FIXTURES = join(ROOT, "test/fixtures/cli");
const MLP_DIR = join(ROOT, "examples/mlp");

// ---------------------------------------------------------------------------------------
// scratch space: fixtures copied to TMP/src, every command run from TMP/cwd
// ---------------------------------------------------------------------------------------

let TMP = "";
let SRC = ""; // copies of test/fixtures/cli
let CWD = ""; // the subprocesses' cwd
let MLP = ""; // a copy of examples/mlp

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  if (!e.XDG_RUNTIME_DIR) {
    const dir = join(TMP, "xdg");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    e.XDG_RUNTIME_DIR = dir;
  }
  return e;
}

beforeAll(() => {
  TMP = mkdtempSync(join(tmpdir(), "weft-cli-"));
  SRC = join(TMP, "src");
  CWD = join(TMP, "cwd");
  MLP = join(TMP, "mlp");
  cpSync(FIXTURES, SRC, { recursive: true });
  cpSync(MLP_DIR, MLP, { recursive: true });
  mkdirSync(CWD);
});

afterAll(() => {
  if (TMP) rmSync(TMP, { recursive: true, force: true });
});

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command and collects its output. (Asynchronous on purpose: a test file made of
 * back-to-back spawnSync calls never lets vitest's worker answer its RPC, and it times out.)
 */
function spawnCollect(file: string, args: string[], what: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Result> {
  return limit(() => spawnOnce(file, args, what, extraEnv));
}

// Independent tests run concurrently (describe.concurrent), two subprocesses at a time:
// each is mostly node + tsx start-up on one core.
const SLOTS = 2;
let running = 0;
const waiting: (() => void)[] = [];
async function limit<T>(f: () => Promise<T>): Promise<T> {
  if (running < SLOTS) running++;
  else await new Promise<void>((r) => waiting.push(r)); // a finishing call hands its slot over
  try {
    return await f();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function spawnOnce(file: string, args: string[], what: string, extraEnv: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: CWD, env: { ...env(), ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      const r = { status, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
      if (signal) reject(new Error(`${what} was killed by ${signal} (60 s timeout?)\n${show(r)}`));
      else resolve(r);
    });
  });
}

function weft(...args: string[]): Promise<Result> {
  return spawnCollect(process.execPath, [BIN, ...args], `weft ${args.join(" ")}`);
}

/** weft with the Vulkan loader pointed at no driver: dawn finds no adapter (Linux, lavapipe). */
const NO_GPU: NodeJS.ProcessEnv = { VK_ICD_FILENAMES: "/nonexistent/icd.json", VK_DRIVER_FILES: "/nonexistent/icd.json", WEFT_REQUIRE_GPU: "0" };
function weftWithoutGpu(...args: string[]): Promise<Result> {
  return spawnCollect(process.execPath, [BIN, ...args], `weft ${args.join(" ")} (no GPU)`, NO_GPU);
}

/** Runs a shell command line from CWD (for pipelines). */
function sh(line: string): Promise<Result> {
  return spawnCollect("sh", ["-c", line], line);
}

function show(r: Result): string {
  return `exit ${r.status}\n--- stdout ---\n${r.stdout.slice(0, 3000)}\n--- stderr ---\n${r.stderr.slice(0, 3000)}`;
}

/**
 * No JS stack trace and no "internal error" — whatever the exit code. (Native frames
 * that dawn logs, "at CheckVkSuccessImpl (…/VulkanError.cpp:106)", are not Weft's.)
 */
const JS_FRAME = /^\s{4}at (?!.*\.(?:cpp|cc|h):\d+\)?$)/m;
function expectNoCrash(r: Result): void {
  expect(r.stderr, show(r)).not.toMatch(JS_FRAME);
  expect(r.stderr + r.stdout, show(r)).not.toMatch(/internal error/i);
  expect(r.status, show(r)).not.toBe(3);
}

function expectExit(r: Result, code: number): void {
  expect(r.status, show(r)).toBe(code);
  expectNoCrash(r);
}

const src = (name: string) => join(SRC, name);

/** 1-based line:col of the first occurrence of `needle` in a file, plus `offset` chars. */
function where(file: string, needle: string, offset = 0): string {
  const text = readFileSync(file, "utf8");
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`'${needle}' is not in ${file}`);
  const before = text.slice(0, at + offset).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

function json(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`not JSON: ${text.slice(0, 500)}`);
  }
}

function expectClose(actual: unknown, expected: number[], rel: number, abs: number, what: string): void {
  const a = (actual as ArrayLike<number>) ?? [];
  expect(a.length, `${what}: ${JSON.stringify(actual)}`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(a[i] - expected[i]);
    if (!(err <= abs + rel * Math.abs(expected[i]))) throw new Error(`${what}[${i}]: got ${a[i]}, expected ${expected[i]} (error ${err})`);
  }
}

// ---------------------------------------------------------------------------------------
// independent math (float64; inputs are f32 tensors, so they are fround-ed first)
// ---------------------------------------------------------------------------------------

const f32 = (xs: number[]) => xs.map(Math.fround);

/** sum over D of 2·tanh(x), x: [B, D] */
function tanhSum(x: number[][]): number[] {
  return x.map((row) => f32(row).reduce((s, v) => s + Math.tanh(v) * 2, 0));
}

/** x: [B, I] @ w: [I, O] + b: [O] */
function affine(x: number[][], w: number[][], b: number[]): number[][] {
  return x.map((row) => b.map((bj, j) => row.reduce((s, xi, i) => s + xi * w[i][j], bj)));
}

/** loss = mean(relu(x @ w + b)^2) and its gradient wrt x, w, b */
function lossAndGrads(x: number[][], w: number[][], b: number[]) {
  const z = affine(x, w, b);
  const n = z.length * b.length;
  const r = z.map((row) => row.map((v) => Math.max(v, 0)));
  const loss = r.flat().reduce((s, v) => s + v * v, 0) / n;
  const dz = r.map((row) => row.map((v) => (2 * v) / n)); // relu' · 2 relu / n
  const gx = x.map((_, k) => w.map((wi) => wi.reduce((s, wij, j) => s + wij * dz[k][j], 0)));
  const gw = w.map((wi, i) => wi.map((_, j) => x.reduce((s, xk, k) => s + xk[i] * dz[k][j], 0)));
  const gb = b.map((_, j) => dz.reduce((s, row) => s + row[j], 0));
  return { loss, z, gx, gw, gb };
}

// weights and inputs exact in f32, with some pre-activations below zero
const W = [
  [0.5, -1],
  [0.25, 0.75],
  [-0.5, 0.125],
];
const Bv = [0.125, -0.25];
const XL = [
  [1, -0.5, 0.25],
  [-1.5, 2, 0.5],
];

function writeParams(file: string, tensors: Record<string, { shape: number[]; data: number[] }>): string {
  const m = new Map<string, WritableTensor>();
  for (const [k, t] of Object.entries(tensors)) m.set(k, { dtype: "F32", shape: t.shape, data: Float32Array.from(t.data) });
  const path = join(TMP, file);
  writeFileSync(path, encodeSafetensors(m));
  return path;
}

// =======================================================================================

describe.concurrent("usage", () => {
  it("weft --help prints the command list and exits 0", async () => {
    const r = await weft("--help");
    expectExit(r, 0);
    expect(r.stdout).toMatch(/^usage: weft <command>/m);
    for (const c of ["check", "run", "grad", "train", "compile"]) expect(r.stdout).toMatch(new RegExp(`^\\s+${c} `, "m"));
  });

  for (const cmd of ["check", "run", "grad", "train", "compile"]) {
    it(`weft ${cmd} --help prints the command's usage and exits 0`, async () => {
      const r = await weft(cmd, "--help");
      expectExit(r, 0);
      expect(r.stdout).toMatch(new RegExp(`^usage: weft ${cmd} `, "m"));
      expect(r.stderr).not.toMatch(/error/i);
    });
  }

  it("--backend webgpu without an adapter fails with the how-to-install message (exit 1 or 2, not an internal error)", async () => {
    const r = await weftWithoutGpu("run", src("tanhsum.weft"), "--entry", "f", "--backend", "webgpu", "--inputs", '{"x": [[0.5, 1]]}');
    expectNoCrash(r);
    expect([1, 2], show(r)).toContain(r.status);
    expect(r.stderr).toContain("no WebGPU adapter");
    expect(r.stdout).toBe("");
  });

  it("without --backend and without an adapter, run says so and falls back to the reference back end", async () => {
    const r = await weftWithoutGpu("run", src("tanhsum.weft"), "--entry", "f", "--inputs", '{"x": [[0.5, 1]]}');
    expectExit(r, 0);
    expect(r.stderr).toMatch(/no WebGPU adapter.*reference/);
    expectClose(json(r.stdout).out, tanhSum([[0.5, 1]]), 1e-12, 1e-12, "out");
  });

  it("an unknown command exits 2, naming it", async () => {
    const r = await weft("frobnicate", src("tanhsum.weft"));
    expectExit(r, 2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it("an unknown flag exits 2, naming it", async () => {
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--bogus");
    expectExit(r, 2);
    expect(r.stderr).toContain("--bogus");
    expect(r.stdout).toBe("");
  });

  it("run without --entry exits 2 and says --entry is needed", async () => {
    const r = await weft("run", src("tanhsum.weft"), "--inputs", '{"x": [[1]]}');
    expectExit(r, 2);
    expect(r.stderr).toContain("--entry");
  });

  it("an unknown --backend exits 2, naming it", async () => {
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "cuda", "--inputs", '{"x": [[0.5, 1]]}');
    expectExit(r, 2);
    expect(r.stderr).toContain("cuda");
  });
});

// =======================================================================================

describe.concurrent("weft check", () => {
  it("accepts good files (one importing another by a path relative to itself) with exit 0", async () => {
    const r = await weft("check", src("tanhsum.weft"), src("linear.weft"), src("proj/main.weft"));
    expectExit(r, 0);
    expect(r.stderr).toContain("3 files checked, no errors");
  });

  it("reports a syntax error, an unknown name and a shape mismatch in three files, each at file:line:col", async () => {
    const syn = src("syntax_error.weft");
    const unk = src("unknown_name.weft");
    const shp = src("shape_mismatch.weft");
    const r = await weft("check", syn, unk, shp, src("tanhsum.weft"));
    expectExit(r, 1);
    expect(r.stdout).toBe("");
    // the `,` where the right operand should be
    expect(r.stderr).toContain(`${syn}:${where(syn, "* , D", 2)}: error`);
    expect(r.stderr).toMatch(/expected an expression/);
    expect(r.stderr).toContain(`${unk}:${where(unk, "tanhh")}: error`);
    expect(r.stderr).toContain("tanhh");
    expect(r.stderr).toContain(`${shp}:${where(shp, "h + y")}: error`);
    expect(r.stderr).toContain("f32[B, D]");
    expect(r.stderr).toContain("f32[B, F]");
    // the good file contributes nothing
    expect(r.stderr).not.toContain("tanhsum.weft");
  });

  it("--json prints one array of diagnostics with code, span and message", async () => {
    const syn = src("syntax_error.weft");
    const unk = src("unknown_name.weft");
    const shp = src("shape_mismatch.weft");
    const r = await weft("check", "--json", syn, unk, shp);
    expectExit(r, 1);
    const ds = JSON.parse(r.stdout) as { code: string; severity: string; message: string; span: { file: string; line: number; col: number } }[];
    expect(Array.isArray(ds)).toBe(true);
    const errors = ds.filter((d) => d.severity === "error");
    for (const d of ds) {
      expect(d.code).toMatch(/^W\d{4}$/);
      expect(typeof d.message).toBe("string");
      expect(d.message.length).toBeGreaterThan(0);
      expect(Number.isInteger(d.span.line) && Number.isInteger(d.span.col)).toBe(true);
    }
    const at = (d: { span: { line: number; col: number } }) => `${d.span.line}:${d.span.col}`;
    for (const [file, spot] of [
      [syn, where(syn, "* , D", 2)],
      [unk, where(unk, "tanhh")],
      [shp, where(shp, "h + y")],
    ]) {
      const mine = errors.filter((d) => d.span.file === file);
      expect(mine.length, `${file}: ${JSON.stringify(ds)}`).toBeGreaterThanOrEqual(1);
      expect(at(mine[0])).toBe(spot);
    }
  });

  it("--json on a good file prints [] and exits 0", async () => {
    const r = await weft("check", "--json", src("tanhsum.weft"));
    expectExit(r, 0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it("agrees with run about an imported module that uses a dim it does not declare", async () => {
    // lib/scale_nodim.weft writes f32[.., D] without `dim D`; the importer declares D.
    // Either check rejects it (at the imported file), or run accepts it — not check
    // saying "no errors" and run then failing to compile the same program.
    const file = src("proj/undeclared_dim.weft");
    const c = await weft("check", file);
    expectNoCrash(c);
    const r = await weft("run", file, "--entry", "f", "--backend", "reference", "--inputs", '{"x": [[0.5, -1.25]]}');
    expectNoCrash(r);
    if (c.status === 0) {
      expect(r.status, `check said no errors, but run failed:\n${show(r)}`).toBe(0);
      expectClose((json(r.stdout).out as number[]), [2 * 0.5 + 2 * -1.25], 1e-12, 1e-12, "out");
    } else {
      expect(c.status).toBe(1);
      expect(c.stderr).toContain(`${src("proj/lib/scale_nodim.weft")}:`);
    }
  });
});

// =======================================================================================

describe.concurrent("weft run", () => {
  it("evaluates on the reference back end with nested-array inputs (float64, 1e-12)", async () => {
    const x = [
      [0.5, -1.25, 2],
      [0.1, 0.2, -3],
    ];
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "reference", "--inputs", JSON.stringify({ x }));
    expectExit(r, 0);
    const out = json(r.stdout);
    expect(Object.keys(out)).toEqual(["out"]);
    expectClose(out.out, tanhSum(x), 1e-12, 1e-12, "out");
  });

  it("evaluates on WebGPU with {shape, data} inputs read from a .json file, and --out x.json", async () => {
    const x = [
      [0.25, -0.75, 1.5, 3],
      [-2, 0.125, 0, 0.6],
      [1, 1, -1, -0.3],
    ];
    writeFileSync(join(CWD, "in.json"), JSON.stringify({ x: { shape: [3, 4], data: x.flat() } }));
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "webgpu", "--inputs", "in.json", "--out", "x.json");
    expectExit(r, 0);
    expect(r.stdout.trim()).toBe("");
    const out = json(readFileSync(join(CWD, "x.json"), "utf8"));
    expectClose(out.out, tanhSum(x), 1e-5, 1e-6, "out");
  });

  it("builds a block parameter from --params (names = parameter paths), reads --inputs from .safetensors, writes --out .safetensors", async () => {
    const params = writeParams("lin.safetensors", { "m.w": { shape: [3, 2], data: W.flat() }, "m.b": { shape: [2], data: Bv } });
    const inputs = writeParams("x.safetensors", { x: { shape: [2, 3], data: XL.flat() } });
    const r = await weft("run", src("linear.weft"), "--entry", "g", "--backend", "reference", "--params", params, "--inputs", inputs, "--out", "y.safetensors");
    expectExit(r, 0);
    const t = decodeSafetensors(readFileSync(join(CWD, "y.safetensors")));
    expect([...t.keys()]).toEqual(["out"]);
    const out = t.get("out")!;
    expect(out.dtype).toBe("F32");
    expect(out.shape).toEqual([2, 2]);
    const expected = affine(XL, W, Bv).flat().map(Math.tanh);
    // the file holds f32: compare to f32 rounding
    expectClose(Array.from(out.data as Float32Array), expected, 2 ** -23, 1e-12, "out");
  });

  it("the same block fn on WebGPU matches plain JS within 1e-5", async () => {
    const params = writeParams("lin2.safetensors", { "m.w": { shape: [3, 2], data: W.flat() }, "m.b": { shape: [2], data: Bv } });
    const r = await weft("run", src("linear.weft"), "--entry", "g", "--backend", "webgpu", "--params", params, "--inputs", JSON.stringify({ x: XL }));
    expectExit(r, 0);
    const out = json(r.stdout).out as number[][];
    expect(out.map((row) => row.length)).toEqual([2, 2]);
    expectClose(out.flat(), affine(XL, W, Bv).flat().map(Math.tanh), 1e-5, 1e-6, "out");
  });

  it("without --params, a block's weights are the seeded initial values (glorot w, zero b)", async () => {
    const r = await weft("run", src("linear.weft"), "--entry", "g", "--backend", "reference", "--seed", "5", "--inputs", JSON.stringify({ x: XL }));
    expectExit(r, 0);
    const w = Array.from(initialValues({ kind: "glorot" }, [3, 2], 5, "m.w"));
    const w2 = [w.slice(0, 2), w.slice(2, 4), w.slice(4, 6)];
    const out = json(r.stdout).out as number[][];
    expectClose(out.flat(), affine(XL, w2, [0, 0]).flat().map(Math.tanh), 1e-12, 1e-12, "out");
  });

  it("handles a dim of size 1 (D = 1) like any other size", async () => {
    // f(x) = sum(tanh(x) * 2.0, D) with x: f32[2, 1]
    const x = [[0.5], [-1.5]];
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "reference", "--inputs", JSON.stringify({ x }));
    expectExit(r, 0);
    expectClose(json(r.stdout).out, tanhSum(x), 1e-12, 1e-12, "out");
  });

  it("a missing input exits 1 with a located message naming it", async () => {
    const file = src("tanhsum.weft");
    const r = await weft("run", file, "--entry", "f", "--backend", "reference", "--inputs", "{}");
    expectExit(r, 1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: error`));
    expect(r.stderr).toContain("'x'");
  });

  it("an input of the wrong shape exits 1 with a located message naming the expected and the found shape", async () => {
    const file = src("linear.weft");
    const r = await weft("run", file, "--entry", "g", "--backend", "reference", "--inputs", JSON.stringify({ x: { shape: [2, 2], data: [1, 2, 3, 4] } }));
    expectExit(r, 1);
    const line = where(file, "fn g(").split(":")[0];
    expect(r.stderr).toContain(`${file}:${line}:`);
    expect(r.stderr).toMatch(/expected [^\n]*I=3/);
    expect(r.stderr).toMatch(/found f32\[2, 2\]/);
  });

  it("malformed JSON in --inputs exits 1", async () => {
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "reference", "--inputs", '{"x": [[1, 2]');
    expectExit(r, 1);
    expect(r.stderr).toMatch(/invalid JSON/i);
  });

  it("--params without a tensor the model needs exits 1, naming the tensor", async () => {
    const params = writeParams("partial.safetensors", { "m.w": { shape: [3, 2], data: W.flat() } });
    const r = await weft("run", src("linear.weft"), "--entry", "g", "--backend", "reference", "--params", params, "--inputs", JSON.stringify({ x: XL }));
    expectExit(r, 1);
    expect(r.stderr).toContain("'m.b'");
    expect(r.stderr).toContain("partial.safetensors");
  });

  it("--out into a folder that does not exist exits 1 with a message naming the path (not an internal error)", async () => {
    const r = await weft("run", src("tanhsum.weft"), "--entry", "f", "--backend", "reference", "--inputs", '{"x": [[0.5, 1]]}', "--out", "no/such/dir/y.json");
    expectExit(r, 1);
    expect(r.stderr).toContain("no/such/dir");
  });

  it("--params with a tensor of the wrong shape exits 1, naming it and both shapes", async () => {
    const params = writeParams("transposed.safetensors", { "m.w": { shape: [2, 3], data: W.flat() }, "m.b": { shape: [2], data: Bv } });
    const r = await weft("run", src("linear.weft"), "--entry", "g", "--backend", "reference", "--params", params, "--inputs", JSON.stringify({ x: XL }));
    expectExit(r, 1);
    expect(r.stderr).toContain("'m.w'");
    expect(r.stderr).toContain("[2, 3]");
    expect(r.stderr).toContain("[3, 2]");
  });
});

// =======================================================================================

describe.concurrent("weft grad", () => {
  const { gx, gw, gb, z } = lossAndGrads(XL, W, Bv);

  it("the test's inputs put some pre-activations below zero (so relu's cut-off is exercised)", async () => {
    expect(z.flat().some((v) => v < -0.1)).toBe(true);
    expect(z.flat().some((v) => v > 0.1)).toBe(true);
  });

  for (const [backend, rel, abs] of [
    ["reference", 1e-12, 1e-12],
    ["webgpu", 1e-5, 1e-6],
  ] as const) {
    it(`--wrt x,m.w,m.b of mean(relu(x @ m.w + m.b) ** 2) matches the analytic gradient (${backend})`, async () => {
      const params = writeParams(`grad-${backend}.safetensors`, { "m.w": { shape: [3, 2], data: W.flat() }, "m.b": { shape: [2], data: Bv } });
      const r = await weft("grad", src("linear.weft"), "--entry", "loss", "--wrt", "x,m.w,m.b", "--backend", backend, "--params", params, "--inputs", JSON.stringify({ x: XL }));
      expectExit(r, 0);
      const out = json(r.stdout) as Record<string, number[][] | number[]>;
      expect(Object.keys(out).sort()).toEqual(["m.b", "m.w", "x"]);
      expect((out.x as number[][]).map((row) => row.length)).toEqual([3, 3]);
      expect((out["m.w"] as number[][]).map((row) => row.length)).toEqual([2, 2, 2]);
      expectClose((out.x as number[][]).flat(), gx.flat(), rel, abs, "grad x");
      expectClose((out["m.w"] as number[][]).flat(), gw.flat(), rel, abs, "grad m.w");
      expectClose(out["m.b"] as number[], gb, rel, abs, "grad m.b");
    });
  }

  it("of a fn that does not return a scalar exits 1 with a located message", async () => {
    const file = src("linear.weft");
    const r = await weft("grad", file, "--entry", "g", "--wrt", "x", "--backend", "reference", "--inputs", JSON.stringify({ x: XL }));
    expectExit(r, 1);
    expect(r.stderr).toContain(`${file}:`);
    expect(r.stderr).toMatch(/scalar/);
  });
});

// =======================================================================================

interface Metric {
  step: number;
  loss: number;
}

function printedLosses(stdout: string): { step: number; loss: number }[] {
  return [...stdout.matchAll(/^step\s+(\d+)\/\d+\s+loss\s+([-\d.eE+]+)/gm)].map((m) => ({ step: Number(m[1]) - 1, loss: Number(m[2]) }));
}

function readMetrics(dir: string): Metric[] {
  const text = readFileSync(join(dir, "metrics.jsonl"), "utf8");
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => json(l) as unknown as Metric);
}

function expectMlpParams(dir: string, meta: Record<string, string>): void {
  const bytes = readFileSync(join(dir, "params.safetensors"));
  const t = decodeSafetensors(bytes);
  expect([...t.keys()].sort()).toEqual(["model.hidden.b", "model.hidden.w", "model.out.b", "model.out.w"]);
  const shapes: Record<string, number[]> = { "model.hidden.w": [2, 64], "model.hidden.b": [64], "model.out.w": [64, 3], "model.out.b": [3] };
  for (const [name, shape] of Object.entries(shapes)) {
    const x = t.get(name)!;
    expect(x.dtype, name).toBe("F32");
    expect(x.shape, name).toEqual(shape);
    expect(Array.from(x.data as Float32Array).every(Number.isFinite), name).toBe(true);
  }
  // the biases start at zero: training moved them
  expect(Array.from(t.get("model.out.b")!.data as Float32Array).some((v) => v !== 0)).toBe(true);
  expect(safetensorsMetadata(bytes)).toMatchObject(meta);
}

describe("weft train", () => {
  let gpuMetrics: Metric[] = [];

  it("trains the MLP example on WebGPU from another cwd: falling loss, params named by path, metrics.jsonl", async () => {
    const r = await weft("train", join(MLP, "mlp.weft"), "--steps", "60", "--out", "run-gpu", "--seed", "1", "--backend", "webgpu");
    expectExit(r, 0);
    const printed = printedLosses(r.stdout);
    expect(printed.length).toBeGreaterThanOrEqual(10);
    expect(printed[0].step).toBe(0);
    expect(printed[printed.length - 1].step).toBe(59);
    expect(printed[printed.length - 1].loss).toBeLessThan(0.8 * printed[0].loss);
    // --out is relative to the cwd
    const dir = join(CWD, "run-gpu");
    expectMlpParams(dir, { job: "spirals", steps: "60", seed: "1" });
    gpuMetrics = readMetrics(dir);
    expect(gpuMetrics.map((m) => m.step)).toEqual(printed.map((p) => p.step));
    gpuMetrics.forEach((m, i) => expect(Math.abs(m.loss - printed[i].loss)).toBeLessThanOrEqual(5e-5 + 1e-12));
    expect(existsSync(join(MLP, "run-gpu"))).toBe(false);
  });

  it("trains on --backend reference too, with the same losses as WebGPU at the same steps", async () => {
    const r = await weft("train", join(MLP, "mlp.weft"), "--steps", "10", "--out", "run-ref", "--seed", "1", "--backend", "reference", "--log-every", "1");
    expectExit(r, 0);
    expect(r.stdout).toContain("reference");
    const dir = join(CWD, "run-ref");
    expectMlpParams(dir, { job: "spirals", steps: "10", seed: "1" });
    const m = readMetrics(dir);
    expect(m.map((x) => x.step)).toEqual([...Array(10).keys()]);
    expect(m[9].loss).toBeLessThan(0.8 * m[0].loss);
    // the WebGPU run (same seed, same batches) logged every 3rd step
    expect(gpuMetrics.length, "the WebGPU train test ran first").toBeGreaterThan(0);
    let compared = 0;
    for (const g of gpuMetrics.filter((x) => x.step < 10)) {
      const ref = m.find((x) => x.step === g.step)!;
      expect(Math.abs(g.loss - ref.loss) / ref.loss, `step ${g.step}`).toBeLessThan(1e-3);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(3);
  });

  it("--out naming an existing file (not a folder) exits 1 with a message naming it (not an internal error)", async () => {
    writeFileSync(join(CWD, "not-a-dir"), "");
    const r = await weft("train", join(MLP, "mlp.weft"), "--steps", "1", "--out", "not-a-dir", "--backend", "reference");
    expectExit(r, 1);
    expect(r.stderr).toContain("not-a-dir");
  });

  it("a job whose data file is missing exits 1, naming the file (resolved against the .weft file)", async () => {
    const file = join(MLP, "missing_data.weft");
    writeFileSync(file, readFileSync(join(MLP, "mlp.weft"), "utf8").replace('jsonl("train.jsonl")', 'jsonl("no_such.jsonl")'));
    const r = await weft("train", file, "--steps", "2", "--out", "run-missing", "--backend", "reference");
    expectExit(r, 1);
    expect(r.stderr).toContain(join(MLP, "no_such.jsonl"));
    expect(existsSync(join(CWD, "run-missing", "params.safetensors"))).toBe(false);
  });

  it("a data file with a malformed line exits 1, naming file:line", async () => {
    const lines = readFileSync(join(MLP, "train.jsonl"), "utf8").split("\n").slice(0, 20);
    lines[11] = '{"x": [0.5, 0.25], "y": '; // line 12
    writeFileSync(join(MLP, "broken.jsonl"), lines.join("\n") + "\n");
    const file = join(MLP, "broken_data.weft");
    writeFileSync(file, readFileSync(join(MLP, "mlp.weft"), "utf8").replace('jsonl("train.jsonl")', 'jsonl("broken.jsonl")'));
    const r = await weft("train", file, "--steps", "2", "--out", "run-broken", "--backend", "reference");
    expectExit(r, 1);
    expect(r.stderr).toContain(`${join(MLP, "broken.jsonl")}:12`);
  });
});

// =======================================================================================

describe.concurrent("weft compile", () => {
  it("--emit wgsl prints compute kernels for a train job", async () => {
    const r = await weft("compile", join(MLP, "mlp.weft"), "--entry", "spirals", "--emit", "wgsl");
    expectExit(r, 0);
    expect(r.stdout).toContain("@compute");
    expect(r.stdout).toMatch(/@workgroup_size\(/);
    expect(r.stdout).toMatch(/@group\(0\) @binding\(0\)/);
    expect((r.stdout.match(/@compute/g) ?? []).length).toBeGreaterThan(5);
  });

  it("--emit ir prints the graph of a fn, with its output", async () => {
    const r = await weft("compile", src("tanhsum.weft"), "--entry", "f", "--emit", "ir", "--inputs", JSON.stringify({ x: [[1, 2, 3]] }));
    expectExit(r, 0);
    expect(r.stdout).toMatch(/input\(name="x"\) f32\[1, 3\]/);
    expect(r.stdout).toMatch(/tanh\(/);
    expect(r.stdout).toMatch(/sum\(.*f32\[1\]/);
    expect(r.stdout).toMatch(/-> out/);
  });

  it("--emit ir of a train job lists the optimizer's updates", async () => {
    const r = await weft("compile", join(MLP, "mlp.weft"), "--emit", "ir");
    expectExit(r, 0);
    for (const p of ["model.hidden.w", "model.hidden.b", "model.out.w", "model.out.b"]) expect(r.stdout).toMatch(new RegExp(`^update ${p.replace(/\./g, "\\.")} <- %\\d+$`, "m"));
  });

  it("--emit ast prints the program as JSON", async () => {
    const r = await weft("compile", src("linear.weft"), "--entry", "g", "--emit", "ast");
    expectExit(r, 0);
    const ast = json(r.stdout) as { kind: string; items: { kind: string; name?: { name: string } }[] };
    expect(ast.kind).toBe("program");
    const fns = ast.items.filter((i) => i.kind === "fn").map((i) => i.name?.name);
    expect(fns).toEqual(["g", "loss"]);
  });

  it("an unknown --emit exits 2", async () => {
    const r = await weft("compile", src("tanhsum.weft"), "--entry", "f", "--emit", "llvm");
    expectExit(r, 2);
    expect(r.stderr).toContain("--emit");
  });

  it("piped into a reader that has gone (`| true`), it stops quietly: no stack trace", async () => {
    const r = await sh(`'${process.execPath}' '${BIN}' compile '${join(MLP, "mlp.weft")}' --entry spirals --emit wgsl 2>compile-err.txt | true`);
    const err = readFileSync(join(CWD, "compile-err.txt"), "utf8");
    expect(r.status).toBe(0);
    expect(err, err).not.toMatch(/^\s{4}at /m);
    expect(err, err).not.toMatch(/EPIPE/);
  });
});
