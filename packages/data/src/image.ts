/**
 * Float images and the deterministic parts of the pipeline: alpha compositing, crop + resize
 * (separable triangle filter, widened when shrinking so it averages like PIL's antialiased
 * bilinear), and normalisation to CHW.
 */
import type { RgbaImage } from './png.js';

/** RGB, row-major HWC, values in [0, 1]. */
export interface FloatImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** OpenAI CLIP's normalisation constants (RGB). */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** RGBA → RGB floats, compositing over `background` (default white: clip art and emoji are drawn on paper). */
export function toFloat(img: RgbaImage, background: readonly [number, number, number] = [1, 1, 1]): FloatImage {
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  const src = img.data;
  const [br, bg, bb] = background;
  if (img.channels === 3) {
    for (let i = 0; i < n * 3; i++) out[i] = src[i]! / 255;
    return { width: img.width, height: img.height, data: out };
  }
  for (let i = 0; i < n; i++) {
    const a = src[i * 4 + 3]! / 255;
    const na = 1 - a;
    out[i * 3] = (src[i * 4]! / 255) * a + br * na;
    out[i * 3 + 1] = (src[i * 4 + 1]! / 255) * a + bg * na;
    out[i * 3 + 2] = (src[i * 4 + 2]! / 255) * a + bb * na;
  }
  return { width: img.width, height: img.height, data: out };
}

/**
 * 8-bit pixels straight to the model's input: over `background`, (x − mean) / std per channel,
 * planar (CHW) into `out` at `offset`: `normalizeCHW(toFloat(img))` in one pass, no float image between.
 */
export function toCHW(
  img: RgbaImage,
  background: readonly [number, number, number],
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array = new Float32Array(3 * img.width * img.height),
  offset = 0,
): Float32Array {
  const n = img.width * img.height;
  const src = img.data;
  const step = img.channels === 3 ? 3 : 4;
  for (let c = 0; c < 3; c++) {
    const [m, inv, bgc] = [mean[c]!, 1 / std[c]!, background[c]!];
    const base = offset + c * n;
    if (step === 3) for (let i = 0; i < n; i++) out[base + i] = (src[i * 3 + c]! / 255 - m) * inv;
    else
      for (let i = 0; i < n; i++) {
        const a = src[i * 4 + 3]! / 255;
        out[base + i] = ((src[i * 4 + c]! / 255) * a + bgc * (1 - a) - m) * inv;
      }
  }
  return out;
}

/** Float RGB → 8-bit RGB (for writing PNGs of augmented views). */
export function toBytes(img: FloatImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, img.data[i]!)) * 255);
  return out;
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  stride: number;
}

/** Filter taps mapping source span [x0, x0 + span) onto `out` pixels (pixel centres at +0.5). */
function taps(srcSize: number, x0: number, span: number, out: number): Taps {
  const scale = span / out;
  const support = Math.max(1, scale); // triangle radius in source pixels
  const stride = Math.ceil(2 * support) + 2;
  const start = new Int32Array(out);
  const count = new Int32Array(out);
  const weights = new Float32Array(out * stride);
  for (let i = 0; i < out; i++) {
    const centre = x0 + (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(srcSize - 1, Math.ceil(centre + support));
    let total = 0;
    let k = 0;
    for (let x = lo; x <= hi && k < stride; x++, k++) {
      const w = Math.max(0, 1 - Math.abs(x + 0.5 - centre) / support);
      weights[i * stride + k] = w;
      total += w;
    }
    if (total === 0) {
      // Centre outside the image: take the nearest edge pixel.
      const edge = Math.min(srcSize - 1, Math.max(0, Math.floor(centre)));
      start[i] = edge;
      count[i] = 1;
      weights[i * stride] = 1;
      continue;
    }
    for (let j = 0; j < k; j++) weights[i * stride + j]! /= total;
    start[i] = lo;
    count[i] = k;
  }
  return { start, count, weights, stride };
}

/**
 * Resamples the region (x, y, w, h) of `src` (fractional allowed) to `outW`×`outH`: a crop and a
 * resize in one pass, separable, horizontal first.
 */
export function resample(src: FloatImage, x: number, y: number, w: number, h: number, outW: number, outH: number): FloatImage {
  const tx = taps(src.width, x, w, outW);
  const ty = taps(src.height, y, h, outH);
  // Only the source rows the vertical taps touch are filtered horizontally.
  const rowLo = ty.start[0]!;
  let rowHi = rowLo;
  for (let i = 0; i < outH; i++) rowHi = Math.max(rowHi, ty.start[i]! + ty.count[i]! - 1);
  const rows = rowHi - rowLo + 1;
  const tmp = new Float32Array(rows * outW * 3);
  const s = src.data;
  const sw = src.width;
  for (let r = 0; r < rows; r++) {
    const rowBase = (rowLo + r) * sw * 3;
    for (let i = 0; i < outW; i++) {
      let a = 0;
      let b = 0;
      let c = 0;
      const st = tx.start[i]!;
      const wb = i * tx.stride;
      for (let k = 0; k < tx.count[i]!; k++) {
        const wt = tx.weights[wb + k]!;
        const p = rowBase + (st + k) * 3;
        a += s[p]! * wt;
        b += s[p + 1]! * wt;
        c += s[p + 2]! * wt;
      }
      const o = (r * outW + i) * 3;
      tmp[o] = a;
      tmp[o + 1] = b;
      tmp[o + 2] = c;
    }
  }
  const out = new Float32Array(outW * outH * 3);
  for (let j = 0; j < outH; j++) {
    const st = ty.start[j]! - rowLo;
    const wb = j * ty.stride;
    const o = j * outW * 3;
    for (let k = 0; k < ty.count[j]!; k++) {
      const wt = ty.weights[wb + k]!;
      const p = (st + k) * outW * 3;
      for (let i = 0; i < outW * 3; i++) out[o + i]! += tmp[p + i]! * wt;
    }
  }
  return { width: outW, height: outH, data: out };
}

/** Resizes the whole image. */
export const resize = (src: FloatImage, outW: number, outH: number): FloatImage => resample(src, 0, 0, src.width, src.height, outW, outH);

/**
 * (x − mean) / std per channel, written planar (CHW) into `out` at `offset` (floats); returns `out`.
 * This is the layout the model's first layer reads: batch × 3 × H × W.
 */
export function normalizeCHW(
  img: FloatImage,
  out: Float32Array = new Float32Array(img.data.length),
  offset = 0,
  mean: readonly number[] = CLIP_MEAN,
  std: readonly number[] = CLIP_STD,
): Float32Array {
  const n = img.width * img.height;
  const d = img.data;
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!;
    const inv = 1 / std[c]!;
    const base = offset + c * n;
    for (let i = 0; i < n; i++) out[base + i] = (d[i * 3 + c]! - m) * inv;
  }
  return out;
}

