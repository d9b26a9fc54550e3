// Matmul over a grid of shapes, once per tile configuration of the measured table
// (compiler/codegen/matmul.ts MATMUL_TABLE, every device class, and CPU_SUBGROUP_TABLE —
// A's rows through subgroup broadcasts, on the test device's subgroups — each forced in turn):
// 1×N, N×1 and prime sizes, batched and broadcast batches, transposed and sliced
// operands read through views (vec4 where aligned, element by element where not), and
// fused epilogues.
// Reference: the float64 interpreter; tolerance 1e-5·Σ|a||b| per element (f32 accumulation).
import { beforeAll, describe, expect, it } from "vitest";
import { compileBundle } from "../../compiler/codegen/bundle.ts";
import { broadcastLanes, CPU_SUBGROUP_TABLE, fitTile, MATMUL_TABLE, parseTile, tileName } from "../../compiler/codegen/matmul.ts";
import { Graph } from "../../compiler/ir/graph.ts";
import { mT } from "../../compiler/ops/build.ts";
import type { HostArray } from "../../runtime/backend.ts";
import { PORTABLE } from "../../runtime/profile.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import { runBoth } from "../util/both.ts";
import { randomTensor, rng } from "../util/graphs.ts";

const PRIMES = [1, 3, 7, 13, 17, 31, 61, 127];
/**
 * Shared-memory tiles (the GPU configurations) cost lavapipe's JIT seconds per kernel:
 * they run on the pairs of these primes only (with K = 1, 7, 13, 61 and 127 among them).
 */
const FEW = [1, 13, 127];

interface Case {
  name: string;
  /** the length of the dot products, for the tolerance (inputs are in [-2, 2]) */
  k: number;
}

/** The test graph: every pair (M, N) of `sizes`, K = PRIMES[(i + j) mod 8] (each K meets each M and N), and the special cases. */
function build(sizes: readonly number[]) {
  const g = new Graph();
  const feeds: Record<string, RefTensor> = {};
  const cases: Case[] = [];
  const r = rng(3);
  let n = 0;
  const input = (shape: number[]): number => {
    const name = `x${n++}`;
    const t = randomTensor(shape, r);
    t.data.set(Float32Array.from(t.data));
    feeds[name] = t;
    return g.source("input", name, { shape, dtype: "f32" });
  };
  const add = (name: string, out: number, k: number) => {
    g.output(name, out);
    cases.push({ name, k });
  };
  const matmul = (a: number, b: number) => g.add("matmul", [a, b]);
  PRIMES.forEach((M, i) =>
    PRIMES.forEach((N, j) => {
      const K = PRIMES[(i + j) % PRIMES.length];
      if (sizes.includes(M) && sizes.includes(N)) add(`[${M}, ${K}] @ [${K}, ${N}]`, matmul(input([M, K]), input([K, N])), K);
    }),
  );
  // Aligned: A and B read as vec4 along K and N; a transposed A as vec4 along M; a transposed B along K.
  add("aligned [64, 64] @ [64, 64]", matmul(input([64, 64]), input([64, 64])), 64);
  add("aligned [8, 12] @ [12, 20]", matmul(input([8, 12]), input([12, 20])), 12);
  add("transposed A, aligned: [32, 24]ᵀ @ [32, 16]", matmul(mT(g, input([32, 24])), input([32, 16])), 32);
  add("transposed B, aligned: [20, 16] @ [24, 16]ᵀ", matmul(input([20, 16]), mT(g, input([24, 16]))), 16);
  add("both transposed, odd: [13, 7]ᵀ @ [11, 13]ᵀ", matmul(mT(g, input([13, 7])), mT(g, input([11, 13]))), 13);
  add("transposed operands, batched: [2, 13, 7]ᵀ @ [2, 11, 13]ᵀ", matmul(mT(g, input([2, 13, 7])), mT(g, input([2, 11, 13]))), 13);
  // Slices: an aligned offset keeps vec4, an odd one falls back to scalar loads.
  const slice = (x: number, starts: number[], shape: number[]) => g.add("slice", [x], { starts, steps: starts.map(() => 1), shape });
  add("slice at an aligned offset: x[4:12, :16] @ [16, 8]", matmul(slice(input([16, 20]), [4, 0], [8, 16]), input([16, 8])), 16);
  add("slice at an odd offset: x[1:9, 1:13] @ [12, 8]", matmul(slice(input([10, 16]), [1, 1], [8, 12]), input([12, 8])), 12);
  // Batches
  add("batched [3, 5, 9] @ [3, 9, 6]", matmul(input([3, 5, 9]), input([3, 9, 6])), 9);
  add("batched, aligned [2, 16, 8] @ [2, 8, 12]", matmul(input([2, 16, 8]), input([2, 8, 12])), 8);
  add("broadcast batch operand", matmul(g.add("broadcast", [input([1, 6, 5])], { shape: [4, 6, 5] }), input([4, 5, 3])), 5);
  add("two batch dims, one broadcast", matmul(g.add("broadcast", [input([2, 1, 7, 8])], { shape: [2, 3, 7, 8] }), input([2, 3, 8, 4])), 8);
  // Epilogues: the elementwise consumer runs inside the matmul kernel (y is also read as vec4 by the product).
  const bias = g.add("broadcast", [input([40])], { shape: [37, 40] });
  add("epilogue relu(x @ w + b)", g.add("relu", [g.add("add", [matmul(input([37, 24]), input([24, 40])), bias])]), 24 + 1);
  const y = input([5, 33, 16]);
  add("epilogue tanh(y @ w) + y, batched", g.add("add", [g.add("tanh", [matmul(y, input([5, 16, 16]))]), y]), 16 + 1);
  return { g, feeds, cases };
}

