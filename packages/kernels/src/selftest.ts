import type { Gpu } from '@mode/gpu';
import { nanArray, randomArray, relativeError, rng, toF16Bits, fromF16Bits } from './check.js';
import { adamw, adamwReference } from './adamw.js';
import {
  ATTENTION_VARIANTS,
  attentionBackward,
  attentionBackwardReference,
  attentionForward,
  attentionReference,
  fusedQKVLayout,
  type AttentionProblem,
  type AttentionVariantName,
} from './attention.js';
import { dropout, dropoutReference } from './dropout.js';
import { PEAK_CHECKS } from './peak.check.js';
import { embedding, embeddingBackward, embeddingBackwardReference, embeddingPlan, embeddingReference } from './embedding.js';
import { infoNCE, infoNCEReference, infoNCEUnsupported, INFONCE_VARIANTS, type InfoNCEProblem, type InfoNCEVariantName } from './infonce.js';
import {
  checkAssignment,
  KMEANS_ASSIGN_VARIANTS,
  kmeansAssignReference,
  kmeansAssignUnsupported,
  kmeansAssignWith,
  kmeansNorms,
  kmeansTopK,
  kmeansTopKReference,
  kmeansTopKUnsupported,
  KMEANS_TOPK,
  kmeansUpdate,
  kmeansUpdateReference,
  type KmeansAssignVariantName,
  type KmeansProblem,
} from './kmeans.js';
import {
  crossEntropy,
  crossEntropyBackward,
  crossEntropyBackwardReference,
  crossEntropyReference,
  IGNORE_TARGET,
  logSoftmax,
  logSoftmaxReference,
  softmaxBackward,
  softmaxBackwardReference,
  type RowsProblem,
} from './logsoftmax.js';
import { MATMUL_VARIANTS, matmulReference, matmulUnsupported, matmulWith, type MatmulProblem, type MatmulVariantName } from './matmul.js';
import {
  layerNormAffine,
  layerNormAffineBackward,
  layerNormAffineBackwardReference,
  layerNormAffineReference,
  normalize,
  normalizeBackward,
  normalizeBackwardReference,
  normalizeReference,
  type LayerNormProblem,
  type NormalizeProblem,
} from './normalize.js';
import { reduce, reduceReference, REDUCE_OPS, type ReduceOp, type ReduceVariant } from './reduce.js';
import { softmax, softmaxReference } from './softmax.js';
import { contiguousStrides, strided, stridedReference, STRIDED_OPS, type StridedOp } from './strided.js';
import { unary, unaryReference, UNARY_OPS, type UnaryOp } from './unary.js';

/**
 * `mode selftest`: every kernel file, each variant, run once on fresh random inputs (odd sizes,
 * outputs poisoned with NaN) against its CPU float64 reference. Each check declares the kernel
 * files it runs, and the Gpu's dispatch counts must show exactly those: so the declarations are
 * true where a check runs, and a test holds their union to the listing of kernels/.
 */

export type SelftestStatus = 'passed' | 'failed' | 'skipped';

export interface SelftestResult {
  kernel: string;
  case: string;
  status: SelftestStatus;
  /** The largest relative error over the check's outputs; null when it was skipped or threw. */
  relativeError: number | null;
  tolerance: number;
  /** Skipped: why this adapter cannot run the check. Failed: what went wrong besides the error, if anything. */
  reason?: string;
  /** The kernel files (kernels/<name>.wgsl) the check dispatched, sorted; empty when skipped. */
  dispatched: string[];
  ms: number;
}

/** Each of a check's outputs beside its float64 reference. */
type Outputs = [ArrayLike<number>, ArrayLike<number>][];

export interface SelftestCheck {
  /** What the row names: a kernel file, or a family and variant. */
  kernel: string;
  case: string;
  /** The kernel files (kernels/<name>.wgsl, without the extension) the check dispatches: exactly these. */
  files: string[];
  tolerance: number;
  /** Why the adapter cannot run this check (reported as skipped), or null. */
  unsupported?: (gpu: Gpu) => string | null;
  /** Runs the kernel(s) on fresh inputs from `random` (outputs poisoned with NaN): each output beside its reference. */
  run(gpu: Gpu, random: () => number): Promise<Outputs>;
}

type Check = SelftestCheck;

/** Uploads `inputs` and NaN-poisoned outputs of the given lengths, records, reads every output back and frees it all. */
async function withBuffers(
  gpu: Gpu,
  inputs: ArrayBufferView[],
  outputs: number[],
  record: (ins: GPUBuffer[], outs: GPUBuffer[]) => Promise<void>,
): Promise<Float32Array[]> {
  const ins = inputs.map((x) => gpu.upload(x));
  const outs = outputs.map((n) => gpu.upload(nanArray(n)));
  try {
    await record(ins, outs);
    const results: Float32Array[] = [];
    for (const [i, o] of outs.entries()) results.push(await gpu.read(o, Float32Array, outputs[i]!));
    return results;
  } finally {
    [...ins, ...outs].forEach((b) => gpu.release(b));
  }
}

