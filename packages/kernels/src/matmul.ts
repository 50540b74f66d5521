import type { Gpu } from '@mode/gpu';

/** C (M×N) = A (M×K) · B (K×N), row-major, with the naive kernel (kernels/matmul_naive.wgsl). */
export async function matmulNaive(gpu: Gpu, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, m: number, n: number, k: number): Promise<void> {
  const kernel = await gpu.kernel('matmul_naive');
  const [wx, wy] = kernel.workgroupSize;
  gpu.dispatch(kernel, {
    bindings: { a, b, c },
    uniforms: { m, n, k },
    workgroups: [Math.ceil(n / wx), Math.ceil(m / wy)],
    work: { flops: 2 * m * n * k },
    label: `matmul_naive ${m}×${n}×${k}`,
  });
}

/** The CPU float64 reference: C = A·B. */
export function matmulReference(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p]!;
      for (let j = 0; j < n; j++) c[i * n + j]! += aip * b[p * n + j]!;
    }
  }
  return c;
}