/** PIL's bicubic filter (a = −0.5, support 2). */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const PRECISION_BITS = 22; // PIL's for 8-bit images: 32 − 8 − 2
const ONE = 2 ** PRECISION_BITS;

/** PIL's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel, its first input pixel and fixed-point weights. */
function bicubicTaps(inSize: number, outSize: number): { start: Int32Array; count: Int32Array; weights: Float64Array; stride: number } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const n = Math.min(Math.trunc(centre + support + 0.5), inSize) - lo;
    let total = 0;
    const k = new Float64Array(n);
    for (let x = 0; x < n; x++) total += k[x] = bicubic((x + lo - centre + 0.5) / filterscale);
    for (let x = 0; x < n; x++) {
      const w = total === 0 ? k[x]! : k[x]! / total;
      weights[i * stride + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, stride };
}

/** One pass of PIL's 8-bit resampling along x (`horizontal`) or y, channels independent, rounding to bytes. */
function bicubicPass(src: RgbaImage, out: number, horizontal: boolean): RgbaImage {
  const [W, H] = [src.width, src.height];
  const t = bicubicTaps(horizontal ? W : H, out);
  const [oW, oH] = horizontal ? [out, H] : [W, out];
  const data = new Uint8Array(oW * oH * 4);
  const s = src.data;
  for (let y = 0; y < oH; y++)
    for (let x = 0; x < oW; x++) {
      const i = horizontal ? x : y;
      const wb = i * t.stride;
      for (let c = 0; c < 4; c++) {
        let acc = ONE / 2;
        for (let k = 0; k < t.count[i]!; k++) {
          const p = horizontal ? (y * W + t.start[i]! + k) * 4 : ((t.start[i]! + k) * W + x) * 4;
          acc += s[p + c]! * t.weights[wb + k]!;
        }
        const v = Math.floor(acc / ONE);
        data[(y * oW + x) * 4 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  return { width: oW, height: oH, data };
}

/**
 * PIL's `Image.resize(size, BICUBIC)` on 8-bit RGBA (what torchvision's Resize and
 * RandomResizedCrop run on PIL images): antialiased when shrinking, fixed-point weights, a
 * horizontal pass then a vertical one, each rounded to bytes. Alpha is filtered as a fourth channel.
 */
export function resizeBicubic(src: RgbaImage, outW: number, outH: number): RgbaImage {
  const h = outW === src.width ? src : bicubicPass(src, outW, true);
  return outH === src.height ? h : bicubicPass(h, outH, false);
}

/** Python's round() of a non-negative half (torchvision's centre offsets). */
export const roundHalfEven = (v: number) => (v % 1 === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));

/**
 * torchvision's eval geometry for a `width`×`height` image: Resize(size) takes the shorter side to
 * `size` and truncates the longer one, CenterCrop(size) rounds its offsets.
 */
export function coverGeometry(width: number, height: number, size: number): { w: number; h: number; left: number; top: number } {
  const [w, h] = width <= height ? [size, Math.max(size, Math.trunc((size * height) / width))] : [Math.max(size, Math.trunc((size * width) / height)), size];
  return { w, h, left: roundHalfEven((w - size) / 2), top: roundHalfEven((h - size) / 2) };
}

/** The region (x, y, w, h) of an RGBA image. */
export function cropRgba(img: RgbaImage, x: number, y: number, w: number, h: number): RgbaImage {
  if (x === 0 && y === 0 && w === img.width && h === img.height) return img;
  const data = new Uint8Array(w * h * 4);
  for (let r = 0; r < h; r++) data.set(img.data.subarray(((y + r) * img.width + x) * 4, ((y + r) * img.width + x + w) * 4), r * w * 4);
  return { width: w, height: h, data };
}

/**
 * An image as evaluation sees it, in JavaScript (the browser page, `mode classify`): OpenCLIP's
 * eval transform by PIL's algorithm (shorter side to `size`, bicubic, centre crop), over white,
 * CLIP-normalised, CHW. `mode eval`'s loader does the same through libvips (`decodeImage` with
 * fit `cover`): equal when enlarging, within 2 levels when shrinking.
 */
export function evalImage(img: RgbaImage, size: number): Float32Array {
  const g = coverGeometry(img.width, img.height, size);
  return normalizeCHW(toFloat(cropRgba(resizeBicubic(img, g.w, g.h), g.left, g.top, size, size), [1, 1, 1]));
}
