/**
 * DeCLIP's image augmentations (the SimSiam/MoCo-v2 recipe DeCLIP uses for its two views):
 * random resized crop (scale 0.2–1, ratio 3/4–4/3) → colour jitter (p 0.8: brightness,
 * contrast, saturation 0.4, hue 0.1, in random order) → grayscale (p 0.2) → Gaussian blur
 * (p 0.5, σ 0.1–2 at 224 px, scaled with the output size) → horizontal flip (p 0.5).
 * Every random choice comes from the `Rng` passed in.
 */
import { resample, roundHalfEven, type FloatImage } from './image.js';
import type { Rng } from './rng.js';

export interface AugmentConfig {
  /** Area fraction of the crop, and aspect-ratio range (sampled log-uniformly). */
  scale: [number, number];
  ratio: [number, number];
  jitter: { p: number; brightness: number; contrast: number; saturation: number; hue: number };
  grayscale: number;
  /** σ range in pixels of a 224-pixel image; scaled by size / 224. */
  blur: { p: number; sigma: [number, number] };
  flip: number;
}

export const DECLIP_AUGMENT: AugmentConfig = {
  scale: [0.2, 1],
  ratio: [3 / 4, 4 / 3],
  jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
  grayscale: 0.2,
  blur: { p: 0.5, sigma: [0.1, 2] },
  flip: 0.5,
};

/**
 * torchvision's RandomResizedCrop box (`get_params`): 10 tries at a random box, then the centre
 * crop within the ratio range. Integer pixels, as torchvision's.
 */
export function cropBox(
  W: number,
  H: number,
  rng: Rng,
  scale: readonly [number, number] = [0.2, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): { x: number; y: number; w: number; h: number } {
  const area = W * H;
  const [lr0, lr1] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const r = Math.exp(rng.uniform(lr0, lr1));
    const w = Math.round(Math.sqrt(target * r));
    const h = Math.round(Math.sqrt(target / r));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const x = rng.int(W - w + 1);
      const y = rng.int(H - h + 1);
      return { x, y, w, h };
    }
  }
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < ratio[0]) h = Math.round(W / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(H * ratio[1]);
  return { x: roundHalfEven((W - w) / 2), y: roundHalfEven((H - h) / 2), w, h };
}

/** torchvision's RandomResizedCrop on a float image (DeCLIP's views): `cropBox`, then a resample to size². */
export function randomResizedCrop(
  img: FloatImage,
  size: number,
  rng: Rng,
  scale: [number, number] = [0.2, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): FloatImage {
  const b = cropBox(img.width, img.height, rng, scale, ratio);
  return resample(img, b.x, b.y, b.w, b.h, size, size);
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

export function adjustBrightness(img: FloatImage, f: number): void {
  const d = img.data;
  for (let i = 0; i < d.length; i++) d[i] = clamp01(d[i]! * f);
}

/** Blends towards the mean grey level of the image. */
export function adjustContrast(img: FloatImage, f: number): void {
  const d = img.data;
  let m = 0;
  for (let i = 0; i < d.length; i += 3) m += luma(d[i]!, d[i + 1]!, d[i + 2]!);
  m /= d.length / 3;
  for (let i = 0; i < d.length; i++) d[i] = clamp01(m + (d[i]! - m) * f);
}

/** Blends towards each pixel's own grey level. */
export function adjustSaturation(img: FloatImage, f: number): void {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    const g = luma(d[i]!, d[i + 1]!, d[i + 2]!);
    d[i] = clamp01(g + (d[i]! - g) * f);
    d[i + 1] = clamp01(g + (d[i + 1]! - g) * f);
    d[i + 2] = clamp01(g + (d[i + 2]! - g) * f);
  }
}

/** Rotates hue by `shift` turns (−0.5..0.5) through HSV. */
export function adjustHue(img: FloatImage, shift: number): void {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    const r = d[i]!;
    const g = d[i + 1]!;
    const b = d[i + 2]!;
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const c = max - min;
    if (c === 0) continue;
    let h = max === r ? ((g - b) / c) % 6 : max === g ? (b - r) / c + 2 : (r - g) / c + 4;
    h = h / 6 + shift;
    h -= Math.floor(h);
    const v = max;
    const s = c / max;
    const h6 = h * 6;
    const k = Math.floor(h6);
    const f = h6 - k;
    const p = v * (1 - s);
    const q = v * (1 - s * f);
    const t = v * (1 - s * (1 - f));
    const [nr, ng, nb] = [
      [v, t, p],
      [q, v, p],
      [p, v, t],
      [p, q, v],
      [t, p, v],
      [v, p, q],
    ][k % 6]!;
    d[i] = nr!;
    d[i + 1] = ng!;
    d[i + 2] = nb!;
  }
}