const matmulCheck = (variant: MatmulVariantName, p: MatmulProblem): Check => ({
  kernel: MATMUL_VARIANTS[variant].kernel,
  case: `${p.transA ? 'Aᵀ' : 'A'}·${p.transB ? 'Bᵀ' : 'B'} ${p.m}×${p.n}×${p.k}${MATMUL_VARIANTS[variant].windows ? ` (${variant}: uniform windows of B)` : ''}`,
  // sg_wt transposes B with the strided copy first.
  files: [MATMUL_VARIANTS[variant].kernel, ...(MATMUL_VARIANTS[variant].windows === 'transposed' ? ['strided'] : [])],
  tolerance: 1e-5,
  unsupported: (gpu) => matmulUnsupported(gpu, variant, p),
  async run(gpu, random) {
    const a = randomArray(p.m * p.k, random);
    const b = randomArray(p.k * p.n, random);
    const [out] = await withBuffers(gpu, [a, b], [p.m * p.n], ([ga, gb], [gc]) => matmulWith(gpu, variant, ga!, gb!, gc!, p));
    return [[out!, matmulReference(a, b, p)]];
  },
});

/** f16 storage, f32 accumulation: the reference sees the same f16-rounded inputs; α, bias and GELU too. */
const matmulF16Check = (p: MatmulProblem): Check => ({
  kernel: MATMUL_VARIANTS.blocked_f16.kernel,
  case: `${p.transA ? 'Aᵀ' : 'A'}·${p.transB ? 'Bᵀ' : 'B'} ${p.m}×${p.n}×${p.k} f16 +bias +GELU`,
  files: [MATMUL_VARIANTS.blocked_f16.kernel],
  tolerance: 1e-2,
  unsupported: (gpu) => matmulUnsupported(gpu, 'blocked_f16', { ...p, dtype: 'f16' }),
  async run(gpu, random) {
    const q: MatmulProblem = { ...p, dtype: 'f16', gelu: true, alpha: 0.5 };
    const [a, b, bias] = [p.m * p.k, p.k * p.n, p.n].map((n) => toF16Bits(randomArray(n, random)));
    const [ga, gb, gbias] = [gpu.upload(a!), gpu.upload(b!), gpu.upload(bias!)];
    const gc = gpu.upload(new Uint16Array(p.m * p.n).fill(0x7e00)); // f16 NaN poison
    try {
      await matmulWith(gpu, 'blocked_f16', ga, gb, gc, { ...q, bias: gbias });
      const out = fromF16Bits(await gpu.read(gc, Uint16Array, p.m * p.n));
      return [[out, matmulReference(fromF16Bits(a!), fromF16Bits(b!), { ...q, biasValues: fromF16Bits(bias!) })]];
    } finally {
      [ga, gb, gbias, gc].forEach((x) => gpu.release(x));
    }
  },
});

const kmeansAssignCheck = (variant: KmeansAssignVariantName, p: KmeansProblem): Check => ({
  kernel: KMEANS_ASSIGN_VARIANTS[variant].kernel,
  case: `n=${p.n} k=${p.k} d=${p.d}`,
  files: [KMEANS_ASSIGN_VARIANTS[variant].kernel, ...(KMEANS_ASSIGN_VARIANTS[variant].usesNorms ? ['kmeans_norms'] : [])],
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
    return [[got.distance, ref.distance]];
  },
});

/** The 8 nearest centres per point, 5 of them masked: the distance at each rank against the float64 reference. */
const kmeansTopKCheck = (p: KmeansProblem): Check => ({
  kernel: 'kmeans_topk_sg',
  case: `n=${p.n} k=${p.k} d=${p.d}, 5 centres masked`,
  files: ['kmeans_topk_sg', 'kmeans_norms'],
  tolerance: 1e-5,
  unsupported: (gpu) => kmeansTopKUnsupported(gpu, p),
  async run(gpu, random) {
    const T = KMEANS_TOPK;
    const points = randomArray(p.n * p.d, random);
    const centres = randomArray(p.k * p.d, random);
    const masked = (j: number) => j % 7 === 3;
    const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
    const norms = gpu.buffer(4 * p.k);
    await kmeansNorms(gpu, gc, norms, p.k, p.d);
    const cn = await gpu.read(norms, Float32Array, p.k);
    cn.forEach((_, j) => masked(j) && (cn[j] = 3e38));
    gpu.write(norms, cn);
    const out = { index: gpu.upload(new Uint32Array(p.n * T).fill(0xffffffff)), distance: gpu.upload(nanArray(p.n * T)) };
    await kmeansTopK(gpu, gp, gc, norms, out, p);
    const index = await gpu.read(out.index, Uint32Array, p.n * T);
    const distance = await gpu.read(out.distance, Float32Array, p.n * T);
    [gp, gc, norms, out.index, out.distance].forEach((x) => gpu.release(x));
    // A slot whose centre is out of range, masked, or not at the distance it reports is poisoned.
    for (let e = 0; e < p.n * T; e++) {
      const [i, j] = [Math.floor(e / T), index[e]!];
      let dd = NaN;
      if (j < p.k && !masked(j)) {
        dd = 0;
        for (let q = 0; q < p.d; q++) dd += (points[i * p.d + q]! - centres[j * p.d + q]!) ** 2;
      }
      if (!(Math.abs(dd - distance[e]!) <= 1e-5 * (1 + dd))) distance[e] = NaN;
    }
    return [[distance, kmeansTopKReference(points, centres, masked, p).distance]];
  },
});

