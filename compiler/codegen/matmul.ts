// Batched matmul, C[..., M, N] = A[..., M, K] @ B[..., K, N], as one WGSL kernel per
// product, in one of two shapes chosen by a measured table (MATMUL_TABLE below):
//
// - register-blocked ("global"): each thread computes a tm×tn block of C reading A and B
//   straight from global memory, so every loaded element of A is used tn times and every
//   element of B tm times. Fastest on software adapters (DEVICE-NOTES item 4).
// - shared-memory tiles: a workgroup computes a (wy·tm)×(wx·tn) tile of C; its threads
//   first copy a K-slice of A and B into workgroup memory together, then each reads
//   its operands from there. What makes matmul fast on hardware GPUs.
//
// Operands are read through their views: a transposed or broadcast operand costs no
// copy. Where an operand's view is contiguous along K or along its free dim and
// 16-byte aligned, it is read as vec4 (four elements per load); else element by element.
// Edge tiles clamp their loads and guard their stores, so any M, N, K works. The
// fused epilogue (bias, activation, residual…) is rendered per output element.
//
// f16 operands: every load converts to f32 where it happens (vec4<f16> → vec4<f32>), so
// the products (exact in f32: two 11-bit significands) accumulate in f32 registers and
// shared tiles stay f32; the result is rounded to f16 once, before the epilogue reads it
// or the store. vec4 loads work for f16 as for f32: the rules are in elements (a
// vec4<f16> is 8 bytes, and an index a multiple of 4 elements keeps it 8-byte aligned).
import type { DType, KernelSpec } from "../../runtime/bundle.ts";
import type { DeviceProfile } from "../../runtime/profile.ts";
import type { Node } from "../ir/graph.ts";
import { numel } from "../ir/graph.ts";
import type { View } from "../kernel/view.ts";
import type { KernelArgs } from "../ops/registry.ts";
import { Bindings, groupGrid, offsetExpr, store, u, unflatten } from "./wgsl.ts";
import { Renderer } from "./render.ts";
import { DEFAULT_TARGET, type Target } from "./target.ts";
import { contiguous, isContiguous } from "../kernel/view.ts";
import { affine, fitsBindingLimit } from "./footprint.ts";

export interface Epilogue {
  /** the value stored for the output element at `idx`, given the accumulator's variable */
  /**
   * `at`: the output element's flat offset (WGSL). Operands read at the output's own
   * elements (an in-place parameter, a residual) use it, so that they need no sizes of
   * their own and matmuls over other shapes keep one shader.
   */
  render(r: Renderer, idx: readonly string[], acc: string, at: string): string;
  dtype: DType;
  /**
   * It reads a tensor at every output element (a residual, a parameter updated in place),
   * not only per row or column (a bias): rendered once per output of a thread's block, so
   * a bigger block costs the shader's compile in proportion (chooseTile).
   */
  perElement?: boolean;
}

/** How a matmul kernel divides its work. */
export interface MatmulTile {
  /** threads per workgroup along N (x) and along M (y) */
  readonly wx: number;
  readonly wy: number;
  /** outputs per thread along M and along N */
  readonly tm: number;
  readonly tn: number;
  /** depth along K of the workgroup's shared-memory tiles; 0: no shared memory (register-blocked) */
  readonly tk: number;
  /**
   * Register-blocked with A's rows shared through subgroup broadcasts: the workgroup is
   * one subgroup of wx lanes (wy = 1) computing tm = wx rows; lane l loads row l of the
   * block and every lane takes each row from its owner (subgroupBroadcast), so a thread
   * loads one row of A instead of tm. Needs subgroups of at least wx lanes.
   */
  readonly sg?: boolean;
}

/**
 * "8x8:8x4" (workgroup wx×wy, thread block tm×tn), "16x16:4x4:k16" (shared tiles of
 * depth 16) or "8x1:8x4:sg" (A's rows shared by subgroup broadcasts; wy 1, tm = wx).
 */
export function tileName(t: MatmulTile): string {
  return `${t.wx}x${t.wy}:${t.tm}x${t.tn}${t.tk ? `:k${t.tk}` : ""}${t.sg ? ":sg" : ""}`;
}

export function parseTile(s: string): MatmulTile | undefined {
  const m = /^(\d+)x(\d+):(\d+)x(\d+)(?::k(\d+))?(:sg)?$/.exec(s.trim());
  if (!m) return undefined;
  const [wx, wy, tm, tn, tk] = [m[1], m[2], m[3], m[4], m[5] ?? "0"].map(Number);
  if ([wx, wy, tm, tn].some((v) => v < 1 || v > 256) || tk > 256 || (tk > 0 && tk % 4 !== 0)) return undefined;
  if (m[6]) return wy === 1 && tm === wx && tk === 0 ? { wx, wy, tm, tn, tk, sg: true } : undefined;
  return { wx, wy, tm, tn, tk };
}

/**
 * The measured choices per device class, by output elements per kernel (batch·M·N, which
 * sets how many workgroups can run at once): the first row whose `upTo` is at least that
 * applies. Numbers are GFLOP/s on square n×n products, medians of interleaved rounds,
 * with bench/wgsl.ts (the hand-written register-blocked kernel) as "hand".
 * Override with the compile option `matmulTile` or WEFT_MATMUL_TILE=8x8:8x4.
 */
