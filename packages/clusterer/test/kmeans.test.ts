import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import { checkAssignment, freshSeed, rng } from '@mode/kernels';
import { argsortFloat, balancedAssign, fitKmeans, kmeansPlusPlus, nearestCentre, rowNorms } from '@mode/clusterer';
import { Rng } from '@mode/data';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open({});
  (globalThis as { keepGpu?: Gpu }).keepGpu = gpu;
});
afterAll(() => gpu?.destroy());

/** `sizes[b]` points around each of the blob centres (spread 10, noise 0.05): far apart, tight. */
function blobs(sizes: number[], d: number, seed: number) {
  const r = rng(seed);
  const centres = Array.from({ length: sizes.length }, () => Array.from({ length: d }, () => 10 * (2 * r() - 1)));
  const labels: number[] = [];
  const x: number[] = [];
  // Interleaved, so no blob sits in one contiguous range.
  const left = [...sizes];
  while (left.some((n) => n > 0))
    for (let b = 0; b < sizes.length; b++) {
      if (!left[b]) continue;
      left[b]!--;
      labels.push(b);
      for (let j = 0; j < d; j++) x.push(centres[b]![j]! + 0.05 * (2 * r() - 1));
    }
  return { x: Float32Array.from(x), labels };
}

/** Whether the clusters are the blobs exactly, up to renaming. */
function samePartition(index: ArrayLike<number>, labels: number[]): boolean {
  const toCluster = new Map<number, number>();
  const toBlob = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const [b, c] = [labels[i]!, index[i]!];
    if ((toCluster.get(b) ?? c) !== c || (toBlob.get(c) ?? b) !== b) return false;
    toCluster.set(b, c);
    toBlob.set(c, b);
  }
  return true;
}

/**
 * float64 reference of the balanced rule exactly as balanced.ts states it: per round, each
 * unplaced point's T nearest centres with room (ties: lower centre index), all candidates sorted
 * by distance (ties: lower point, then nearer rank), placed greedily; repeat for what is left.
 */
function balancedReference(x: Float32Array, d: number, c: Float32Array) {
  const n = x.length / d;
  const k = c.length / d;
  const cap = Math.ceil(n / k);
  const t = Math.min(k, 8);
  const index = new Int32Array(n).fill(-1);
  const size = new Array<number>(k).fill(0);
  let cost = 0;
  let left = Array.from({ length: n }, (_, i) => i);
  while (left.length) {
    const cand: [number, number, number][] = []; // [distance, order in the candidate list, centre]
    const room = [...Array(k).keys()].filter((j) => size[j]! < cap);
    left.forEach((p, slot) => {
      const dist = room.map((j) => {
        let s = 0;
        for (let q = 0; q < d; q++) s += (x[p * d + q]! - c[j * d + q]!) ** 2;
        return [s, j] as const;
      });
      dist.sort((u, v) => u[0] - v[0] || u[1] - v[1]);
      dist.slice(0, t).forEach(([s, j], rank) => cand.push([s, slot * t + rank, j]));
    });
    cand.sort((u, v) => u[0] - v[0] || u[1] - v[1]);
    for (const [s, o, j] of cand) {
      const p = left[Math.floor(o / t)]!;
      if (index[p] === -1 && size[j]! < cap) {
        index[p] = j;
        size[j]!++;
        cost += s;
      }
    }
    left = left.filter((p) => index[p] === -1);
  }
  return { index, cost };
}