const kmeansUpdateCheck = (p: KmeansProblem): Check => ({
  kernel: 'kmeans_update',
  case: `n=${p.n} k=${p.k} d=${p.d} (sums, counts)`,
  files: ['kmeans_update_hist', 'kmeans_update_scan', 'kmeans_update_scatter', 'kmeans_update'],
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
    return [
      [sums, ref.sums],
      [counts, ref.counts],
    ];
  },
});

/** Loss, ∂loss/∂logit_scale, dx and dy of one InfoNCE problem. */
const infoNCECheck = (variant: InfoNCEVariantName, p: InfoNCEProblem): Check => ({
  kernel: `infonce (${variant})`,
  case: `${p.symmetric ? 'symmetric' : 'one-directional'} ${p.b}×${p.m}×${p.d}`,
  files: [...INFONCE_VARIANTS[variant].kernels, 'infonce_reduce'],
  tolerance: 1e-4,
  unsupported: (gpu) => infoNCEUnsupported(gpu, variant, p),
  async run(gpu, random) {
    const x = randomArray(p.b * p.d, random);
    const y = randomArray(p.m * p.d, random);
    const logitScale = Math.log(1 / 0.07);
    const g = { x: gpu.upload(x), y: gpu.upload(y), logitScale: gpu.upload(new Float32Array([logitScale])) };
    const out = { loss: gpu.upload(nanArray(2)), dx: gpu.upload(nanArray(p.b * p.d)), dy: gpu.upload(nanArray(p.m * p.d)) };
    await infoNCE(gpu, g, p, out, variant);
    const [loss, dx, dy] = [await gpu.read(out.loss), await gpu.read(out.dx), await gpu.read(out.dy)];
    [...Object.values(g), ...Object.values(out)].forEach((b) => gpu.release(b));
    const ref = infoNCEReference(x, y, logitScale, p);
    return [
      [loss, [ref.loss, ref.dLogitScale]],
      [dx, ref.dx],
      [dy, ref.dy],
    ];
  },
});

/**
 * Forward (O, LSE) and backward (dQ, dK, dV) of one variant: contiguous Q, K, V [bh, L, d] (dK and
 * dV in one dKV [2, bh, L, d]), or `fused`: Q, K, V read from one qkv [B, L, 3W], O written merged
 * [B, L, W], dQ, dK and dV all into one dqkv [B, L, 3W] (W = heads·d).
 */
const attentionCheck = (variant: AttentionVariantName, p: AttentionProblem, fused = false): Check => {
  const q: AttentionProblem = fused ? { ...p, layout: fusedQKVLayout(p.heads ?? 1, p.lq, p.d) } : p;
  return {
    kernel: `attention (${variant})`,
    case: `bh=${p.bh} L=${p.lq} d=${p.d}${p.causal ? ' causal' : ''}${fused ? ` fused qkv (${p.heads} heads)` : ''} fwd+bwd`,
    files: [ATTENTION_VARIANTS[variant].forward, ATTENTION_VARIANTS[variant].dq, ATTENTION_VARIANTS[variant].dkv],
    tolerance: 1e-4,
    unsupported: (gpu) => ATTENTION_VARIANTS[variant].unsupported(gpu, q),
    async run(gpu, random) {
      const n = p.bh * p.lq * p.d;
      const x = fused ? [randomArray(3 * n, random)] : [0, 1, 2].map(() => randomArray(n, random));
      const dO = randomArray(n, random);
      const [qa, ka, va] = fused ? [x[0]!, x[0]!, x[0]!] : x;
      const grads = fused ? [3 * n] : [n, 2 * n];
      const [o, lse, dQ, dKV] = await withBuffers(gpu, [...x, dO], [n, p.bh * p.lq, ...grads], async (ins, [go, glse, gdq, gdkv]) => {
        const [gq, gk, gv] = fused ? [ins[0]!, ins[0]!, ins[0]!] : ins;
        await attentionForward(gpu, gq!, gk!, gv!, go!, glse!, q, variant);
        await attentionBackward(gpu, { q: gq!, k: gk!, v: gv!, o: go!, lse: glse!, dO: ins.at(-1)!, dQ: gdq!, dKV: gdkv ?? gdq! }, q, variant);
      });
      const f = attentionReference(qa!, ka!, va!, q);
      const dqkv = fused ? new Float64Array(3 * n).fill(NaN) : undefined;
      const b = attentionBackwardReference(qa!, ka!, va!, dO, q, dqkv ? { dQ: dqkv, dKV: dqkv } : {});
      return [[o!, f.o], [lse!, f.lse], [dQ!, b.dQ], ...(dKV ? ([[dKV, b.dKV]] as Outputs) : [])];
    },
  };
};

