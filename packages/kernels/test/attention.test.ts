import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  ATTENTION_VARIANTS,
  attentionBackward,
  attentionBackwardReference,
  attentionForward,
  attentionReference,
  Autotuner,
  chooseAttention,
  freshSeed,
  nanArray,
  randomArray,
  relativeError,
  rng,
  type AttentionProblem,
  type AttentionVariantName,
} from '../src/index.js';

const seed = freshSeed();
console.log(`attention tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

type Case = AttentionProblem & { padded?: number };

/** Random inputs, a key-padding mask that hides the last `padded` keys of odd batch items, NaN-poisoned outputs. */
async function run(variant: AttentionVariantName, c: Case, backward: boolean) {
  const lk = c.lk ?? c.lq;
  const [q, k, v, dO] = [c.bh * c.lq * c.d, c.bh * lk * c.d, c.bh * lk * c.d, c.bh * c.lq * c.d].map((n) => randomArray(n, random, -2, 2));
  const batches = c.bh / (c.heads ?? 1);
  const maskValues =
    c.padded !== undefined
      ? Uint32Array.from({ length: batches * lk }, (_, i) => (Math.floor(i / lk) % 2 === 1 && i % lk >= lk - c.padded! ? 0 : 1))
      : undefined;
  const p: AttentionProblem & { maskValues?: Uint32Array } = { ...c, maskValues };
  const g = {
    q: gpu.upload(q!),
    k: gpu.upload(k!),
    v: gpu.upload(v!),
    dO: gpu.upload(dO!),
    o: gpu.upload(nanArray(c.bh * c.lq * c.d)),
    lse: gpu.upload(nanArray(c.bh * c.lq)),
    dQ: gpu.upload(nanArray(c.bh * c.lq * c.d)),
    dK: gpu.upload(nanArray(c.bh * lk * c.d)),
    dV: gpu.upload(nanArray(c.bh * lk * c.d)),
  };
  const mask = maskValues ? gpu.upload(maskValues) : undefined;
  const gp = { ...c, mask };
  await attentionForward(gpu, g.q, g.k, g.v, g.o, g.lse, gp, variant);
  if (backward) await attentionBackward(gpu, g, gp, variant);
  const ref = attentionReference(q!, k!, v!, p);
  const errors: Record<string, number> = {
    o: relativeError(await gpu.read(g.o), ref.o),
    lse: relativeError(await gpu.read(g.lse), ref.lse),
  };
  if (backward) {
    const b = attentionBackwardReference(q!, k!, v!, dO!, p);
    errors.dq = relativeError(await gpu.read(g.dQ), b.dq);
    errors.dk = relativeError(await gpu.read(g.dK), b.dk);
    errors.dv = relativeError(await gpu.read(g.dV), b.dv);
  }
  [...Object.values(g), ...(mask ? [mask] : [])].forEach((x) => gpu.release(x));
  return errors;
}

const cases: Case[] = [
  { bh: 1, lq: 1, d: 1 },
  { bh: 2, lq: 3, d: 7 },
  { bh: 1, lq: 33, lk: 7, d: 16 },
  { bh: 3, lq: 7, lk: 33, d: 3, causal: true },
  { bh: 2, lq: 65, d: 64, causal: true },
  { bh: 4, heads: 2, lq: 33, d: 32, padded: 5 },
  { bh: 2, heads: 1, lq: 17, d: 8, causal: true, padded: 3 },
  { bh: 1, lq: 127, d: 64 },
  // d = 100: 20-key tiles in the tiled variant, the last one partial.
  { bh: 1, lq: 70, lk: 45, d: 100, causal: true },
];

for (const variant of Object.keys(ATTENTION_VARIANTS) as AttentionVariantName[]) {
  describe(`attention variant ${variant}`, () => {
    for (const c of cases) {
      const label = `bh=${c.bh} lq=${c.lq} lk=${c.lk ?? c.lq} d=${c.d}${c.causal ? ' causal' : ''}${c.padded !== undefined ? ` mask(${c.padded} padded)` : ''}`;
      it(`${label}: forward and backward match float64`, async (ctx) => {
        const why = ATTENTION_VARIANTS[variant].unsupported(gpu, c);
        if (why) return ctx.skip(why);
        const e = await run(variant, c, true);
        for (const [name, err] of Object.entries(e)) expect(err, name).toBeLessThanOrEqual(1e-4);
      });
    }

    it('a row whose keys are all padding gives O = 0 and LSE = -inf', async () => {
      const c: Case = { bh: 2, lq: 4, d: 32, padded: 4 }; // batch item 1: every key padded
      const e = await run(variant, c, true);
      expect(e.o).toBeLessThanOrEqual(1e-4);
      expect(e.dk).toBeLessThanOrEqual(1e-4);
    });
  });
}

describe('attention checks can fail', () => {
  it('the reference softmax rows sum to one, and a wrong scale is caught', async () => {
    const p = { bh: 1, lq: 5, d: 4 };
    const [q, k, v] = [0, 1, 2].map(() => randomArray(20, random));
    const { probs } = attentionReference(q!, k!, v!, p);
    for (let i = 0; i < 5; i++) expect(probs.slice(i * 5, i * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const right = attentionReference(q!, k!, v!, p).o;
    const wrong = attentionReference(q!, k!, v!, { ...p, scale: 0.9 }).o;
    expect(relativeError(Float32Array.from(wrong), right)).toBeGreaterThan(1e-4);
  });
});

describe('attention autotuning', () => {
  it('picks a variant that can run the problem, and reads it back from the cache', async () => {
    const tuner = new Autotuner(join(mkdtempSync(join(tmpdir(), 'mode-tune-')), 'cache.json'));
    // d = 100: the subgroup variant (d 32 or 64) cannot run it.
    const p = { bh: 2, lq: 70, lk: 45, d: 100, causal: true };
    const chosen = await chooseAttention(gpu, p, tuner);
    expect(['portable', 'tiled']).toContain(chosen);
    expect(tuner.log.at(-1)).toMatchObject({ variant: chosen, cached: false, skipped: [expect.stringMatching(/^sg: /)] });
    expect(await chooseAttention(gpu, p, tuner)).toBe(chosen);
    const q = { bh: 2, lq: 64, d: 64 };
    expect(ATTENTION_VARIANTS[await chooseAttention(gpu, q, tuner)].unsupported(gpu, q)).toBeNull();
  });
});
