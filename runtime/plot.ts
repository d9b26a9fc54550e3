// The loss curve of a run, drawn twice: DIR/loss.svg (vector, with text) and
// DIR/loss.png (for viewers and issue trackers that show no SVG). The PNG is drawn
// here — anti-aliased polylines, a 5×7 bitmap font for the tick labels — and encoded
// with node:zlib, so no native dependency is needed.
import { deflateSync } from "node:zlib";
import type { MetricRecord } from "./checkpoint.ts";
import { writeFileAtomic } from "./safetensors.ts";

type Rgb = readonly [number, number, number];
interface Series {
  name: string;
  color: Rgb;
  points: { x: number; y: number }[];
  dots: boolean;
}

const W = 720;
const H = 420;
const M = { left: 78, right: 24, top: 34, bottom: 52 };
const TRAIN: Rgb = [31, 119, 180];
const EVAL: Rgb = [255, 127, 14];

function series(metrics: readonly MetricRecord[]): Series[] {
  const train = metrics.filter((m) => m.loss !== undefined && Number.isFinite(m.loss)).map((m) => ({ x: m.step + 1, y: m.loss! }));
  const ev = metrics.filter((m) => m.eval_loss !== undefined && Number.isFinite(m.eval_loss)).map((m) => ({ x: m.step + 1, y: m.eval_loss! }));
  const out: Series[] = [{ name: "train", color: TRAIN, points: train, dots: train.length === 1 }];
  if (ev.length) out.push({ name: "eval", color: EVAL, points: ev, dots: true });
  return out;
}

/** About `n` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  if (a >= 1000 && Number.isInteger(v / 1000)) return `${v / 1000}k`;
  return String(Number(v.toPrecision(4)));
}

interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  px(x: number): number;
  py(y: number): number;
  xt: number[];
  yt: number[];
}

function frame(all: Series[]): Frame {
  const pts = all.flatMap((s) => s.points);
  const x0 = 0;
  const x1 = Math.max(1, ...pts.map((p) => p.x));
  let y0 = Math.min(...pts.map((p) => p.y));
  let y1 = Math.max(...pts.map((p) => p.y));
  if (!pts.length) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 = Math.max(y0 >= 0 ? 0 : -Infinity, y0 - pad);
  y1 += pad;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  return {
    x0, x1, y0, y1,
    px: (x) => M.left + ((x - x0) / (x1 - x0)) * pw,
    py: (y) => M.top + (1 - (y - y0) / (y1 - y0)) * ph,
    xt: niceTicks(x0, x1, 6),
    yt: niceTicks(y0, y1, 6),
  };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const rgb = (c: Rgb) => `rgb(${c[0]},${c[1]},${c[2]})`;

export function lossCurveSvg(metrics: readonly MetricRecord[], title = "loss"): string {
  const all = series(metrics);
  const f = frame(all);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (const t of f.yt) {
    const y = f.py(t).toFixed(1);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(t)}</text>`);
  }
  for (const t of f.xt) {
    const x = f.px(t).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">step</text>`);
  for (const s of all) {
    if (s.points.length > 1) out.push(`<polyline fill="none" stroke="${rgb(s.color)}" stroke-width="1.5" points="${s.points.map((p) => `${f.px(p.x).toFixed(1)},${f.py(p.y).toFixed(1)}`).join(" ")}"/>`);
    if (s.dots) for (const p of s.points) out.push(`<circle cx="${f.px(p.x).toFixed(1)}" cy="${f.py(p.y).toFixed(1)}" r="3" fill="${rgb(s.color)}"/>`);
  }
  all.forEach((s, i) => {
    const y = M.top + 14 + i * 18;
    out.push(`<line x1="${W - M.right - 110}" x2="${W - M.right - 86}" y1="${y}" y2="${y}" stroke="${rgb(s.color)}" stroke-width="2"/>`);
    out.push(`<text x="${W - M.right - 80}" y="${y}" dominant-baseline="middle">${s.name}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

// ------------------------------------------------------------------ raster

/** 5×7 glyphs, one 5-bit row each, top to bottom. */
const GLYPHS: Record<string, number[]> = {
  "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
  "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
  "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
  "9": [14, 17, 17, 15, 1, 2, 12], ".": [0, 0, 0, 0, 0, 12, 12], "-": [0, 0, 0, 31, 0, 0, 0],
  "+": [0, 4, 4, 31, 4, 4, 0], e: [0, 0, 14, 17, 31, 16, 14], a: [0, 0, 14, 1, 15, 17, 15],
  i: [4, 0, 12, 4, 4, 4, 14], l: [12, 4, 4, 4, 4, 4, 14], n: [0, 0, 22, 25, 17, 17, 17],
  o: [0, 0, 14, 17, 17, 17, 14], p: [0, 0, 30, 17, 30, 16, 16], r: [0, 0, 22, 25, 16, 16, 16],
  s: [0, 0, 14, 16, 14, 1, 30], t: [8, 8, 28, 8, 8, 9, 6], v: [0, 0, 17, 17, 17, 10, 4],
  k: [16, 16, 18, 20, 24, 20, 18], " ": [0, 0, 0, 0, 0, 0, 0],
};