const softmaxCheck = (rows: number, n: number, causal: boolean): Check => ({
  kernel: 'softmax',
  case: `${rows}×${n}${causal ? ' causal' : ''}`,
  files: ['softmax'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(rows * n, random, -4, 4);
    const [y] = await withBuffers(gpu, [x], [rows * n], ([gx], [gy]) => softmax(gpu, gx!, gy!, { rows, n, causal }));
    return [[y!, softmaxReference(x, { rows, n, causal })]];
  },
});

// ---- the autograd's kernels ------------------------------------------------------------------

/** Broadcasting (b's rows), permuting (copy) or comparing (eq) over a 33×17 shape. */
const stridedCheck = (op: StridedOp): Check => ({
  kernel: 'strided',
  case: op === 'copy' ? `${op} permute 17×33 → 33×17` : `${op} 33×17 with a broadcast row`,
  files: ['strided'],
  tolerance: 1e-6,
  async run(gpu, random) {
    const shape = [33, 17];
    const a = randomArray(33 * 17, random);
    const b = op === 'div' ? randomArray(17, random, 0.5, 2) : randomArray(17, random);
    if (op === 'eq') for (let r = 0; r < 33; r += 2) a[r * 17 + (r % 17)] = b[r % 17]!; // some equal pairs
    const p = { shape, a: { strides: op === 'copy' ? [1, 33] : [17, 1] }, b: { strides: [0, 1] }, out: { strides: contiguousStrides(shape) } };
    const [out] = await withBuffers(gpu, [a, b], [33 * 17], ([ga, gb], [go]) => strided(gpu, op, ga!, gb!, go!, p));
    return [[out!, stridedReference(op, a, b, new Float64Array(33 * 17), p)]];
  },
});

/** Input ranges where each op is defined and well conditioned (backward ops: the saved tensor's range). */
const UNARY_RANGES: Partial<Record<UnaryOp, [number, number]>> = {
  log: [0.1, 4],
  sqrt: [0.1, 4],
  tanh: [-20, 20],
  sigmoid: [-6, 6],
  gelu: [-4, 4],
  exp_bwd: [0.1, 3],
  log_bwd: [0.1, 3],
  sqrt_bwd: [0.1, 3],
  tanh_bwd: [-1, 1],
  sigmoid_bwd: [0, 1],
};

const unaryCheck = (op: UnaryOp, n: number): Check => ({
  kernel: 'unary',
  case: `${op} n=${n}`,
  files: ['unary'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const [lo, hi] = UNARY_RANGES[op] ?? [-3, 3];
    const x = randomArray(n, random, lo, hi);
    const dy = randomArray(n, random);
    const params = op.startsWith('clamp') ? { alpha: -0.5, beta: 0.7 } : { alpha: 1.5, beta: -0.25 };
    const [out] = await withBuffers(gpu, [x, dy], [n], ([gx, gd], [go]) => unary(gpu, op, gx!, go!, n, params, gd!));
    return [[out!, unaryReference(op, x, params, dy)]];
  },
});

const reduceCheck = (op: ReduceOp, outer: number, len: number, inner: number, variant: ReduceVariant): Check => ({
  kernel: variant === 'cols' ? 'reduce_cols' : 'reduce',
  case: `${op} ${outer}×${len}×${inner}`,
  files: [variant === 'cols' ? 'reduce_cols' : 'reduce'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(outer * len * inner, random);
    const p = { outer, len, inner, alpha: op === 'sum' ? 0.5 : 1, variant };
    const [out] = await withBuffers(gpu, [x], [outer * inner], ([gx], [go]) => reduce(gpu, op, gx!, go!, p));
    return [[out!, reduceReference(op, x, p)]];
  },
});

const normalizeCase = (p: NormalizeProblem) => `${p.mode} ${p.outer}×${p.len}×${p.inner}`;

const normalizeCheck = (p: NormalizeProblem): Check => ({
  kernel: 'normalize',
  case: normalizeCase(p),
  files: ['normalize'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const lines = p.outer * p.inner;
    const x = randomArray(p.outer * p.len * p.inner, random, -2, 3);
    const [y, mean, rstd] = await withBuffers(gpu, [x], [x.length, lines, lines], ([gx], [gy, gm, gr]) =>
      normalize(gpu, gx!, { y: gy!, mean: gm!, rstd: gr! }, p),
    );
    const ref = normalizeReference(x, p);
    return [
      [y!, ref.y],
      [mean!, ref.mean],
      [rstd!, ref.rstd],
    ];
  },
});