export const MATMUL_TABLE: Record<DeviceProfile["kind"], { upTo: number; tile: string }[]> = {
  // lavapipe (Mesa 25.0.7, LLVM 15, 2 vCPUs shared with other jobs), wall clock:
  //            8x8:8x4  8x8:4x8  8x8:4x4  16x16:8x4  8x8:8x8  16x16:4x4:k16  hand
  //   256        7.98     7.41     6.93     7.19      5.87       1.28        5.17
  //   512        7.28     6.75     5.70     5.04      3.54       1.67        5.71
  //   1024       7.26     6.52     5.69     6.85      4.67       1.71        3.90
  // On a quieter machine 8x8:8x4 made 9.4 / 8.8 / 10.2 against the hand kernel's 8.4 /
  // 7.7 / 8.9 (1.13–1.17× paired), and 12.7–17.9 idle (1.2–1.4×). 8x8:4x8 ties at these
  // sizes and wins where A cannot be read as vec4 (257×129×300: 8.4 against 6.0), loses
  // at 128 (6.2 against 8.0). Shared-memory tiles are 3–4× slower here (DEVICE-NOTES).
  // But lavapipe JITs each shader at its first dispatch, and 8x8:8x4 (32 accumulators,
  // vec4 loads, unrolled) costs about 3× the JIT time of 8x8:4x4: the transformer block's
  // time to first step (bench ttfs, ~20 matmul kernels) was 25.9–26.8 s with 8x8:8x4
  // everywhere and 8.9 s with 8x8:4x4. Up to 512² outputs, where a program holds many
  // small matmuls, the faster JIT is worth more than 8x8:8x4's 13–22% of throughput.
  // (Where the adapter has subgroups of 8 or more lanes, CPU_SUBGROUP_TABLE below applies.)
  cpu: [
    { upTo: 512 * 512, tile: "8x8:4x4" },
    { upTo: Infinity, tile: "8x8:8x4" },
  ],
  // NVIDIA H200 through dawn-node's Vulkan back end (driver 580.159), GPU timestamps.
  // Shared-memory tiles win from 256 up; the small 32×32 tile keeps enough workgroups
  // busy up to 512², the 64×64 one to 1024², the 64×128 one (8×8 per thread) beyond:
  //            8x8:4x4:k16  16x16:4x4:k16  16x8:8x8:k16  8x8:8x4 (register-blocked)  hand
  //   256          2926          1932           1125           923                   931
  //   512         11543          8192           4508          3809                  3828
  //   1000        16954         21193          16954         12931                     —
  //   1024        18382         21533          18382         13703                 13957
  //   2048        19661         23831          28087         20696                 19181
  //   4096        20902         24867          29127         19784                 27594
  // (5 rounds each; a second session reproduced the choices' 2926 / 11543 / 21533 / 27118.)
  gpu: [
    { upTo: 512 * 512, tile: "8x8:4x4:k16" },
    { upTo: 1024 * 1024, tile: "16x16:4x4:k16" },
    { upTo: Infinity, tile: "16x8:8x8:k16" },
  ],
  // nothing known about the device: register blocking from global memory, correct and
  // about as fast as the hand-written kernel everywhere (1.6–3× behind the shared tiles
  // on the H200 up to 1024, the best choice on lavapipe)
  unknown: [{ upTo: Infinity, tile: "8x8:8x4" }],
};

/**
 * Software adapters with subgroups of at least 8 lanes (lavapipe: 8, one AVX2 vector):
 * A's rows through subgroup broadcasts. lavapipe loads a storage element lane by lane,
 * each with a bounds check and a branch, while a broadcast is a register shuffle, so
 * loads are what a matmul costs there: 8x1:8x4:sg loads 5 vec4 per thread and k-step of
 * 4 for 128 products, where 8x8:4x4 loads 8 for 64. (A kernel with the same FMAs and no
 * loads ran 6× faster than with them.) Measured on lavapipe (Mesa 25.0.7, 2 vCPUs), square
 * n×n, GFLOP/s after warm-up, and the first run with the shader cache off (JIT included):
 *            8x8:4x4        8x1:8x4:sg     8x1:8x8:sg     8x1:8x2:sg
 *   256     8.6 (349 ms)  17.8 (322 ms)  18.5 (662 ms)  12.7 (265 ms)
 *   512    11.8 (362 ms)  26.8 (384 ms)  25.8 (920 ms)  22.1 (254 ms)
 *   1024   14.7 (539 ms)  33.5 (489 ms)  37.1 (816 ms)  24.0 (397 ms)
 * 8x1:8x4:sg: twice the throughput of the best tile without subgroups, at no more JIT time.
 * Products with fewer than 8 rows keep MATMUL_TABLE (lanes past the rows would idle).
 */
export const CPU_SUBGROUP_TABLE: { upTo: number; tile: string }[] = [{ upTo: Infinity, tile: "8x1:8x4:sg" }];
/**
 * The subgroup tile for a matmul whose epilogue reads a tensor at every output (a
 * residual, softmax's or GELU's backward, a parameter updated in place). lavapipe compiles
 * every element access lane by lane, so a thread's block sets a shader's JIT time: over
 * the transformer block's train step (cold cache, first dispatch of each shader alone),
 * its 4 such shaders took 2.5 s at 8x1:8x4:sg and 1.2 s at 8x1:8x2:sg; its 5 others 1.5 s
 * and 0.8 s. Time to first step: 5.2–6.6 s with 8x1:8x4:sg everywhere, 3.2–3.5 s with
 * 8x1:8x2:sg everywhere, 3.9–4.3 s with this split (8x8:4x4 everywhere: 4.1 s); the step
 * itself took 38 ms with either tile everywhere. 8x1:8x2:sg still runs 1.5–1.9× 8x8:4x4.
 */
export const CPU_SUBGROUP_EPILOGUE_TILE = "8x1:8x2:sg";
const SG_LANES = 8;

/** Lanes a subgroup-broadcast matmul may assume on `device` (0: none): software adapters whose subgroups are never smaller. */
export function broadcastLanes(device: DeviceProfile): number {
  return device.kind === "cpu" && device.features.includes("subgroups") && (device.subgroupMinSize ?? 0) >= SG_LANES ? SG_LANES : 0;
}

