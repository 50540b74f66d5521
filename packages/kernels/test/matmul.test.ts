import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { freshSeed, matmulNaive, matmulReference, nanArray, randomArray, relativeError, rng } from '../src/index.js';

const seed = freshSeed();
console.log(`matmul tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

async function run(m: number, n: number, k: number, dispatchRows = m) {
  const a = randomArray(m * k, random);
  const b = randomArray(k * n, random);
  const [ga, gb, gc] = [gpu.upload(a), gpu.upload(b), gpu.upload(nanArray(m * n))];
  await matmulNaive(gpu, ga, gb, gc, dispatchRows, n, k);
  const out = await gpu.read(gc);
  [ga, gb, gc].forEach((x) => gpu.release(x));
  return relativeError(out, matmulReference(a, b, m, n, k));
}

describe('matmul_naive matches the float64 reference', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 3],
    [3, 1, 7],
    [7, 33, 1],
    [33, 127, 7],
    [127, 9, 33],
    [64, 64, 64],
    [65, 63, 129],
    [200, 130, 1000],
  ];
  for (const [m, n, k] of shapes) {
    it(`${m}×${n}×${k}`, async () => {
      expect(await run(m, n, k)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('a missed row (NaN-poisoned output) fails the check', async () => {
    expect(await run(9, 9, 9, 8)).toBe(Infinity);
  });
});

describe('matmulReference', () => {
  it('agrees with a hand-computed product', () => {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
    expect([...matmulReference([1, 2, 3, 4], [5, 6, 7, 8], 2, 2, 2)]).toEqual([19, 22, 43, 50]);
  });
});
