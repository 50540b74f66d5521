import type { Gpu } from '@mode/gpu';
import { nanArray, randomArray, relativeError, rng } from './check.js';
import { elementwise, elementwiseReference, ELEMENTWISE_OPS, type ElementwiseOp } from './elementwise.js';
import { matmulNaive, matmulReference } from './matmul.js';

export interface SelftestResult {
  kernel: string;
  case: string;
  relativeError: number;
  tolerance: number;
  passed: boolean;
  ms: number;
}

interface Check {
  kernel: string;
  case: string;
  tolerance: number;
  /** Runs the kernel on fresh inputs from `random` (outputs poisoned with NaN) and returns [gpu, reference]. */
  run(gpu: Gpu, random: () => number): Promise<[Float32Array, Float64Array]>;
}

const elementwiseCheck = (op: ElementwiseOp, n: number): Check => ({
  kernel: 'elementwise',
  case: `${op} n=${n}`,
  tolerance: 1e-6,
  async run(gpu, random) {
    const a = randomArray(n, random);
    // Keep divisors away from zero so the reference is well conditioned.
    const b = op === 'div' ? randomArray(n, random, 0.5, 2) : randomArray(n, random);
    const [ga, gb, gout] = [gpu.upload(a), gpu.upload(b), gpu.upload(nanArray(n))];
    await elementwise(gpu, op, ga, gb, gout, n);
    const out = await gpu.read(gout, Float32Array, n);
    [ga, gb, gout].forEach((x) => gpu.release(x));
    return [out, elementwiseReference(op, a, b)];
  },
});

const matmulCheck = (m: number, n: number, k: number): Check => ({
  kernel: 'matmul_naive',
  case: `${m}×${n}×${k}`,
  tolerance: 1e-5,
  async run(gpu, random) {
    const a = randomArray(m * k, random);
    const b = randomArray(k * n, random);
    const [ga, gb, gc] = [gpu.upload(a), gpu.upload(b), gpu.upload(nanArray(m * n))];
    await matmulNaive(gpu, ga, gb, gc, m, n, k);
    const out = await gpu.read(gc, Float32Array, m * n);
    [ga, gb, gc].forEach((x) => gpu.release(x));
    return [out, matmulReference(a, b, m, n, k)];
  },
});

/** One run of each kernel against its CPU float64 reference, odd sizes included. */
export const SELFTEST_CHECKS: Check[] = [
  ...Object.keys(ELEMENTWISE_OPS).map((op) => elementwiseCheck(op as ElementwiseOp, 1001)),
  matmulCheck(1, 1, 1),
  matmulCheck(33, 7, 127),
  matmulCheck(128, 96, 64),
];

export async function selftest(gpu: Gpu, seed: number): Promise<SelftestResult[]> {
  const results: SelftestResult[] = [];
  const random = rng(seed);
  for (const check of SELFTEST_CHECKS) {
    const t0 = performance.now();
    const [out, ref] = await check.run(gpu, random);
    const err = relativeError(out, ref);
    results.push({
      kernel: check.kernel,
      case: check.case,
      relativeError: err,
      tolerance: check.tolerance,
      passed: err <= check.tolerance,
      ms: performance.now() - t0,
    });
  }
  return results;
}