/** The backward from the forward reference's y, mean and rstd (as float32, what a forward would have written). */
const normalizeBackwardCheck = (p: NormalizeProblem): Check => ({
  kernel: 'normalize_bwd',
  case: normalizeCase(p),
  files: ['normalize_bwd'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const n = p.outer * p.len * p.inner;
    const fwd = normalizeReference(randomArray(n, random, -2, 3), p);
    const [y, mean, rstd] = [fwd.y, fwd.mean, fwd.rstd].map((a) => Float32Array.from(a));
    const dy = randomArray(n, random);
    const [dx] = await withBuffers(gpu, [y!, dy, mean!, rstd!], [n], ([gy, gd, gm, gr], [go]) =>
      normalizeBackward(gpu, { y: gy!, dy: gd!, mean: gm!, rstd: gr!, dx: go! }, p),
    );
    return [[dx!, normalizeBackwardReference(y!, dy, { mean: mean!, rstd: rstd! }, p)]];
  },
});

/** Layer norm with weight and bias fused (normalize.wgsl with AFFINE): y, mean and rstd. */
const layerNormAffineCheck = (p: LayerNormProblem): Check => ({
  kernel: 'normalize',
  case: `affine ${p.rows}×${p.dim}`,
  files: ['normalize'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const [x, w, b] = [randomArray(p.rows * p.dim, random, -2, 3), randomArray(p.dim, random, -2, 2), randomArray(p.dim, random)];
    const [y, mean, rstd] = await withBuffers(gpu, [x, w, b], [x.length, p.rows, p.rows], ([gx, gw, gb], [gy, gm, gr]) =>
      layerNormAffine(gpu, { x: gx!, weight: gw!, bias: gb! }, { y: gy!, mean: gm!, rstd: gr! }, p),
    );
    const ref = layerNormAffineReference(x, w, b, p);
    return [
      [y!, ref.y],
      [mean!, ref.mean],
      [rstd!, ref.rstd],
    ];
  },
});

/** Its backward (normalize_bwd.wgsl with AFFINE) from x and the forward reference's mean and rstd (as float32): dx, dweight, dbias. */
const layerNormAffineBackwardCheck = (p: LayerNormProblem): Check => ({
  kernel: 'normalize_bwd',
  case: `affine ${p.rows}×${p.dim} dx, dweight, dbias`,
  files: ['normalize_bwd'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const n = p.rows * p.dim;
    const [x, w, dy] = [randomArray(n, random, -2, 3), randomArray(p.dim, random, -2, 2), randomArray(n, random)];
    const fwd = layerNormAffineReference(x, w, new Float32Array(p.dim), p);
    const [mean, rstd] = [Float32Array.from(fwd.mean), Float32Array.from(fwd.rstd)];
    const [dx, dweight, dbias] = await withBuffers(gpu, [x, dy, mean, rstd, w], [n, p.dim, p.dim], ([gx, gd, gm, gr, gw], [o, ow, ob]) =>
      layerNormAffineBackward(gpu, { x: gx!, dy: gd!, mean: gm!, rstd: gr!, weight: gw!, dx: o!, dweight: ow!, dbias: ob! }, p),
    );
    const ref = layerNormAffineBackwardReference(x, dy, w, { mean, rstd }, p);
    return [
      [dx!, ref.dx],
      [dweight!, ref.dweight],
      [dbias!, ref.dbias],
    ];
  },
});

const logSoftmaxCheck = (p: RowsProblem): Check => ({
  kernel: 'log_softmax',
  case: `${p.rows}×${p.n}`,
  files: ['log_softmax'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(p.rows * p.n, random, -6, 6);
    const [y] = await withBuffers(gpu, [x], [x.length], ([gx], [gy]) => logSoftmax(gpu, gx!, gy!, p));
    return [[y!, logSoftmaxReference(x, p)]];
  },
});

const softmaxBackwardCheck = (p: RowsProblem, log: boolean): Check => ({
  kernel: 'softmax_bwd',
  case: `${log ? 'log-softmax' : 'softmax'} ${p.rows}×${p.n}`,
  files: ['softmax_bwd'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(p.rows * p.n, random, -6, 6);
    const y = Float32Array.from(log ? logSoftmaxReference(x, p) : softmaxReference(x, p));
    const dy = randomArray(x.length, random);
    const [dx] = await withBuffers(gpu, [y, dy], [x.length], ([gy, gd], [go]) => softmaxBackward(gpu, { y: gy!, dy: gd!, dx: go! }, { ...p, log }));
    return [[dx!, softmaxBackwardReference(y, dy, { ...p, log })]];
  },
});

/** Targets with every fourth row ignored. */
const targetsFor = (p: RowsProblem, random: () => number) =>
  Uint32Array.from({ length: p.rows }, (_, r) => (r % 4 === 3 ? IGNORE_TARGET : Math.floor(random() * p.n)));

