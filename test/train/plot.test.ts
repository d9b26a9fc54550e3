// The loss curve: an SVG with the train and eval series, and a PNG that decodes (checked
// here byte by byte: signature, chunk CRCs, the inflated scanlines), with the curve's
// colour where the data says it should be.
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { MetricRecord } from "../../runtime/checkpoint.ts";
import { crc32, lossCurvePng, lossCurveSvg, niceTicks } from "../../runtime/plot.ts";
import { stepLine, formatDuration } from "../../runtime/progress.ts";

const metrics: MetricRecord[] = [
  ...Array.from({ length: 50 }, (_, t) => ({ step: t, loss: 2 * Math.exp(-t / 15) + 0.1, lr: 1e-3 })),
  { step: 9, eval_loss: 1.3 },
  { step: 19, eval_loss: 0.8 },
  { step: 49, eval_loss: 0.4 },
];

function decodePng(png: Uint8Array) {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  let w = 0;
  let h = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (at < png.length) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    types.push(type);
    const body = png.subarray(at + 8, at + 8 + len);
    expect(dv.getUint32(at + 8 + len), `${type} CRC`).toBe((crc32(png.subarray(at + 4, at + 8 + len)) ^ 0xffffffff) >>> 0);
    if (type === "IHDR") {
      w = new DataView(body.buffer, body.byteOffset).getUint32(0);
      h = new DataView(body.buffer, body.byteOffset).getUint32(4);
      expect([...body.subarray(8)]).toEqual([8, 2, 0, 0, 0]); // 8-bit RGB
    }
    if (type === "IDAT") idat.push(body);
    at += 12 + len;
  }
  expect(types).toEqual(["IHDR", "IDAT", "IEND"]);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(h * (1 + 3 * w));
  const pixel = (x: number, y: number) => [...raw.subarray(y * (1 + 3 * w) + 1 + 3 * x, y * (1 + 3 * w) + 4 + 3 * x)];
  return { w, h, pixel };
}

describe("loss curves", () => {
  it("SVG: a polyline per series, a dot per evaluation, tick labels", () => {
    const svg = lossCurveSvg(metrics, "demo <job>");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("demo &lt;job&gt;");
    expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
    expect((svg.match(/<circle/g) ?? []).length).toBe(3);
    expect(svg).toContain(">train</text>");
    expect(svg).toContain(">eval</text>");
  });

  it("PNG: decodes, 720×420, the train curve's blue on the plot", () => {
    const { w, h, pixel } = decodePng(lossCurvePng(metrics));
    expect([w, h]).toEqual([720, 420]);
    expect(pixel(2, 2)).toEqual([255, 255, 255]);
    // somewhere in the plot area there is the train colour (31, 119, 180), fully covered
    let blue = 0;
    let orange = 0;
    for (let y = 34; y < h - 52; y++) {
      for (let x = 78; x < w - 24; x++) {
        const [r, g, b] = pixel(x, y);
        if (r === 31 && g === 119 && b === 180) blue++;
        if (r === 255 && g === 127 && b === 14) orange++;
      }
    }
    expect(blue).toBeGreaterThan(300);
    expect(orange).toBeGreaterThan(50);
  });

  it("round tick values", () => {
    expect(niceTicks(0, 50, 6)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(niceTicks(0.05, 2.2, 6)).toEqual([0.5, 1, 1.5, 2]);
  });
});

describe("progress lines", () => {
  it("a logged step reads step, loss, lr, grad norm, speed, tokens/s, ETA", () => {
    const line = stepLine({ step: 9, total: 200, loss: 1.23456, lr: 3e-4, gradNorm: 0.5, stepsPerSec: 12.34, tokensPerSec: 52000, etaSec: 3725 });
    expect(line).toBe("step  10/200  loss 1.2346  lr 3.00e-4  |g| 0.500  12.3 steps/s  52.0k tok/s  ETA 1:02:05");
    expect(formatDuration(65)).toBe("1:05");
  });
});

describe("the terminal progress bar", () => {
  it("redraws one line in place and keeps messages above it", async () => {
    const { ttyProgress } = await import("../../runtime/progress.ts");
    let out = "";
    const stream = { columns: 100, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
    const p = ttyProgress(stream);
    p.update({ step: 0, total: 10, loss: 2.5, lr: 1e-3, stepsPerSec: 4, tokensPerSec: 1000, etaSec: 9 });
    p.line("eval at step 1: loss 2.4000");
    p.update({ step: 9, total: 10, loss: 1.5, lr: 1e-3, stepsPerSec: 5, etaSec: 0 });
    p.done();
    expect(out).toContain("\r\x1b[K 1/10");
    expect(out).toContain("loss 2.5000");
    expect(out).toContain("1000 tok/s");
    expect(out).toContain("\r\x1b[Keval at step 1: loss 2.4000\n");
    expect(out).toMatch(/10\/10 .*100%.*ETA 0:00\n$/);
  });
});
