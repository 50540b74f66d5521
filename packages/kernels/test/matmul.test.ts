import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  freshSeed,
  fromF16Bits,
  toF16Bits,
  MATMUL_VARIANTS,
  matmulReference,
  matmulReferenceWithRowSums,
  matmulUnsupported,
  matmulWith,
  nanArray,
  randomArray,
  relativeError,
  rng,
  type MatmulProblem,
  type MatmulVariantName,
} from '../src/index.js';

const seed = freshSeed();
console.log(`matmul tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

/** Runs one problem with fresh random inputs and a NaN-poisoned C (unless β ≠ 0); returns the relative error. */
async function check(
  variant: MatmulVariantName,
  p: MatmulProblem & { withBias?: boolean; withRowSums?: boolean; withGeluPre?: boolean; withGeluGrad?: boolean },
  opts: { shortRows?: number } = {},
) {
  const batch = p.batch ?? 1;
  const a = randomArray(p.m * p.k * batch, random);
  const b = randomArray(p.k * p.n * batch, random);
  const c0 = p.beta ? randomArray(p.m * p.n * batch, random) : nanArray(p.m * p.n * batch);
  const biasValues = p.withBias ? randomArray(p.n, random) : undefined;
  const [ga, gb, gc] = [gpu.upload(a), gpu.upload(b), gpu.upload(c0)];
  const bias = biasValues ? gpu.upload(biasValues) : undefined;
  const rowSumsA = p.withRowSums ? gpu.upload(nanArray(p.m * batch)) : undefined;
  const geluPre = p.withGeluPre ? gpu.upload(nanArray(p.m * p.n * batch)) : undefined;
  const geluGradOfValues = p.withGeluGrad ? randomArray(p.m * p.n * batch, random, -3, 3) : undefined;
  const geluGradOf = geluGradOfValues && gpu.upload(geluGradOfValues);
  await matmulWith(gpu, variant, ga, gb, gc, { ...p, m: opts.shortRows ?? p.m, bias, rowSumsA, geluPre, geluGradOf });
  const out = await gpu.read(gc);
  const sums = rowSumsA && (await gpu.read(rowSumsA));
  const pre = geluPre && (await gpu.read(geluPre));
  [ga, gb, gc, bias, rowSumsA, geluPre, geluGradOf].forEach((x) => x && gpu.release(x));
  const want = matmulReferenceWithRowSums(a, b, { ...p, biasValues, c0, savedGelu: p.withGeluPre, geluGradOfValues });
  return Math.max(relativeError(out, want.c), sums ? relativeError(sums, want.rowSums) : 0, pre ? relativeError(pre, want.pre) : 0);
}

const layouts = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];
// 1 and primes, and sizes just past each variant's tile edges (sg: 128 rows × 32 columns a workgroup).
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 7, 1],
  [7, 3, 33],
  [33, 1, 7],
  [127, 33, 65],
  [129, 36, 40],
  [64, 64, 64],
  [65, 68, 1000],
  [132, 36, 100],
];

/** The layout a variant is written for (A·B for the any-layout ones). */
const layoutOf = (name: MatmulVariantName) => layouts[{ AB: 0, ABt: 1, AtB: 2 }[MATMUL_VARIANTS[name].layout ?? 'AB']]!;

for (const name of (Object.keys(MATMUL_VARIANTS) as MatmulVariantName[]).filter((v) => !MATMUL_VARIANTS[v].dtype)) {
  // The uniform-window variants are unbatched: their epilogue checks run one matrix.
  const batched = (n: number) => (MATMUL_VARIANTS[name].windows ? 1 : n);
  describe(`matmul variant ${name}`, () => {
    // A variant written for one layout is tested in that layout only.
    const own = MATMUL_VARIANTS[name].layout;
    for (const layout of layouts.filter((l) => own === null || own === `${l.transA ? 'At' : 'A'}${l.transB ? 'Bt' : 'B'}`)) {
      for (const [m, n, k] of shapes) {
        const p = { m, n, k, ...layout };
        const label = `${layout.transA ? 'Aᵀ' : 'A'}·${layout.transB ? 'Bᵀ' : 'B'} ${m}×${n}×${k}`;
        it(label, async (ctx) => {
          const why = matmulUnsupported(gpu, name, p);
          if (why) return ctx.skip(why); // the reason is printed in the report
          expect(await check(name, p)).toBeLessThanOrEqual(1e-5);
        });
      }
    }
    const bigEnough = { m: 36, n: 40, k: 44 };
    it('epilogue: α, β·C, bias, GELU, batched with strides', async (ctx) => {
      const p: MatmulProblem = { ...bigEnough, ...layoutOf(name), alpha: 0.5, beta: -1.5, batch: batched(3), gelu: true };
      const why = matmulUnsupported(gpu, name, p);
      if (why) return ctx.skip(why);
      expect(await check(name, { ...p, withBias: true })).toBeLessThanOrEqual(1e-5);
      // A broadcast to every batch (stride 0).
      expect(await check(name, { ...p, strideA: 0, withBias: false })).toBeLessThanOrEqual(1e-5);
    });
    it('rowSumsA (Σ_k op(A)[i, k], fused or by a reduction after), batched, at odd and tile-edge sizes', async (ctx) => {
      const layout = layoutOf(name);
      const problems = (
        [
          [36, 40, 44],
          [132, 36, 1000],
          [132, 36, 1001],
          [4, 4, 3],
        ] as const
      ).map(([m, n, k]): MatmulProblem => ({ m, n, k, ...layout, batch: batched(2), alpha: 0.5, gelu: true }));
      const runnable = problems.filter((p) => !matmulUnsupported(gpu, name, p));
      if (!runnable.length) return ctx.skip(matmulUnsupported(gpu, name, problems[0]!)!);
      for (const p of runnable) expect(await check(name, { ...p, withBias: true, withRowSums: true })).toBeLessThanOrEqual(1e-5);
    });
    it("saved-input GELU epilogues, exact and QuickGELU (fused, or by a unary pass after): C = GELU(v) with v kept, and C = v·GELU'(h), with α, β·C, bias, batched", async (ctx) => {
      const layout = layoutOf(name);
      const problems = (
        [
          [36, 40, 44],
          [132, 36, 1000],
          [4, 4, 3],
        ] as const
      ).map(([m, n, k]): MatmulProblem => ({ m, n, k, ...layout, batch: batched(2), alpha: 0.5, beta: -1.5 }));
      const runnable = problems.filter((p) => !matmulUnsupported(gpu, name, p));
      if (!runnable.length) return ctx.skip(matmulUnsupported(gpu, name, problems[0]!)!);
      for (const p of runnable)
        for (const geluKind of ['erf', 'quick'] as const) {
          expect(await check(name, { ...p, geluKind, withBias: true, withGeluPre: true })).toBeLessThanOrEqual(1e-5);
          expect(await check(name, { ...p, geluKind, withBias: true, withGeluGrad: true })).toBeLessThanOrEqual(1e-5);
        }
    });
  });
}

describe('matmul B through uniform windows (sg_wn, sg_wt)', () => {
  // Windows of as many whole 64-row blocks of B as fit 64 KiB (32-row blocks for K > 256):
  // several of them, a short last one (copied to a padded scratch buffer when it runs past B's
  // buffer), and one window holding all of a short B.
  const problems: [number, number, number][] = [
    [33, 260, 132], // K ≤ 256: windows of 64 rows, 64 columns of C a workgroup: 64 ×4, then 4
    [65, 200, 512], // K > 256: windows of 32 rows, 32 columns a workgroup: 32 ×6, then 8
    [40, 1000, 16], // one window of 1000 rows, B smaller than 64 KiB
    [130, 36, 100], // one window, tile edges in M
  ];
  for (const name of ['sg_wn', 'sg_wt'] as const) {
    for (const [m, n, k] of problems) {
      it(`${name} ${m}×${n}×${k}: α, β·C, bias, then GELU / exact and quick GELU kept / their GELU' of a saved input`, async (ctx) => {
        const p: MatmulProblem = { m, n, k, ...layoutOf(name), alpha: 0.5, beta: -1.5 };
        const why = matmulUnsupported(gpu, name, p);
        if (why) return ctx.skip(why);
        expect(await check(name, { ...p, withBias: true, gelu: true })).toBeLessThanOrEqual(1e-5);
        expect(await check(name, { ...p, withBias: true, withGeluPre: true })).toBeLessThanOrEqual(1e-5);
        expect(await check(name, { ...p, beta: 0, withGeluGrad: true })).toBeLessThanOrEqual(1e-5);
        expect(await check(name, { ...p, geluKind: 'quick', withBias: true, withGeluPre: true })).toBeLessThanOrEqual(1e-5);
        expect(await check(name, { ...p, geluKind: 'quick', beta: 0, withGeluGrad: true })).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('B in a buffer without UNIFORM usage goes through the scratch window', async (ctx) => {
    const p: MatmulProblem = { m: 33, n: 260, k: 132, transB: true };
    const why = matmulUnsupported(gpu, 'sg_wn', p);
    if (why) return ctx.skip(why);
    const a = randomArray(p.m * p.k, random);
    const b = randomArray(p.n * p.k, random);
    const gb = gpu.device.createBuffer({ size: b.byteLength, usage: 0x80 | 0x8 | 0x4, label: 'storage-only B' });
    gpu.device.queue.writeBuffer(gb, 0, b);
    const [ga, gc] = [gpu.upload(a), gpu.upload(nanArray(p.m * p.n))];
    await matmulWith(gpu, 'sg_wn', ga, gb, gc, p);
    const out = await gpu.read(gc);
    [ga, gc].forEach((x) => gpu.release(x));
    gb.destroy();
    expect(relativeError(out, matmulReference(a, b, p))).toBeLessThanOrEqual(1e-5);
  });

  it('a batched problem or K past 512 is refused with the reason', () => {
    expect(matmulUnsupported(gpu, 'sg_wn', { m: 8, n: 8, k: 8, transB: true, batch: 2 })).toMatch(/unbatched/);
    expect(matmulUnsupported(gpu, 'sg_wt', { m: 8, n: 8, k: 516 })).toMatch(/K = 516 .*K ≤ 512/);
  });
});