describe('k-means on the GPU', () => {
  it('recovers well-separated blobs exactly, plain and balanced', async () => {
    const seed = freshSeed();
    const { x, labels } = blobs(Array(8).fill(40), 16, seed);
    for (const balanced of [false, true]) {
      const r = await fitKmeans(gpu, [x], 16, { k: 8, seed, balanced });
      const a = await nearestCentre(gpu, x, 16, r.centres);
      expect(samePartition(a.index, labels), `seed ${seed} balanced ${balanced}`).toBe(true);
      expect([...r.sizes]).toEqual(Array(8).fill(40));
    }
  });

  it('the balanced variant keeps every cluster within ⌈N/K⌉, on blobs of very different sizes', async () => {
    const seed = freshSeed();
    const { x } = blobs([10, 30, 100, 263], 8, seed);
    const plain = await fitKmeans(gpu, [x], 8, { k: 4, seed });
    expect(Math.max(...plain.sizes)).toBeGreaterThan(200); // the plain fit follows the blobs
    const r = await fitKmeans(gpu, [x], 8, { k: 4, seed, balanced: true });
    for (const h of r.history) expect(h.maxSize).toBeLessThanOrEqual(Math.ceil(403 / 4));
    expect([...r.sizes].reduce((a, b) => a + b)).toBe(403);
  });

  it('balanced assignment agrees with a float64 reference of its rule (odd sizes)', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const [n, k, d] of [
      [97, 5, 7],
      [300, 13, 12],
      [64, 64, 4],
    ] as const) {
      // Eighths in [−1, 1]: every distance is exact in float32 whatever the matmul's summation
      // order, so the GPU must reproduce the rule exactly, ties (which this grid makes common) included.
      const grid = () => Math.round(16 * r() - 8) / 8;
      const x = Float32Array.from({ length: n * d }, grid);
      const c = Float32Array.from({ length: k * d }, grid);
      const buf = gpu.upload(c);
      const got = await balancedAssign(gpu, x, d, buf, rowNorms(c, d));
      gpu.release(buf);
      const ref = balancedReference(x, d, c);
      const sizes = new Array<number>(k).fill(0);
      for (const j of got.index) sizes[j]!++;
      expect(Math.max(...sizes), `n ${n} k ${k}`).toBeLessThanOrEqual(Math.ceil(n / k));
      expect([...got.index], `seed ${seed} n ${n} k ${k}`).toEqual([...ref.index]);
      let cost = 0;
      for (let i = 0; i < n; i++) cost += got.distance[i]!;
      expect(cost).toBe(ref.cost);
    }
  });

  it('the same seed gives the same centres bit for bit; another seed does not', async () => {
    const r = rng(5);
    const x = Float32Array.from({ length: 500 * 12 }, () => 2 * r() - 1);
    for (const balanced of [false, true]) {
      const a = await fitKmeans(gpu, [x], 12, { k: 10, seed: 3, balanced, maxIter: 8 });
      const b = await fitKmeans(gpu, [x], 12, { k: 10, seed: 3, balanced, maxIter: 8 });
      const c = await fitKmeans(gpu, [x], 12, { k: 10, seed: 4, balanced, maxIter: 8 });
      expect(Buffer.from(a.centres.buffer).equals(Buffer.from(b.centres.buffer))).toBe(true);
      expect(Buffer.from(a.centres.buffer).equals(Buffer.from(c.centres.buffer))).toBe(false);
    }
  });

  it('the plain objective never increases across an iteration', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const x = Float32Array.from({ length: 2000 * 8 }, () => 2 * r() - 1);
    for (const init of ['kmeans++', 'random'] as const) {
      const fit = await fitKmeans(gpu, [x], 8, { k: 32, seed, init, maxIter: 25, tol: 0 });
      expect(fit.history.length).toBe(25);
      for (let i = 1; i < fit.history.length; i++)
        expect(fit.history[i]!.inertia, `seed ${seed} ${init} iteration ${i}`).toBeLessThanOrEqual(fit.history[i - 1]!.inertia * (1 + 1e-6));
      expect(fit.history.at(-1)!.inertia).toBeLessThan(fit.history[0]!.inertia);
    }
  });

  it('stops when (Σ‖Δc‖)² falls under tol, and fits online chunk after chunk from warm centres', async () => {
    const { x } = blobs(Array(4).fill(50), 6, 11);
    const half = x.length / 2;
    const fit = await fitKmeans(gpu, [x.subarray(0, half), x.subarray(half)], 6, { k: 4, seed: 1 });
    const chunks = new Set(fit.history.map((h) => h.chunk));
    expect([...chunks]).toEqual([0, 1]);
    const second = fit.history.filter((h) => h.chunk === 1);
    expect(second.length).toBeLessThan(3); // warm start: already converged
    expect(second.at(-1)!.shift ** 2).toBeLessThan(1e-3);
  });

  it('re-seeds an empty cluster from a random point', async () => {
    const { x } = blobs([50, 50], 4, 2);
    const far = Float32Array.from([...x.subarray(0, 4), ...x.subarray(4, 8), 1e4, 1e4, 1e4, 1e4]);
    const fit = await fitKmeans(gpu, [x], 4, { k: 3, seed: 1, initial: far, maxIter: 5 });
    expect(fit.history[0]!.empty).toBe(1);
    expect(Math.max(...fit.centres.subarray(8))).toBeLessThan(100);
  });

  it('nearest-centre assignment matches a float64 argmin', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const [n, k, d] = [1001, 37, 20];
    const x = Float32Array.from({ length: n * d }, () => 2 * r() - 1);
    const c = Float32Array.from({ length: k * d }, () => 2 * r() - 1);
    const a = await nearestCentre(gpu, x, d, c);
    const check = checkAssignment(a, x, c, { n, k, d });
    expect(check.badIndex, `seed ${seed}`).toEqual([]);
    expect(check.badDistance).toEqual([]);
  });

  it('k-means++ picks distinct points of the data', () => {
    const { x } = blobs(Array(6).fill(20), 5, 9);
    const c = kmeansPlusPlus(x, 5, 6, new Rng(1));
    const rows = new Set<string>();
    for (let j = 0; j < 6; j++) rows.add(c.subarray(j * 5, j * 5 + 5).join(','));
    expect(rows.size).toBe(6);
  });

  it('argsortFloat is a stable sort by value', () => {
    const r = rng(freshSeed());
    const keys = Float32Array.from({ length: 5000 }, () => Math.floor(r() * 50) / 7);
    const got = [...argsortFloat(keys)];
    const want = [...keys.keys()].sort((a, b) => keys[a]! - keys[b]! || a - b);
    expect(got).toEqual(want);
  });

  it('refuses NaN points, K > N and ragged rows, naming the fix', async () => {
    const x = new Float32Array(40).fill(1);
    x[13] = NaN;
    await expect(fitKmeans(gpu, [x], 4, { k: 2 })).rejects.toThrow(/point 3 holds NaN or Inf\. Fix:/);
    await expect(fitKmeans(gpu, [new Float32Array(8)], 4, { k: 3 })).rejects.toThrow(/K = 3 clusters is more than the 2 points\. Fix: use --fine 2/);
    await expect(fitKmeans(gpu, [new Float32Array(10)], 4, { k: 1 })).rejects.toThrow(/10 values are not rows of d = 4/);
  });
});
