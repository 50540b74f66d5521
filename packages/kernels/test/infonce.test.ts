import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { freshSeed, infoNCE, infoNCEReference, nanArray, randomArray, relativeError, rng, type InfoNCEProblem } from '../src/index.js';

const seed = freshSeed();
console.log(`infoNCE tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

async function run(p: InfoNCEProblem, logitScale: number, withTargets = false) {
  const x = randomArray(p.b * p.d, random);
  const y = randomArray(p.m * p.d, random);
  const targets = withTargets ? Uint32Array.from({ length: p.b }, () => Math.floor(random() * p.m)) : undefined;
  const g = {
    x: gpu.upload(x),
    y: gpu.upload(y),
    logitScale: gpu.upload(new Float32Array([logitScale])),
    targets: targets ? gpu.upload(targets) : undefined,
  };
  const out = { loss: gpu.upload(nanArray(2)), dx: gpu.upload(nanArray(p.b * p.d)), dy: gpu.upload(nanArray(p.m * p.d)) };
  await infoNCE(gpu, g, p, out);
  const [loss, dLogitScale] = await gpu.read(out.loss);
  const ref = infoNCEReference(x, y, logitScale, p, targets);
  const errors = {
    loss: relativeError([loss!], [ref.loss]),
    dx: relativeError(await gpu.read(out.dx), ref.dx),
    dy: relativeError(await gpu.read(out.dy), ref.dy),
    dLogitScale: relativeError([dLogitScale!], [ref.dLogitScale]),
  };
  [...Object.values(g), ...Object.values(out)].forEach((b) => b && gpu.release(b));
  return errors;
}

describe('infoNCE matches the float64 reference (loss and every gradient)', () => {
  const cases: [InfoNCEProblem, number, boolean][] = [
    [{ b: 1, m: 1, d: 1, symmetric: true }, 0.5, false],
    [{ b: 3, m: 3, d: 7, symmetric: true }, Math.log(1 / 0.07), false],
    [{ b: 33, m: 33, d: 64, symmetric: true }, 2, false],
    [{ b: 127, m: 127, d: 33, symmetric: true }, 1, false],
    [{ b: 7, m: 33, d: 16, symmetric: false }, 1.5, true], // queries against more keys (gathered negatives)
    [{ b: 65, m: 3, d: 5, symmetric: false }, 0.1, true],
  ];
  for (const [p, scale, withTargets] of cases) {
    it(`${p.symmetric ? 'symmetric' : 'one-directional'} b=${p.b} m=${p.m} d=${p.d} logit_scale=${scale.toFixed(2)}`, async () => {
      const e = await run(p, scale, withTargets);
      for (const [name, err] of Object.entries(e)) expect(err, name).toBeLessThanOrEqual(1e-4);
    });
  }

  it('refuses a symmetric loss with b ≠ m', async () => {
    const g = { x: gpu.buffer(16), y: gpu.buffer(16), logitScale: gpu.buffer(4) };
    await expect(infoNCE(gpu, g, { b: 2, m: 3, d: 2, symmetric: true }, { loss: gpu.buffer(8) })).rejects.toThrow(/b \(2\) must equal m \(3\)/);
  });
});

describe('the reference itself', () => {
  it('agrees with central finite differences of its own loss', () => {
    for (const p of [
      { b: 4, m: 4, d: 3, symmetric: true },
      { b: 3, m: 5, d: 2, symmetric: false },
    ]) {
      const x = Array.from(randomArray(p.b * p.d, random));
      const y = Array.from(randomArray(p.m * p.d, random));
      const t = [4, 0, 2];
      const ref = infoNCEReference(x, y, 0.7, p, t);
      const h = 1e-6;
      const fd = (f: (e: number) => number) => (f(h) - f(-h)) / (2 * h);
      for (let i = 0; i < x.length; i++) {
        const num = fd(
          (e) =>
            infoNCEReference(
              x.map((v, k) => (k === i ? v + e : v)),
              y,
              0.7,
              p,
              t,
            ).loss,
        );
        expect(ref.dx[i]).toBeCloseTo(num, 6);
      }
      for (let j = 0; j < y.length; j++) {
        const num = fd(
          (e) =>
            infoNCEReference(
              x,
              y.map((v, k) => (k === j ? v + e : v)),
              0.7,
              p,
              t,
            ).loss,
        );
        expect(ref.dy[j]).toBeCloseTo(num, 6);
      }
      expect(ref.dLogitScale).toBeCloseTo(
        fd((e) => infoNCEReference(x, y, 0.7 + e, p, t).loss),
        6,
      );
    }
  });

  it('a perfectly aligned batch has a small loss, a shuffled one a large loss', () => {
    const p = { b: 8, m: 8, d: 8, symmetric: true };
    const eye = Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 1 : 0));
    const shifted = Array.from({ length: 64 }, (_, i) => (i % 8 === (Math.floor(i / 8) + 1) % 8 ? 1 : 0));
    expect(infoNCEReference(eye, eye, Math.log(100), p).loss).toBeLessThan(1e-3);
    expect(infoNCEReference(eye, shifted, Math.log(100), p).loss).toBeGreaterThan(50);
  });
});
