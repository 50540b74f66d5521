import { describe, expect, it } from 'vitest';
import { entryProbabilities, keepAtLoad, keepPair, keepProbability, pairUniform, rng } from '@mode/curator';

const seed = Number(process.env.MODE_SEED ?? 7);

describe('balancing (algorithms.md §1)', () => {
  it('p_e = t / max(count_e, t): tail entries 1, head entries t/count; t = ∞ gives 1', () => {
    const counts = [0, 1, 19_999, 20_000, 20_001, 40_000, 1e9];
    const p = entryProbabilities(counts, 20_000);
    expect(Array.from(p)).toEqual([1, 1, 1, 1, 20_000 / 20_001, 0.5, 2e-5]);
    expect(Array.from(entryProbabilities(counts, Infinity))).toEqual(counts.map(() => 1));
    expect(() => entryProbabilities(counts, 0)).toThrow(RangeError);
  });

  it('keep probability is 1 − ∏(1 − p_e); 0 without a match; 1 with any tail entry', () => {
    const p = Float64Array.from([0.5, 0.25, 0.1, 1]);
    expect(keepProbability([], 0, p)).toBe(0);
    expect(keepProbability([0], 1, p)).toBe(0.5);
    expect(keepProbability([0, 1], 2, p)).toBeCloseTo(1 - 0.5 * 0.75, 15);
    expect(keepProbability([0, 1, 2], 3, p)).toBeCloseTo(1 - 0.5 * 0.75 * 0.9, 15);
    expect(keepProbability([2, 3], 2, p)).toBe(1);
    // matches the closed form on random pairs
    const r = rng(seed);
    const q = Float64Array.from({ length: 100 }, () => r());
    for (let k = 0; k < 1000; k++) {
      const ids = Array.from({ length: 1 + Math.floor(r() * 6) }, () => Math.floor(r() * 100));
      const closed = 1 - ids.reduce((a, e) => a * (1 - q[e]!), 1);
      expect(keepProbability(ids, ids.length, q)).toBeCloseTo(closed, 12);
    }
  });

  it('the per-pair draw is uniform and depends only on (seed, shard, position)', () => {
    const n = 100_000;
    const bins = new Array(10).fill(0);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = pairUniform(seed, 12345, i * 97);
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
      sum += u;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    const chi2 = bins.reduce((a, b) => a + (b - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(33.7); // 9 d.o.f., p = 1e-4
    expect(pairUniform(seed, 1, 2)).toBe(pairUniform(seed, 1, 2));
    expect(pairUniform(seed, 1, 2)).not.toBe(pairUniform(seed + 1, 1, 2));
    expect(pairUniform(seed, 1, 2 ** 40)).not.toBe(pairUniform(seed, 1, 2 ** 40 + 2 ** 33));
  });

  it('sampling over 1e5 pairs keeps the expected number within tolerance', () => {
    // Pairs with 1–4 matched entries drawn from a long-tailed pool of counts.
    const r = rng(seed + 1);
    const counts = Array.from({ length: 500 }, (_, e) => Math.round(200_000 / (e + 1)));
    const p = entryProbabilities(counts, 2_000);
    let expected = 0;
    let variance = 0;
    let kept = 0;
    let keptReference = 0;
    const ref = rng(seed + 2);
    for (let i = 0; i < 100_000; i++) {
      const k = 1 + Math.floor(r() * 4);
      const ids = Array.from({ length: k }, () => Math.floor(r() ** 3 * 500));
      const prob = keepProbability(ids, k, p);
      expected += prob;
      variance += prob * (1 - prob);
      if (keepPair(prob, seed, 99, i)) kept++;
      // the reference's formulation: an independent Bernoulli(p_e) per matched entry
      if (ids.some((e) => ref() < p[e]!)) keptReference++;
    }
    const tol = 5 * Math.sqrt(variance);
    expect(Math.abs(kept - expected)).toBeLessThan(tol);
    expect(Math.abs(keptReference - expected)).toBeLessThan(tol);
  });

  it('single-entry pairs: each entry keeps min(count, t) in expectation (the closed form)', () => {
    const t = 1000;
    for (const count of [10, 999, 1000, 5000, 40_000]) {
      const p = entryProbabilities([count], t);
      let kept = 0;
      for (let i = 0; i < count; i++) if (keepPair(keepProbability([0], 1, p), seed, count, i)) kept++;
      const want = Math.min(count, t);
      const sd = Math.sqrt(count * p[0]! * (1 - p[0]!));
      expect(Math.abs(kept - want)).toBeLessThanOrEqual(5 * sd);
    }
  });

  it('is reproducible from the seed; t = ∞ keeps every matched pair; load-time draws differ per epoch', () => {
    const draws = (s: number) => Array.from({ length: 1000 }, (_, i) => keepPair(0.3, s, 5, i));
    expect(draws(1)).toEqual(draws(1));
    expect(draws(1)).not.toEqual(draws(2));
    const p = entryProbabilities([1e9, 5], Infinity);
    for (let i = 0; i < 1000; i++) expect(keepPair(keepProbability([0], 1, p), seed, 1, i)).toBe(true);
    const e0 = Array.from({ length: 1000 }, (_, i) => keepAtLoad(0.3, seed, 0, 5, i));
    const e1 = Array.from({ length: 1000 }, (_, i) => keepAtLoad(0.3, seed, 1, 5, i));
    expect(e0).not.toEqual(e1);
    expect(Math.abs(e0.filter(Boolean).length - 300)).toBeLessThan(75);
  });
});
