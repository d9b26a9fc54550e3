import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DecodedTensor,
  SafetensorsError,
  type WritableTensor,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  safetensorsMetadata,
  saveSafetensors,
} from "../../runtime/safetensors.ts";

const enc = new TextEncoder();

/** Build a file by hand, as the spec lays it out: u64 LE header length, header, data. */
function file(header: string | object, data: number[] | Uint8Array = [], pad = true): Uint8Array {
  let json = typeof header === "string" ? header : JSON.stringify(header);
  if (pad) while ((json.length % 8) !== 0) json += " ";
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const bytesOf = (t: { data: ArrayBufferView }) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe("safetensors encoding", () => {
  it("writes exactly the bytes the spec describes", () => {
    const bytes = encodeSafetensors(new Map([["a", { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) }]]), { k: "v" });
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
    const expected = [
      ...[padded.length, 0, 0, 0, 0, 0, 0, 0],
      ...enc.encode(padded),
      ...[0x00, 0x00, 0x80, 0x3f], // 1.0f, little-endian
      ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
    ];
    expect(Array.from(bytes)).toEqual(expected);
  });

  it("pads the header with spaces to a multiple of 8, for every name length", () => {
    for (let len = 1; len <= 17; len++) {
      const bytes = encodeSafetensors(new Map([["x".repeat(len), { dtype: "I32", shape: [1], data: new Int32Array([len]) }]]));
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(header).toMatch(/^\{.*\} *$/);
      expect(header.length - header.trimEnd().length).toBeLessThan(8);
      expect(bytes.length).toBe(8 + n + 4);
    }
  });

  it("round-trips every dtype, 0-d and empty tensors, and metadata", () => {
    const tensors = new Map<string, WritableTensor>([
      ["f32", { dtype: "F32", shape: [2, 3], data: new Float32Array([1.5, -0, NaN, Infinity, -3.25e-20, 7]) }],
      ["f64", { dtype: "F64", shape: [], data: new Float64Array([Math.PI]) }],
      ["i32", { dtype: "I32", shape: [3], data: new Int32Array([-2147483648, 0, 2147483647]) }],
      ["empty", { dtype: "F32", shape: [0, 4], data: new Float32Array(0) }],
      ["layers.0.w", { dtype: "F64", shape: [1, 1], data: new Float64Array([-1e300]) }],
    ]);
    const meta = { format: "weft", note: "ünïcode ✓", empty: "" };
    const bytes = encodeSafetensors(tensors, meta);
    const back = decodeSafetensors(bytes);
    expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [k, t] of tensors) {
      const b = back.get(k)!;
      expect(b.dtype).toBe(t.dtype);
      expect(b.shape).toEqual(t.shape);
      expect(b.data.constructor).toBe(t.data.constructor);
      expect(bytesOf(b)).toEqual(bytesOf(t)); // bit-exact: -0 and NaN included
    }
    expect(safetensorsMetadata(bytes)).toEqual(meta);
    // Larger elements first, so every tensor's data is aligned to its element size.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: number[] }>;
    for (const [k, t] of tensors) expect((8 + n + header[k].data_offsets[0]) % t.data.BYTES_PER_ELEMENT).toBe(0);
  });

  it("round-trips random tensors (property)", () => {
    const tensor = fc.oneof(
      fc.array(fc.float({ noNaN: false }), { maxLength: 12 }).map((xs): WritableTensor => ({ dtype: "F32", shape: [xs.length], data: new Float32Array(xs) })),
      fc.array(fc.double(), { maxLength: 12 }).map((xs): WritableTensor => ({ dtype: "F64", shape: [xs.length], data: new Float64Array(xs) })),
      fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 12 }).map((xs): WritableTensor => ({ dtype: "I32", shape: [1, xs.length], data: new Int32Array(xs) })),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }).filter((s) => s !== "__metadata__"), tensor, { maxKeys: 6 }), (dict) => {
        const m = new Map(Object.entries(dict));
        const back = decodeSafetensors(encodeSafetensors(m));
        expect(back.size).toBe(m.size);
        for (const [k, t] of m) expect(bytesOf(back.get(k)!)).toEqual(bytesOf(t));
      }),
    );
  });

  it("refuses what it cannot write", () => {
    const bad = (t: object) => () => encodeSafetensors(new Map([["t", t as WritableTensor]]));
    expect(bad({ dtype: "F32", shape: [3], data: new Float32Array(2) })).toThrow(SafetensorsError);
    expect(bad({ dtype: "F32", shape: [2], data: new Float64Array(2) })).toThrow(/must be a Float32Array/);
    expect(bad({ dtype: "BF16", shape: [1], data: new Float32Array(1) })).toThrow(/cannot write dtype BF16/);
    expect(bad({ dtype: "F32", shape: [-1], data: new Float32Array(0) })).toThrow(/bad shape/);
  });
});

