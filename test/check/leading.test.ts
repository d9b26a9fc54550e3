// `..` from the checker to the numbers: what the checker says about indexing after `..` and
// about the arguments of one `..` is what the lowered program computes. The expected values
// are NumPy's rules written out here in plain loops (x[..., 0]; broadcasting the leading
// dims of both arguments), not taken from the compiler.
import { describe, expect, it } from "vitest";
import { loadProgram, lowerFunction, MODELS_DIR } from "../../compiler/index.ts";
import { refTensor, type RefTensor } from "../../runtime/reference/tensor.ts";
import { run } from "../util/graphs.ts";
import { checkSource } from "./harness.ts";

const source = `dim B, T, D
fn first(x: f32[.., T, D]) -> f32[.., T] = x[.., 0]
fn pick(x: f32[B, T, D]) -> f32[B, T] = first(x)
fn add(a: f32[.., D], b: f32[.., D]) -> f32[.., D] = a + b
fn wide(x: f32[B, T, D], y: f32[T, D]) -> f32[B, T, D] = add(x, y)
fn total(a: f32[.., D], b: f32[.., D]) -> f32 = sum(a) + sum(b)
fn totals(x: f32[B, T, D], y: f32[T, D]) -> f32 = total(x, y)
fn addpe(x: f32[.., D], pe: f32[T, D]) = x + pe
fn withpe(x: f32[B, T, D], pe: f32[T, D]) -> f32[B, T, D] = addpe(x, pe)
`;

function lower(entry: string, inputs: Record<string, RefTensor>) {
  const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/lead.weft" ? source : undefined) };
  const p = loadProgram("/virtual/lead.weft", { host });
  expect(p.diagnostics.map((d) => d.message)).toEqual([]);
  const types = new Map(Object.entries(inputs).map(([k, t]) => [k, { shape: [...t.shape], dtype: "f32" as const }]));
  return lowerFunction(p, entry, types, { wrt: [] });
}

/** Lowers `entry` for the inputs' shapes and runs it on the reference interpreter. */
function runRef(entry: string, inputs: Record<string, RefTensor>): { shape: number[]; data: number[] } {
  const l = lower(entry, inputs);
  if (!l.ok) throw new Error(l.diagnostics.map((d) => d.message).join("\n"));
  const [out] = [...run(l.value.graph, inputs).values()];
  return { shape: [...out.shape], data: Array.from(out.data) };
}

// x: [2, 3, 2] holding 1..12 row-major; y: [3, 2] holding 100..600
const X = Array.from({ length: 12 }, (_, i) => i + 1);
const Y = [100, 200, 300, 400, 500, 600];
const x = refTensor([2, 3, 2], X);
const y = refTensor([3, 2], Y);

describe("`..` runs as it checks", () => {
  it("x[.., 0] takes index 0 of the last axis", () => {
    const want: number[] = [];
    for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) want.push(X[(b * 3 + t) * 2 + 0]);
    expect(runRef("pick", { x })).toEqual({ shape: [2, 3], data: want });
  });

  it("the arguments of one `..` are broadcast together", () => {
    const want: number[] = [];
    for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) for (let d = 0; d < 2; d++) want.push(X[(b * 3 + t) * 2 + d] + Y[t * 2 + d]);
    expect(runRef("wide", { x, y })).toEqual({ shape: [2, 3, 2], data: want });
    expect(runRef("withpe", { x, pe: y })).toEqual({ shape: [2, 3, 2], data: want });
  });

  it("the body sees each `..` argument with the broadcast leading dims", () => {
    // b is broadcast to [2, 3, 2] on entry, so sum(b) counts y twice (the checker typed b as f32[B, T, D])
    const want = X.reduce((s, v) => s + v, 0) + 2 * Y.reduce((s, v) => s + v, 0);
    expect(runRef("totals", { x, y }).data).toEqual([want]);
    expect(checkSource(source).typeOf("total(x, y)")).toBe("f32");
  });

  it("called with concrete shapes that do not broadcast, the lowering says so", () => {
    // the entry fn's `..` is bound only here, so this is the concrete check
    const l = lower("add", { a: x, b: refTensor([2, 2], [1, 2, 3, 4]) });
    const d = l.ok ? undefined : l.diagnostics[0];
    expect(d?.code).toBe("W0203");
    expect(d?.message).toBe("the leading dims `..` of add's arguments do not broadcast: 'a' has [2, 3], 'b' has [2]");
  });
});
