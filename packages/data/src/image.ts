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
const HALF = 2 ** (PRECISION_BITS - 1); // the rounding term, a small integer (ONE / 2 inside a loop would make the sums floats)

interface BicubicTaps {
  /** Per output pixel: its first input pixel, how many it reads, and their fixed-point weights (`stride` apart). */
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  stride: number;
}

/** PIL's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output pixel, its first input pixel and fixed-point weights. */
function bicubicTaps(inSize: number, outSize: number): BicubicTaps {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
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

/** One tap of weight 1 per pixel: an axis PIL leaves as it is goes through the same pass unchanged. */
function identityTaps(size: number): BicubicTaps {
  return { start: Int32Array.from({ length: size }, (_, i) => i), count: new Int32Array(size).fill(1), weights: new Int32Array(size).fill(ONE), stride: 1 };
}

/** PIL's rounding of a fixed-point sum to a byte. */
const byte = (acc: number) => {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** The model's input as the last pass writes it: planar floats at `offset`, each byte mapped through its channel's table ((v / 255 − mean) / std). */
interface Planar {
  out: Float32Array;
  offset: number;
  luts: readonly [Float32Array, Float32Array, Float32Array];
}

/**
 * One pass of PIL's 8-bit resampling along x (`horizontal`) or y, for output pixels [from, from + n)
 * of that axis: channels independent, 32-bit integer sums (exactly PIL's), rounded to bytes. RGB
 * or RGBA. `origin`: the first input row (vertical) `src` holds; `into`: where the bytes go (else
 * a new array). With `planar` (RGB, vertical), the bytes go straight into the model's input instead.
 */
function bicubicPass(src: RgbaImage, t: BicubicTaps, from: number, n: number, horizontal: boolean, origin = 0, into?: Uint8Array, planar?: Planar): RgbaImage {
  // Plain locals in the loops (no destructuring): V8 keeps them in registers.
  const W = src.width;
  const s = src.data;
  const ch = src.channels ?? 4;
  const oW = horizontal ? n : W;
  const oH = horizontal ? src.height : n;
  const data = planar ? new Uint8Array(0) : into ? into.subarray(0, oW * oH * ch) : new Uint8Array(oW * oH * ch);
  const { start, count, weights, stride } = t;
  const step = horizontal ? ch : W * ch;
  const out = planar?.out ?? new Float32Array(0);
  const [l0, l1, l2] = planar?.luts ?? [out, out, out];
  const plane = oW * oH;
  let o = 0;
  let q = planar?.offset ?? 0;
  for (let y = 0; y < oH; y++)
    for (let x = 0; x < oW; x++) {
      const i = (horizontal ? x : y) + from;
      const m = count[i]!;
      const wb = i * stride;
      let p = horizontal ? (y * W + start[i]! - origin) * ch : ((start[i]! - origin) * W + x) * ch;
      let a = HALF;
      let b = HALF;
      let c = HALF;
      let d = HALF;
      // Two copies of the tap loop: a channel test inside it costs a third of the pass.
      if (ch === 3)
        for (let k = 0; k < m; k++, p += step) {
          const w = weights[wb + k]!;
          a = (a + Math.imul(s[p]!, w)) | 0;
          b = (b + Math.imul(s[p + 1]!, w)) | 0;
          c = (c + Math.imul(s[p + 2]!, w)) | 0;
        }
      else
        for (let k = 0; k < m; k++, p += step) {
          const w = weights[wb + k]!;
          a = (a + Math.imul(s[p]!, w)) | 0;
          b = (b + Math.imul(s[p + 1]!, w)) | 0;
          c = (c + Math.imul(s[p + 2]!, w)) | 0;
          d = (d + Math.imul(s[p + 3]!, w)) | 0;
        }
      if (planar) {
        out[q] = l0[byte(a)]!;
        out[q + plane] = l1[byte(b)]!;
        out[q + 2 * plane] = l2[byte(c)]!;
        q++;
        continue;
      }
      data[o++] = byte(a);
      data[o++] = byte(b);
      data[o++] = byte(c);
      if (ch === 4) data[o++] = byte(d);
    }
  return { width: oW, height: oH, data, ...(ch === 3 ? { channels: 3 as const } : {}) };
}

/** A window of the resized image: output columns [x, x + w), rows [y, y + h). */
export interface Window {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Both passes for `win` of the resized image; only the source rows its vertical taps read are filtered horizontally. */
/** Taps by (input size, output size): training crops repeat a few dozen sizes, so each is computed once. */
const tapsCache = new Map<number, BicubicTaps>();
function tapsFor(inSize: number, outSize: number): BicubicTaps {
  const key = inSize * 65536 + outSize;
  let t = tapsCache.get(key);
  if (!t) {
    if (tapsCache.size >= 512) tapsCache.clear();
    t = inSize === outSize ? identityTaps(outSize) : bicubicTaps(inSize, outSize);
    tapsCache.set(key, t);
  }
  return t;
}

/** The horizontal pass's output between the passes, reused: a fresh one would cost its pages every image. */
let between = new Uint8Array(0);

function resizeWindow(src: RgbaImage, outW: number, outH: number, win: Window, planar?: Planar): RgbaImage {
  const tx = tapsFor(src.width, outW);
  const ty = tapsFor(src.height, outH);
  let [r0, r1] = [Infinity, 0];
  for (let j = win.y; j < win.y + win.h; j++) [r0, r1] = [Math.min(r0, ty.start[j]!), Math.max(r1, ty.start[j]! + ty.count[j]!)];
  const ch = src.channels ?? 4;
  const band = { ...src, height: r1 - r0, data: src.data.subarray(r0 * src.width * ch, r1 * src.width * ch) };
  if (between.length < band.height * win.w * ch) between = new Uint8Array(band.height * win.w * ch);
  const rows = bicubicPass(band, tx, win.x, win.w, true, 0, between);
  return bicubicPass(rows, ty, win.y, win.h, false, r0, undefined, planar);
}

/**
 * PIL's `Image.resize(size, BICUBIC)` on 8-bit RGB or RGBA (what torchvision's Resize and
 * RandomResizedCrop run on PIL images), bit for bit: antialiased when shrinking, fixed-point
 * weights, a horizontal pass then a vertical one, each rounded to bytes; alpha filtered as a
 * fourth channel. `window` keeps part of the result (a centre crop), computing only that part.
 */
export function resizeBicubic(src: RgbaImage, outW: number, outH: number, window: Window = { x: 0, y: 0, w: outW, h: outH }): RgbaImage {
  return resizeWindow(src, outW, outH, window);
}

/**
 * `resizeBicubic` and `toCHW` in one: the window of the resized image written into `out` at
 * `offset` as the model's input. An RGB image never exists as resized bytes (the vertical pass
 * writes floats); an RGBA one is composited over `background` after resizing, as PIL's would be.
 */
export function resizeToCHW(
  src: RgbaImage,
  outW: number,
  outH: number,
  window: Window,
  background: readonly [number, number, number],
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  offset: number,
): Float32Array {
  if (src.channels !== 3) return toCHW(resizeWindow(src, outW, outH, window), background, mean, std, out, offset);
  resizeWindow(src, outW, outH, window, { out, offset, luts: normalisation(mean, std) });
  return out;
}

let lastLuts: { key: string; luts: Planar['luts'] } | undefined;

/** Per channel, each byte's normalised value, as toCHW computes it; kept for the next image (a loader uses one mean and std). */
function normalisation(mean: readonly number[], std: readonly number[]): Planar['luts'] {
  const key = `${mean.join()}/${std.join()}`;
  if (lastLuts?.key !== key) {
    const lut = (c: number) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - mean[c]!) * (1 / std[c]!));
    lastLuts = { key, luts: [lut(0), lut(1), lut(2)] };
  }
  return lastLuts.luts;
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

/**
 * An image as evaluation sees it, in JavaScript (the browser page, `mode classify`): OpenCLIP's
 * eval transform by PIL's algorithm (shorter side to `size`, bicubic, centre crop), over white,
 * CLIP-normalised, CHW. `mode eval`'s loader does the same through libvips (`decodeImage` with
 * fit `cover`): equal when enlarging, within 2 levels when shrinking.
 */
export function evalImage(img: RgbaImage, size: number): Float32Array {
  const g = coverGeometry(img.width, img.height, size);
  return normalizeCHW(toFloat(resizeBicubic(img, g.w, g.h, { x: g.left, y: g.top, w: size, h: size }), [1, 1, 1]));
}
