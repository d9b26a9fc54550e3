// The splitter's parts without a device (runtime/split.ts): boxes of a flat range, ranges
// of index maps against brute force, the WGSL rewrite, and chunk plans. The runs on the
// device are in test/codegen/split.test.ts.
import { describe, expect, it } from "vitest";
import type { Footprint, IndexStep, KernelSpec } from "../../runtime/bundle.ts";
import { accessRange, boxesOf, chunkedWgsl, planChunks } from "../../runtime/split.ts";
import { rng } from "../util/graphs.ts";

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const rowStrides = (s: readonly number[]) => s.map((_, i) => numel(s.slice(i + 1)));
const unflat = (f: number, s: readonly number[]) => s.map((d, i) => Math.floor(f / numel(s.slice(i + 1))) % d);
/** The result of a step at a multi-index (one axis: a number; several: an array). */
const apply = (st: IndexStep, x: number[]): number[] => ("axes" in st ? st.axes : [st]).map((r) => r.offset + r.strides.reduce((a, s, i) => a + s * x[i], 0));

describe("boxes of a flat range", () => {
  it("cover the range exactly, at most two per axis", () => {
    const r = rng(1);
    for (let t = 0; t < 300; t++) {
      const shape = Array.from({ length: 1 + Math.floor(r() * 4) }, () => 1 + Math.floor(r() * 6));
      const n = numel(shape);
      const a = Math.floor(r() * n);
      const b = a + Math.floor(r() * (n - a));
      const boxes = boxesOf(a, b, shape);
      expect(boxes.length).toBeLessThanOrEqual(2 * shape.length);
      const hit = new Uint8Array(n);
      for (const box of boxes) {
        const sizes = box.lo.map((lo, i) => box.hi[i] - lo + 1);
        for (let k = 0; k < numel(sizes); k++) {
          const idx = unflat(k, sizes).map((x, i) => x + box.lo[i]);
          hit[idx.reduce((acc, x, i) => acc + x * rowStrides(shape)[i], 0)]++;
        }
      }
      hit.forEach((h, f) => expect(h, `${f} in [${a}, ${b}] of [${shape}]`).toBe(f >= a && f <= b ? 1 : 0));
    }
  });
});

describe("what a range of items touches", () => {
  it("one view: exactly the least and the greatest element (brute force)", () => {
    const r = rng(2);
    for (let t = 0; t < 200; t++) {
      const space = Array.from({ length: 1 + Math.floor(r() * 3) }, () => 1 + Math.floor(r() * 7));
      const view = { shape: space, strides: space.map(() => Math.floor(r() * 40)), offset: Math.floor(r() * 10) };
      const fp: Footprint = { space, per: 1, access: [] };
      const n = numel(space);
      const a = Math.floor(r() * n);
      const b = a + 1 + Math.floor(r() * (n - a));
      const values = Array.from({ length: b - a }, (_, k) => apply(view, unflat(a + k, space))[0]);
      expect(accessRange(fp, { steps: [view] }, a, b)).toEqual([Math.min(...values), Math.max(...values)]);
    }
  });

  it("chains (a transpose read through a reshape, a tile of a matmul): a range holding every element touched", () => {
    const r = rng(3);
    for (let t = 0; t < 100; t++) {
      // items [M/4, 4] × inner K: rows of a tile, then a transposed [K, M] matrix read as [M, K]
      const M = 4 * (1 + Math.floor(r() * 5));
      const K = 1 + Math.floor(r() * 9);
      const tile: IndexStep = { shape: [M / 4, 4, K], axes: [{ strides: [4, 1, 0], offset: 0 }, { strides: [0, 0, 1], offset: 0 }] };
      const view: IndexStep = { shape: [M, K], strides: [1, M], offset: 0 };
      const fp: Footprint = { space: [M / 4, 4], per: 1, access: [] };
      const a = Math.floor(r() * M);
      const b = a + 1 + Math.floor(r() * (M - a));
      const touched: number[] = [];
      for (let item = a; item < b; item++) for (let k = 0; k < K; k++) touched.push(apply(view, apply(tile, [...unflat(item, fp.space), k]))[0]);
      const [lo, hi] = accessRange(fp, { steps: [tile, view] }, a, b)!;
      expect(lo).toBeLessThanOrEqual(Math.min(...touched));
      expect(hi).toBeGreaterThanOrEqual(Math.max(...touched));
      // rows of the transposed matrix are columns: exact here (a box maps to a box)
      expect([lo, hi]).toEqual([Math.min(...touched), Math.max(...touched)]);
    }
  });

  it("items outside an access's own range touch nothing", () => {
    const fp: Footprint = { space: [100], per: 1, access: [] };
    const piece = { steps: [{ shape: [100], strides: [1], offset: -60 }, { shape: [40], strides: [2], offset: 5 }], items: [60, 100] as const };
    expect(accessRange(fp, piece, 0, 60)).toBeNull();
    expect(accessRange(fp, piece, 50, 70)).toEqual([5, 5 + 2 * 9]);
  });
});

