import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { elementwise, elementwiseReference, ELEMENTWISE_OPS, freshSeed, nanArray, randomArray, relativeError, rng, type ElementwiseOp } from '../src/index.js';

const seed = freshSeed();
console.log(`elementwise tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

describe('elementwise matches the float64 reference', () => {
  for (const op of Object.keys(ELEMENTWISE_OPS) as ElementwiseOp[]) {
    for (const n of [1, 3, 255, 256, 257, 1000, 65537]) {
      it(`${op} n=${n}`, async () => {
        const a = randomArray(n, random);
        const b = op === 'div' ? randomArray(n, random, 0.5, 2) : randomArray(n, random);
        const [ga, gb, gout] = [gpu.upload(a), gpu.upload(b), gpu.upload(nanArray(n))];
        await elementwise(gpu, op, ga, gb, gout, n);
        const out = await gpu.read(gout);
        [ga, gb, gout].forEach((x) => gpu.release(x));
        expect(relativeError(out, elementwiseReference(op, a, b))).toBeLessThanOrEqual(1e-6);
      });
    }
  }

  it('covers n past 65535 workgroups (2-D grid)', async () => {
    const n = 65535 * 256 + 3;
    const a = randomArray(n, random);
    const [ga, gout] = [gpu.upload(a), gpu.upload(nanArray(n))];
    await elementwise(gpu, 'add', ga, ga, gout, n);
    const out = await gpu.read(gout);
    [ga, gout].forEach((x) => gpu.release(x));
    expect(out[n - 1]).toBe(2 * a[n - 1]!);
    expect(relativeError(out, elementwiseReference('add', a, a))).toBe(0);
  });

  it('an unwritten (NaN-poisoned) element fails the check', async () => {
    const n = 300;
    const a = randomArray(n, random);
    const [ga, gout] = [gpu.upload(a), gpu.upload(nanArray(n))];
    await elementwise(gpu, 'add', ga, ga, gout, n - 1); // one short
    const out = await gpu.read(gout);
    [ga, gout].forEach((x) => gpu.release(x));
    expect(relativeError(out, elementwiseReference('add', a, a))).toBe(Infinity);
  });
});