const envTile = (): string | undefined => (typeof process !== "undefined" ? process.env?.WEFT_MATMUL_TILE : undefined) || undefined;

/** The tile for `batch` M×N products on `target`, shrunk to the problem and fitted to the device's limits. */
export function chooseTile(target: Target, M: number, N: number, batch = 1, perElement = false): MatmulTile {
  const forced = target.matmulTile ?? envTile();
  let t: MatmulTile | undefined;
  if (forced) {
    t = parseTile(forced);
    // a user's setting (WEFT_MATMUL_TILE, or the compile option): an error that says what is expected
    if (!t) throw new Error(`matmul tile "${forced}": expected WxH:TMxTN, WxH:TMxTN:kD with D a multiple of 4, or Wx1:WxTN:sg (e.g. 8x8:8x4, 16x16:4x4:k16, 8x1:8x4:sg)`);
  } else {
    const sg = broadcastLanes(target.device) > 0 && M >= SG_LANES;
    const rows = sg ? CPU_SUBGROUP_TABLE : MATMUL_TABLE[target.device.kind];
    t = parseTile(sg && perElement ? CPU_SUBGROUP_EPILOGUE_TILE : (rows.find((r) => batch * M * N <= r.upTo) ?? rows[rows.length - 1]).tile)!;
  }
  return fitTile(t, M, N, target.device);
}

const pow2ceil = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Shrinks a tile for small products (no thread computes rows or columns that do not
 * exist, idle threads move to the other axis) and to the device's limits on workgroup
 * size and workgroup memory.
 */
export function fitTile(t: MatmulTile, M: number, N: number, device: DeviceProfile): MatmulTile {
  // (a subgroup tile keeps its lanes and rows; a thread's columns shrink to the product's)
  const share = (block: number, D: number, w: number) => {
    const need = Math.ceil(D / w);
    return Math.max(1, Math.min(block, block % 4 === 0 && need >= 3 ? Math.ceil(need / 4) * 4 : need));
  };
  if (t.sg) return { ...t, tn: share(t.tn, N, t.wx) };
  let { wx, wy, tm, tn, tk } = t;
  // Rows and columns go to threads before they go to one thread's block (a block of a
  // multiple of 4 stays one from 3 up, so that vec4 loads along it stay possible).
  tm = share(tm, M, wy);
  tn = share(tn, N, wx);
  const threads = wx * wy;
  const needY = pow2ceil(Math.ceil(M / tm));
  const needX = pow2ceil(Math.ceil(N / tn));
  if (needY < wy) {
    wy = needY;
    wx = Math.min(Math.max(1, Math.floor(threads / wy)), Math.max(wx, needX));
  }
  if (needX < wx) {
    wx = needX;
    wy = Math.min(Math.max(1, Math.floor(threads / wx)), Math.max(wy, needY));
  }
  const lim = device.limits;
  while (wx * wy > lim.maxComputeInvocationsPerWorkgroup || wx > lim.maxComputeWorkgroupSizeX || wy > lim.maxComputeWorkgroupSizeY) {
    if (wx >= wy && wx > 1) wx = Math.ceil(wx / 2);
    else wy = Math.ceil(wy / 2);
  }
  while (tk > 4 && (wy * tm + wx * tn) * tk * 4 > lim.maxComputeWorkgroupStorageSize) tk /= 2;
  if (tk > 0 && (wy * tm + wx * tn) * tk * 4 > lim.maxComputeWorkgroupStorageSize) tk = 0;
  return { wx, wy, tm, tn, tk };
}

/**
 * How one operand is read: X is A (free dim M) or B (free dim N), as a [D, K] matrix
 * per batch with strides sD and sK. `vec` names the axis read four elements at a time.
 */
interface Side {
  arr: string;
  /** the WGSL of a loaded element (or vec4) as f32 (f16 operands are converted) */
  ld: (expr: string) => string;
  D: number;
  K: number;
  sD: number;
  sK: number;
  /** renders a size or stride (Bindings.int: a literal, or a uniform slot) */
  int: (n: number) => string;
  /** element offset of this batch's matrix (WGSL) */
  base: string;
  vec: "k" | "d" | null;
}

/**
 * The axis along which `view` (a [..., D, K] or [..., K, D] operand) can be read as
 * aligned vec4: stride 1 along it, a multiple of 4 long, and every other stride and the
 * offset multiples of 4 (so each vec4 starts on a 16-byte boundary).
 */
function vecAxis(view: View, dAxis: number, kAxis: number, blockD: number, tk: number): "k" | "d" | null {
  const { shape, strides } = view;
  const aligned = (skip: number) =>
    view.offset % 4 === 0 && strides.every((s, i) => i === skip || shape[i] === 1 || s % 4 === 0);
  const K = shape[kAxis];
  const D = shape[dAxis];
  if (K % 4 === 0 && strides[kAxis] === 1 && (tk === 0 || tk % 4 === 0) && aligned(kAxis)) return "k";
  if (D % 4 === 0 && blockD % 4 === 0 && strides[dAxis] === 1 && aligned(dAxis)) return "d";
  return null;
}

/**
 * `outView`: where C's elements go in `out` (strides over C's dims) when that is not C's
 * own row-major order — a matmul whose product is read transposed (attention's heads
 * merged back) stores it in the order it is read, and no copy kernel follows. Not with an
 * epilogue (its operands are indexed at the output's own element).
 */