const tiles = [...new Set([...Object.values(MATMUL_TABLE), CPU_SUBGROUP_TABLE].flatMap((rows) => rows.map((row) => row.tile)))];

describe("the tile table", () => {
  it("names valid tiles that fit the default limits", () => {
    for (const t of tiles) {
      const tile = parseTile(t);
      expect(tile, t).toBeDefined();
      expect(tileName(tile!)).toBe(t);
      expect(fitTile(tile!, 1024, 1024, PORTABLE), t).toEqual(tile);
    }
  });

  it("takes subgroup tiles only as written (one subgroup of wx lanes computing wx rows), and only for software adapters with subgroups of 8 or more", () => {
    expect(parseTile("8x1:8x4:sg")).toEqual({ wx: 8, wy: 1, tm: 8, tn: 4, tk: 0, sg: true });
    for (const bad of ["8x2:8x4:sg", "8x1:4x4:sg", "8x1:8x4:k16:sg"]) expect(parseTile(bad), bad).toBeUndefined();
    // a thread's columns shrink to a narrow product; its rows and lanes stay
    expect(fitTile(parseTile("8x1:8x4:sg")!, 3, 5, PORTABLE)).toMatchObject({ wx: 8, tm: 8, tn: 1, sg: true });
    const cpu = { ...PORTABLE, kind: "cpu" as const, features: ["subgroups"] };
    expect(broadcastLanes({ ...cpu, subgroupMinSize: 8 })).toBe(8);
    expect(broadcastLanes({ ...cpu, subgroupMinSize: 4 })).toBe(0);
    expect(broadcastLanes({ ...cpu, kind: "gpu", subgroupMinSize: 32 })).toBe(0);
    expect(broadcastLanes({ ...cpu, features: [], subgroupMinSize: 8 })).toBe(0);
  });

  it("on lavapipe-like devices: the smaller subgroup tile where the epilogue reads a tensor at every output (its JIT time)", () => {
    const lava = { ...PORTABLE, kind: "cpu" as const, features: ["subgroups"], subgroupMinSize: 8 };
    const g = new Graph();
    const x = g.source("input", "x", { shape: [16, 8], dtype: "f32" });
    const w = (name: string) => g.source("input", name, { shape: [8, 64], dtype: "f32" });
    const b = g.source("input", "b", { shape: [64], dtype: "f32" });
    const r = g.source("input", "r", { shape: [16, 64], dtype: "f32" });
    g.output("plain", g.add("matmul", [x, w("w1")]));
    g.output("bias", g.add("add", [g.add("matmul", [x, w("w2")]), g.add("broadcast", [b], { shape: [16, 64] })]));
    g.output("residual", g.add("add", [g.add("matmul", [x, w("w3")]), r]));
    g.output("one row", g.add("matmul", [g.add("slice", [x], { starts: [0, 0], steps: [1, 1], shape: [1, 8] }), w("w4")]));
    const tiles = compileBundle(g, { device: lava }).kernels.map((k) => /tile (\S+?),/.exec(k.wgsl.split("\n")[0])?.[1]);
    // (fewer rows than lanes: the table without subgroups, fitted to one row)
    expect(tiles).toEqual(["8x1:8x4:sg", "8x1:8x4:sg", "8x1:8x2:sg", "16x1:1x4"]);
  });

  it("shrinks tiles to small products and to the device's limits", () => {
    expect(fitTile(parseTile("8x8:8x4")!, 1, 1000, PORTABLE)).toMatchObject({ tm: 1, wy: 1, wx: 64 });
    const small = { ...PORTABLE, limits: { ...PORTABLE.limits, maxComputeWorkgroupStorageSize: 4096, maxComputeInvocationsPerWorkgroup: 64 } };
    const t = fitTile(parseTile("16x16:4x4:k16")!, 1024, 1024, small);
    expect(t.wx * t.wy).toBeLessThanOrEqual(64);
    expect((t.wy * t.tm + t.wx * t.tn) * t.tk * 4).toBeLessThanOrEqual(4096);
  });
});