const ADD = `@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= 1000u) { return; }
  // in0[i] in a comment stays
  out[i] = in0[u32(in1[i / 4u].x) + in0[i]] + in1 [i / 4u].y;
}
`;

describe("one shader for every chunk", () => {
  it("reads its chunk from a uniform, sees the whole launch's ids, and rebases every storage index", () => {
    const w = chunkedWgsl(ADD, 3, [16, 1, 1]);
    expect(typeof w).toBe("string");
    const text = w as string;
    expect(text).toContain("@group(0) @binding(3) var<uniform> weft_chunk: array<vec4<u32>, 2>;");
    expect(text).toContain("fn main(@builtin(workgroup_id) weft_wid: vec3<u32>, @builtin(num_workgroups) weft_groups: vec3<u32>, @builtin(local_invocation_id) weft_lid: vec3<u32>) {");
    expect(text).toContain("  if (weft_w >= weft_chunk[0].y) { return; }");
    expect(text).toContain("  let groups = vec3<u32>(16u, 1u, 1u);");
    expect(text).toContain("  let gid = vec3<u32>(weft_whole_wid.x * 64u + weft_lid.x, weft_whole_wid.y * 1u + weft_lid.y, weft_lid.z);");
    expect(text).toContain(
      "  out[(i) - weft_chunk[1].x] = in0[(u32(in1[(i / 4u) - weft_chunk[0].w].x) + in0[(i) - weft_chunk[0].z]) - weft_chunk[0].z] + in1[(i / 4u) - weft_chunk[0].w].y;",
    );
    expect(text).toContain("// in0[i] in a comment stays");
  });

  it("refuses what it cannot follow", () => {
    expect(chunkedWgsl(ADD.replace("if (i >= 1000u)", "if (i >= arrayLength(&out))"), 3, [16, 1, 1])).toEqual({ error: "it takes the address of the whole array out" });
    expect(chunkedWgsl(ADD, 3, [16, 1, 2])).toEqual({ error: "its grid is 3-D" });
    expect(chunkedWgsl(ADD.replace("array<f32>;", "array<mat2x2<f32>>;"), 3, [16, 1, 1])).toEqual({ error: "binding 0 is an array of mat2x2<f32>, which the splitter does not know" });
  });
});

describe("chunk plans", () => {
  // out[i] = in0[i] over 10,000 elements, 64 per workgroup; in1 is read whole
  const kernel = (round?: number): KernelSpec => ({
    name: "k",
    wgsl: ADD.replace("array<vec4<f32>>", "array<f32>"),
    bindings: [0, 1, 2],
    readOnly: 2,
    workgroups: [157, 1, 1],
    footprint: {
      space: [10000],
      per: 64,
      access: [[{ steps: [{ shape: [10000], strides: [1], offset: 0 }] }], ["whole"], [{ steps: [{ shape: [10000], strides: [1], offset: 0 }] }]],
      ...(round ? { round } : {}),
    },
  });

  it("as few chunks as fit, in order, at aligned offsets, each binding within the limit", () => {
    const plan = planChunks(kernel(), [40000, 1000, 40000], 8192);
    if ("failure" in plan) throw new Error(plan.failure.why);
    // 8,192 bytes: 2,048 elements, 32 workgroups
    expect(plan.chunks.map((c) => [c.first, c.end])).toEqual([[0, 32], [32, 64], [64, 96], [96, 128], [128, 157]]);
    expect(plan.chunks[1].ranges).toEqual([[8192, 8192], [0, 1000], [8192, 8192]]);
    expect(plan.chunks[4].ranges).toEqual([[32768, 7232], [0, 1000], [32768, 7232]]);
    expect(plan.chunks[4].bases).toEqual([8192, 0, 8192]);
  });

  it("at most a round per chunk for a kernel that adds into its outputs", () => {
    const plan = planChunks(kernel(10), [40000, 1000, 40000], 1 << 20);
    if ("failure" in plan) throw new Error(plan.failure.why);
    expect(plan.chunks.every((c) => c.end - c.first <= 10)).toBe(true);
    expect(plan.chunks.length).toBe(16);
  });

  it("fails naming the binding one workgroup alone overflows, and why", () => {
    expect(planChunks(kernel(), [40000, 10000, 40000], 8192)).toEqual({
      failure: { binding: 1, need: 10000, why: "it is read at places the kernel does not describe, so it is bound whole" },
    });
    expect(planChunks(kernel(), [40000, 1000, 40000], 200)).toMatchObject({ failure: { binding: 0, why: expect.stringContaining("one workgroup alone touches 256 bytes") } });
  });
});