export function matmulKernel({ name, node, inputs: [a, bOp], out, target }: KernelArgs, epilogue?: Epilogue, outView?: View): KernelSpec {
  const tgt = target ?? DEFAULT_TARGET;
  const shape = node.type.shape;
  const r = shape.length;
  const M = shape[r - 2];
  const N = shape[r - 1];
  const tile = chooseTile(tgt, M, N, numel(shape.slice(0, -2)), epilogue?.perElement === true);
  // A buffer read as vec4 and as f32 (by the epilogue) is bound twice: over the limit, read it as f32 only.
  let vec4 = true;
  if (epilogue && outView) throw new Error("matmulKernel: an epilogue stores C in its own order");
  const render = (t: MatmulTile, epi?: Epilogue, kSlice?: number) => renderMatmul(name, node, a, bOp, out, t, vec4, tgt.genericMatmul ?? true, epi, kSlice, outView);
  let spec = render(tile, epilogue);
  if (spec.bindings.length > tgt.device.limits.maxStorageBuffersPerShaderStage) {
    vec4 = false;
    spec = render(tile, epilogue);
  }
  if (fitsBindingLimit(spec, tgt)) return spec;
  // Past the binding limit a launch is split along its tiles (runtime/split.ts); where one
  // tile's reads are over the limit, or a range of tiles reads all of K of B (or of a
  // transposed A) at once: smaller tiles, and K in slices, each added into C (one slice of
  // the tiles per chunk at most, in order). A slice starts from the sums the slice before
  // it stored, so the products are added in the same order as in one launch. (Not with an
  // epilogue: the caller computes the epilogue apart.)
  const K = a.view.shape[r - 1];
  for (let t: MatmulTile | undefined = tile; t; t = smallerTile(t)) {
    if (t !== tile) {
      const s = render(t, epilogue);
      if (fitsBindingLimit(s, tgt)) return s;
    }
    if (epilogue) continue;
    const step = t.tk > 0 ? t.tk : K % 4 === 0 ? 4 : 1;
    for (let count = 2; ; count *= 2) {
      const kb = Math.ceil(Math.ceil(K / count) / step) * step;
      if (kb < K) {
        const sliced = render(t, undefined, kb);
        if (fitsBindingLimit(sliced, tgt)) return sliced;
      }
      if (kb <= step) break;
    }
  }
  return spec; // the device check says what does not fit
}

/** The tile with its larger side halved (a thread's block first, then the workgroup), or undefined at 1×1. */
function smallerTile(t: MatmulTile): MatmulTile | undefined {
  if (t.sg) return t.tn > 1 ? { ...t, tn: Math.ceil(t.tn / 2) } : { wx: t.wx, wy: 1, tm: 1, tn: 1, tk: 0 };
  const { wx, wy, tm, tn } = t;
  if (wy * tm >= wx * tn && wy * tm > 1) return tm > 1 ? { ...t, tm: Math.ceil(tm / 2) } : { ...t, wy: Math.ceil(wy / 2) };
  if (wx * tn > 1) return tn > 1 ? { ...t, tn: Math.ceil(tn / 2) } : { ...t, wx: Math.ceil(wx / 2) };
  return undefined;
}

/** An operand: its buffer, the view it is read through, and its element type. */
interface MatmulOperand {
  buffer: number;
  view: View;
  dtype: DType;
}