/** torchvision's ColorJitter: the four adjustments in a random order, each with a random factor. */
export function colorJitter(img: FloatImage, rng: Rng, cfg: AugmentConfig['jitter']): void {
  const ops = rng.shuffle([0, 1, 2, 3]);
  for (const op of ops) {
    if (op === 0 && cfg.brightness > 0) adjustBrightness(img, rng.uniform(Math.max(0, 1 - cfg.brightness), 1 + cfg.brightness));
    if (op === 1 && cfg.contrast > 0) adjustContrast(img, rng.uniform(Math.max(0, 1 - cfg.contrast), 1 + cfg.contrast));
    if (op === 2 && cfg.saturation > 0) adjustSaturation(img, rng.uniform(Math.max(0, 1 - cfg.saturation), 1 + cfg.saturation));
    if (op === 3 && cfg.hue > 0) adjustHue(img, rng.uniform(-cfg.hue, cfg.hue));
  }
}

export function grayscale(img: FloatImage): void {
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) d[i] = d[i + 1] = d[i + 2] = luma(d[i]!, d[i + 1]!, d[i + 2]!);
}

/** Separable Gaussian blur, radius ⌈3σ⌉, edges clamped. */
export function gaussianBlur(img: FloatImage, sigma: number): void {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float32Array(radius * 2 + 1);
  let total = 0;
  for (let i = -radius; i <= radius; i++) total += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i]! /= total;
  const { width: W, height: H, data: d } = img;
  const tmp = new Float32Array(d.length);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = -radius; k <= radius; k++) s += d[(y * W + Math.min(W - 1, Math.max(0, x + k))) * 3 + c]! * kernel[k + radius]!;
        tmp[(y * W + x) * 3 + c] = s;
      }
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = -radius; k <= radius; k++) s += tmp[(Math.min(H - 1, Math.max(0, y + k)) * W + x) * 3 + c]! * kernel[k + radius]!;
        d[(y * W + x) * 3 + c] = s;
      }
}

export function hflip(img: FloatImage): void {
  const { width: W, height: H, data: d } = img;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W >> 1; x++) {
      const a = (y * W + x) * 3;
      const b = (y * W + W - 1 - x) * 3;
      for (let c = 0; c < 3; c++) [d[a + c], d[b + c]] = [d[b + c]!, d[a + c]!];
    }
}

/** One augmented view of `img` at `size`×`size`, every choice drawn from `rng`. */
export function augmentView(img: FloatImage, size: number, rng: Rng, cfg: AugmentConfig = DECLIP_AUGMENT): FloatImage {
  const out = randomResizedCrop(img, size, rng, cfg.scale, cfg.ratio);
  if (rng.chance(cfg.jitter.p)) colorJitter(out, rng, cfg.jitter);
  if (rng.chance(cfg.grayscale)) grayscale(out);
  if (rng.chance(cfg.blur.p)) gaussianBlur(out, (rng.uniform(cfg.blur.sigma[0], cfg.blur.sigma[1]) * size) / 224);
  if (rng.chance(cfg.flip)) hflip(out);
  return out;
}
