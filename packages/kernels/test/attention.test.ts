import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  ATTENTION_VARIANTS,
  attentionBackward,
  attentionBackwardReference,
  attentionForward,
  attentionLayouts,
  attentionReference,
  attentionSpan,
  attentionTuneHeads,
  Autotuner,
  chooseAttention,
  fusedQKVLayout,
  freshSeed,
  nanArray,
  randomArray,
  relativeError,
  rng,
  type AttentionLayout,
  type AttentionProblem,
  type AttentionTensor,
  type AttentionVariantName,
} from '../src/index.js';

const seed = freshSeed();
console.log(`attention tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

type Case = AttentionProblem & {
  padded?: number;
  /** Q, K, V from one qkv [B, L, 3W], O merged [B, L, W], dQ, dK, dV into one dqkv (needs lk = lq). */
  fused?: boolean;
  /** Every tensor in its own buffer with gaps between rows, heads and batch items (multiples of 4 floats). */
  gapped?: boolean;
};

/** The case's layouts, and which buffer holds each tensor. */
function layoutOf(c: Case): { p: AttentionProblem; where: Record<AttentionTensor, string> } {
  const heads = c.heads ?? 1;
  const lk = c.lk ?? c.lq;
  if (c.fused) {
    const where = { q: 'qkv', k: 'qkv', v: 'qkv', o: 'o', dO: 'dO', dQ: 'dqkv', dK: 'dqkv', dV: 'dqkv' } as const;
    return { p: { ...c, layout: fusedQKVLayout(heads, c.lq, c.d) }, where };
  }
  const where = { q: 'q', k: 'k', v: 'v', o: 'o', dO: 'dO', dQ: 'dQ', dK: 'dKV', dV: 'dKV' } as const;
  if (!c.gapped) return { p: c, where };
  // Rows of heads side by side (as in qkv), or heads of rows one after the other; gaps everywhere, so sb ≠ heads·sh.
  const rowsMajor = (rows: number, offset: number): AttentionLayout => {
    const sh = c.d + 4;
    const sr = heads * sh + 4;
    return { offset, sb: rows * sr + 8, sh, sr };
  };
  const headsMajor = (rows: number, offset: number): AttentionLayout => {
    const sr = c.d + 4;
    const sh = rows * sr + 8;
    return { offset, sb: heads * sh + 12, sh, sr };
  };
  const dK = rowsMajor(lk, 4);
  const layout = {
    q: rowsMajor(c.lq, 4),
    k: headsMajor(lk, 8),
    v: rowsMajor(lk, 12),
    o: headsMajor(c.lq, 8),
    dO: rowsMajor(c.lq, 4),
    dQ: headsMajor(c.lq, 4),
    dK,
  };
  // dV after dK in their shared buffer, past a gap.
  const dV = headsMajor(lk, 4 * Math.ceil(attentionSpan({ ...c, layout }, 'dK') / 4) + 4);
  return { p: { ...c, layout: { ...layout, dV } }, where };
}

/** The reference's elements against the kernels' (relative error), and the kernels' writes where the reference writes nothing (`stray`, must be 0). */
function compare(got: ArrayLike<number>, ref: ArrayLike<number>) {
  const at = Array.from({ length: ref.length }, (_, i) => i).filter((i) => !Number.isNaN(ref[i]));
  let stray = 0;
  for (let i = 0; i < ref.length; i++) if (Number.isNaN(ref[i]) && !Number.isNaN(got[i]!)) stray++;
  return {
    error: relativeError(
      at.map((i) => got[i]!),
      at.map((i) => ref[i]!),
    ),
    stray,
    gaps: ref.length - at.length,
  };
}

/**
 * Random inputs (gaps too: a kernel that read one would be wrong), a key-padding mask that hides
 * the last `padded` keys of odd batch items, NaN-poisoned outputs (with 8 floats past the last
 * element when gapped); each output buffer compared with its float64 reference.
 */
async function run(variant: AttentionVariantName, c: Case, backward: boolean) {
  const { p, where } = layoutOf(c);
  const lk = c.lk ?? c.lq;
  const tensors = Object.keys(where) as AttentionTensor[];
  const names = [...new Set(Object.values(where))];
  const length = (n: string) => Math.max(...tensors.filter((t) => where[t] === n).map((t) => attentionSpan(p, t))) + (c.gapped ? 8 : 0);
  const inputs = new Set([where.q, where.k, where.v, where.dO]);
  const host = new Map([...inputs].map((n) => [n, randomArray(length(n), random, -2, 2)]));
  const batches = c.bh / (c.heads ?? 1);
  const maskValues =
    c.padded !== undefined
      ? Uint32Array.from({ length: batches * lk }, (_, i) => (Math.floor(i / lk) % 2 === 1 && i % lk >= lk - c.padded! ? 0 : 1))
      : undefined;
  const g = new Map(names.map((n) => [n, gpu.upload(host.get(n) ?? nanArray(length(n)))]));
  const buf = (t: AttentionTensor) => g.get(where[t])!;
  const lse = gpu.upload(nanArray(c.bh * c.lq));
  const mask = maskValues ? gpu.upload(maskValues) : undefined;
  const gp = { ...p, mask };
  await attentionForward(gpu, buf('q'), buf('k'), buf('v'), buf('o'), lse, gp, variant);
  if (backward) {
    const t = { q: buf('q'), k: buf('k'), v: buf('v'), o: buf('o'), lse, dO: buf('dO'), dQ: buf('dQ'), dKV: buf('dK') };
    await attentionBackward(gpu, t, gp, variant);
  }
  const read = (n: string) => gpu.read(g.get(n)!, Float32Array, length(n));
  const rp = { ...p, maskValues };
  const [q, k, v, dO] = [where.q, where.k, where.v, where.dO].map((n) => host.get(n)!);
  const unwritten = (n: string) => new Float64Array(length(n)).fill(NaN);
  const ref = attentionReference(q!, k!, v!, rp, { o: unwritten(where.o) });
  const results: Record<string, ReturnType<typeof compare>> = {
    o: compare(await read(where.o), ref.o),
    lse: compare(await gpu.read(lse, Float32Array, c.bh * c.lq), ref.lse),
  };
  if (backward) {
    const dQ = unwritten(where.dQ);
    const dKV = where.dK === where.dQ ? dQ : unwritten(where.dK);
    attentionBackwardReference(q!, k!, v!, dO!, rp, { dQ, dKV });
    results[where.dQ] = compare(await read(where.dQ), dQ);
    if (dKV !== dQ) results[where.dK] = compare(await read(where.dK), dKV);
  }
  [...g.values(), lse, ...(mask ? [mask] : [])].forEach((x) => gpu.release(x));
  return results;
}

function expectGood(c: Case, results: Record<string, ReturnType<typeof compare>>) {
  for (const [name, r] of Object.entries(results)) {
    expect(r.error, `${name} error`).toBeLessThanOrEqual(1e-4);
    expect(r.stray, `${name}: elements written outside its tensors`).toBe(0);
    // Fused: O fills its buffer and dQ, dK, dV fill dqkv; gapped: every output buffer has gaps to keep.
    if (c.fused) expect(r.gaps, `${name}: elements of the buffer no kernel writes`).toBe(0);
    if (c.gapped && name !== 'lse') expect(r.gaps, `${name}: gaps`).toBeGreaterThan(0);
  }
}

const cases: Case[] = [
  { bh: 1, lq: 1, d: 1 },
  { bh: 2, lq: 3, d: 7 },
  { bh: 1, lq: 33, lk: 7, d: 16 },
  { bh: 3, lq: 7, lk: 33, d: 3, causal: true },
  { bh: 2, lq: 65, d: 64, causal: true },
  { bh: 4, heads: 2, lq: 33, d: 32, padded: 5 },
  { bh: 2, heads: 1, lq: 17, d: 8, causal: true, padded: 3 },
  { bh: 1, lq: 127, d: 64 },
  // d = 100: 20-key tiles in the tiled variant, the last one partial.
  { bh: 1, lq: 70, lk: 45, d: 100, causal: true },
];

for (const variant of Object.keys(ATTENTION_VARIANTS) as AttentionVariantName[]) {
  describe(`attention variant ${variant}`, () => {
    for (const c of cases) {
      const label = `bh=${c.bh} lq=${c.lq} lk=${c.lk ?? c.lq} d=${c.d}${c.causal ? ' causal' : ''}${c.padded !== undefined ? ` mask(${c.padded} padded)` : ''}`;
      it(`${label}: forward and backward match float64`, async (ctx) => {
        const why = ATTENTION_VARIANTS[variant].unsupported(gpu, c);
        if (why) return ctx.skip(why);
        const e = await run(variant, c, true);
        expect(Object.keys(e)).toEqual(['o', 'lse', 'dQ', 'dKV']);
        expectGood(c, e);
      });
    }

    // Two batch items × three heads (sb ≠ heads·sh in the fused and gapped layouts), the head dim
    // each variant is for, causal and masked; the mask hides keys of batch item 1 only.
    const d = { portable: 7, tiled: 40, sg: 64 }[variant];
    for (const layout of ['contiguous', 'fused', 'gapped'] as const) {
      for (const extra of [{ causal: true }, { padded: 5 }, { causal: true, padded: 3 }]) {
        const c: Case = {
          bh: 6,
          heads: 3,
          lq: 33,
          d,
          ...(layout === 'gapped' ? { lk: 20, gapped: true } : {}),
          ...(layout === 'fused' ? { fused: true } : {}),
          ...extra,
        };
        it(`${layout} layout, 2 batch items × 3 heads, lq=${c.lq} lk=${c.lk ?? c.lq} d=${d}${c.causal ? ' causal' : ''}${c.padded ? ` mask(${c.padded} padded)` : ''}: matches float64, writes only its tensors`, async () => {
          expect(ATTENTION_VARIANTS[variant].unsupported(gpu, layoutOf(c).p)).toBeNull();
          const e = await run(variant, c, true);
          expect(Object.keys(e)).toEqual(layout === 'fused' ? ['o', 'lse', 'dqkv'] : ['o', 'lse', 'dQ', 'dKV']);
          expectGood(c, e);
        });
      }
    }

    it('a row whose keys are all padding gives O = 0 and LSE = -inf', async () => {
      const c: Case = { bh: 2, lq: 4, d: 32, padded: 4 }; // batch item 1: every key padded
      const e = await run(variant, c, true);
      expectGood(c, e); // LSE: -inf where the reference has it (relativeError demands equal non-finite values)
    });
  });
}

describe('attention checks can fail', () => {
  it('the reference softmax rows sum to one, and a wrong scale is caught', async () => {
    const p = { bh: 1, lq: 5, d: 4 };
    const [q, k, v] = [0, 1, 2].map(() => randomArray(20, random));
    const { probs } = attentionReference(q!, k!, v!, p);
    for (let i = 0; i < 5; i++) expect(probs.slice(i * 5, i * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const right = attentionReference(q!, k!, v!, p).o;
    const wrong = attentionReference(q!, k!, v!, { ...p, scale: 0.9 }).o;
    expect(relativeError(Float32Array.from(wrong), right)).toBeGreaterThan(1e-4);
  });
});

describe('attention layouts', () => {
  it('the fused layout puts q | k | v of each head where nn.MultiheadAttention’s in_proj does', () => {
    const [heads, L, d] = [3, 5, 4];
    const w = heads * d;
    const p: AttentionProblem = { bh: 2 * heads, heads, lq: L, d, layout: fusedQKVLayout(heads, L, d) };
    const l = attentionLayouts(p);
    // Element (b = 1, row 2, head 2, c = 3) of k: qkv[1, 2, w + 2·d + 3].
    const at = (x: AttentionLayout) => x.offset + 1 * x.sb + 2 * x.sh + 2 * x.sr + 3;
    expect(at(l.k)).toBe((1 * L + 2) * 3 * w + w + 2 * d + 3);
    expect(at(l.o)).toBe((1 * L + 2) * w + 2 * d + 3);
    expect(attentionSpan(p, 'q')).toBe(2 * L * 3 * w - 2 * w);
    expect(attentionSpan(p, 'dV')).toBe(2 * L * 3 * w);
    expect(attentionSpan(p, 'o')).toBe(2 * L * w);
    // The contiguous default: dV after dK in dKV.
    expect(attentionLayouts({ bh: 2, lq: 3, lk: 5, d: 4 }).dV).toEqual({ offset: 40, sb: 20, sh: 20, sr: 4 });
  });

  it('the reference reads the layout: q and k swapped in qkv give other outputs', () => {
    const p: AttentionProblem = { bh: 4, heads: 2, lq: 5, d: 3, layout: fusedQKVLayout(2, 5, 3) };
    const qkv = randomArray(2 * 5 * 18, random);
    const right = attentionReference(qkv, qkv, qkv, p).o;
    const swapped = attentionReference(qkv, qkv, qkv, { ...p, layout: { ...p.layout, q: p.layout!.k, k: p.layout!.q } }).o;
    expect(relativeError(Float32Array.from(swapped), right)).toBeGreaterThan(1e-4);
  });

  it('a write into a gap or an unwritten element is caught', async () => {
    const c: Case = { bh: 4, heads: 2, lq: 9, lk: 6, d: 8, gapped: true };
    const { p } = layoutOf(c);
    const [q, k, v] = ['q', 'k', 'v'].map((t) => randomArray(attentionSpan(p, t as AttentionTensor), random));
    const ref = attentionReference(q!, k!, v!, p).o;
    const got = Float32Array.from(ref);
    expect(compare(got, ref).stray).toBe(0);
    expect(compare(got, ref).error).toBeLessThan(1e-6); // float32 rounding only
    const gap = ref.findIndex((x) => Number.isNaN(x));
    got[gap] = 0;
    expect(compare(got, ref).stray).toBe(1);
    got[gap] = NaN;
    got[ref.findIndex((x) => !Number.isNaN(x))] = NaN;
    expect(compare(got, ref).error).toBe(Infinity);
  });

  it('the sg variant refuses rows that are not whole vec4s', (ctx) => {
    const fused = fusedQKVLayout(2, 8, 64);
    const aligned: AttentionProblem = { bh: 4, heads: 2, lq: 8, d: 64, layout: fused };
    const why = ATTENTION_VARIANTS.sg.unsupported(gpu, aligned);
    if (why) return ctx.skip(why);
    expect(ATTENTION_VARIANTS.sg.unsupported(gpu, { ...aligned, layout: { ...fused, o: { ...fused.o, offset: 2 } } })).toMatch(
      /^layout of o .* not in whole vec4s/,
    );
    expect(ATTENTION_VARIANTS.sg.unsupported(gpu, { ...aligned, layout: { ...fused, dK: { ...fused.dK, sr: 386 } } })).toMatch(/^layout of dK /);
    expect(ATTENTION_VARIANTS.portable.unsupported(gpu, { ...aligned, layout: { ...fused, o: { ...fused.o, offset: 2 } } })).toBeNull();
  });

  it('a buffer too small for its layout is refused before anything is recorded', async () => {
    const p: AttentionProblem = { bh: 4, heads: 2, lq: 8, d: 64, layout: fusedQKVLayout(2, 8, 64) };
    const [small, o, lse] = [gpu.buffer(4 * 100), gpu.buffer(4 * 2 * 8 * 128), gpu.buffer(4 * 32)];
    const before = gpu.dispatchCounts.get('attention_fwd') ?? 0;
    try {
      await expect(attentionForward(gpu, small, small, small, o, lse, p, 'portable')).rejects.toThrow(/^attention: q in its layout needs 5888 floats/);
      expect(gpu.dispatchCounts.get('attention_fwd') ?? 0).toBe(before);
    } finally {
      [small, o, lse].forEach((b) => gpu.release(b));
    }
  });
});

describe('attention autotuning', () => {
  it('picks a variant that can run the problem, and reads it back from the cache', async () => {
    const tuner = new Autotuner(join(mkdtempSync(join(tmpdir(), 'mode-tune-')), 'cache.json'));
    // d = 100: the subgroup variant (d 32 or 64) cannot run it.
    const p = { bh: 2, lq: 70, lk: 45, d: 100, causal: true };
    const chosen = await chooseAttention(gpu, p, tuner);
    expect(['portable', 'tiled']).toContain(chosen);
    expect(tuner.log.at(-1)).toMatchObject({ variant: chosen, cached: false, skipped: [expect.stringMatching(/^sg: /)] });
    expect(await chooseAttention(gpu, p, tuner)).toBe(chosen);
    const q = { bh: 2, lq: 64, d: 64 };
    expect(ATTENTION_VARIANTS[await chooseAttention(gpu, q, tuner)].unsupported(gpu, q)).toBeNull();
  });

  it('times short sequences on as many heads as the problem has (up to about 2^26 FLOPs), long ones on 8', () => {
    // The small preset's vision tower: 64 images × 4 heads of 16 tokens, d = 64.
    expect(attentionTuneHeads({ bh: 256, lq: 16, d: 64 })).toBe(256);
    expect(attentionTuneHeads({ bh: 4096, lq: 16, d: 64 })).toBe(1024); // 2^26 / (4·16·16·64)
    expect(attentionTuneHeads({ bh: 3, lq: 16, d: 64 })).toBe(4);
    expect(attentionTuneHeads({ bh: 512, lq: 1024, d: 64 })).toBe(8);
    expect(attentionTuneHeads({ bh: 512, lq: 4096, lk: 2048, d: 64 })).toBe(8);
  });
});
