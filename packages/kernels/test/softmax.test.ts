import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { freshSeed, nanArray, randomArray, relativeError, rng, softmax, softmaxReference } from '../src/index.js';

const seed = freshSeed();
console.log(`softmax tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

describe('softmax matches the float64 reference', () => {
  for (const [rows, n, scale, causal] of [
    [1, 1, 1, false],
    [3, 7, 0.5, false],
    [33, 127, 2, false],
    [14, 7, 1, true],
    [1000, 33, 0.125, true],
  ] as const) {
    it(`${rows}×${n} scale ${scale}${causal ? ' causal' : ''}`, async () => {
      const x = randomArray(rows * n, random, -5, 5);
      const [gx, gy] = [gpu.upload(x), gpu.upload(nanArray(rows * n))];
      await softmax(gpu, gx, gy, { rows, n, scale, causal });
      const out = await gpu.read(gy);
      [gx, gy].forEach((b) => gpu.release(b));
      expect(relativeError(out, softmaxReference(x, { rows, n, scale, causal }))).toBeLessThanOrEqual(1e-5);
    });
  }

  it('a row left unwritten fails the check', async () => {
    const x = randomArray(20, random);
    const [gx, gy] = [gpu.upload(x), gpu.upload(nanArray(20))];
    await softmax(gpu, gx, gy, { rows: 3, n: 5 });
    const out = await gpu.read(gy);
    [gx, gy].forEach((b) => gpu.release(b));
    expect(relativeError(out, softmaxReference(x, { rows: 4, n: 5 }))).toBe(Infinity);
  });
});