function renderMatmul(
  name: string,
  node: Node,
  aOp: MatmulOperand,
  bOp: MatmulOperand,
  out: number,
  tile: MatmulTile,
  vec4: boolean,
  generic: boolean,
  epilogue?: Epilogue,
  /** K in slices of this many (a multiple of the loop's step): workgroup (slice, tile) adds its slice into C */
  kSlice?: number,
  /** C's elements in `out` (default: row-major) */
  outView?: View,
): KernelSpec {
  const { buffer: aBuf, view: aView } = aOp;
  const { buffer: bBuf, view: bView } = bOp;
  const shape = node.type.shape;
  const r = shape.length;
  const M = shape[r - 2];
  const N = shape[r - 1];
  const K = aView.shape[r - 1];
  const { wx, wy, tm, tn, tk } = tile;
  const shared = tk > 0;
  const sg = tile.sg === true;
  const BM = wy * tm;
  const BN = wx * tn;
  const MT = Math.ceil(M / BM);
  const NT = Math.ceil(N / BN);
  const batchShape = shape.slice(0, -2);
  const tiles = Math.max(1, numel(batchShape) * MT * NT);
  const slices = kSlice === undefined ? 1 : Math.ceil(K / kSlice);
  const groups = tiles * slices;
  const b = new Bindings(generic);
  // The frame's sizes and strides (through `int`: uniform slots when generic); the epilogue
  // keeps its own as literals (its index arithmetic, divisions included, folds at compile time).
  const int = b.int;
  // In the register-blocked kernel a thread's rows (columns) are contiguous, so vec4
  // along the free dim needs tm (tn) a multiple of 4; in shared tiles the workgroup's are.
  // (a subgroup tile's lane loads one row of A: vec4 along K only)
  const aAxis = vec4 && K > 0 ? vecAxis(aView, r - 2, r - 1, shared ? BM : sg ? 1 : tm, tk) : null;
  const aVec = sg && aAxis === "d" ? null : aAxis;
  const bVec = vec4 && K > 0 ? vecAxis(bView, r - 1, r - 2, shared ? BN : tn, tk) : null;
  const elem = (d: DType): "f32" | "f16" => (d === "f16" ? "f16" : "f32");
  const A = aVec ? b.bindVec4(aBuf, elem(aOp.dtype)) : b.bind(aBuf, elem(aOp.dtype));
  const B = bVec ? b.bindVec4(bBuf, elem(bOp.dtype)) : b.bind(bBuf, elem(bOp.dtype));
  const loader = (d: DType, vec: boolean) => (d !== "f16" ? (x: string) => x : vec ? (x: string) => `vec4<f32>(${x})` : (x: string) => `f32(${x})`);

  const body: string[] = [];
  if (kSlice === undefined) {
    body.push("  let t = wid.x + wid.y * groups.x;");
    body.push(`  if (t >= ${int(groups)}) { return; }`);
  } else {
    body.push("  let w = wid.x + wid.y * groups.x;");
    body.push(`  if (w >= ${int(groups)}) { return; }`);
    body.push(`  let ks = w / ${int(tiles)};`, `  let t = w % ${int(tiles)};`, `  let klo = ks * ${int(kSlice)};`, `  let khi = min(klo + ${int(kSlice)}, ${int(K)});`);
  }
  body.push(`  let nt = t % ${int(NT)};`, `  let mt = (t / ${int(NT)}) % ${int(MT)};`, `  let p = t / ${int(NT * MT)};`);
  body.push(...unflatten("p", batchShape, "o", int));
  const batch = batchShape.map((_, k) => `o${k}`);
  // (the stride of a dim of size 1 is never used: 0 keeps the index arithmetic exact)
  const st = (v: View, axis: number) => (v.shape[axis] === 1 ? 0 : v.strides[axis]);
  const sa: Side = { arr: A, ld: loader(aOp.dtype, aVec !== null), D: M, K, sD: st(aView, r - 2), sK: st(aView, r - 1), int, base: "abase", vec: aVec };
  const sb: Side = { arr: B, ld: loader(bOp.dtype, bVec !== null), D: N, K, sD: st(bView, r - 1), sK: st(bView, r - 2), int, base: "bbase", vec: bVec };
  body.push(`  let abase = ${offsetExpr(aView, [...batch, "0u", "0u"], int)};`);
  body.push(`  let bbase = ${offsetExpr(bView, [...batch, "0u", "0u"], int)};`);
  if (kSlice === undefined) for (let x = 0; x < tm; x++) for (let y = 0; y < tn; y++) body.push(`  var c${x}_${y} = 0.0;`);
  const range = kSlice === undefined ? undefined : { lo: "klo", hi: "khi" };

  // The output row and column of accumulator (x, y), as WGSL.
  let row: (x: number) => string;
  let col: (y: number) => string;
  let decls = "";
  if (shared) {
    body.push(`  let m0 = mt * ${u(BM)};`, `  let n0 = nt * ${u(BN)};`);
    decls = `var<workgroup> As: array<f32, ${tk * BM}>;\nvar<workgroup> Bs: array<f32, ${tk * BN}>;\n`;
    // Threads take rows ty, ty + wy, … and columns tx, tx + wx, …: neighbours read
    // neighbouring words of the tiles (no bank conflicts) and store neighbouring outputs.
    row = (x) => `m0 + lid.y${x ? ` + ${u(x * wy)}` : ""}`;
    col = (y) => `n0 + lid.x${y ? ` + ${u(y * wx)}` : ""}`;
  } else {
    // (a subgroup tile: the workgroup's rows are one block, each lane has its columns)
    if (sg) body.push(`  let m0 = mt * ${u(tm)};`, `  let n0 = (nt * ${u(wx)} + lane) * ${u(tn)};`);
    else body.push(`  let m0 = (mt * ${u(wy)} + lid.y) * ${u(tm)};`, `  let n0 = (nt * ${u(wx)} + lid.x) * ${u(tn)};`);
    row = (x) => `m0${x ? ` + ${u(x)}` : ""}`;
    col = (y) => `n0${y ? ` + ${u(y)}` : ""}`;
  }
  // C in its own row-major order (batch p at p·M·N), or through `outView` (a permutation)
  const ov = outView ?? contiguous(shape);
  const permuted = !(ov.offset === 0 && isContiguous(ov));
  body.push(permuted ? `  let obase = ${offsetExpr(ov, [...batch, "0u", "0u"], int)};` : `  let obase = p * ${int(M * N)};`);
  if (permuted) body.push(`  let osM = ${int(st(ov, r - 2))};`, `  let osN = ${int(st(ov, r - 1))};`);
  // the product's value: an f16 matmul's is the f32 sum rounded to f16
  const outType = node.type.dtype;
  const result = (x: number, y: number) => (outType === "f16" ? `f16(c${x}_${y})` : `c${x}_${y}`);
  const guardM = M % BM !== 0;
  const guardN = N % BN !== 0;
  if (guardM) body.push(`  let rows = ${int(M)};`);
  body.push(`  let cols = ${int(N)};`);
  const outAt = (x: number, y: number) => (permuted ? `obase + (${row(x)}) * osM + (${col(y)}) * osN` : `obase + (${row(x)}) * cols + ${col(y)}`);
  const guardOf = (x: number, y: number) => [guardM ? `${row(x)} < rows` : "", guardN ? `${col(y)} < cols` : ""].filter(Boolean);
  if (kSlice !== undefined) {
    // a slice after the first continues from the sums the slices before it stored
    for (let x = 0; x < tm; x++) {
      for (let y = 0; y < tn; y++) {
        const g = ["ks > 0u", ...guardOf(x, y)];
        body.push(`  var c${x}_${y} = 0.0;`, `  if (${g.join(" && ")}) { c${x}_${y} = f32(out[${outAt(x, y)}]); }`);
      }
    }
  }
  if (shared) sharedLoop(body, sa, sb, tile, wx * wy, range);
  else globalLoop(body, sa, sb, tm, tn, range, sg);

  // The footprint: workgroup (slice,) tile reads rows of A and columns of B over its
  // slice of K (all of K), and writes its tile of C (edge tiles clamp their reads).
  const space = [...(kSlice === undefined ? [] : [slices]), ...batchShape, MT, NT];
  const lead = kSlice === undefined ? 0 : 1;
  const nb = batchShape.length;
  const KB = kSlice ?? K;
  const batchRows = batchShape.map((_, j) => ({ [lead + j]: 1 }));
  const kRow = (inner: number) => (kSlice === undefined ? { [inner]: 1 } : { 0: kSlice, [inner]: 1 });
  const aStep = affine([...space, BM, KB], [...batchRows, { [lead + nb]: BM, [space.length]: 1 }, kRow(space.length + 1)]);
  const bStep = affine([...space, KB, BN], [...batchRows, kRow(space.length), { [lead + nb + 1]: BN, [space.length + 1]: 1 }]);
  const cStep = affine([...space, BM, BN], [...batchRows, { [lead + nb]: BM, [space.length]: 1 }, { [lead + nb + 1]: BN, [space.length + 1]: 1 }]);
  if (aView.shape.length === r && bView.shape.length === r) {
    b.touch(A, { steps: [aStep, aView] });
    b.touch(B, { steps: [bStep, bView] });
  } else {
    b.touch(A, undefined);
  }
  b.touch("out", { steps: [cStep, ov] });
  const top = epilogue ? new Renderer(b, body, "  ", undefined, { steps: [cStep] }) : undefined;
  for (let x = 0; x < tm; x++) {
    for (let y = 0; y < tn; y++) {
      const guard = guardOf(x, y);
      const at = outAt(x, y);
      if (!epilogue || !top) {
        const st = `out[${at}] = ${result(x, y)};`;
        body.push(guard.length ? `  if (${guard.join(" && ")}) { ${st} }` : `  ${st}`);
        continue;
      }
      if (!guard.length) {
        // no guard: rendered in the kernel's scope, so values that depend only on the
        // row or the column (a bias) are loaded once per thread, not once per output
        body.push(`  out[${at}] = ${store(epilogue.render(top.at(shape, [...batch, row(x), col(y)], at), [...batch, row(x), col(y)], result(x, y), at), epilogue.dtype)};`);
        continue;
      }
      const lines: string[] = [];
      const rr = top.child(lines, "    ");
      const v = epilogue.render(rr.at(shape, [...batch, row(x), col(y)], at), [...batch, row(x), col(y)], result(x, y), at);
      body.push(`  if (${guard.join(" && ")}) {`, ...lines, `    out[${at}] = ${store(v, epilogue.dtype)};`, "  }");
    }
  }

  const footprint = b.footprint(space, 1, ["out"], kSlice === undefined ? undefined : tiles);
  const wgsl = [
    `// ${name}: [${M}×${K}] @ [${K}×${N}]${batchShape.length ? ` × ${numel(batchShape)}` : ""}, tile ${tileName(tile)}${aVec ? `, A vec4 along ${aVec === "k" ? "K" : "M"}` : ""}${bVec ? `, B vec4 along ${bVec === "k" ? "K" : "N"}` : ""}${kSlice !== undefined ? `, K in ${slices} slices of ${kSlice} added in order` : ""}`,
    ...(sg ? ["enable subgroups;"] : []),
    b.declare(epilogue?.dtype ?? outType),
    decls,
    `@compute @workgroup_size(${wx}, ${wy})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) groups: vec3<u32>${sg ? ", @builtin(subgroup_invocation_id) lane: u32" : ""}) {`,
    ...body,
    "}",
    "",
  ].join("\n");
  return {
    name,
    wgsl,
    bindings: [...b.ids, out],
    readOnly: b.ids.length,
    workgroups: groupGrid(groups),
    ...(b.params.length ? { params: b.params } : {}),
    ...(footprint ? { footprint } : {}),
    ...(sg ? { lanes: wx } : {}),
  };
}