const crossEntropyCheck = (p: RowsProblem): Check => ({
  kernel: 'cross_entropy',
  case: `${p.rows}×${p.n} (loss, lse, valid)`,
  files: ['cross_entropy'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(p.rows * p.n, random, -6, 6);
    const targets = targetsFor(p, random);
    const [loss, lse, valid] = await withBuffers(gpu, [x, targets], [p.rows, p.rows, p.rows], ([gx, gt], [gl, gs, gv]) =>
      crossEntropy(gpu, { x: gx!, targets: gt!, loss: gl!, lse: gs!, valid: gv! }, p),
    );
    const ls = logSoftmaxReference(x, p);
    return [
      [loss!, crossEntropyReference(x, targets, p)],
      [lse!, Float64Array.from({ length: p.rows }, (_, r) => x[r * p.n]! - ls[r * p.n]!)],
      [valid!, Float64Array.from(targets, (t) => (t < p.n ? 1 : 0))],
    ];
  },
});

/** The backward from the reference's lse (as float32). */
const crossEntropyBackwardCheck = (p: RowsProblem): Check => ({
  kernel: 'cross_entropy_bwd',
  case: `${p.rows}×${p.n}`,
  files: ['cross_entropy_bwd'],
  tolerance: 1e-5,
  async run(gpu, random) {
    const x = randomArray(p.rows * p.n, random, -6, 6);
    const targets = targetsFor(p, random);
    const ls = logSoftmaxReference(x, p);
    const lse = Float32Array.from({ length: p.rows }, (_, r) => x[r * p.n]! - ls[r * p.n]!);
    const dloss = randomArray(p.rows, random);
    const [dx] = await withBuffers(gpu, [x, targets, lse, dloss], [x.length], ([gx, gt, gs, gd], [go]) =>
      crossEntropyBackward(gpu, { x: gx!, targets: gt!, lse: gs!, dloss: gd!, dx: go! }, p),
    );
    return [[dx!, crossEntropyBackwardReference(x, targets, dloss, p)]];
  },
});

/** Indices into a 50-row table, even rows only and repeated, so the scatter-add sums and leaves rows at 0. */
const embeddingIndices = (n: number, random: () => number) => Uint32Array.from({ length: n }, () => Math.floor(random() * 20) * 2);

const embeddingCheck = (n: number, d: number, vocab: number): Check => ({
  kernel: 'embedding',
  case: `${n}×${d} from ${vocab} rows`,
  files: ['embedding'],
  tolerance: 0,
  async run(gpu, random) {
    const table = randomArray(vocab * d, random);
    const idx = embeddingIndices(n, random);
    const [out] = await withBuffers(gpu, [table, idx], [n * d], ([gt, gi], [go]) => embedding(gpu, gt!, gi!, go!, { n, d, vocab }));
    return [[out!, embeddingReference(table, idx, d)]];
  },
});

/** The scatter-add zero-fills d_table first (unary's fill). */
const embeddingBackwardCheck = (n: number, d: number, vocab: number): Check => ({
  kernel: 'embedding_bwd',
  case: `${n}×${d} into ${vocab} rows`,
  files: ['embedding_bwd', 'unary'],
  tolerance: 1e-6,
  async run(gpu, random) {
    const idx = embeddingIndices(n, random);
    const dy = randomArray(n * d, random);
    const plan = embeddingPlan(idx);
    const [dTable] = await withBuffers(gpu, [dy, plan.order, plan.starts, plan.rows], [vocab * d], ([g, o, s, r], [dt]) =>
      embeddingBackward(gpu, { dy: g!, order: o!, starts: s!, rows: r!, dTable: dt! }, { n, d, vocab, unique: plan.rows.length }),
    );
    return [[dTable!, embeddingBackwardReference(dy, idx, { vocab, d })]];
  },
});

const dropoutCheck = (n: number, p: number): Check => ({
  kernel: 'dropout',
  case: `n=${n} p=${p}`,
  files: ['dropout'],
  tolerance: 1e-6,
  async run(gpu, random) {
    const x = randomArray(n, random, 0.5, 1);
    const q = { n, p, seed: Math.floor(random() * 2 ** 32) };
    const [y] = await withBuffers(gpu, [x], [n], ([gx], [gy]) => dropout(gpu, gx!, gy!, q));
    return [[y!, dropoutReference(x, q)]];
  },
});

/**
 * One in-place step: parameters and both moments. With `at`, the run [at, at + n) of longer
 * buffers (as AdamW's flat moments use it): every element outside it must come back unchanged.
 */
