/**
 * k-means on the GPU (MoDE §2 step 2): the fused assignment kernel (‖x‖² − 2x·c + ‖c‖², argmin,
 * no N×K buffer) and the fixed-order update, so memory is O(N + K·D) and a seed gives the same
 * centres bit for bit.
 *
 * - Initialisation: k-means++ (D² sampling, seeded) on a sample of at most max(4096, 8K) points of
 *   the first chunk, or K distinct random points.
 * - Lloyd iterations: assign (plain argmin, or the balanced rule of `balanced.ts`), then centres
 *   = means; a cluster left empty is re-seeded from a random point of the chunk.
 * - Online over chunks (the reference fits file after file): each chunk warm-starts from the
 *   centres so far and runs up to `maxIter` iterations, stopping when (Σ_k ‖Δc_k‖)² < `tol`.
 */
import { Rng } from '@mode/data';
import type { Gpu } from '@mode/gpu';
import { kmeansAssign, recordKmeansUpdate } from '@mode/kernels';
import { balancedAssign, rowNorms } from './balanced.js';
import { ClusterInputError } from './embeddings.js';

export interface FitOptions {
  k: number;
  /** Every cluster at most ⌈N/K⌉ points of its chunk. Default false. */
  balanced?: boolean;
  init?: 'kmeans++' | 'random';
  seed?: number;
  /** Iterations per chunk. Default 50. */
  maxIter?: number;
  /** Stop a chunk when (Σ‖Δc‖)² is below this. Default 1e-3. */
  tol?: number;
  /** Centres to start from (k×d) instead of initialising. */
  initial?: Float32Array;
  /** Called after each iteration. */
  onIteration?: (it: IterationReport) => void;
}

export interface IterationReport {
  chunk: number;
  iteration: number;
  /** Σ of squared distances to the assigned centres, before this iteration's update. */
  inertia: number;
  /** Σ_k ‖Δc_k‖ of this iteration's update. */
  shift: number;
  /** Clusters the update found empty (re-seeded). */
  empty: number;
  minSize: number;
  maxSize: number;
  seconds: number;
}

export interface FitResult {
  k: number;
  d: number;
  centres: Float32Array;
  history: IterationReport[];
  /** Cluster sizes of the last chunk's last assignment. */
  sizes: Uint32Array;
  /** The GPU buffer pool's peak live bytes during the fit. */
  peakBytes: number;
}

/** k-means++ on a seeded sample of the points: centres with probability ∝ D² to the nearest chosen one. */
export function kmeansPlusPlus(x: Float32Array, d: number, k: number, rng: Rng): Float32Array {
  const n = x.length / d;
  const m = Math.min(n, Math.max(4096, 8 * k));
  const sample = m === n ? Uint32Array.from({ length: n }, (_, i) => i) : sampleIndices(n, m, rng);
  const centres = new Float32Array(k * d);
  const best = new Float64Array(m).fill(Infinity);
  let c = sample[rng.int(m)]!;
  for (let j = 0; j < k; j++) {
    centres.set(x.subarray(c * d, (c + 1) * d), j * d);
    let total = 0;
    for (let i = 0; i < m; i++) {
      const p = sample[i]!;
      let s = 0;
      for (let q = 0; q < d; q++) s += (x[p * d + q]! - centres[j * d + q]!) ** 2;
      if (s < best[i]!) best[i] = s;
      total += best[i]!;
    }
    if (j === k - 1) break;
    // total = 0 (every sampled point is already a centre): the last one is taken; its cluster is re-seeded if empty.
    let r = rng.next() * total;
    let pick = m - 1;
    for (let i = 0; i < m; i++) {
      r -= best[i]!;
      if (r < 0) {
        pick = i;
        break;
      }
    }
    c = sample[pick]!;
  }
  return centres;
}

/** m distinct indices of 0…n−1, sorted (a partial Fisher–Yates). */
function sampleIndices(n: number, m: number, rng: Rng): Uint32Array {
  const a = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, m).sort();
}

/** Checks a chunk before it reaches the GPU: dimension, NaN/Inf, enough points for k. */
function checkChunk(x: Float32Array, d: number, k: number, chunk: number): void {
  if (x.length % d !== 0)
    throw new ClusterInputError(`k-means chunk ${chunk}: ${x.length} values are not rows of d = ${d}. Fix: pass vectors of one dimension.`);
  const n = x.length / d;
  if (chunk === 0 && k > n)
    throw new ClusterInputError(`k-means: K = ${k} clusters is more than the ${n} points. Fix: use --fine ${n} or fewer, or embed more captions.`);
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]!))
      throw new ClusterInputError(`k-means chunk ${chunk}: point ${Math.floor(i / d)} holds NaN or Inf. Fix: re-embed it or drop it.`);
}

/**
 * Fits k centres to the points, chunk after chunk (each chunk n×d, host memory; it is uploaded once
 * and freed before the next). Deterministic for a seed.
 */