const COMP = ["x", "y", "z", "w"];

/**
 * The register-blocked K loop: per step of U (4 where K allows) each thread loads tm
 * values of A and tn of B for every k and accumulates tm·tn products.
 */
function globalLoop(body: string[], sa: Side, sb: Side, tm: number, tn: number, range?: { lo: string; hi: string }, sg = false): void {
  const K = sa.K;
  const U = K % 4 === 0 ? 4 : 1;
  // Per side: per-row base offsets (clamped to the last row: edge threads compute
  // rows that are never stored), and a function giving the loaded value for (i, kk).
  const prep = (s: Side, first: string, count: number, nm: string): ((i: number, kk: number) => string) => {
    if (s.vec === "k") {
      // (base + row·sD)/4 + k/4: sD and the base are multiples of 4
      const [last, sD] = hoist(body, "  ", s, nm, ["last", s.D - 1], ["sD", s.sD]);
      for (let i = 0; i < count; i++) body.push(`  let ${nm}r${i} = (${s.base} + min(${first}${i ? ` + ${u(i)}` : ""}, ${last}) * ${sD}) / 4u;`);
      return (i, kk) => `${nm}q${i}.${COMP[kk]}`;
    }
    if (s.vec === "d") {
      const [last] = hoist(body, "  ", s, nm, ["lastq", s.D / 4 - 1]);
      for (let j = 0; j < count / 4; j++) body.push(`  let ${nm}r${j} = ${s.base} / 4u + min(${first} / 4u${j ? ` + ${u(j)}` : ""}, ${last});`);
      return (i, kk) => `${nm}q${i >> 2}_${kk}.${COMP[i & 3]}`;
    }
    const [last, sD] = hoist(body, "  ", s, nm, ["last", s.D - 1], ["sD", s.sD]);
    for (let i = 0; i < count; i++) body.push(`  let ${nm}r${i} = ${s.base} + min(${first}${i ? ` + ${u(i)}` : ""}, ${last}) * ${sD};`);
    return (i, kk) => `${nm}${i}_${kk}`;
  };
  const loads = (s: Side, count: number, nm: string, u4: number, lines: string[], ind: string) => {
    if (s.vec === "k") {
      for (let i = 0; i < count; i++) lines.push(`${ind}let ${nm}q${i} = ${s.ld(`${s.arr}[${nm}r${i} + k / 4u]`)};`);
    } else if (s.vec === "d") {
      // k·stride as a running offset plus multiples hoisted out of the loop: with the
      // stride in a uniform, products in the loop made transposed reads 40% slower on lavapipe
      for (let kk = 0; kk < u4; kk++) {
        const at = kk ? `${nm}ko + ${nm}s${kk}` : `${nm}ko`;
        for (let j = 0; j < count / 4; j++) lines.push(`${ind}let ${nm}q${j}_${kk} = ${s.ld(`${s.arr}[${nm}r${j} + ${at}]`)};`);
      }
    } else {
      for (let kk = 0; kk < u4; kk++) {
        const at = s.sK === 1 ? (kk ? `k + ${u(kk)}` : "k") : kk ? `${nm}ko + ${nm}s${kk}` : `${nm}ko`;
        for (let i = 0; i < count; i++) lines.push(`${ind}let ${nm}${i}_${kk} = ${s.ld(`${s.arr}[${nm}r${i} + ${at}]`)};`);
      }
    }
  };
  /** Sides read along K with a stride: its multiples for the unrolled steps, and the running offset `ko`. */
  const strided = (s: Side) => s.vec === "d" || (s.vec === null && s.sK !== 1);
  const stepLets = (s: Side, nm: string) => {
    const st = s.vec === "d" ? `${nm}sKq` : `${nm}sK`;
    for (let kk = 1; kk <= U; kk++) body.push(`  let ${nm}s${kk} = ${st}${kk > 1 ? ` * ${u(kk)}` : ""};`);
    body.push(`  var ${nm}ko = ${range ? `${range.lo} * ${st}` : "0u"};`);
  };
  // A subgroup tile: the lane loads row `lane` of the block; row x comes from lane x.
  const own = prep(sa, sg ? "m0 + lane" : "m0", sg ? 1 : tm, "a");
  const av = sg ? (x: number, kk: number) => (sa.vec === "k" || U === 4 ? `ab${x}.${COMP[kk]}` : `ab${x}`) : own;
  const bv = prep(sb, "n0", tn, "b");
  if (K === 0) return;
  for (const [s, nm] of [[sa, "a"], [sb, "b"]] as const) {
    if (s.vec === "d") hoist(body, "  ", s, nm, ["sKq", s.sK / 4]);
    else if (s.vec === null && s.sK !== 1) hoist(body, "  ", s, nm, ["sK", s.sK]);
    if (strided(s)) stepLets(s, nm);
  }
  if (!range) body.push(`  let kend = ${sa.int(K)};`);
  body.push(`  for (var k = ${range?.lo ?? "0u"}; k < ${range?.hi ?? "kend"}; k += ${u(U)}) {`);
  loads(sa, sg ? 1 : tm, "a", U, body, "    ");
  loads(sb, tn, "b", U, body, "    ");
  if (sg) {
    // (the lane's values of its row for this step, as one vector, handed to every lane)
    const mine = sa.vec === "k" ? own(0, 0).replace(/\.x$/, "") : U === 4 ? `vec4<f32>(${[0, 1, 2, 3].map((kk) => own(0, kk)).join(", ")})` : own(0, 0);
    for (let x = 0; x < tm; x++) body.push(`    let ab${x} = subgroupBroadcast(${mine}, ${u(x)});`);
  }
  for (let kk = 0; kk < U; kk++) {
    for (let x = 0; x < tm; x++) for (let y = 0; y < tn; y++) body.push(`    c${x}_${y} = fma(${av(x, kk)}, ${bv(y, kk)}, c${x}_${y});`);
  }
  for (const [s, nm] of [[sa, "a"], [sb, "b"]] as const) if (strided(s)) body.push(`    ${nm}ko += ${nm}s${U};`);
  body.push("  }");
}

