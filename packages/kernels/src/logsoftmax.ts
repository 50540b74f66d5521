import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/** Row shape: `rows` rows of length `n`. */
export interface RowsProblem {
  rows: number;
  n: number;
}

/** Records y = log-softmax of each row of x (kernels/log_softmax.wgsl). */
export async function logSoftmax(gpu: Gpu, x: GPUBuffer, y: GPUBuffer, p: RowsProblem): Promise<void> {
  const kernel = await gpu.kernel('log_softmax');
  gpu.dispatch(kernel, {
    bindings: { x, y },
    uniforms: { rows: p.rows, n: p.n },
    workgroups: grid(p.rows, 64),
    work: { bytes: 8 * p.rows * p.n },
    label: `log_softmax ${p.rows}×${p.n}`,
  });
}

/** Records dx of softmax (log = false) or log-softmax (log = true) from the forward's output y and dy. */
export async function softmaxBackward(gpu: Gpu, t: { y: GPUBuffer; dy: GPUBuffer; dx: GPUBuffer }, p: RowsProblem & { log: boolean }): Promise<void> {
  const kernel = await gpu.kernel('softmax_bwd', { LOG: p.log });
  gpu.dispatch(kernel, {
    bindings: { y: t.y, dy: t.dy, dx: t.dx },
    uniforms: { rows: p.rows, n: p.n },
    workgroups: grid(p.rows, 64),
    work: { bytes: 12 * p.rows * p.n },
    label: `${p.log ? 'log_' : ''}softmax bwd ${p.rows}×${p.n}`,
  });
}

/** Target value marking a row the cross-entropy ignores (loss and gradient 0). */
export const IGNORE_TARGET = 0xffffffff;

/**
 * Records per-row cross-entropy loss and log-sum-exp of logits x against u32 targets, and each
 * row's validity (1, or 0 where the target is ignored).
 */
export async function crossEntropy(
  gpu: Gpu,
  t: { x: GPUBuffer; targets: GPUBuffer; loss: GPUBuffer; lse: GPUBuffer; valid: GPUBuffer },
  p: RowsProblem,
): Promise<void> {
  const kernel = await gpu.kernel('cross_entropy');
  gpu.dispatch(kernel, {
    bindings: t,
    uniforms: { rows: p.rows, n: p.n },
    workgroups: grid(p.rows, 64),
    work: { bytes: 4 * p.rows * p.n },
    label: `cross_entropy ${p.rows}×${p.n}`,
  });
}

/** Records dx = (softmax(x) − onehot(t))·dloss per row. */
export async function crossEntropyBackward(
  gpu: Gpu,
  t: { x: GPUBuffer; targets: GPUBuffer; lse: GPUBuffer; dloss: GPUBuffer; dx: GPUBuffer },
  p: RowsProblem,
): Promise<void> {
  const kernel = await gpu.kernel('cross_entropy_bwd');
  gpu.dispatch(kernel, {
    bindings: t,
    uniforms: { rows: p.rows, n: p.n },
    workgroups: grid(p.rows * p.n, 256),
    work: { bytes: 8 * p.rows * p.n },
    label: `cross_entropy bwd ${p.rows}×${p.n}`,
  });
}

/** CPU float64 reference: log-softmax of each row. */
export function logSoftmaxReference(x: ArrayLike<number>, p: RowsProblem): Float64Array {
  const y = new Float64Array(p.rows * p.n);
  for (let r = 0; r < p.rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < p.n; j++) m = Math.max(m, x[r * p.n + j]!);
    let s = 0;
    for (let j = 0; j < p.n; j++) s += Math.exp(x[r * p.n + j]! - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < p.n; j++) y[r * p.n + j] = x[r * p.n + j]! - lse;
  }
  return y;
}

/** CPU float64 reference: per-row loss (0 for ignored targets ≥ n). */
export function crossEntropyReference(x: ArrayLike<number>, targets: ArrayLike<number>, p: RowsProblem): Float64Array {
  const ls = logSoftmaxReference(x, p);
  return Float64Array.from({ length: p.rows }, (_, r) => (targets[r]! < p.n ? -ls[r * p.n + targets[r]!]! : 0));
}

/**
 * CPU float64 reference of the backward from the forward's output y: softmax dx = y·(dy − Σ dy·y),
 * log-softmax dx = dy − exp(y)·Σ dy, per row.
 */
export function softmaxBackwardReference(y: ArrayLike<number>, dy: ArrayLike<number>, p: RowsProblem & { log: boolean }): Float64Array {
  const dx = new Float64Array(p.rows * p.n);
  for (let r = 0; r < p.rows; r++) {
    let s = 0;
    for (let j = 0; j < p.n; j++) s += p.log ? dy[r * p.n + j]! : dy[r * p.n + j]! * y[r * p.n + j]!;
    for (let j = 0; j < p.n; j++) {
      const i = r * p.n + j;
      dx[i] = p.log ? dy[i]! - Math.exp(y[i]!) * s : y[i]! * (dy[i]! - s);
    }
  }
  return dx;
}

/** CPU float64 reference of the cross-entropy backward: dx = (softmax(x) − onehot(t))·dloss, 0 for ignored rows. */
export function crossEntropyBackwardReference(x: ArrayLike<number>, targets: ArrayLike<number>, dloss: ArrayLike<number>, p: RowsProblem): Float64Array {
  const ls = logSoftmaxReference(x, p);
  return Float64Array.from({ length: p.rows * p.n }, (_, i) => {
    const r = Math.floor(i / p.n);
    return targets[r]! >= p.n ? 0 : (Math.exp(ls[i]!) - (i % p.n === targets[r] ? 1 : 0)) * dloss[r]!;
  });
}