describe.each(tiles)("matmul on the GPU, tile %s", (tile) => {
  const { g, feeds, cases } = build(parseTile(tile)!.tk ? FEW : PRIMES);
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.name), () => ({ matmulTile: tile })));
  }, 600_000);

  it("reads aligned operands as vec4 and others element by element", () => {
    const heads = compileBundle(g, { matmulTile: tile }).kernels.map((k) => k.wgsl.split("\n")[0]);
    expect(heads.find((l) => l.includes("[64×64] @ [64×64]"))).toMatch(/A vec4 along K, B vec4 along N/);
    // (a subgroup tile's lane reads one row of A: along K, vec4 or element by element)
    expect(heads.some((l) => /A vec4 along M/.test(l))).toBe(!parseTile(tile)!.sg);
    expect(heads.some((l) => /B vec4 along K/.test(l))).toBe(true);
    expect(heads.find((l) => l.includes("[8×12] @ [12×8]"))).not.toMatch(/A vec4/);
  });

  for (const c of cases) {
    it(c.name, () => {
      const w = want.get(c.name)!.data;
      const o = got.get(c.name)!;
      expect(o.length).toBe(w.length);
      // inputs are in [-2, 2]: |Σ a·b| ≤ 4K, f32 accumulation error ≲ K·2^-24·4K
      for (let i = 0; i < w.length; i++) expect(Math.abs(o[i] - w[i])).toBeLessThanOrEqual(1e-5 * 4 * c.k + 1e-6);
    });
  }
});

// Shape-generic matmuls (the default) read sizes and strides from a uniform; the suites
// above run them. Specialised kernels (every size a literal) are checked here on two tiles.
describe.each(["8x8:4x4", "16x16:4x4:k16", "8x1:8x4:sg"])("specialised matmul kernels (genericMatmul: false), tile %s", (tile) => {
  const { g, feeds, cases } = build(FEW);
  let got: Map<string, HostArray>;
  let want: Map<string, RefTensor>;
  beforeAll(async () => {
    ({ got, want } = await runBoth(g, feeds, cases.map((c) => c.name), () => ({ matmulTile: tile, genericMatmul: false })));
  }, 600_000);

  it("bakes every size into the WGSL", () => {
    const kernels = compileBundle(g, { matmulTile: tile, genericMatmul: false }).kernels;
    expect(kernels.every((k) => k.params === undefined && !k.wgsl.includes("var<uniform>"))).toBe(true);
  });

  for (const c of cases) {
    it(c.name, () => {
      const w = want.get(c.name)!.data;
      const o = got.get(c.name)!;
      for (let i = 0; i < w.length; i++) expect(Math.abs(o[i] - w[i])).toBeLessThanOrEqual(1e-5 * 4 * c.k + 1e-6);
    });
  }
});

describe("shape-generic matmul kernels", () => {
  // Two linear layers of different widths and one of a transposed weight: the first two
  // have one structure (tile, vec4 reads, a bias epilogue), the third reads B along K.
  const g = new Graph();
  const x = g.source("input", "x", { shape: [8, 64, 128], dtype: "f32" });
  const bw = (w: number) => g.add("broadcast", [w], { shape: [8, ...g.type(w).shape] });
  const lin = (w: number, b: number) => g.add("add", [g.add("matmul", [x, bw(w)]), g.add("broadcast", [b], { shape: [8, 64, g.type(w).shape[1]] })]);
  const w1 = g.source("param", "w1", { shape: [128, 128], dtype: "f32" });
  const w2 = g.source("param", "w2", { shape: [128, 512], dtype: "f32" });
  const w3 = g.source("param", "w3", { shape: [96, 128], dtype: "f32" });
  g.output("h1", lin(w1, g.source("param", "b1", { shape: [128], dtype: "f32" })));
  g.output("h2", lin(w2, g.source("param", "b2", { shape: [512], dtype: "f32" })));
  g.output("h3", g.add("matmul", [x, bw(mT(g, w3))]));
  const device = { ...PORTABLE, kind: "cpu" as const };

  it("share one shader across shapes, their sizes in params; specialised kernels do not", () => {
    const key = (wgsl: string) => wgsl.split("\n").filter((l) => !l.startsWith("//")).join("\n");
    const [k1, k2, k3] = compileBundle(g, { device }).kernels;
    expect(key(k1.wgsl)).toBe(key(k2.wgsl));
    expect(key(k3.wgsl)).not.toBe(key(k1.wgsl));
    expect(k1.params).not.toEqual(k2.params);
    expect(k1.wgsl).toContain("var<uniform> P");
    const [s1, s2] = compileBundle(g, { device, genericMatmul: false }).kernels;
    expect(key(s1.wgsl)).not.toBe(key(s2.wgsl));
  });

  it("compute each layer's own product when the pipeline is shared", async () => {
    const r = rng(11);
    const feeds: Record<string, RefTensor> = {};
    for (const name of ["x", "w1", "w2", "w3", "b1", "b2"]) {
      const t = randomTensor(g.type(g.sources.get(name)!).shape, r);
      t.data.set(Float32Array.from(t.data));
      feeds[name] = t;
    }
    const { got, want } = await runBoth(g, feeds, ["h1", "h2", "h3"], () => ({ device }));
    for (const name of ["h1", "h2", "h3"]) {
      const w = want.get(name)!.data;
      const o = got.get(name)!;
      expect(o.length).toBe(w.length);
      for (let i = 0; i < w.length; i++) expect(Math.abs(o[i] - w[i])).toBeLessThanOrEqual(1e-5 * 4 * 129 + 1e-6);
    }
  }, 120_000);
});