/**
 * The shared-memory K loop: per slice of depth tk the workgroup copies A's BM×tk and
 * B's tk×BN block into workgroup memory (stored k-major: Xs[kk·BD + d]), waits, and
 * each thread accumulates its tm×tn products from there.
 */
function sharedLoop(body: string[], sa: Side, sb: Side, tile: MatmulTile, threads: number, range?: { lo: string; hi: string }): void {
  const { wx, wy, tm, tn, tk } = tile;
  const K = sa.K;
  if (K === 0) return;
  const ka = loadSizes(body, sa, "a", tk);
  const kb = loadSizes(body, sb, "b", tk);
  body.push(`  for (var k0 = ${range?.lo ?? "0u"}; k0 < ${range?.hi ?? sa.int(K)}; k0 += ${u(tk)}) {`);
  cooperativeLoad(body, sa, ka, "As", wy * tm, tk, threads, "m0");
  cooperativeLoad(body, sb, kb, "Bs", wx * tn, tk, threads, "n0");
  body.push("    workgroupBarrier();");
  body.push(`    for (var kk = 0u; kk < ${u(tk)}; kk++) {`);
  for (let x = 0; x < tm; x++) body.push(`      let a${x} = As[kk * ${u(wy * tm)} + lid.y${x ? ` + ${u(x * wy)}` : ""}];`);
  for (let y = 0; y < tn; y++) body.push(`      let b${y} = Bs[kk * ${u(wx * tn)} + lid.x${y ? ` + ${u(y * wx)}` : ""}];`);
  for (let x = 0; x < tm; x++) for (let y = 0; y < tn; y++) body.push(`      c${x}_${y} = fma(a${x}, b${y}, c${x}_${y});`);
  body.push("    }");
  body.push("    workgroupBarrier();");
  body.push("  }");
}

