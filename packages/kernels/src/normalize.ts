import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/**
 * Normalisation of each line along the middle axis of an [outer, len, inner] view
 * (layer norm: [rows, C, 1]; batch norm: [1, N, C]; L2 over the last axis: [rows, d, 1]).
 * `standardize`: y = (x − mean)·rstd with rstd = 1/√(var + eps), biased variance;
 * `l2`: y = x / max(‖x‖, eps).
 */
export interface NormalizeProblem {
  outer: number;
  len: number;
  inner: number;
  mode: 'standardize' | 'l2';
  eps: number;
}

const MODES = { standardize: 0, l2: 1 } as const;
const lines = (p: NormalizeProblem) => p.outer * p.inner;

/**
 * Records the forward: y, and per line `mean` and `rstd` (l2: rstd = 1/max(‖x‖, eps) and
 * mean = 1 where the norm was clamped, else 0), both outer·inner floats.
 */
export async function normalize(gpu: Gpu, x: GPUBuffer, out: { y: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer }, p: NormalizeProblem): Promise<void> {
  const kernel = await gpu.kernel('normalize', { MODE: MODES[p.mode] });
  gpu.dispatch(kernel, {
    bindings: { x, y: out.y, mean: out.mean, rstd: out.rstd },
    uniforms: { outer: p.outer, len: p.len, inner: p.inner, eps: p.eps },
    workgroups: grid(lines(p), 64),
    work: { bytes: 12 * p.outer * p.len * p.inner },
    label: `normalize ${p.mode} ${p.outer}×${p.len}×${p.inner}`,
  });
}

/** Records dx from the forward's y, mean and rstd and the upstream gradient dy. */
export async function normalizeBackward(
  gpu: Gpu,
  t: { y: GPUBuffer; dy: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer; dx: GPUBuffer },
  p: NormalizeProblem,
): Promise<void> {
  const kernel = await gpu.kernel('normalize_bwd', { MODE: MODES[p.mode] });
  gpu.dispatch(kernel, {
    bindings: { y: t.y, dy: t.dy, mean: t.mean, rstd: t.rstd, dx: t.dx },
    uniforms: { outer: p.outer, len: p.len, inner: p.inner },
    workgroups: grid(lines(p), 64),
    work: { bytes: 16 * p.outer * p.len * p.inner },
    label: `normalize bwd ${p.mode} ${p.outer}×${p.len}×${p.inner}`,
  });
}

/** CPU float64 reference of the forward: y, mean and rstd per line. */
export function normalizeReference(x: ArrayLike<number>, p: NormalizeProblem) {
  const y = new Float64Array(p.outer * p.len * p.inner);
  const mean = new Float64Array(lines(p));
  const rstd = new Float64Array(lines(p));
  for (let o = 0; o < p.outer; o++)
    for (let i = 0; i < p.inner; i++) {
      const at = (j: number) => (o * p.len + j) * p.inner + i;
      let m = 0;
      if (p.mode === 'standardize') {
        for (let j = 0; j < p.len; j++) m += x[at(j)]!;
        m /= p.len;
      }
      let ss = 0;
      for (let j = 0; j < p.len; j++) ss += (x[at(j)]! - m) ** 2;
      const norm = Math.sqrt(ss);
      const r = p.mode === 'standardize' ? 1 / Math.sqrt(ss / p.len + p.eps) : 1 / Math.max(norm, p.eps);
      for (let j = 0; j < p.len; j++) y[at(j)] = (x[at(j)]! - m) * r;
      mean[o * p.inner + i] = p.mode === 'standardize' ? m : norm <= p.eps ? 1 : 0;
      rstd[o * p.inner + i] = r;
    }
  return { y, mean, rstd };
}

/**
 * CPU float64 reference of the backward from the forward's y, mean and rstd and the upstream dy:
 * standardize dx = rstd·(dy − mean(dy) − y·mean(dy·y)); l2 dx = r·(dy − y·Σ(dy·y)), or r·dy
 * where the norm was clamped (mean = 1).
 */
export function normalizeBackwardReference(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  stats: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
  p: NormalizeProblem,
): Float64Array {
  const dx = new Float64Array(p.outer * p.len * p.inner);
  for (let o = 0; o < p.outer; o++)
    for (let i = 0; i < p.inner; i++) {
      const at = (j: number) => (o * p.len + j) * p.inner + i;
      let sg = 0;
      let sgy = 0;
      for (let j = 0; j < p.len; j++) [sg, sgy] = [sg + dy[at(j)]!, sgy + dy[at(j)]! * y[at(j)]!];
      const line = o * p.inner + i;
      const r = stats.rstd[line]!;
      const clamped = p.mode === 'l2' && stats.mean[line] !== 0;
      const [c0, c1] = p.mode === 'standardize' ? [sg / p.len, sgy / p.len] : clamped ? [0, 0] : [0, sgy];
      for (let j = 0; j < p.len; j++) dx[at(j)] = r * (dy[at(j)]! - c0 - y[at(j)]! * c1);
    }
  return dx;
}