const adamwCheck = (n: number, weightDecay: number, gradScale = 1, at = 0): Check => ({
  kernel: 'adamw',
  case: `n=${n} step 3${weightDecay ? ` wd=${weightDecay}` : ''}${gradScale !== 1 ? ` gradScale=${gradScale}` : ''}${at ? ` at=${at} of ${at + n + 5}` : ''}`,
  files: ['adamw'],
  tolerance: 1e-6,
  async run(gpu, random) {
    const len = at ? at + n + 5 : n;
    const [g, p0, m0, v0] = [randomArray(len, random), randomArray(len, random), randomArray(len, random, -0.1, 0.1), randomArray(len, random, 0, 0.01)];
    const h = { lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay, step: 3, gradScale };
    const [gg, gp, gm, gv] = [g, p0, m0, v0].map((a) => gpu.upload(a));
    try {
      await adamw(gpu, { grad: gg!, param: gp!, m: gm!, v: gv! }, n, h, at);
      const [p1, m1, v1] = [await gpu.read(gp!), await gpu.read(gm!), await gpu.read(gv!)];
      const run = adamwReference(g.subarray(at, at + n), p0.subarray(at, at + n), m0.subarray(at, at + n), v0.subarray(at, at + n), h);
      const ref = (before: Float32Array, updated: Float64Array) => {
        const r = Float64Array.from(before);
        r.set(updated, at);
        return r;
      };
      return [
        [p1, ref(p0, run.param)],
        [m1, ref(m0, run.m)],
        [v1, ref(v0, run.v)],
      ];
    } finally {
      [gg, gp, gm, gv].forEach((b) => gpu.release(b!));
    }
  },
});

const ROWS: RowsProblem = { rows: 130, n: 37 };

/** Every check, in the order `mode selftest` runs and prints them. */
export const SELFTEST_CHECKS: SelftestCheck[] = [
  matmulCheck('naive', { m: 33, n: 7, k: 127 }),
  matmulCheck('blocked', { m: 33, n: 7, k: 127, transA: true, transB: true }),
  matmulCheck('tiled', { m: 65, n: 33, k: 127, transB: true }),
  matmulCheck('sg', { m: 129, n: 36, k: 100 }),
  matmulCheck('sg_bt', { m: 129, n: 36, k: 100, transB: true }),
  matmulCheck('sg_at', { m: 132, n: 36, k: 99, transA: true }),
  // Windows of 64 rows of B (64 columns of C a workgroup): 64, 64, 64 and a short 8 (padded into scratch).
  matmulCheck('sg_wn', { m: 65, n: 200, k: 132, transB: true }),
  matmulCheck('sg_wt', { m: 33, n: 260, k: 132 }),
  matmulF16Check({ m: 65, n: 36, k: 127, transB: true }),
  kmeansAssignCheck('naive', { n: 127, k: 33, d: 7 }),
  kmeansAssignCheck('blocked', { n: 257, k: 33, d: 127 }),
  kmeansAssignCheck('tiled', { n: 129, k: 65, d: 17 }),
  kmeansAssignCheck('sg', { n: 129, k: 33, d: 36 }),
  kmeansTopKCheck({ n: 129, k: 45, d: 36 }),
  kmeansUpdateCheck({ n: 1000, k: 33, d: 7 }),
  infoNCECheck('portable', { b: 33, m: 33, d: 17, symmetric: true }),
  infoNCECheck('tiled', { b: 70, m: 70, d: 65, symmetric: true }),
  infoNCECheck('sg', { b: 33, m: 33, d: 128, symmetric: true }),
  infoNCECheck('sg_chunk', { b: 33, m: 33, d: 128, symmetric: true }),
  attentionCheck('portable', { bh: 2, lq: 33, d: 7, causal: true }),
  attentionCheck('tiled', { bh: 2, lq: 70, d: 40, causal: true }),
  attentionCheck('sg', { bh: 2, lq: 65, d: 64, causal: true }),
  attentionCheck('portable', { bh: 6, heads: 3, lq: 17, d: 7, causal: true }, true),
  attentionCheck('tiled', { bh: 4, heads: 2, lq: 33, d: 40 }, true),
  attentionCheck('sg', { bh: 4, heads: 2, lq: 33, d: 32, causal: true }, true),
  softmaxCheck(33, 127, true),
  ...(Object.keys(STRIDED_OPS) as StridedOp[]).map((op) => stridedCheck(op)),
  ...(Object.keys(UNARY_OPS) as UnaryOp[]).map((op) => unaryCheck(op, 1037)),
  ...(Object.keys(REDUCE_OPS) as ReduceOp[]).map((op) => reduceCheck(op, 3, 129, 5, 'tree')),
  ...(Object.keys(REDUCE_OPS) as ReduceOp[]).map((op) => reduceCheck(op, 3, 129, 5, 'cols')),
  normalizeCheck({ outer: 5, len: 37, inner: 1, mode: 'standardize', eps: 1e-5 }),
  normalizeCheck({ outer: 2, len: 3, inner: 4, mode: 'l2', eps: 1e-12 }),
  normalizeBackwardCheck({ outer: 5, len: 37, inner: 1, mode: 'standardize', eps: 1e-5 }),
  normalizeBackwardCheck({ outer: 2, len: 3, inner: 4, mode: 'l2', eps: 1e-12 }),
  layerNormAffineCheck({ rows: 37, dim: 23, eps: 1e-5 }),
  layerNormAffineBackwardCheck({ rows: 37, dim: 23, eps: 1e-5 }),
  logSoftmaxCheck(ROWS),
  softmaxBackwardCheck(ROWS, false),
  softmaxBackwardCheck(ROWS, true),
  crossEntropyCheck(ROWS),
  crossEntropyBackwardCheck(ROWS),
  embeddingCheck(301, 7, 50),
  embeddingBackwardCheck(301, 7, 50),
  dropoutCheck(20001, 0.3),
  adamwCheck(1001, 0),
  adamwCheck(1001, 0.1),
  adamwCheck(1001, 0.1, 0.37),
  adamwCheck(333, 0.1, 0.5, 77),
  ...PEAK_CHECKS,
];