export async function fitKmeans(gpu: Gpu, chunks: Iterable<Float32Array> | AsyncIterable<Float32Array>, d: number, o: FitOptions): Promise<FitResult> {
  const k = o.k;
  const rng = new Rng([o.seed ?? 0, 0x6b6d]);
  const maxIter = o.maxIter ?? 50;
  const tol = o.tol ?? 1e-3;
  let centres: Float32Array | null = o.initial ? Float32Array.from(o.initial) : null;
  if (centres && centres.length !== k * d) throw new RangeError(`k-means: initial centres hold ${centres.length} values, not ${k}×${d}`);
  const history: IterationReport[] = [];
  let sizes = new Uint32Array(k);
  gpu.pool.resetPeak();
  let chunk = 0;
  for await (const x of chunks) {
    checkChunk(x, d, k, chunk);
    const n = x.length / d;
    if (!centres) centres = o.init === 'random' ? randomCentres(x, d, k, rng) : kmeansPlusPlus(x, d, k, rng);
    const points = gpu.upload(x, 'k-means points');
    const index = gpu.buffer(4 * n, 'k-means index');
    const dist = gpu.buffer(4 * n, 'k-means distance');
    const c = gpu.buffer(4 * k * d, 'k-means centres');
    const next = gpu.buffer(4 * k * d, 'k-means new centres');
    const sums = gpu.buffer(4 * k * d, 'k-means sums');
    const counts = gpu.buffer(4 * k, 'k-means counts');
    try {
      for (let it = 0; it < maxIter; it++) {
        const t0 = performance.now();
        gpu.write(c, centres);
        let inertia = 0;
        if (o.balanced) {
          const a = await balancedAssign(gpu, x, d, c, rowNorms(centres, d));
          gpu.write(index, a.index);
          for (const v of a.distance) inertia += v;
        } else {
          await kmeansAssign(gpu, points, c, { index, distance: dist }, { n, k, d });
          for (const v of await gpu.read(dist, Float32Array, n)) inertia += v;
        }
        gpu.write(next, centres); // an empty cluster's row keeps its old centre until re-seeded
        await recordKmeansUpdate(gpu, points, index, { sums, counts, centres: next }, { n, k, d });
        const count = await gpu.read(counts, Uint32Array, k);
        const updated = await gpu.read(next, Float32Array, k * d);
        let empty = 0;
        for (let j = 0; j < k; j++) {
          if (count[j]) continue;
          empty++;
          const p = rng.int(n);
          updated.set(x.subarray(p * d, (p + 1) * d), j * d);
        }
        let shift = 0;
        for (let j = 0; j < k; j++) {
          let s = 0;
          for (let q = 0; q < d; q++) s += (updated[j * d + q]! - centres[j * d + q]!) ** 2;
          shift += Math.sqrt(s);
        }
        centres = updated;
        sizes = count;
        let minSize = Infinity;
        let maxSize = 0;
        for (const s of count) [minSize, maxSize] = [Math.min(minSize, s), Math.max(maxSize, s)];
        const report: IterationReport = { chunk, iteration: it, inertia, shift, empty, minSize, maxSize, seconds: (performance.now() - t0) / 1000 };
        history.push(report);
        o.onIteration?.(report);
        if (shift * shift < tol) break;
      }
    } finally {
      [points, index, dist, c, next, sums, counts].forEach((b) => gpu.release(b));
    }
    chunk++;
  }
  if (!centres) throw new ClusterInputError('k-means: no points (every chunk was empty). Fix: embed some captions first.');
  return { k, d, centres, history, sizes, peakBytes: gpu.pool.stats().peakLiveBytes };
}

/** k distinct points of the chunk, chosen by the seed. */
function randomCentres(x: Float32Array, d: number, k: number, rng: Rng): Float32Array {
  const n = x.length / d;
  const pick = sampleIndices(n, k, rng);
  const out = new Float32Array(k * d);
  pick.forEach((p, j) => out.set(x.subarray(p * d, (p + 1) * d), j * d));
  return out;
}

/** Per point, its nearest centre (plain argmin on the GPU, lowest index on float32 ties) and squared distance. */
export async function nearestCentre(gpu: Gpu, x: Float32Array, d: number, centres: Float32Array): Promise<{ index: Uint32Array; distance: Float32Array }> {
  const n = x.length / d;
  const k = centres.length / d;
  const points = gpu.upload(x, 'assign points');
  const c = gpu.upload(centres, 'assign centres');
  const index = gpu.buffer(4 * n, 'assign index');
  const distance = gpu.buffer(4 * n, 'assign distance');
  try {
    await kmeansAssign(gpu, points, c, { index, distance }, { n, k, d });
    return { index: await gpu.read(index, Uint32Array, n), distance: await gpu.read(distance, Float32Array, n) };
  } finally {
    [points, c, index, distance].forEach((b) => gpu.release(b));
  }
}
