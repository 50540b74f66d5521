import { afterAll, beforeAll, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { freshSeed, nanArray, randomArray, relativeError, rng, strided, stridedReference } from '../src/index.js';

// strided's other cases are in autograd-ops.test.ts; this one needs a large n of its own.
const seed = freshSeed();
console.log(`strided tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

it('strided covers n past 65535 workgroups (2-D grid)', async () => {
  const n = 65535 * 256 + 3;
  const a = randomArray(n, random);
  const [ga, gout] = [gpu.upload(a), gpu.upload(nanArray(n))];
  const p = { shape: [n], a: { strides: [1] }, out: { strides: [1] } };
  await strided(gpu, 'add', ga, ga, gout, p);
  const out = await gpu.read(gout);
  [ga, gout].forEach((x) => gpu.release(x));
  expect(out[n - 1]).toBe(2 * a[n - 1]!);
  expect(relativeError(out, stridedReference('add', a, a, new Float64Array(n), p))).toBe(0);
});