export interface SelftestOptions {
  /** Called as each check finishes (or is skipped), before the next one starts. */
  onCheck?: (result: SelftestResult, index: number, total: number) => void;
  /** The checks to run. Default: SELFTEST_CHECKS. */
  checks?: SelftestCheck[];
}

const sameFiles = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Runs one check: skipped (with the reason), passed, or failed (its error over tolerance, a throw, or other kernels dispatched than it declares). */
async function runCheck(gpu: Gpu, check: SelftestCheck, random: () => number): Promise<SelftestResult> {
  const base = { kernel: check.kernel, case: check.case, tolerance: check.tolerance };
  const skipped = check.unsupported?.(gpu);
  if (skipped) return { ...base, status: 'skipped', relativeError: null, reason: skipped, dispatched: [], ms: 0 };
  const before = new Map(gpu.dispatchCounts);
  const dispatched = () =>
    [...gpu.dispatchCounts]
      .filter(([k, n]) => n > (before.get(k) ?? 0))
      .map(([k]) => k)
      .sort();
  const t0 = performance.now();
  let outputs: Outputs;
  try {
    outputs = await check.run(gpu, random);
  } catch (e) {
    return {
      ...base,
      status: 'failed',
      relativeError: null,
      reason: `threw ${(e as Error).name}: ${(e as Error).message}`,
      dispatched: dispatched(),
      ms: performance.now() - t0,
    };
  }
  const ms = performance.now() - t0;
  const err = Math.max(...outputs.map(([out, ref]) => relativeError(out, ref)));
  const ran = dispatched();
  const declared = [...check.files].sort();
  const result: SelftestResult = { ...base, status: 'passed', relativeError: err, dispatched: ran, ms };
  if (!sameFiles(ran, declared))
    return { ...result, status: 'failed', reason: `dispatched ${ran.join(', ') || 'nothing'}; it declares ${declared.join(', ')}` };
  // NaN never passes (relativeError gives Infinity for an unwritten output; a NaN here would be a bug).
  return Number.isFinite(err) && err <= check.tolerance ? result : { ...result, status: 'failed' };
}

/** Runs every check in turn, reporting each through `onCheck` as it finishes. */
export async function selftest(gpu: Gpu, seed: number, options: SelftestOptions = {}): Promise<SelftestResult[]> {
  const checks = options.checks ?? SELFTEST_CHECKS;
  const results: SelftestResult[] = [];
  const random = rng(seed);
  for (const check of checks) {
    const result = await runCheck(gpu, check, random);
    results.push(result);
    options.onCheck?.(result, results.length - 1, checks.length);
  }
  return results;
}

/**
 * The table `mode selftest` prints row by row as checks finish: widths come from the checks'
 * names up front. The result column says `ok`, `FAIL` (and why, when not the error) or
 * `skipped: <why>`; a skipped check has no error to show.
 */
export function selftestTable(checks: Pick<SelftestCheck, 'kernel' | 'case'>[] = SELFTEST_CHECKS): { header: string; row: (r: SelftestResult) => string } {
  const head = ['kernel', 'case', 'rel. error', 'tolerance', 'ms', 'result'];
  const widths = [Math.max(head[0]!.length, ...checks.map((c) => c.kernel.length)), Math.max(head[1]!.length, ...checks.map((c) => c.case.length)), 10, 9, 8];
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= widths.length ? c : i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const result = (r: SelftestResult) =>
    r.status === 'skipped' ? `skipped: ${r.reason}` : r.status === 'passed' ? 'ok' : r.reason ? `FAIL: ${r.reason}` : 'FAIL';
  return {
    header: `${line(head)}\n${[...widths, 6].map((w) => '-'.repeat(w)).join('  ')}`,
    row: (r) =>
      line([
        r.kernel,
        r.case,
        r.relativeError === null ? '–' : r.relativeError.toExponential(2),
        r.tolerance ? r.tolerance.toExponential(0) : '0',
        r.status === 'skipped' ? '–' : r.ms.toFixed(1),
        result(r),
      ]),
  };
}

/** `P of N checks passed, F failed, S skipped`, naming the skipped ones' reason once. */
export function selftestSummary(results: SelftestResult[]): string {
  const count = (s: SelftestStatus) => results.filter((r) => r.status === s).length;
  const skipped = count('skipped');
  return `${count('passed')} of ${results.length} checks passed, ${count('failed')} failed, ${skipped} skipped${skipped ? ' (this adapter cannot run them)' : ''}`;
}
