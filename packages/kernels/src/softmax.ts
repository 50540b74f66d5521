import type { Gpu } from '@mode/gpu';

/** y = softmax(scale·x) over rows of length n (kernels/softmax.wgsl); causal masks column j > r mod n. */
export async function softmax(gpu: Gpu, x: GPUBuffer, y: GPUBuffer, p: { rows: number; n: number; scale?: number; causal?: boolean }): Promise<void> {
  const kernel = await gpu.kernel('softmax', { CAUSAL: !!p.causal });
  const groups = Math.ceil(p.rows / 64);
  const gx = Math.min(groups, 65535);
  gpu.dispatch(kernel, {
    bindings: { x, y },
    uniforms: { rows: p.rows, n: p.n, scale: p.scale ?? 1 },
    workgroups: [gx, Math.ceil(groups / gx)],
    work: { bytes: 8 * p.rows * p.n },
    label: `softmax ${p.rows}×${p.n}`,
  });
}

/** CPU float64 reference. */
export function softmaxReference(x: ArrayLike<number>, p: { rows: number; n: number; scale?: number; causal?: boolean }): Float64Array {
  const y = new Float64Array(p.rows * p.n);
  const s = p.scale ?? 1;
  for (let r = 0; r < p.rows; r++) {
    const end = p.causal ? (r % p.n) + 1 : p.n;
    let m = -Infinity;
    for (let j = 0; j < end; j++) m = Math.max(m, s * x[r * p.n + j]!);
    let sum = 0;
    for (let j = 0; j < end; j++) sum += Math.exp(s * x[r * p.n + j]! - m);
    for (let j = 0; j < end; j++) y[r * p.n + j] = Math.exp(s * x[r * p.n + j]! - m) / sum;
  }
  return y;
}
