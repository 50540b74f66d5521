import { rng } from '@mode/kernels';
import type { Layout } from './peer.js';

/** Seed every peer uses unless told otherwise: all peers see the same numbers for one shape. */
export const DEFAULT_SEED = 20261124;

/** CLIP's initial logit scale, exp(ln(1/0.07)): the InfoNCE ops multiply I·Tᵀ by it. */
export const INFO_NCE_SCALE = 1 / 0.07;

// The project's one seeded generator (mulberry32), so peers and kernels draw the same streams.
export { rng };

/** `n` uniform values in [-1, 1). */
export function uniform(n: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * next() - 1;
  return out;
}

/** Row-major shapes of A and B as stored for `layout` (batch-major when batch > 1). */
export function matmulShapes(m: number, n: number, k: number, layout: Layout, batch = 1): { a: number[]; b: number[]; c: number[] } {
  const lead = batch > 1 ? [batch] : [];
  return {
    a: [...lead, ...(layout === 'AtB' ? [k, m] : [m, k])],
    b: [...lead, ...(layout === 'ABt' ? [n, k] : [k, n])],
    c: [...lead, m, n],
  };
}

export function matmulInputs(m: number, n: number, k: number, layout: Layout, batch = 1, seed = DEFAULT_SEED) {
  const next = rng(seed);
  const shapes = matmulShapes(m, n, k, layout, batch);
  return { a: uniform(batch * m * k, next), b: uniform(batch * k * n, next), shapes };
}

/** Q, K, V: batchHeads × L × d each. */
export function attentionInputs(batchHeads: number, L: number, d: number, seed = DEFAULT_SEED) {
  const next = rng(seed);
  const size = batchHeads * L * d;
  return { q: uniform(size, next), k: uniform(size, next), v: uniform(size, next) };
}

/** Points x (n × d) and centroids c (k × d). */
export function kmeansInputs(n: number, k: number, d: number, seed = DEFAULT_SEED) {
  const next = rng(seed);
  return { x: uniform(n * d, next), c: uniform(k * d, next) };
}

/** Image embeddings (b × d) and text embeddings (m × d, m ≥ b), rows L2-normalised as CLIP's loss receives them. */
export function infoNCEInputs(b: number, m: number, d: number, seed = DEFAULT_SEED) {
  if (m < b) throw new RangeError(`infoNCE: m = ${m} text rows must be at least b = ${b} (row i's positive is text i)`);
  const next = rng(seed);
  return { img: normaliseRows(uniform(b * d, next), d), txt: normaliseRows(uniform(m * d, next), d) };
}

function normaliseRows(x: Float32Array, d: number): Float32Array {
  for (let r = 0; r < x.length; r += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r + j] * x[r + j];
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) x[r + j] *= inv;
  }
  return x;
}

/** L × L additive mask: 0 where key j ≤ query i, −1e9 above the diagonal (exp underflows to 0). */
export function causalBias(L: number): Float32Array {
  const out = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) out[i * L + j] = -1e9;
  return out;
}

/** b × m with ones at (i, i). */
export function diagonal(b: number, m: number): Float32Array {
  const out = new Float32Array(b * m);
  for (let i = 0; i < b; i++) out[i * m + i] = 1;
  return out;
}
