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

// Written bindings a dispatch does not use must still be bound, each to a buffer of its own
// (WebGPU refuses a written buffer bound twice); the kernel never writes them.
const dummies = new WeakMap<Gpu, Map<string, GPUBuffer>>();
function dummy(gpu: Gpu, role: 'dx' | 'dw' | 'db'): GPUBuffer {
  const map = dummies.get(gpu) ?? new Map<string, GPUBuffer>();
  dummies.set(gpu, map);
  if (!map.has(role)) map.set(role, gpu.buffer(16, `normalize_bwd unused ${role}`));
  return map.get(role)!;
}

/**
 * Records the forward: y, and per line `mean` and `rstd` (l2: rstd = 1/max(‖x‖, eps) and
 * mean = 1 where the norm was clamped, else 0), both outer·inner floats.
 */
export async function normalize(gpu: Gpu, x: GPUBuffer, out: { y: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer }, p: NormalizeProblem): Promise<void> {
  const kernel = await gpu.kernel('normalize', { MODE: MODES[p.mode] });
  gpu.dispatch(kernel, {
    bindings: { x, y: out.y, mean: out.mean, rstd: out.rstd, w: x, b: x }, // w, b: unread without AFFINE
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
  const rowGroups = Math.ceil(lines(p) / 64);
  gpu.dispatch(kernel, {
    bindings: { y: t.y, dy: t.dy, mean: t.mean, rstd: t.rstd, w: t.mean, dx: t.dx, dw: dummy(gpu, 'dw'), db: dummy(gpu, 'db') },
    uniforms: { outer: p.outer, len: p.len, inner: p.inner, row_groups: rowGroups, col_blocks: 0, write_dw: 0, write_db: 0 },
    workgroups: grid(rowGroups, 1),
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

// ---- layer norm with its affine fused (normalize.wgsl and normalize_bwd.wgsl with AFFINE) ------

/** Layer norm over the last axis of [rows, dim] with weight and bias [dim]: y = (x − mean)·rstd·w + b. */
export interface LayerNormProblem {
  rows: number;
  dim: number;
  eps: number;
}

const asNormalize = (p: LayerNormProblem): NormalizeProblem => ({ outer: p.rows, len: p.dim, inner: 1, mode: 'standardize', eps: p.eps });

function checkLayerNorm(p: LayerNormProblem, what: string): void {
  for (const [k, v] of Object.entries({ rows: p.rows, dim: p.dim }))
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what}: ${k} must be a positive integer, got ${v}`);
}

/** Records the fused forward in one dispatch: y [rows, dim], and `mean` and `rstd` per row (rows floats each). */
export async function layerNormAffine(
  gpu: Gpu,
  t: { x: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer },
  out: { y: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer },
  p: LayerNormProblem,
): Promise<void> {
  checkLayerNorm(p, 'layerNormAffine');
  const kernel = await gpu.kernel('normalize', { MODE: 0, AFFINE: true });
  gpu.dispatch(kernel, {
    bindings: { x: t.x, y: out.y, mean: out.mean, rstd: out.rstd, w: t.weight, b: t.bias },
    uniforms: { outer: p.rows, len: p.dim, inner: 1, eps: p.eps },
    workgroups: grid(p.rows, 64),
    work: { flops: 7 * p.rows * p.dim, bytes: 16 * p.rows * p.dim },
    label: `layer norm affine ${p.rows}×${p.dim}`,
  });
}

/**
 * Records the fused backward in one dispatch, from the forward's input x, its mean and rstd, the
 * weight and the upstream dy: whichever of dx [rows, dim], dweight [dim] = Σ_rows dy·x̂ and
 * dbias [dim] = Σ_rows dy are given (x̂ = (x − mean)·rstd); the others are not computed.
 */
export async function layerNormAffineBackward(
  gpu: Gpu,
  t: { x: GPUBuffer; dy: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer; weight: GPUBuffer; dx?: GPUBuffer; dweight?: GPUBuffer; dbias?: GPUBuffer },
  p: LayerNormProblem,
): Promise<void> {
  checkLayerNorm(p, 'layerNormAffineBackward');
  if (!t.dx && !t.dweight && !t.dbias) return;
  const kernel = await gpu.kernel('normalize_bwd', { MODE: 0, AFFINE: true });
  const rowGroups = t.dx ? Math.ceil(p.rows / 64) : 0;
  const colBlocks = t.dweight || t.dbias ? Math.ceil(p.dim / 8) : 0;
  const n = p.rows * p.dim;
  gpu.dispatch(kernel, {
    bindings: {
      y: t.x,
      dy: t.dy,
      mean: t.mean,
      rstd: t.rstd,
      w: t.weight,
      dx: t.dx ?? dummy(gpu, 'dx'),
      dw: t.dweight ?? dummy(gpu, 'dw'),
      db: t.dbias ?? dummy(gpu, 'db'),
    },
    uniforms: { outer: p.rows, len: p.dim, inner: 1, row_groups: rowGroups, col_blocks: colBlocks, write_dw: t.dweight ? 1 : 0, write_db: t.dbias ? 1 : 0 },
    workgroups: grid(rowGroups + colBlocks, 1),
    work: { flops: (t.dx ? 12 : 0) * n + (colBlocks ? 5 : 0) * n, bytes: (t.dx ? 16 : 0) * n + (colBlocks ? 8 : 0) * n },
    label: `layer norm affine bwd ${p.rows}×${p.dim}${t.dx ? ' dx' : ''}${t.dweight ? ' dw' : ''}${t.dbias ? ' db' : ''}`,
  });
}

/** CPU float64 reference of the fused forward: y, and mean and rstd per row. */
export function layerNormAffineReference(x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, p: LayerNormProblem) {
  const { y, mean, rstd } = normalizeReference(x, asNormalize(p));
  for (let i = 0; i < p.rows; i++) for (let j = 0; j < p.dim; j++) y[i * p.dim + j] = y[i * p.dim + j]! * weight[j]! + bias[j]!;
  return { y, mean, rstd };
}

/**
 * CPU float64 reference of the fused backward from x, the forward's mean and rstd, the weight and
 * dy, with x̂ = (x − mean)·rstd and ĝ = dy·w: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),
 * dweight = Σ_rows dy·x̂, dbias = Σ_rows dy.
 */
export function layerNormAffineBackwardReference(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  weight: ArrayLike<number>,
  stats: { mean: ArrayLike<number>; rstd: ArrayLike<number> },
  p: LayerNormProblem,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const [C, dx, dweight, dbias] = [p.dim, new Float64Array(p.rows * p.dim), new Float64Array(p.dim), new Float64Array(p.dim)];
  const xh = new Float64Array(C);
  const g = new Float64Array(C);
  for (let i = 0; i < p.rows; i++) {
    const [m, r] = [stats.mean[i]!, stats.rstd[i]!];
    let [sg, sgx] = [0, 0];
    for (let j = 0; j < C; j++) {
      xh[j] = (x[i * C + j]! - m) * r;
      g[j] = dy[i * C + j]! * weight[j]!;
      sg += g[j]!;
      sgx += g[j]! * xh[j]!;
      dweight[j] += dy[i * C + j]! * xh[j]!;
      dbias[j] += dy[i * C + j]!;
    }
    for (let j = 0; j < C; j++) dx[i * C + j] = r * (g[j]! - sg / C - (xh[j]! * sgx) / C);
  }
  return { dx, dweight, dbias };
}