/**
 * Lines copying the BD×tk block of side `s` starting at free index `d0` and k0 into
 * `dst` (k-major). Consecutive threads read consecutive addresses along the operand's
 * contiguous axis. Elements past K are zero (they meet the other operand's); rows past
 * D are clamped (their outputs are not stored).
 */
function cooperativeLoad(body: string[], s: Side, z: Record<string, string>, dst: string, BD: number, tk: number, threads: number, d0: string): void {
  const ind = "    ";
  const padK = s.K % tk !== 0;
  const emit = (count: number, lines: (e: string) => string[]) => {
    if (count > 2 * threads) {
      // a loop, not unrolled copies: small workgroups would multiply the code (and lavapipe's JIT time)
      body.push(`${ind}for (var e = li; e < ${u(count)}; e += ${u(threads)}) {`, ...lines("e").map((l) => `${ind}  ${l}`), `${ind}}`);
      return;
    }
    for (let j = 0; j < Math.ceil(count / threads); j++) {
      const e = j ? `li + ${u(j * threads)}` : "li";
      const inner = lines("e");
      if ((j + 1) * threads > count) body.push(`${ind}if (${e} < ${u(count)}) {`, `${ind}  let e = ${e};`, ...inner.map((l) => `${ind}  ${l}`), `${ind}}`);
      else body.push(`${ind}{`, `${ind}  let e = ${e};`, ...inner.map((l) => `${ind}  ${l}`), `${ind}}`);
    }
  };
  if (s.vec === "k") {
    const q = tk / 4;
    emit(BD * q, (e) => {
      const l = [`let d = ${e} / ${u(q)};`, `let kq = ${e} % ${u(q)};`, `let k = k0 + kq * 4u;`];
      const at = `(${s.base} + min(${d0} + d, ${z.last}) * ${z.sD}) / 4u + ${padK ? `min(k, ${z.lastk4})` : "k"} / 4u`;
      l.push(padK ? `let v = select(vec4<f32>(0.0), ${s.ld(`${s.arr}[${at}]`)}, k < ${z.K});` : `let v = ${s.ld(`${s.arr}[${at}]`)};`);
      for (let c = 0; c < 4; c++) l.push(`${dst}[(kq * 4u${c ? ` + ${u(c)}` : ""}) * ${u(BD)} + d] = v.${COMP[c]};`);
      return l;
    });
  } else if (s.vec === "d") {
    const q = BD / 4;
    emit(q * tk, (e) => {
      const l = [`let dq = ${e} % ${u(q)};`, `let kk = ${e} / ${u(q)};`, `let k = k0 + kk;`];
      const at = `${s.base} / 4u + min(${d0} / 4u + dq, ${z.lastq}) + ${padK ? `min(k, ${z.lastk})` : "k"} * ${z.sKq}`;
      l.push(padK ? `let v = select(vec4<f32>(0.0), ${s.ld(`${s.arr}[${at}]`)}, k < ${z.K});` : `let v = ${s.ld(`${s.arr}[${at}]`)};`);
      for (let c = 0; c < 4; c++) l.push(`${dst}[kk * ${u(BD)} + dq * 4u${c ? ` + ${u(c)}` : ""}] = v.${COMP[c]};`);
      return l;
    });
  } else {
    // Walk the operand's smaller stride fastest, so that neighbouring threads read neighbouring addresses.
    const kFast = Math.abs(s.sK) <= Math.abs(s.sD) || s.D === 1;
    emit(BD * tk, (e) => {
      const l = kFast ? [`let d = ${e} / ${u(tk)};`, `let kk = ${e} % ${u(tk)};`] : [`let d = ${e} % ${u(BD)};`, `let kk = ${e} / ${u(BD)};`];
      l.push("let k = k0 + kk;");
      const at = `${s.base} + min(${d0} + d, ${z.last}) * ${z.sD} + ${padK ? `min(k, ${z.lastk})` : "k"} * ${z.sK}`;
      l.push(padK ? `let v = select(0.0, ${s.ld(`${s.arr}[${at}]`)}, k < ${z.K});` : `let v = ${s.ld(`${s.arr}[${at}]`)};`);
      l.push(`${dst}[kk * ${u(BD)} + d] = v;`);
      return l;
    });
  }
}

/**
 * `let` lines naming sizes of side `s` (prefixed by `nm`) before the loops, through the
 * side's `int`: literals in a specialised kernel, uniform slots in a generic one. Returns
 * the names, in the order given.
 */
function hoist(body: string[], ind: string, s: Side, nm: string, ...vals: [string, number][]): string[] {
  return vals.map(([key, n]) => {
    body.push(`${ind}let ${nm}${key} = ${s.int(n)};`);
    return `${nm}${key}`;
  });
}

/** The sizes cooperativeLoad's addresses use for side `s`, hoisted before the K loop. */
function loadSizes(body: string[], s: Side, nm: string, tk: number): Record<string, string> {
  const padK = s.K % tk !== 0;
  const vals: [string, number][] =
    s.vec === "k"
      ? [["last", s.D - 1], ["sD", s.sD], ...(padK ? ([["lastk4", s.K - 4], ["K", s.K]] as [string, number][]) : [])]
      : s.vec === "d"
        ? [["lastq", s.D / 4 - 1], ["sKq", s.sK / 4], ...(padK ? ([["lastk", s.K - 1], ["K", s.K]] as [string, number][]) : [])]
        : [["last", s.D - 1], ["sD", s.sD], ["sK", s.sK], ...(padK ? ([["lastk", s.K - 1], ["K", s.K]] as [string, number][]) : [])];
  const names = hoist(body, "  ", s, nm, ...vals);
  return Object.fromEntries(vals.map(([key], i) => [key, names[i]]));
}
