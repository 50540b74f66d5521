import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  chooseInfoNCE,
  freshSeed,
  infoNCE,
  infoNCEReference,
  infoNCEUnsupported,
  INFONCE_VARIANTS,
  nanArray,
  randomArray,
  relativeError,
  rng,
  type InfoNCEProblem,
  type InfoNCEVariantName,
} from '../src/index.js';

const seed = freshSeed();
console.log(`infoNCE tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

function unitRows(a: Float32Array, d: number): Float32Array {
  for (let r = 0; r < a.length / d; r++) {
    const row = a.subarray(r * d, (r + 1) * d);
    const n = Math.hypot(...row);
    row.forEach((v, i) => (row[i] = v / n));
  }
  return a;
}

/** Random inputs, NaN-poisoned outputs; the loss alone when `backward` is false. */
async function run(variant: InfoNCEVariantName, p: InfoNCEProblem, logitScale: number, withTargets: boolean, backward = true, chunkColumns?: number) {
  // Unit rows, as CLIP's features are: unnormalised ones (|x·y| up to ~10) at scale 14 made a
  // 3-pair loss and its gradients vanish below f32's range on some seeds (seen: 1e-20).
  const x = unitRows(randomArray(p.b * p.d, random), p.d);
  const y = unitRows(randomArray(p.m * p.d, random), p.d);
  const targets = withTargets ? Uint32Array.from({ length: p.b }, () => Math.floor(random() * p.m)) : undefined;
  const g = {
    x: gpu.upload(x),
    y: gpu.upload(y),
    logitScale: gpu.upload(new Float32Array([logitScale])),
    targets: targets ? gpu.upload(targets) : undefined,
  };
  const out = {
    loss: gpu.upload(nanArray(2)),
    dx: backward ? gpu.upload(nanArray(p.b * p.d)) : undefined,
    dy: backward ? gpu.upload(nanArray(p.m * p.d)) : undefined,
  };
  await infoNCE(gpu, g, p, out, variant, { chunkColumns });
  const [loss, dLogitScale] = await gpu.read(out.loss);
  const ref = infoNCEReference(x, y, logitScale, p, targets);
  const errors: Record<string, number> = { loss: relativeError([loss!], [ref.loss]) };
  if (backward) {
    errors.dx = relativeError(await gpu.read(out.dx!), ref.dx);
    errors.dy = relativeError(await gpu.read(out.dy!), ref.dy);
    // ∂loss/∂logit_scale sums terms that cancel: near zero, float32 rounding is a large fraction of
    // it (seen: 1.3e-4 of a small value at b = 3). Measured against at least 0.05 (losses are O(1)).
    errors.dLogitScale = Math.abs(dLogitScale! - ref.dLogitScale) / Math.max(Math.abs(ref.dLogitScale), 0.05);
  } else {
    errors.dLogitScaleIsZero = dLogitScale === 0 ? 0 : Infinity;
  }
  [...Object.values(g), ...Object.values(out)].forEach((b) => b && gpu.release(b));
  return errors;
}

// Sizes at and just past the 16-row subgroup, 32-key block and 64-row workgroup edges; d a
// multiple of 64 (every variant) or odd (the portable one only).
const cases: [InfoNCEProblem, number, boolean][] = [
  [{ b: 1, m: 1, d: 64, symmetric: true }, 0.5, false],
  [{ b: 3, m: 3, d: 64, symmetric: true }, Math.log(1 / 0.07), false],
  [{ b: 17, m: 17, d: 128, symmetric: true }, 2, false],
  [{ b: 33, m: 33, d: 64, symmetric: true }, 2, false],
  [{ b: 127, m: 127, d: 64, symmetric: true }, 1, false],
  [{ b: 65, m: 65, d: 512, symmetric: true }, Math.log(1 / 0.07), false],
  [{ b: 545, m: 545, d: 64, symmetric: true }, 2, false], // past infonce_dy_sg's 512-row tiles
  [{ b: 3, m: 3, d: 7, symmetric: true }, 1, false],
  [{ b: 7, m: 33, d: 64, symmetric: false }, 1.5, true], // queries against more keys (gathered negatives)
  [{ b: 65, m: 3, d: 128, symmetric: false }, 0.1, true],
  [{ b: 1, m: 127, d: 64, symmetric: false }, 1, true],
  [{ b: 127, m: 33, d: 33, symmetric: false }, 1, true],
];

for (const variant of Object.keys(INFONCE_VARIANTS) as InfoNCEVariantName[]) {
  describe(`infoNCE variant ${variant} matches the float64 reference (loss and every gradient)`, () => {
    for (const [p, scale, withTargets] of cases) {
      it(`${p.symmetric ? 'symmetric' : 'one-directional'} b=${p.b} m=${p.m} d=${p.d} logit_scale=${scale.toFixed(2)}`, async (ctx) => {
        const why = infoNCEUnsupported(gpu, variant, p);
        if (why) return ctx.skip(why);
        // The chunked scheme in chunks of 32 columns: most cases cross chunk edges, the last chunk partial.
        const e = await run(variant, p, scale, withTargets, true, variant === 'sg_chunk' ? 32 : undefined);
        for (const [name, err] of Object.entries(e)) expect(err, name).toBeLessThanOrEqual(1e-4);
      });
    }

    it('default chunking, d = 512: matches float64', async (ctx) => {
      const p = { b: 97, m: 97, d: 512, symmetric: true };
      const why = infoNCEUnsupported(gpu, variant, p);
      if (why) return ctx.skip(why);
      const e = await run(variant, p, Math.log(100), false);
      for (const [name, err] of Object.entries(e)) expect(err, name).toBeLessThanOrEqual(1e-4);
    });

    it('the loss alone (no dx, dy): ∂loss/∂logit_scale is 0', async (ctx) => {
      const p = { b: 33, m: 33, d: 64, symmetric: true };
      const why = infoNCEUnsupported(gpu, variant, p);
      if (why) return ctx.skip(why);
      const e = await run(variant, p, 2, false, false);
      for (const [name, err] of Object.entries(e)) expect(err, name).toBeLessThanOrEqual(1e-4);
    });
  });
}

describe('infoNCE variants', () => {
  it('refuses a symmetric loss with b ≠ m', async () => {
    const g = { x: gpu.buffer(16), y: gpu.buffer(16), logitScale: gpu.buffer(4) };
    await expect(infoNCE(gpu, g, { b: 2, m: 3, d: 2, symmetric: true }, { loss: gpu.buffer(8) })).rejects.toThrow(/b \(2\) must equal m \(3\)/);
  });

  it('an unsupported variant is refused with its reason; the autotuned default is one that can run', async () => {
    const p = { b: 3, m: 3, d: 7, symmetric: true };
    const g = { x: gpu.buffer(4 * 21), y: gpu.buffer(4 * 21), logitScale: gpu.buffer(4) };
    for (const v of ['sg', 'sg_chunk'] as const)
      await expect(infoNCE(gpu, g, p, { loss: gpu.buffer(8) }, v)).rejects.toThrow(new RegExp(`infoNCE variant ${v}: .*(multiple of 64|subgroup)`));
    expect(['portable', 'tiled']).toContain(await chooseInfoNCE(gpu, p));
    const big = { b: 8, m: 8, d: 512, symmetric: true };
    expect(infoNCEUnsupported(gpu, await chooseInfoNCE(gpu, big), big)).toBeNull();
    await expect(infoNCE(gpu, g, big, { loss: gpu.buffer(8) }, 'portable', { chunkColumns: 48 })).rejects.toThrow(/multiple of 32, got 48/);
  });

  it('a wrong logit scale is caught (the check can fail)', async () => {
    const p = { b: 5, m: 5, d: 8, symmetric: true };
    const x = randomArray(40, random);
    const y = randomArray(40, random);
    const right = infoNCEReference(x, y, 1, p);
    const wrong = infoNCEReference(x, y, 1.01, p);
    expect(relativeError(Float32Array.from(wrong.dx), right.dx)).toBeGreaterThan(1e-4);
    expect(relativeError([wrong.loss], [right.loss])).toBeGreaterThan(1e-4);
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
