import type { Gpu } from '@mode/gpu';
import { nanArray, randomArray, relativeError, rng } from './check.js';
import { ATTENTION_VARIANTS, attentionForward, attentionReference, type AttentionProblem, type AttentionVariantName } from './attention.js';
import { elementwise, elementwiseReference, ELEMENTWISE_OPS, type ElementwiseOp } from './elementwise.js';
import { softmax, softmaxReference } from './softmax.js';
import { infoNCE, infoNCEReference, infoNCEUnsupported, type InfoNCEProblem, type InfoNCEVariantName } from './infonce.js';
import { MATMUL_VARIANTS, matmulReference, matmulUnsupported, matmulWith, type MatmulProblem, type MatmulVariantName } from './matmul.js';
import {
  checkAssignment,
  KMEANS_ASSIGN_VARIANTS,
  kmeansAssignReference,
  kmeansAssignUnsupported,
  kmeansAssignWith,
  kmeansUpdate,
  kmeansUpdateReference,
  type KmeansAssignVariantName,
  type KmeansProblem,
} from './kmeans.js';

export interface SelftestResult {
  kernel: string;
  case: string;
  relativeError: number;
  tolerance: number;
  passed: boolean;
  /** Set when the adapter cannot run the check: the reason. */
  skipped?: string;
  ms: number;
}

interface Check {
  kernel: string;
  case: string;
  tolerance: number;
  /** Why the adapter cannot run this check (reported as skipped), or null. */
  unsupported?: (gpu: Gpu) => string | null;
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

const matmulCheck = (variant: MatmulVariantName, p: MatmulProblem): Check => ({
  kernel: MATMUL_VARIANTS[variant].kernel,
  case: `${p.transA ? 'Aᵀ' : 'A'}·${p.transB ? 'Bᵀ' : 'B'} ${p.m}×${p.n}×${p.k}`,
  tolerance: 1e-5,
  unsupported: (gpu) => matmulUnsupported(gpu, variant, p),
  async run(gpu, random) {
    const a = randomArray(p.m * p.k, random);
    const b = randomArray(p.k * p.n, random);
    const [ga, gb, gc] = [gpu.upload(a), gpu.upload(b), gpu.upload(nanArray(p.m * p.n))];
    await matmulWith(gpu, variant, ga, gb, gc, p);
    const out = await gpu.read(gc);
    [ga, gb, gc].forEach((x) => gpu.release(x));
    return [out, matmulReference(a, b, p)];
  },
});

const kmeansAssignCheck = (variant: KmeansAssignVariantName, p: KmeansProblem): Check => ({
  kernel: KMEANS_ASSIGN_VARIANTS[variant].kernel,
  case: `n=${p.n} k=${p.k} d=${p.d}`,
  tolerance: 1e-5,
  unsupported: (gpu) => kmeansAssignUnsupported(gpu, variant, p),
  async run(gpu, random) {
    const points = randomArray(p.n * p.d, random);
    const centres = randomArray(p.k * p.d, random);
    const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
    const out = { index: gpu.upload(new Uint32Array(p.n).fill(0xffffffff)), distance: gpu.upload(nanArray(p.n)) };
    await kmeansAssignWith(gpu, variant, gp, gc, out, p);
    const got = { index: await gpu.read(out.index, Uint32Array, p.n), distance: await gpu.read(out.distance, Float32Array, p.n) };
    [gp, gc, out.index, out.distance].forEach((x) => gpu.release(x));
    // Distances against the float64 reference; a wrong index (near-ties exempt) poisons its point.
    const ref = kmeansAssignReference(points, centres, p);
    const { badIndex } = checkAssignment(got, points, centres, p, ref);
    for (const i of badIndex) got.distance[i] = NaN;
    return [got.distance, ref.distance];
  },
});

const kmeansUpdateCheck = (p: KmeansProblem): Check => ({
  kernel: 'kmeans_update',
  case: `n=${p.n} k=${p.k} d=${p.d} (sums, counts)`,
  tolerance: 1e-5,
  async run(gpu, random) {
    const points = randomArray(p.n * p.d, random);
    const assignments = Uint32Array.from({ length: p.n }, () => Math.floor(random() * p.k));
    const [gp, ga] = [gpu.upload(points), gpu.upload(assignments)];
    const out = { sums: gpu.upload(nanArray(p.k * p.d)), counts: gpu.buffer(4 * p.k), centres: gpu.upload(nanArray(p.k * p.d)) };
    const { counts } = await kmeansUpdate(gpu, gp, ga, out, p);
    const sums = await gpu.read(out.sums, Float32Array, p.k * p.d);
    [gp, ga, out.sums, out.counts, out.centres].forEach((x) => gpu.release(x));
    const ref = kmeansUpdateReference(points, assignments, p);
    return [Float32Array.from([...sums, ...counts]), Float64Array.from([...ref.sums, ...ref.counts])];
  },
});

/** Loss, ∂loss/∂logit_scale, dx and dy of one InfoNCE problem, concatenated. */
const infoNCECheck = (variant: InfoNCEVariantName, p: InfoNCEProblem): Check => ({
  kernel: `infonce (${variant})`,
  case: `${p.symmetric ? 'symmetric' : 'one-directional'} ${p.b}×${p.m}×${p.d}`,
  tolerance: 1e-4,
  unsupported: (gpu) => infoNCEUnsupported(gpu, variant, p),
  async run(gpu, random) {
    const x = randomArray(p.b * p.d, random);
    const y = randomArray(p.m * p.d, random);
    const logitScale = Math.log(1 / 0.07);
    const g = { x: gpu.upload(x), y: gpu.upload(y), logitScale: gpu.upload(new Float32Array([logitScale])) };
    const out = { loss: gpu.upload(nanArray(2)), dx: gpu.upload(nanArray(p.b * p.d)), dy: gpu.upload(nanArray(p.m * p.d)) };
    await infoNCE(gpu, g, p, out, variant);
    const got = [await gpu.read(out.loss), await gpu.read(out.dx), await gpu.read(out.dy)];
    [...Object.values(g), ...Object.values(out)].forEach((b) => gpu.release(b));
    const ref = infoNCEReference(x, y, logitScale, p);
    return [Float32Array.from(got.flatMap((a) => [...a])), Float64Array.from([ref.loss, ref.dLogitScale, ...ref.dx, ...ref.dy])];
  },
});

/** One run of each kernel against its CPU float64 reference, odd sizes included. */
// The forward pass's output O; the backward passes are covered by packages/kernels/test/attention.test.ts.
const attentionCheck = (variant: AttentionVariantName, p: AttentionProblem): Check => ({
  kernel: ATTENTION_VARIANTS[variant].forward,
  case: `bh=${p.bh} L=${p.lq} d=${p.d}${p.causal ? ' causal' : ''}`,
  tolerance: 1e-4,
  unsupported: (gpu) => ATTENTION_VARIANTS[variant].unsupported(gpu, p),
  async run(gpu, random) {
    const n = p.bh * p.lq * p.d;
    const [q, k, v] = [0, 1, 2].map(() => randomArray(n, random));
    const [gq, gk, gv, go, glse] = [gpu.upload(q!), gpu.upload(k!), gpu.upload(v!), gpu.upload(nanArray(n)), gpu.upload(nanArray(p.bh * p.lq))];
    await attentionForward(gpu, gq, gk, gv, go, glse, p, variant);
    const out = await gpu.read(go);
    [gq, gk, gv, go, glse].forEach((x) => gpu.release(x));
    return [out, attentionReference(q!, k!, v!, p).o];
  },
});

const softmaxCheck = (rows: number, n: number, causal: boolean): Check => ({
  kernel: 'softmax',
  case: `${rows}×${n}${causal ? ' causal' : ''}`,
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(rows * n, random, -4, 4);
    const [gx, gy] = [gpu.upload(x), gpu.upload(nanArray(rows * n))];
    await softmax(gpu, gx, gy, { rows, n, causal });
    const out = await gpu.read(gy);
    [gx, gy].forEach((b) => gpu.release(b));
    return [out, softmaxReference(x, { rows, n, causal })];
  },
});

