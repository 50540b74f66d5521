import type { Gpu } from '@mode/gpu';

export const ELEMENTWISE_OPS = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 } as const;
export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;

const WORKGROUP = 256;

/** out[i] = op(a[i], b[i]) for i < n, on the GPU (kernels/elementwise.wgsl). */
export async function elementwise(gpu: Gpu, op: ElementwiseOp, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number): Promise<void> {
  const kernel = await gpu.kernel('elementwise', { OP: ELEMENTWISE_OPS[op] });
  const groups = Math.ceil(n / WORKGROUP);
  const x = Math.min(groups, 65535);
  gpu.dispatch(kernel, {
    bindings: { a, b, out },
    uniforms: { n },
    workgroups: [x, Math.ceil(groups / x)],
    work: { flops: n, bytes: 12 * n },
    label: `elementwise ${op} n=${n}`,
  });
}

/** The CPU float64 reference. */
export function elementwiseReference(op: ElementwiseOp, a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const f: Record<ElementwiseOp, (x: number, y: number) => number> = {
    add: (x, y) => x + y,
    sub: (x, y) => x - y,
    mul: (x, y) => x * y,
    div: (x, y) => x / y,
    max: Math.max,
    min: Math.min,
  };
  return Float64Array.from({ length: a.length }, (_, i) => f[op](a[i]!, b[i]!));
}