describe('matmul f16 (f16 storage, f32 accumulation)', () => {
  for (const layout of layouts) {
    for (const [m, n, k] of [
      [1, 1, 1],
      [33, 7, 65],
      [65, 36, 127],
    ] as const) {
      it(`${layout.transA ? 'Aᵀ' : 'A'}·${layout.transB ? 'Bᵀ' : 'B'} ${m}×${n}×${k} with bias and GELU`, async (ctx) => {
        const p: MatmulProblem = { m, n, k, ...layout, dtype: 'f16', gelu: true, alpha: 0.5 };
        const why = matmulUnsupported(gpu, 'blocked_f16', p);
        if (why) return ctx.skip(why);
        // The reference sees the same f16-rounded inputs the kernel reads.
        const [a, b, bias] = [m * k, k * n, n].map((len) => toF16Bits(randomArray(len, random)));
        const [ga, gb, gbias] = [gpu.upload(a!), gpu.upload(b!), gpu.upload(bias!)];
        const gc = gpu.upload(new Uint16Array(m * n).fill(0x7e00)); // f16 NaN poison
        await matmulWith(gpu, 'blocked_f16', ga, gb, gc, { ...p, bias: gbias });
        const out = fromF16Bits(await gpu.read(gc, Uint16Array, m * n));
        [ga, gb, gbias, gc].forEach((x) => gpu.release(x));
        const ref = matmulReference(fromF16Bits(a!), fromF16Bits(b!), { ...p, biasValues: fromF16Bits(bias!) });
        expect(relativeError(out, ref)).toBeLessThanOrEqual(1e-2);
      });
    }
  }
});

describe('matmul checks can fail', () => {
  it('rows left unwritten (NaN-poisoned output) give an infinite error', async () => {
    expect(await check('blocked', { m: 9, n: 9, k: 9 }, { shortRows: 8 })).toBe(Infinity);
  });

  it('the reference agrees with a hand-computed product', () => {
    // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]; with Bᵀ: [1 2; 3 4] · [5 7; 6 8] = [17 23; 39 53]
    expect([...matmulReference([1, 2, 3, 4], [5, 6, 7, 8], { m: 2, n: 2, k: 2 })]).toEqual([19, 22, 43, 50]);
    expect([...matmulReference([1, 2, 3, 4], [5, 6, 7, 8], { m: 2, n: 2, k: 2, transB: true })]).toEqual([17, 23, 39, 53]);
  });

  it('a variant that cannot run a problem says why', async () => {
    expect(matmulUnsupported(gpu, 'sg_bt', { m: 8, n: 8, k: 8 })).toBe('written for ABt, not AB');
    await expect(matmulWith(gpu, 'sg', gpu.buffer(4), gpu.buffer(4), gpu.buffer(4), { m: 1, n: 3, k: 4 })).rejects.toThrow(/N = 3 is not a multiple of 4/);
  });
});
