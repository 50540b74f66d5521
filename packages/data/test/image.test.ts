import { describe, expect, it } from 'vitest';
import {
  CLIP_MEAN,
  CLIP_STD,
  DECLIP_AUGMENT,
  Rng,
  adjustHue,
  augmentView,
  evalImage,
  decodePng,
  encodePng,
  grayscale,
  normalizeCHW,
  resample,
  resize,
  toBytes,
  toFloat,
  type FloatImage,
} from '../src/index.js';
import { testPng } from './helpers.js';

const img = (seed = 1, size = 24): FloatImage => toFloat(decodePng(testPng(seed, size)));

describe('image pipeline', () => {
  it('PNG encode → decode is lossless for grey, RGB and RGBA', () => {
    const rng = new Rng(3);
    for (const ch of [1, 3, 4] as const) {
      const px = Uint8Array.from({ length: 5 * 7 * ch }, () => rng.int(256));
      const back = decodePng(encodePng(px, 5, 7, ch));
      expect([back.width, back.height]).toEqual([5, 7]);
      for (let i = 0; i < 35; i++) {
        const rgba = back.data.subarray(i * 4, i * 4 + 4);
        if (ch === 1) expect([...rgba]).toEqual([px[i], px[i], px[i], 255]);
        if (ch === 3) expect([...rgba]).toEqual([px[i * 3], px[i * 3 + 1], px[i * 3 + 2], 255]);
        if (ch === 4) expect([...rgba]).toEqual([...px.subarray(i * 4, i * 4 + 4)]);
      }
    }
  });

  it('transparent pixels composite over the background', () => {
    const f = toFloat({ width: 1, height: 1, data: Uint8Array.of(0, 0, 0, 0) });
    expect([...f.data]).toEqual([1, 1, 1]);
    const g = toFloat({ width: 1, height: 1, data: Uint8Array.of(255, 0, 0, 255) }, [0, 0, 0]);
    expect([...g.data]).toEqual([1, 0, 0]);
  });

  it('resize: same size is the identity, a constant image stays constant, shrinking averages', () => {
    const a = img();
    expect(resize(a, 24, 24).data).toEqual(a.data);
    const flat: FloatImage = { width: 37, height: 23, data: new Float32Array(37 * 23 * 3).fill(0.25) };
    for (const v of resize(flat, 11, 64).data) expect(v).toBeCloseTo(0.25, 5);
    // A 1-pixel checkerboard shrunk by 2 is mid grey away from the edges (where taps renormalise).
    const cb: FloatImage = { width: 8, height: 8, data: new Float32Array(8 * 8 * 3) };
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) cb.data.fill((x + y) % 2, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
    const small = resize(cb, 4, 4);
    for (const [x, y] of [
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ])
      expect(small.data[(y! * 4 + x!) * 3]).toBeCloseTo(0.5, 5);
    // Cropping then resizing equals resampling the region.
    const r = resample(a, 4, 6, 12, 12, 12, 12);
    for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) expect(r.data[(y * 12 + x) * 3]).toBeCloseTo(a.data[((y + 6) * 24 + x + 4) * 3]!, 6);
  });

  it('the eval transform takes the middle square (torchvision geometry); normalisation writes CHW', () => {
    const wide = { width: 30, height: 10, data: new Uint8Array(30 * 10 * 4).fill(255) };
    for (let x = 0; x < 30; x++) for (let y = 0; y < 10; y++) if (x < 10 || x >= 20) wide.data[(y * 30 + x) * 4] = 0;
    const c = evalImage(wide, 10);
    const white = (1 - CLIP_MEAN[0]) / CLIP_STD[0];
    for (let i = 0; i < 100; i++) expect(c[i]).toBeCloseTo(white, 5);
    // Shrunk to 7 (21 × 7, offset 7): the edge columns see the dark sides through the bicubic taps.
    expect(evalImage(wide, 7)[0]).toBeLessThan(white - 0.1);
    const one: FloatImage = { width: 1, height: 2, data: Float32Array.of(1, 0, 0.5, 0, 1, 0.5) };
    const chw = normalizeCHW(one, undefined, 0, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
    expect([...chw]).toEqual([1, -1, -1, 1, 0, 0]);
  });

  it('DeCLIP augmentation is deterministic under a seed and differs across seeds', () => {
    const a = img(2, 32);
    const views = (seed: number) => [0, 1, 2, 3].map((v) => toBytes(augmentView(a, 24, new Rng([seed, v]), DECLIP_AUGMENT)));
    const x = views(42);
    const y = views(42);
    const z = views(43);
    x.forEach((v, i) => expect(Buffer.from(v).equals(Buffer.from(y[i]!))).toBe(true));
    expect(x.some((v, i) => !Buffer.from(v).equals(Buffer.from(z[i]!)))).toBe(true);
    expect(new Set(x.map((v) => Buffer.from(v).toString('base64'))).size).toBe(4); // the views differ from one another
    for (const v of x) expect(v.length).toBe(24 * 24 * 3);
  });

  it('each augmentation does what it says', () => {
    const a = img(4);
    const g = { ...a, data: a.data.slice() };
    grayscale(g);
    for (let i = 0; i < g.data.length; i += 3) expect(g.data[i]).toBe(g.data[i + 2]);
    const h = { ...a, data: a.data.slice() };
    adjustHue(h, 0);
    for (let i = 0; i < h.data.length; i++) expect(h.data[i]).toBeCloseTo(a.data[i]!, 5);
    adjustHue(h, 1 / 3); // red → green
    const red: FloatImage = { width: 1, height: 1, data: Float32Array.of(1, 0, 0) };
    adjustHue(red, 1 / 3);
    expect([...red.data].map((v) => Math.round(v * 1000) / 1000)).toEqual([0, 1, 0]);
    // Flip on: p = 1 and nothing else.
    const only = {
      ...DECLIP_AUGMENT,
      scale: [1, 1] as [number, number],
      ratio: [1, 1] as [number, number],
      jitter: { ...DECLIP_AUGMENT.jitter, p: 0 },
      grayscale: 0,
      blur: { p: 0, sigma: [1, 1] as [number, number] },
      flip: 1,
    };
    const f = augmentView(a, 24, new Rng(1), only);
    for (let y = 0; y < 24; y++) expect(f.data[y * 24 * 3]).toBeCloseTo(a.data[(y * 24 + 23) * 3]!, 5);
  });
});
