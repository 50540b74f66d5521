import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/** Dropout of n elements with probability p, the mask drawn from (index, seed) by a hash. */
export interface DropoutProblem {
  n: number;
  p: number;
  seed: number;
}

/** Elements whose hash is below this are dropped: p·2³², capped to u32. */
export const dropoutThreshold = (p: number) => Math.min(0xffffffff, Math.round(p * 2 ** 32));

/**
 * Records y = x·keep/(1 − p). The same call on dy with the same seed is the backward: the mask
 * is recomputed, never stored.
 */
export async function dropout(gpu: Gpu, x: GPUBuffer, y: GPUBuffer, p: DropoutProblem): Promise<void> {
  if (!(p.p >= 0 && p.p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p.p}`);
  const kernel = await gpu.kernel('dropout');
  gpu.dispatch(kernel, {
    bindings: { x, y },
    uniforms: { n: p.n, seed: p.seed >>> 0, threshold: dropoutThreshold(p.p), scale: 1 / (1 - p.p) },
    workgroups: grid(p.n, 256),
    work: { bytes: 8 * p.n },
    label: `dropout n=${p.n} p=${p.p}`,
  });
}

/** The kernel's PCG hash, in 32-bit integer arithmetic. */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** CPU reference: the same mask (bit for bit) and y in float64. */
export function dropoutReference(x: ArrayLike<number>, p: DropoutProblem): Float64Array {
  const threshold = dropoutThreshold(p.p);
  return Float64Array.from({ length: p.n }, (_, i) => (pcg((pcg(i) ^ (p.seed >>> 0)) >>> 0) >= threshold ? x[i]! / (1 - p.p) : 0));
}