describe("safetensors decoding", () => {
  it("reads a file written by Hugging Face's safetensors 0.8.0 (numpy), all dtypes", () => {
    // Made with: save_file({...}, metadata={"format": "pt", "step": "10"}) from safetensors.numpy
    const hex =
      "c0010000000000007b225f5f6d657461646174615f5f223a7b2273746570223a223130222c22666f726d6174223a227074227d2c22626967223a7b226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c31365d7d2c227363616c6172223a7b226474797065223a22463634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b31362c32345d7d2c22656d707479223a7b226474797065223a22463332222c227368617065223a5b302c335d2c22646174615f6f666673657473223a5b32342c32345d7d2c2277223a7b226474797065223a22463332222c227368617065223a5b322c335d2c22646174615f6f666673657473223a5b32342c34385d7d2c22696478223a7b226474797065223a22493332222c227368617065223a5b335d2c22646174615f6f666673657473223a5b34382c36305d7d2c2275223a7b226474797065223a225538222c227368617065223a5b335d2c22646174615f6f666673657473223a5b36302c36335d7d2c2262223a7b226474797065223a22424f4f4c222c227368617065223a5b335d2c22646174615f6f666673657473223a5b36332c36365d7d7d20202020ffffffffffffffff000000000001000000000000000004400000c03f000000c000005040000000006f12833a0000e0c001000000feffffffffffff7f00ff07010001";
    const bytes = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
    const t = decodeSafetensors(bytes);
    const get = (k: string) => t.get(k)!;
    expect(get("w")).toMatchObject({ dtype: "F32", shape: [2, 3] });
    expect(Array.from(get("w").data as Float32Array)).toEqual(Array.from(new Float32Array([1.5, -2, 3.25, 0, 1e-3, -7])));
    expect(get("scalar")).toMatchObject({ dtype: "F64", shape: [], data: new Float64Array([2.5]) });
    expect(get("idx")).toMatchObject({ dtype: "I32", shape: [3], data: new Int32Array([1, -2, 2147483647]) });
    expect(get("big")).toMatchObject({ dtype: "I64", shape: [2], data: new BigInt64Array([-1n, 2n ** 40n]) });
    expect(get("empty")).toMatchObject({ dtype: "F32", shape: [0, 3], data: new Float32Array(0) });
    expect(get("u")).toMatchObject({ dtype: "U8", data: new Uint8Array([0, 255, 7]) });
    expect(get("b")).toMatchObject({ dtype: "BOOL", data: new Uint8Array([1, 0, 1]) });
    expect(safetensorsMetadata(bytes)).toEqual({ format: "pt", step: "10" });
  });

  it("reads from a Node Buffer at any offset (copies, never aliases the pool)", () => {
    const bytes = encodeSafetensors(new Map([["a", { dtype: "F64", shape: [2], data: new Float64Array([1, 2]) }]]));
    const buf = Buffer.concat([Buffer.from([9, 9, 9]), Buffer.from(bytes)]).subarray(3);
    const a = decodeSafetensors(buf).get("a")!;
    expect(Array.from(a.data as Float64Array)).toEqual([1, 2]);
    expect(a.data.buffer.byteLength).toBe(16);
  });

  const f32 = (n: number) => ({ dtype: "F32", shape: [n], data_offsets: [0, 4 * n] });
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(0), /shorter than the 8-byte header length/],
    ["short length", new Uint8Array(5), /shorter than the 8-byte/],
    ["header past end", file({ a: f32(1) }, [0, 0, 0, 0]).subarray(0, 20), /runs past the end.*truncated/],
    ["huge header length", Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 0x7b]), /over the 100000000-byte limit/],
    ["truncated data", file({ a: f32(2) }, [0, 0, 0, 0]), /outside the 4 data bytes/],
    ["bad JSON", file('{"a": {"dtype": "F32",'), /not valid UTF-8 JSON/],
    ["bad UTF-8", file(new Uint8Array([0x7b, 0xff, 0x7d]).reduce((s, b) => s + String.fromCharCode(b), "")), /not valid UTF-8 JSON|not valid/],
    ["not an object", file("[1,2,3]"), /does not start with|not a JSON object/],
    ["leading space", file(' {"a":1}'), /does not start with "\{"/],
    ["tensor not object", file({ a: 3 }), /tensor "a" is not an object/],
    ["unknown dtype", file({ a: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype C64/],
    ["missing dtype", file({ a: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /has no dtype/],
    ["bad shape", file({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape \[-1\]/],
    ["bad offsets", file({ a: { dtype: "F32", shape: [1], data_offsets: [4] } }, new Uint8Array(4)), /not \[begin, end\]/],
    ["reversed offsets", file({ a: { dtype: "F32", shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), /outside/],
    ["offsets out of range", file({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(4)), /outside the 4 data bytes/],
    ["size mismatch", file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /is 4 bytes but F32 \[2\] needs 8/],
    ["overlap", file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /overlaps/],
    ["gap", file({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /gap in the data before tensor "a"/],
    ["trailing bytes", file({ a: f32(1) }, new Uint8Array(8)), /4 bytes after the last tensor/],
    ["bad metadata", file({ __metadata__: { step: 10 } }), /"__metadata__" must map strings to strings/],
  ];
  for (const [what, bytes, msg] of cases) {
    it(`rejects ${what} with a SafetensorsError`, () => {
      let err: unknown;
      try {
        decodeSafetensors(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toMatch(/^malformed safetensors: /);
      expect((err as Error).message).toMatch(msg);
    });
  }

  it("never throws anything but SafetensorsError on corrupted files (property)", () => {
    const good = encodeSafetensors(
      new Map<string, WritableTensor>([
        ["a", { dtype: "F32", shape: [3], data: new Float32Array([1, 2, 3]) }],
        ["b", { dtype: "I32", shape: [], data: new Int32Array([4]) }],
      ]),
      { m: "x" },
    );
    fc.assert(
      fc.property(fc.nat(good.length), fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 4 }), (cut, flips) => {
        const bytes = good.slice(0, cut);
        for (const [i, v] of flips) if (i < bytes.length) bytes[i] = v;
        try {
          decodeSafetensors(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(SafetensorsError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("safetensors files", () => {
  it("saves and loads, and names the file in errors", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-st-"));
    const path = join(dir, "ckpt.safetensors");
    await saveSafetensors(path, new Map([["w", { dtype: "F32", shape: [2], data: new Float32Array([3, 4]) }]]), { step: "1" });
    const back = (await loadSafetensors(path)).get("w") as DecodedTensor;
    expect(Array.from(back.data as Float32Array)).toEqual([3, 4]);
    expect(safetensorsMetadata(readFileSync(path))).toEqual({ step: "1" });

    await expect(loadSafetensors(join(dir, "missing.safetensors"))).rejects.toThrow(SafetensorsError);
    writeFileSync(join(dir, "bad.safetensors"), "not a safetensors file");
    await expect(loadSafetensors(join(dir, "bad.safetensors"))).rejects.toThrow(/bad\.safetensors: malformed safetensors/);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("safetensors names", () => {
  // found by the round-trip property: a plain object header turned the name into its prototype
  it("keeps a tensor named __proto__", () => {
    const back = decodeSafetensors(encodeSafetensors(new Map([["__proto__", { dtype: "I32" as const, shape: [1, 2], data: Int32Array.of(3, 4) }]])));
    expect([...back.keys()]).toEqual(["__proto__"]);
    expect(back.get("__proto__")!.data).toEqual(Int32Array.of(3, 4));
  });
});
