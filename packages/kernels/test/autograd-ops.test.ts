import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  type AdamWParams,
  adamw,
  adamwReference,
  contiguousStrides,
  crossEntropy,
  crossEntropyBackward,
  crossEntropyBackwardReference,
  crossEntropyReference,
  dropout,
  dropoutReference,
  embedding,
  embeddingBackward,
  embeddingBackwardReference,
  embeddingPlan,
  embeddingReference,
  freshSeed,
  IGNORE_TARGET,
  layerNormAffine,
  layerNormAffineBackward,
  layerNormAffineBackwardReference,
  layerNormAffineReference,
  logSoftmax,
  logSoftmaxReference,
  nanArray,
  normalize,
  normalizeBackward,
  normalizeBackwardReference,
  normalizeReference,
  randomArray,
  reduce,
  reduceReference,
  reduceVariant,
  relativeError,
  rng,
  softmaxBackward,
  softmaxBackwardReference,
  softmaxReference,
  strided,
  stridedReference,
  unary,
  unaryReference,
  type LayerNormProblem,
  type NormalizeProblem,
  type ReduceOp,
  type ReduceVariant,
  type StridedOp,
  type UnaryOp,
} from '../src/index.js';

// The kernels under @mode/autograd, each against its float64 reference: seeded inputs, outputs
// poisoned with NaN (an unwritten element fails), odd sizes, and a negative control per kernel.
const seed = freshSeed();
console.log(`autograd kernel tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

const run = async (inputs: ArrayBufferView[], outputs: number[], record: (ins: GPUBuffer[], outs: GPUBuffer[]) => Promise<void>) => {
  const ins = inputs.map((x) => gpu.upload(x));
  const outs = outputs.map((n) => gpu.upload(nanArray(n)));
  await record(ins, outs);
  const results = [];
  for (const o of outs) results.push(await gpu.read(o));
  [...ins, ...outs].forEach((b) => gpu.release(b));
  return results;
};

describe('strided: broadcasting binary ops and layout copies', () => {
  const cases: { name: string; op: StridedOp; shape: number[]; sa: number[]; sb: number[]; na: number; nb: number }[] = [
    { name: 'same shape 3×5×7', op: 'add', shape: [3, 5, 7], sa: [35, 7, 1], sb: [35, 7, 1], na: 105, nb: 105 },
    { name: 'row broadcast 33×17 · 17', op: 'mul', shape: [33, 17], sa: [17, 1], sb: [0, 1], na: 561, nb: 17 },
    { name: 'column broadcast 9×13 / 9×1', op: 'div', shape: [9, 13], sa: [13, 1], sb: [1, 0], na: 117, nb: 9 },
    { name: 'outer 6×1 − 1×11', op: 'sub', shape: [6, 11], sa: [1, 0], sb: [0, 1], na: 6, nb: 11 },
    { name: 'max with scalar, rank 5', op: 'max', shape: [2, 3, 2, 5, 3], sa: contiguousStrides([2, 3, 2, 5, 3]), sb: [0, 0, 0, 0, 0], na: 180, nb: 1 },
    { name: 'permute (2,0,1) of 4×5×6', op: 'copy', shape: [6, 4, 5], sa: [1, 30, 6], sb: [0, 0, 0], na: 120, nb: 1 },
    { name: 'eq mask', op: 'eq', shape: [7, 3], sa: [3, 1], sb: [1, 0], na: 21, nb: 7 },
    // Runs along the last axis (RUN 8 and 4 in kernels/strided.wgsl).
    { name: 'runs of 8: heads split [3,5,6,8] → [6,3,5,8]', op: 'copy', shape: [6, 3, 5, 8], sa: [8, 240, 48, 1], sb: [0, 0, 0, 0], na: 720, nb: 1 },
    { name: 'runs of 8 with a broadcast row 5×16 + 16', op: 'add', shape: [5, 16], sa: [16, 1], sb: [0, 1], na: 80, nb: 16 },
    { name: 'runs of 4 along a strided axis: transpose 4×12 → 12×4', op: 'copy', shape: [12, 4], sa: [1, 12], sb: [0, 0], na: 48, nb: 1 },
    { name: 'runs of 4 with a column broadcast 7×12 · 7×1', op: 'mul', shape: [7, 12], sa: [12, 1], sb: [1, 0], na: 84, nb: 7 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const a = randomArray(c.na, random);
      const b = c.op === 'div' ? randomArray(c.nb, random, 0.5, 2) : randomArray(c.nb, random);
      if (c.op === 'eq') for (let r = 0; r < 7; r++) a[r * 3 + (r % 3)] = b[r]!; // some equal pairs
      const n = c.shape.reduce((x, y) => x * y, 1);
      const p = { shape: c.shape, a: { strides: c.sa }, b: { strides: c.sb }, out: { strides: contiguousStrides(c.shape) } };
      const [out] = await run([a, b], [n], ([ga, gb], [go]) => strided(gpu, c.op, ga!, gb!, go!, p));
      expect(relativeError(out!, stridedReference(c.op, a, b, new Float64Array(n), p))).toBeLessThanOrEqual(1e-6);
    });
  }

  it('slice into a region of a larger output (offsets), leaving the rest untouched', async () => {
    // out is 5×8 NaN; write a 3×4 block at (1, 2) from a 3×4 source.
    const a = randomArray(12, random);
    const p = { shape: [3, 4], a: { strides: [4, 1] }, out: { offset: 1 * 8 + 2, strides: [8, 1] } };
    const [out] = await run([a], [40], ([ga], [go]) => strided(gpu, 'copy', ga!, ga!, go!, p));
    const ref = stridedReference('copy', a, a, new Float64Array(40).fill(NaN), p);
    for (let i = 0; i < 40; i++) expect(Number.isNaN(out![i]!)).toBe(Number.isNaN(ref[i]!));
    expect(
      relativeError(
        out!.filter((x) => !Number.isNaN(x)),
        ref.filter((x) => !Number.isNaN(x)),
      ),
    ).toBe(0);
  });

  it('negative control: a wrong stride fails the check', async () => {
    const a = randomArray(30, random);
    const p = { shape: [5, 6], a: { strides: [6, 1] }, out: { strides: [6, 1] } };
    const [out] = await run([a], [30], ([ga], [go]) => strided(gpu, 'copy', ga!, ga!, go!, { ...p, a: { strides: [1, 5] } }));
    expect(relativeError(out!, stridedReference('copy', a, a, new Float64Array(30), p))).toBeGreaterThan(0.1);
  });
});

describe('unary ops and their backward', () => {
  const ops: [UnaryOp, number, number][] = [
    ['affine', -3, 3],
    ['exp', -3, 3],
    ['log', 0.1, 4],
    ['sqrt', 0.1, 4],
    ['relu', -2, 2],
    ['gelu', -4, 4],
    ['tanh', -20, 20],
    ['sigmoid', -6, 6],
    ['clamp', -2, 2],
    ['fill', -1, 1],
    ['gelu_erf', -6, 6],
    ['quick_gelu', -8, 8],
    ['exp_bwd', 0.1, 3],
    ['log_bwd', 0.1, 3],
    ['sqrt_bwd', 0.1, 3],
    ['relu_bwd', -1, 1],
    ['gelu_bwd', -4, 4],
    ['tanh_bwd', -1, 1],
    ['sigmoid_bwd', 0, 1],
    ['clamp_bwd', -2, 2],
    ['gelu_erf_bwd', -6, 6],
    ['quick_gelu_bwd', -8, 8],
  ];
  for (const [op, lo, hi] of ops) {
    it(`${op} n=1037`, async () => {
      const n = 1037;
      const x = randomArray(n, random, lo, hi);
      const dy = randomArray(n, random);
      const params = op === 'clamp' || op === 'clamp_bwd' ? { alpha: -0.5, beta: 0.7 } : { alpha: 1.5, beta: -0.25 };
      const [out] = await run([x, dy], [n], ([gx, gd], [go]) => unary(gpu, op, gx!, go!, n, params, gd!));
      expect(relativeError(out!, unaryReference(op, x, params, dy))).toBeLessThanOrEqual(2e-6);
    });
  }
  it('exact gelu: erf to 1.5e-7 everywhere, the lower tail without cancellation; the tanh form fails the exact reference', async () => {
    const x = Float32Array.from([-9, -5.5, -3.1, -1e-3, 0, 2e-3, 0.7, 3.3, 8, ...randomArray(500, random, -6, 6)]);
    const [exact, tanhForm, grad] = await run([x], [x.length, x.length, x.length], async ([gx], [a, b, c]) => {
      await unary(gpu, 'gelu_erf', gx!, a!, x.length);
      await unary(gpu, 'gelu', gx!, b!, x.length);
      await unary(gpu, 'gelu_erf_bwd', gx!, c!, x.length, {}, gx!);
    });
    const ref = unaryReference('gelu_erf', x);
    // x·Φ(x) within x·1.5e-7 (A&S 7.1.26) plus f32 rounding, element by element.
    exact!.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThanOrEqual(1.5e-7 * Math.max(1, Math.abs(x[i]!)) + 2e-7 * Math.abs(ref[i]!)));
    expect(relativeError(grad!, unaryReference('gelu_erf_bwd', x, {}, x))).toBeLessThanOrEqual(2e-6);
    expect(relativeError(tanhForm!, ref)).toBeGreaterThan(1e-5);
  });
  it('negative control: n one short leaves a NaN', async () => {
    const x = randomArray(100, random);
    const [out] = await run([x], [100], ([gx], [go]) => unary(gpu, 'exp', gx!, go!, 99));
    expect(relativeError(out!, unaryReference('exp', x))).toBe(Infinity);
  });
});

describe('reduce over an axis (deterministic: a tree, or one invocation per output)', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 1000, 1],
    [7, 33, 1],
    [1, 65, 13],
    [3, 129, 5],
    [70000, 3, 1],
    [1, 301, 517],
    [37, 9, 131],
  ];
  for (const variant of ['tree', 'cols'] as ReduceVariant[]) {
    for (const op of ['sum', 'max', 'sumsq'] as ReduceOp[]) {
      for (const [outer, len, inner] of shapes) {
        it(`${variant} ${op} ${outer}×${len}×${inner}`, async () => {
          const x = randomArray(outer * len * inner, random);
          const p = { outer, len, inner, alpha: op === 'sum' ? 0.5 : 1, variant };
          const [out] = await run([x], [outer * inner], ([gx], [go]) => reduce(gpu, op, gx!, go!, p));
          expect(relativeError(out!, reduceReference(op, x, p))).toBeLessThanOrEqual(1e-5);
        });
      }
    }
  }
  it('picks cols for many outputs or a short axis, the tree for few outputs over a long one', () => {
    expect(reduceVariant({ outer: 1, len: 1024, inner: 512 })).toBe('cols');
    expect(reduceVariant({ outer: 64, len: 16, inner: 128 })).toBe('cols');
    expect(reduceVariant({ outer: 1, len: 100000, inner: 1 })).toBe('tree');
  });
  it('is bit-for-bit repeatable, and writes at an offset', async () => {
    const x = randomArray(5000, random);
    const [a, b] = await run([x], [3, 3], ([gx], [g1, g2]) =>
      Promise.all([
        reduce(gpu, 'sum', gx!, g1!, { outer: 1, len: 5000, inner: 1, outOffset: 2 }),
        reduce(gpu, 'sum', gx!, g2!, { outer: 1, len: 5000, inner: 1, outOffset: 2 }),
      ]).then(() => {}),
    );
    expect(Number.isNaN(a![0]!) && Number.isNaN(a![1]!)).toBe(true);
    expect(a![2]).toBe(b![2]);
    expect(relativeError([a![2]!], reduceReference('sum', x, { outer: 1, len: 5000, inner: 1 }))).toBeLessThanOrEqual(1e-5);
  });
  it('negative control: the wrong axis fails', async () => {
    const x = randomArray(6 * 7, random);
    const [out] = await run([x], [6], ([gx], [go]) => reduce(gpu, 'sum', gx!, go!, { outer: 6, len: 7, inner: 1 }));
    expect(relativeError(out!.subarray(0, 6), reduceReference('sum', x, { outer: 1, len: 7, inner: 6 }))).toBeGreaterThan(0.1);
  });
});

describe('normalize (layer norm, batch norm, L2) and its backward', () => {
  const cases: NormalizeProblem[] = [
    { outer: 5, len: 37, inner: 1, mode: 'standardize', eps: 1e-5 },
    { outer: 1, len: 19, inner: 6, mode: 'standardize', eps: 1e-5 },
    { outer: 70, len: 8, inner: 1, mode: 'l2', eps: 1e-12 },
    { outer: 2, len: 3, inner: 4, mode: 'l2', eps: 1e-12 },
  ];
  for (const p of cases) {
    it(`${p.mode} ${p.outer}×${p.len}×${p.inner}`, async () => {
      const n = p.outer * p.len * p.inner;
      const lines = p.outer * p.inner;
      const x = randomArray(n, random, -2, 3);
      const [y, mean, rstd] = await run([x], [n, lines, lines], ([gx], [gy, gm, gr]) => normalize(gpu, gx!, { y: gy!, mean: gm!, rstd: gr! }, p));
      const ref = normalizeReference(x, p);
      expect(relativeError(y!, ref.y)).toBeLessThanOrEqual(1e-5);
      expect(relativeError(mean!, ref.mean)).toBeLessThanOrEqual(1e-5);
      expect(relativeError(rstd!, ref.rstd)).toBeLessThanOrEqual(1e-5);
      // Backward against the float64 reference on the reference's y.
      const dy = randomArray(n, random);
      const [dx] = await run([Float32Array.from(ref.y), dy, Float32Array.from(ref.mean), Float32Array.from(ref.rstd)], [n], ([a, b, c, d], [o]) =>
        normalizeBackward(gpu, { y: a!, dy: b!, mean: c!, rstd: d!, dx: o! }, p),
      );
      const want = normalizeBackwardReference(ref.y, dy, ref, p);
      expect(relativeError(dx!, want)).toBeLessThanOrEqual(1e-5);
    });
  }
  it('l2 of a zero row is clamped (no NaN), and flags the clamp', async () => {
    const x = new Float32Array(8);
    const p: NormalizeProblem = { outer: 2, len: 4, inner: 1, mode: 'l2', eps: 1e-12 };
    x.set([1, 2, 3, 4]);
    const [y, flag] = await run([x], [8, 2, 2], ([gx], [gy, gm, gr]) => normalize(gpu, gx!, { y: gy!, mean: gm!, rstd: gr! }, p));
    expect([...y!.subarray(4)]).toEqual([0, 0, 0, 0]);
    expect([...flag!]).toEqual([0, 1]);
  });
  it('negative control: layer norm over the wrong axis fails', async () => {
    const x = randomArray(24, random);
    const p: NormalizeProblem = { outer: 4, len: 6, inner: 1, mode: 'standardize', eps: 1e-5 };
    const [y] = await run([x], [24, 4, 4], ([gx], [gy, gm, gr]) => normalize(gpu, gx!, { y: gy!, mean: gm!, rstd: gr! }, { ...p, outer: 6, len: 4 }));
    expect(relativeError(y!, normalizeReference(x, p).y)).toBeGreaterThan(0.1);
  });
});

describe('layer norm with weight and bias fused (normalize and normalize_bwd with AFFINE)', () => {
  type Grad = 'dx' | 'dweight' | 'dbias';
  const ALL: Grad[] = ['dx', 'dweight', 'dbias'];
  // x, weight, bias, dy; the forward on the GPU, the backward from the reference's mean and rstd as float32.
  const inputs = (p: LayerNormProblem) => ({
    x: randomArray(p.rows * p.dim, random, -2, 3),
    w: randomArray(p.dim, random, -2, 2),
    b: randomArray(p.dim, random),
    dy: randomArray(p.rows * p.dim, random),
  });
  const forward = (p: LayerNormProblem, x: Float32Array, w: Float32Array, b: Float32Array) =>
    run([x, w, b], [x.length, p.rows, p.rows], ([gx, gw, gb], [gy, gm, gr]) =>
      layerNormAffine(gpu, { x: gx!, weight: gw!, bias: gb! }, { y: gy!, mean: gm!, rstd: gr! }, p),
    );
  /** The wanted gradients, from `src` (x, or a wrong input for the negative control), in the order of `want`. */
  const backward = (p: LayerNormProblem, src: Float32Array, dy: Float32Array, w: Float32Array, stats: Float32Array[], want: Grad[]) =>
    run(
      [src, dy, stats[0]!, stats[1]!, w],
      want.map((g) => (g === 'dx' ? p.rows * p.dim : p.dim)),
      ([gx, gd, gm, gr, gw], outs) =>
        layerNormAffineBackward(gpu, { x: gx!, dy: gd!, mean: gm!, rstd: gr!, weight: gw!, ...Object.fromEntries(want.map((g, i) => [g, outs[i]!])) }, p),
    );

  // Odd sizes; 300 rows take 5 row workgroups beside 8 column blocks of 64 columns; one row; C < 8.
  const cases: [number, number][] = [
    [37, 23],
    [37, 64],
    [300, 64],
    [1, 9],
    [130, 5],
  ];
  for (const [rows, dim] of cases) {
    it(`${rows}×${dim}: forward y, mean, rstd; backward dx, dweight, dbias`, async () => {
      const p: LayerNormProblem = { rows, dim, eps: 1e-5 };
      const { x, w, b, dy } = inputs(p);
      const [y, mean, rstd] = await forward(p, x, w, b);
      const ref = layerNormAffineReference(x, w, b, p);
      expect(relativeError(y!, ref.y)).toBeLessThanOrEqual(1e-5);
      expect(relativeError(mean!, ref.mean)).toBeLessThanOrEqual(1e-5);
      expect(relativeError(rstd!, ref.rstd)).toBeLessThanOrEqual(1e-5);
      const stats = [Float32Array.from(ref.mean), Float32Array.from(ref.rstd)];
      const got = await backward(p, x, dy, w, stats, ALL);
      const want = layerNormAffineBackwardReference(x, dy, w, { mean: stats[0]!, rstd: stats[1]! }, p);
      ALL.forEach((g, i) => expect(relativeError(got[i]!, want[g]), g).toBeLessThanOrEqual(1e-5));
    });
  }

  it('computes only the gradients asked for (each subset right), and nothing when none is', async () => {
    const p: LayerNormProblem = { rows: 37, dim: 23, eps: 1e-5 };
    const { x, w, b, dy } = inputs(p);
    const ref = layerNormAffineReference(x, w, b, p);
    const stats = [Float32Array.from(ref.mean), Float32Array.from(ref.rstd)];
    const want = layerNormAffineBackwardReference(x, dy, w, { mean: stats[0]!, rstd: stats[1]! }, p);
    for (const subset of [['dx'], ['dweight'], ['dbias'], ['dweight', 'dbias'], ['dx', 'dbias']] as Grad[][]) {
      const got = await backward(p, x, dy, w, stats, subset);
      subset.forEach((g, i) => expect(relativeError(got[i]!, want[g]), `${subset} ${g}`).toBeLessThanOrEqual(1e-5));
    }
    const before = gpu.dispatchCounts.get('normalize_bwd') ?? 0;
    await backward(p, x, dy, w, stats, []);
    expect(gpu.dispatchCounts.get('normalize_bwd') ?? 0).toBe(before);
  });

  it('negative controls: the backward from the output instead of x, and weight and bias swapped, fail', async () => {
    const p: LayerNormProblem = { rows: 37, dim: 23, eps: 1e-5 };
    const { x, w, b, dy } = inputs(p);
    const ref = layerNormAffineReference(x, w, b, p);
    const stats = [Float32Array.from(ref.mean), Float32Array.from(ref.rstd)];
    const want = layerNormAffineBackwardReference(x, dy, w, { mean: stats[0]!, rstd: stats[1]! }, p);
    const [dx, dweight] = await backward(p, Float32Array.from(ref.y), dy, w, stats, ['dx', 'dweight']);
    expect(relativeError(dx!, want.dx)).toBeGreaterThan(0.1);
    expect(relativeError(dweight!, want.dweight)).toBeGreaterThan(0.1);
    const [y] = await forward(p, x, b, w);
    expect(relativeError(y!, ref.y)).toBeGreaterThan(0.1);
  });
});

describe('log-softmax, softmax backward, cross-entropy', () => {
  for (const [rows, n] of [
    [1, 1],
    [3, 10],
    [130, 37],
  ] as const) {
    it(`${rows}×${n}`, async () => {
      const x = randomArray(rows * n, random, -6, 6);
      const [y] = await run([x], [rows * n], ([gx], [gy]) => logSoftmax(gpu, gx!, gy!, { rows, n }));
      const ls = logSoftmaxReference(x, { rows, n });
      expect(relativeError(y!, ls)).toBeLessThanOrEqual(1e-5);

      const dy = randomArray(rows * n, random);
      const sm = softmaxReference(x, { rows, n });
      for (const log of [false, true]) {
        const yv = log ? ls : sm;
        const [dx] = await run([Float32Array.from(yv), dy], [rows * n], ([a, b], [o]) => softmaxBackward(gpu, { y: a!, dy: b!, dx: o! }, { rows, n, log }));
        const want = softmaxBackwardReference(yv, dy, { rows, n, log });
        expect(relativeError(dx!, want)).toBeLessThanOrEqual(1e-5);
      }

      const targets = Uint32Array.from({ length: rows }, (_, r) => (r % 4 === 3 ? IGNORE_TARGET : Math.floor(random() * n)));
      const [loss, lse, valid] = await run([x, targets], [rows, rows, rows], ([a, t], [l, s, v]) =>
        crossEntropy(gpu, { x: a!, targets: t!, loss: l!, lse: s!, valid: v! }, { rows, n }),
      );
      expect(relativeError(loss!, crossEntropyReference(x, targets, { rows, n }))).toBeLessThanOrEqual(1e-5);
      expect([...valid!]).toEqual([...targets].map((v) => (v < n ? 1 : 0)));
      const dloss = randomArray(rows, random);
      const [dx] = await run([x, targets, lse!, dloss], [rows * n], ([a, t, s, d], [o]) =>
        crossEntropyBackward(gpu, { x: a!, targets: t!, lse: s!, dloss: d!, dx: o! }, { rows, n }),
      );
      const want = crossEntropyBackwardReference(x, targets, dloss, { rows, n });
      expect(relativeError(dx!, want)).toBeLessThanOrEqual(1e-5);
    });
  }
  it('negative control: cross-entropy against shifted targets fails', async () => {
    const [rows, n] = [16, 5];
    const x = randomArray(rows * n, random, -4, 4);
    const t = Uint32Array.from({ length: rows }, (_, r) => r % n);
    const [loss] = await run([x, t], [rows, rows, rows], ([a, tt], [l, s, v]) =>
      crossEntropy(gpu, { x: a!, targets: tt!, loss: l!, lse: s!, valid: v! }, { rows, n }),
    );
    const shifted = t.map((v) => (v + 1) % n);
    expect(relativeError(loss!, crossEntropyReference(x, shifted, { rows, n }))).toBeGreaterThan(0.05);
  });
});

describe('embedding gather and deterministic scatter-add', () => {
  it('gather and backward, with repeated indices', async () => {
    const [vocab, d, n] = [50, 7, 301];
    const table = randomArray(vocab * d, random);
    const idx = Uint32Array.from({ length: n }, () => Math.floor(random() * 20) * 2); // even rows only: odd rows stay 0
    const [out] = await run([table, idx], [n * d], ([t, i], [o]) => embedding(gpu, t!, i!, o!, { n, d, vocab }));
    expect(relativeError(out!, embeddingReference(table, idx, d))).toBe(0);
    const dy = randomArray(n * d, random);
    const plan = embeddingPlan(idx);
    const outs = [];
    for (let rep = 0; rep < 2; rep++) {
      const [dt] = await run([dy, plan.order, plan.starts, plan.rows], [vocab * d], ([g, o, s, r], [dtab]) =>
        embeddingBackward(gpu, { dy: g!, order: o!, starts: s!, rows: r!, dTable: dtab! }, { n, d, vocab, unique: plan.rows.length }),
      );
      outs.push(dt!);
    }
    expect(relativeError(outs[0]!, embeddingBackwardReference(dy, idx, { vocab, d }))).toBeLessThanOrEqual(1e-6);
    expect(Buffer.from(outs[0]!.buffer).equals(Buffer.from(outs[1]!.buffer))).toBe(true);
  });
  it('negative control: an index past the table reads 0, not out of bounds', async () => {
    const table = randomArray(12, random);
    const idx = Uint32Array.from([0, 5]);
    const [out] = await run([table, idx], [8], ([t, i], [o]) => embedding(gpu, t!, i!, o!, { n: 2, d: 4, vocab: 3 }));
    expect([...out!.subarray(4)]).toEqual([0, 0, 0, 0]);
  });
});

describe('dropout (counter-based hash)', () => {
  it('matches the CPU mask bit for bit, keeps about 1 − p, and is seed-dependent', async () => {
    const n = 20001;
    const x = randomArray(n, random, 0.5, 1);
    const p = { n, p: 0.3, seed: 12345 };
    const [y1, y2] = await run([x], [n, n], ([gx], [a, b]) => dropout(gpu, gx!, a!, p).then(() => dropout(gpu, gx!, b!, { ...p, seed: 54321 })));
    expect(relativeError(y1!, dropoutReference(x, p))).toBeLessThanOrEqual(1e-6);
    const kept = y1!.filter((v) => v !== 0).length / n;
    expect(Math.abs(kept - 0.7)).toBeLessThan(0.02);
    // negative control: another seed gives another mask
    expect(relativeError(y2!, dropoutReference(x, p))).toBeGreaterThan(0.3);
  });
});

describe('adamw', () => {
  /** One step on fresh random parameters, moments and gradient: the inputs and what the GPU wrote. */
  async function adamwStep(n: number, h: AdamWParams) {
    const [g, p0, m0, v0] = [randomArray(n, random), randomArray(n, random), randomArray(n, random, -0.1, 0.1), randomArray(n, random, 0, 0.01)];
    const [gg, gp, gm, gv] = [g, p0, m0, v0].map((a) => gpu.upload(a));
    try {
      await adamw(gpu, { grad: gg!, param: gp!, m: gm!, v: gv! }, n, h);
      const [p1, m1, v1] = [await gpu.read(gp!), await gpu.read(gm!), await gpu.read(gv!)];
      return { g, p0, m0, v0, p1, m1, v1 };
    } finally {
      [gg, gp, gm, gv].forEach((b) => gpu.release(b!));
    }
  }

  it('a gradient scale (clipping applied inside the update) matches the reference; unscaled does not', async () => {
    const h = { lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2, step: 2, gradScale: 0.37 };
    const { g, p0, m0, v0, p1, m1, v1 } = await adamwStep(777, h);
    const ref = adamwReference(g, p0, m0, v0, h);
    expect(relativeError(p1, ref.param)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(m1, ref.m)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(v1, ref.v)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(m1, adamwReference(g, p0, m0, v0, { ...h, gradScale: 1 }).m)).toBeGreaterThan(1e-2);
    await expect(adamwStep(777, { ...h, gradScale: NaN })).rejects.toThrow('adamw: gradScale must be finite and ≥ 0, got NaN');
  });

  it('one step at n=1001 matches the reference (with and without weight decay)', async () => {
    for (const wd of [0, 0.1]) {
      const h = { lr: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: wd, step: 3 };
      const { g, p0, m0, v0, p1, m1, v1 } = await adamwStep(1001, h);
      const ref = adamwReference(g, p0, m0, v0, h);
      expect(relativeError(p1, ref.param)).toBeLessThanOrEqual(1e-6);
      expect(relativeError(m1, ref.m)).toBeLessThanOrEqual(1e-6);
      expect(relativeError(v1, ref.v)).toBeLessThanOrEqual(1e-6);
      // negative control: the reference at another step differs
      expect(
        relativeError(
          p1.map((x, i) => x - p0[i]!),
          ref.param.map((x, i) => x - p0[i]!),
        ),
      ).toBeLessThan(1e-4);
      const other = adamwReference(g, p0, m0, v0, { ...h, step: 1 });
      expect(
        relativeError(
          p1.map((x, i) => x - p0[i]!),
          other.param.map((x, i) => x - p0[i]!),
        ),
      ).toBeGreaterThan(1e-2);
    }
  });
});
