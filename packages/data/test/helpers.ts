import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePng, Rng } from '../src/index.js';

export const tmp = (name = 'data'): string => mkdtempSync(join(tmpdir(), `mode-${name}-`));

/** A small RGBA PNG with seeded noise over a gradient, so augmentations have something to move. */
export function testPng(seed: number, size = 16): Uint8Array {
  const rng = new Rng(seed);
  const px = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      px[i] = (x * 255) / size;
      px[i + 1] = (y * 255) / size;
      px[i + 2] = rng.int(256);
      px[i + 3] = x + y < 4 ? 0 : 255;
    }
  return encodePng(px, size, size, 4);
}
