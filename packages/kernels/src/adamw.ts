import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/** One AdamW step's hyper-parameters; `step` is t ≥ 1 (for the bias corrections). */
export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  /** The gradient is used times this (global-norm clipping's factor). Default 1. */
  gradScale?: number;
}

/**
 * Records one in-place AdamW update of the n parameters at elements [at, at + n) of `param`, with
 * their gradients and moments at the same elements of `grad`, `m` and `v` (at = 0: whole tensors).
 */
export async function adamw(gpu: Gpu, t: { grad: GPUBuffer; param: GPUBuffer; m: GPUBuffer; v: GPUBuffer }, n: number, h: AdamWParams, at = 0): Promise<void> {
  if (!(Number.isInteger(at) && at >= 0)) throw new RangeError(`adamw: at must be an integer ≥ 0, got ${at}`);
  for (const [name, b] of Object.entries(t))
    if (4 * (at + n) > b.size) throw new RangeError(`adamw: elements [${at}, ${at + n}) do not fit ${name} buffer "${b.label}" (${b.size / 4} elements)`);
  if (!(Number.isInteger(h.step) && h.step >= 1)) throw new RangeError(`adamw: step must be an integer ≥ 1, got ${h.step}`);
  const scale = h.gradScale ?? 1;
  if (!(Number.isFinite(scale) && scale >= 0)) throw new RangeError(`adamw: gradScale must be finite and ≥ 0, got ${scale}`);
  const kernel = await gpu.kernel('adamw');
  gpu.dispatch(kernel, {
    bindings: t,
    uniforms: {
      n,
      lr: h.lr,
      beta1: h.beta1,
      beta2: h.beta2,
      eps: h.eps,
      wd: h.weightDecay,
      bc1: 1 - h.beta1 ** h.step,
      bc2: 1 - h.beta2 ** h.step,
      gscale: scale,
      at,
    },
    workgroups: grid(n, 256),
    work: { flops: 12 * n, bytes: 28 * n },
    label: `adamw n=${n}${at ? ` at ${at}` : ''}`,
  });
}

/** CPU float64 reference: the new parameters and moments. */
export function adamwReference(grad: ArrayLike<number>, param: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, h: AdamWParams) {
  const n = param.length;
  const [p2, m2, v2] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  const scale = h.gradScale ?? 1;
  for (let i = 0; i < n; i++) {
    const g = scale * grad[i]!;
    m2[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
    v2[i] = h.beta2 * v[i]! + (1 - h.beta2) * g ** 2;
    const mh = m2[i]! / (1 - h.beta1 ** h.step);
    const vh = v2[i]! / (1 - h.beta2 ** h.step);
    p2[i] = param[i]! * (1 - h.lr * h.weightDecay) - (h.lr * mh) / (Math.sqrt(vh) + h.eps);
  }
  return { param: p2, m: m2, v: v2 };
}