export const SELFTEST_CHECKS: Check[] = [
  ...Object.keys(ELEMENTWISE_OPS).map((op) => elementwiseCheck(op as ElementwiseOp, 1001)),
  matmulCheck('naive', { m: 33, n: 7, k: 127 }),
  matmulCheck('blocked', { m: 33, n: 7, k: 127, transA: true, transB: true }),
  matmulCheck('tiled', { m: 65, n: 33, k: 127, transB: true }),
  matmulCheck('sg', { m: 129, n: 36, k: 100 }),
  matmulCheck('sg_bt', { m: 129, n: 36, k: 100, transB: true }),
  matmulCheck('sg_at', { m: 132, n: 36, k: 99, transA: true }),
  kmeansAssignCheck('naive', { n: 127, k: 33, d: 7 }),
  kmeansAssignCheck('blocked', { n: 257, k: 33, d: 127 }),
  kmeansAssignCheck('tiled', { n: 129, k: 65, d: 17 }),
  kmeansAssignCheck('sg', { n: 129, k: 33, d: 36 }),
  kmeansUpdateCheck({ n: 1000, k: 33, d: 7 }),
  infoNCECheck('portable', { b: 33, m: 33, d: 17, symmetric: true }),
  infoNCECheck('tiled', { b: 70, m: 70, d: 65, symmetric: true }),
  infoNCECheck('sg', { b: 33, m: 33, d: 128, symmetric: true }),
  infoNCECheck('sg_chunk', { b: 33, m: 33, d: 128, symmetric: true }),
  attentionCheck('portable', { bh: 2, lq: 33, d: 7, causal: true }),
  attentionCheck('tiled', { bh: 2, lq: 70, d: 40, causal: true }),
  attentionCheck('sg', { bh: 2, lq: 65, d: 64, causal: true }),
  softmaxCheck(33, 127, true),
];

export async function selftest(gpu: Gpu, seed: number): Promise<SelftestResult[]> {
  const results: SelftestResult[] = [];
  const random = rng(seed);
  for (const check of SELFTEST_CHECKS) {
    const skipped = check.unsupported?.(gpu);
    if (skipped) {
      results.push({ kernel: check.kernel, case: check.case, relativeError: NaN, tolerance: check.tolerance, passed: true, skipped, ms: 0 });
      continue;
    }
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