class Canvas {
  readonly px: Uint8Array;
  constructor(readonly w: number, readonly h: number) {
    this.px = new Uint8Array(w * h * 3).fill(255);
  }
  blend(x: number, y: number, c: Rgb, a: number): void {
    if (x < 0 || y < 0 || x >= this.w || y >= this.h || a <= 0) return;
    const i = (y * this.w + x) * 3;
    for (let k = 0; k < 3; k++) this.px[i + k] = Math.round(this.px[i + k] * (1 - a) + c[k] * a);
  }
  rect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    for (let y = Math.round(y0); y <= Math.round(y1); y++) for (let x = Math.round(x0); x <= Math.round(x1); x++) this.blend(x, y, c, 1);
  }
  /** An anti-aliased polyline of width `w`: per-pixel coverage from the distance to the nearest segment. */
  polyline(pts: { x: number; y: number }[], c: Rgb, w: number): void {
    const cov = new Map<number, number>();
    for (let s = 0; s + 1 < pts.length; s++) {
      const a = pts[s];
      const b = pts[s + 1];
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len2 = dx * dx + dy * dy || 1e-12;
      const r = w / 2 + 1;
      for (let y = Math.floor(Math.min(a.y, b.y) - r); y <= Math.ceil(Math.max(a.y, b.y) + r); y++) {
        for (let x = Math.floor(Math.min(a.x, b.x) - r); x <= Math.ceil(Math.max(a.x, b.x) + r); x++) {
          const t = Math.max(0, Math.min(1, ((x - a.x) * dx + (y - a.y) * dy) / len2));
          const d = Math.hypot(x - (a.x + t * dx), y - (a.y + t * dy));
          const v = Math.max(0, Math.min(1, w / 2 + 0.5 - d));
          if (v > 0) {
            const k = y * this.w + x;
            cov.set(k, Math.max(cov.get(k) ?? 0, v));
          }
        }
      }
    }
    for (const [k, v] of cov) this.blend(k % this.w, Math.floor(k / this.w), c, v);
  }
  dot(x: number, y: number, r: number, c: Rgb): void {
    for (let j = Math.floor(y - r - 1); j <= Math.ceil(y + r + 1); j++) {
      for (let i = Math.floor(x - r - 1); i <= Math.ceil(x + r + 1); i++) this.blend(i, j, c, Math.max(0, Math.min(1, r + 0.5 - Math.hypot(i - x, j - y))));
    }
  }
  /** Text in the 5×7 font at `scale`; anchor: where (x, y) is on the text's box. */
  text(s: string, x: number, y: number, c: Rgb, anchor: "start" | "middle" | "end" = "start", scale = 1): void {
    const adv = 6 * scale;
    const width = s.length * adv - scale;
    let cx = Math.round(anchor === "start" ? x : anchor === "middle" ? x - width / 2 : x - width);
    const cy = Math.round(y - (7 * scale) / 2);
    for (const ch of s) {
      const g = GLYPHS[ch] ?? GLYPHS[" "];
      g.forEach((row, r) => {
        for (let col = 0; col < 5; col++) {
          if (row & (16 >> col)) for (let a = 0; a < scale; a++) for (let b = 0; b < scale; b++) this.blend(cx + col * scale + b, cy + r * scale + a, c, 1);
        }
      });
      cx += adv;
    }
  }
}

export function lossCurvePng(metrics: readonly MetricRecord[]): Uint8Array {
  const all = series(metrics);
  const f = frame(all);
  const cv = new Canvas(W, H);
  const grey: Rgb = [136, 136, 136];
  const ink: Rgb = [40, 40, 40];
  for (const t of f.yt) {
    cv.rect(M.left, f.py(t), W - M.right, f.py(t), [229, 229, 229]);
    cv.text(label(t), M.left - 8, f.py(t), ink, "end");
  }
  for (const t of f.xt) {
    cv.rect(f.px(t), M.top, f.px(t), H - M.bottom, [240, 240, 240]);
    cv.text(label(t), f.px(t), H - M.bottom + 14, ink, "middle");
  }
  cv.rect(M.left, M.top, W - M.right, M.top, grey);
  cv.rect(M.left, H - M.bottom, W - M.right, H - M.bottom, grey);
  cv.rect(M.left, M.top, M.left, H - M.bottom, grey);
  cv.rect(W - M.right, M.top, W - M.right, H - M.bottom, grey);
  cv.text("step", (M.left + W - M.right) / 2, H - 14, ink, "middle", 2);
  cv.text("loss", W / 2, 17, ink, "middle", 2);
  for (const s of all) {
    const pts = s.points.map((p) => ({ x: f.px(p.x), y: f.py(p.y) }));
    cv.polyline(pts, s.color, 1.6);
    if (s.dots) for (const p of pts) cv.dot(p.x, p.y, 2.5, s.color);
  }
  all.forEach((s, i) => {
    const y = M.top + 14 + i * 18;
    cv.polyline([{ x: W - M.right - 110, y }, { x: W - M.right - 86, y }], s.color, 2);
    cv.text(s.name, W - M.right - 80, y, ink, "start", 2);
  });
  return encodePng(cv.w, cv.h, cv.px);
}

// ------------------------------------------------------------------ PNG

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  let c = crc;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return c;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

/** An 8-bit RGB PNG (filter 0 on every row, zlib-deflated). */
export function encodePng(w: number, h: number, rgb: Uint8Array): Uint8Array {
  const raw = new Uint8Array(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) raw.set(rgb.subarray(y * 3 * w, (y + 1) * 3 * w), y * (1 + 3 * w) + 1);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** DIR/loss.svg and DIR/loss.png, each written atomically. */
export async function writeCurves(dir: string, metrics: readonly MetricRecord[], title?: string): Promise<void> {
  await writeFileAtomic(`${dir}/loss.svg`, new TextEncoder().encode(lossCurveSvg(metrics, title)));
  await writeFileAtomic(`${dir}/loss.png`, lossCurvePng(metrics));
}
