import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '@mode/gpu';
import {
  Autotuner,
  checkAssignment,
  chooseKmeans,
  freshSeed,
  KMEANS_ASSIGN_VARIANTS,
  kmeansAssign,
  kmeansAssignReference,
  kmeansAssignUnsupported,
  kmeansAssignWith,
  kmeansChunkRows,
  kmeansNorms,
  kmeansTopK,
  kmeansTopKReference,
  kmeansTopKUnsupported,
  KMEANS_NO_CENTRE,
  KMEANS_TOPK,
  kmeansUpdate,
  kmeansUpdateReference,
  nanArray,
  randomArray,
  relativeError,
  rng,
  type KmeansAssignVariantName,
  type KmeansProblem,
} from '../src/index.js';

const seed = freshSeed();
console.log(`kmeans tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

const POISON_INDEX = 0xffffffff;

/** Runs one assignment on the given inputs with NaN / 0xffffffff-poisoned outputs; returns what the GPU wrote. */
async function assign(variant: KmeansAssignVariantName, points: Float32Array, centres: Float32Array, p: KmeansProblem, total = p.n) {
  const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
  const out = { index: gpu.upload(new Uint32Array(total).fill(POISON_INDEX)), distance: gpu.upload(nanArray(total)) };
  await kmeansAssignWith(gpu, variant, gp, gc, out, p);
  const index = await gpu.read(out.index, Uint32Array, total);
  const distance = await gpu.read(out.distance, Float32Array, total);
  [gp, gc, out.index, out.distance].forEach((b) => gpu.release(b));
  return { index, distance };
}

/** Fresh random points and centres; the check's failing points (empty when all is well). */
async function check(variant: KmeansAssignVariantName, p: KmeansProblem, opts: { shortRows?: number } = {}) {
  const points = randomArray(p.n * p.d, random);
  const centres = randomArray(p.k * p.d, random);
  const out = await assign(variant, points, centres, { ...p, n: opts.shortRows ?? p.n }, p.n);
  return checkAssignment(out, points, centres, p);
}

// A sensible cross of N ∈ {1, 3, 7, 33, 127, 1000}, K ∈ {1, 3, 7, 33, 256}, D ∈ {1, 3, 7, 64, 127},
// plus sizes just past each variant's tile edges: sg 256 points a workgroup (32 per subgroup),
// 32-centre slabs, 32-float d steps; tiled 64 points × 64 centres, d panels of 16; blocked 4×4
// blocks, 256 points a workgroup. Dimensions that are multiples of 4 keep sg in the cross.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 3, 3],
  [7, 7, 7],
  [33, 1, 64],
  [127, 33, 127],
  [1000, 256, 64],
  [1000, 7, 3],
  [33, 256, 4],
  [257, 33, 36],
  [33, 31, 68],
  [65, 65, 17],
  [257, 5, 8],
];

for (const name of Object.keys(KMEANS_ASSIGN_VARIANTS) as KmeansAssignVariantName[]) {
  describe(`kmeans assign variant ${name}`, () => {
    for (const [n, k, d] of shapes) {
      it(`n=${n} k=${k} d=${d}`, async (ctx) => {
        const why = kmeansAssignUnsupported(gpu, name, { n, k, d });
        if (why) return ctx.skip(why);
        const r = await check(name, { n, k, d });
        expect(r.badIndex).toEqual([]);
        expect(r.badDistance).toEqual([]);
      });
    }

    it('ties: duplicated centres resolve to the lowest index', async (ctx) => {
      // Centres 40…79 copy 0…39 exactly, at other lanes, slabs and tiles: equal float32 distances.
      const [n, k, d] = [200, 80, 8];
      if (kmeansAssignUnsupported(gpu, name, { n, k, d })) return ctx.skip(kmeansAssignUnsupported(gpu, name, { n, k, d })!);
      const points = randomArray(n * d, random);
      const centres = randomArray(k * d, random);
      centres.copyWithin(40 * d, 0, 40 * d);
      const out = await assign(name, points, centres, { n, k, d });
      expect([...out.index].filter((j) => j >= 40)).toEqual([]);
      expect(checkAssignment(out, points, centres, { n, k, d }).badIndex).toEqual([]);
    });

    it('chunks: two calls with `first` fill one output', async (ctx) => {
      const [n, k, d, n1] = [300, 9, 12, 133];
      if (kmeansAssignUnsupported(gpu, name, { n, k, d })) return ctx.skip(kmeansAssignUnsupported(gpu, name, { n, k, d })!);
      const points = randomArray(n * d, random);
      const centres = randomArray(k * d, random);
      const [g1, g2, gc] = [gpu.upload(points.subarray(0, n1 * d)), gpu.upload(points.subarray(n1 * d)), gpu.upload(centres)];
      const out = { index: gpu.upload(new Uint32Array(n).fill(POISON_INDEX)), distance: gpu.upload(nanArray(n)) };
      await kmeansAssignWith(gpu, name, g1, gc, out, { n: n1, k, d });
      await kmeansAssignWith(gpu, name, g2, gc, out, { n: n - n1, k, d, first: n1 });
      const got = { index: await gpu.read(out.index, Uint32Array, n), distance: await gpu.read(out.distance, Float32Array, n) };
      [g1, g2, gc, out.index, out.distance].forEach((b) => gpu.release(b));
      const r = checkAssignment(got, points, centres, { n, k, d });
      expect(r.badIndex).toEqual([]);
      expect(r.badDistance).toEqual([]);
    });
  });
}

describe('kmeans assign: the autotuned entry point', () => {
  it('chooses a supported variant, caches it, and assigns correctly', async () => {
    const tuner = new Autotuner(join(mkdtempSync(join(tmpdir(), 'mode-kmeans-tune-')), 'cache.json'));
    const p = { n: 500, k: 40, d: 32 };
    const name = await chooseKmeans(gpu, p, tuner);
    expect(kmeansAssignUnsupported(gpu, name, p)).toBeNull();
    expect(name).not.toBe('naive');
    expect(tuner.log).toHaveLength(1);
    expect(tuner.log[0]).toMatchObject({ key: 'kmeans_assign|n512.k64.d32|d4|f32', variant: name, cached: false });
    // The second call finds the choice in the cache and measures nothing.
    expect(await chooseKmeans(gpu, p, tuner)).toBe(name);
    expect(tuner.log).toHaveLength(1);
    // The entry point with the same tuner: the cached variant, and a correct result.
    const points = randomArray(p.n * p.d, random);
    const centres = randomArray(p.k * p.d, random);
    const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
    const out = { index: gpu.upload(new Uint32Array(p.n).fill(POISON_INDEX)), distance: gpu.upload(nanArray(p.n)) };
    await kmeansAssign(gpu, gp, gc, out, p, tuner);
    expect(tuner.log).toHaveLength(1);
    const got = { index: await gpu.read(out.index, Uint32Array, p.n), distance: await gpu.read(out.distance, Float32Array, p.n) };
    [gp, gc, out.index, out.distance].forEach((b) => gpu.release(b));
    expect(checkAssignment(got, points, centres, p).badIndex).toEqual([]);
  });
});

/** The GPU update of fresh points and the given assignments; centres pre-filled with a sentinel. */
async function update(points: Float32Array, assignments: Uint32Array, p: { n: number; k: number; d: number }, chunks = [p.n]) {
  const SENTINEL = 12345;
  const ga = gpu.upload(assignments);
  const out = {
    sums: gpu.upload(nanArray(p.k * p.d)),
    counts: gpu.upload(new Uint32Array(p.k).fill(POISON_INDEX)),
    centres: gpu.upload(new Float32Array(p.k * p.d).fill(SENTINEL)),
  };
  let first = 0;
  let empty: number[] = [];
  for (const rows of chunks) {
    const gp = gpu.upload(points.subarray(first * p.d, (first + rows) * p.d));
    ({ empty } = await kmeansUpdate(gpu, gp, ga, out, { ...p, n: rows, first, accumulate: first > 0 }));
    gpu.release(gp);
    first += rows;
  }
  const got = {
    sums: await gpu.read(out.sums, Float32Array, p.k * p.d),
    counts: await gpu.read(out.counts, Uint32Array, p.k),
    centres: await gpu.read(out.centres, Float32Array, p.k * p.d),
    empty,
    SENTINEL,
  };
  [ga, out.sums, out.counts, out.centres].forEach((b) => gpu.release(b));
  return got;
}

/** The kernel's order, emulated in float32: each chunk's points of a cluster in index order from 0, then added to the running sum. */
function float32Sums(points: Float32Array, assignments: Uint32Array, p: { n: number; k: number; d: number }, chunks = [p.n]): Float32Array {
  const total = new Float32Array(p.k * p.d);
  let first = 0;
  for (const rows of chunks) {
    const part = new Float32Array(p.k * p.d);
    for (let i = first; i < first + rows; i++) {
      const c = assignments[i]!;
      if (c >= p.k) continue;
      for (let q = 0; q < p.d; q++) part[c * p.d + q] = Math.fround(part[c * p.d + q]! + points[i * p.d + q]!);
    }
    for (let x = 0; x < total.length; x++) total[x] = first > 0 ? Math.fround(total[x]! + part[x]!) : part[x]!;
    first += rows;
  }
  return total;
}

const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

describe('kmeans update', () => {
  const updateShapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 3, 3],
    [33, 7, 64],
    [1000, 33, 7],
    [1000, 256, 64],
    [257, 3, 127],
    [100, 9, 300], // past the sums' 128-column block
    [600, 4097, 2], // past the histogram's 4096-cluster chunk: most clusters empty
  ];
  for (const [n, k, d] of updateShapes) {
    it(`n=${n} k=${k} d=${d}: counts exact, sums in index order, empty clusters kept`, async () => {
      const points = randomArray(n * d, random);
      const assignments = Uint32Array.from({ length: n }, () => Math.floor(random() * k));
      const got = await update(points, assignments, { n, k, d });
      const ref = kmeansUpdateReference(points, assignments, { n, k, d });
      expect([...got.counts]).toEqual([...ref.counts]);
      expect(got.empty).toEqual(ref.empty);
      // Bit for bit the float32 sums in index order, and close to the float64 ones.
      expect(bits(got.sums)).toEqual(bits(float32Sums(points, assignments, { n, k, d })));
      expect(relativeError(got.sums, ref.sums)).toBeLessThanOrEqual(1e-5);
      const filled = ref.centres.map((v) => (Number.isNaN(v) ? got.SENTINEL : v));
      expect(relativeError(got.centres, filled)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('assignments ≥ k are ignored', async () => {
    const [n, k, d] = [50, 4, 3];
    const points = randomArray(n * d, random);
    const assignments = Uint32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? k + i : i % k));
    const got = await update(points, assignments, { n, k, d });
    const ref = kmeansUpdateReference(points, assignments, { n, k, d });
    expect([...got.counts]).toEqual([...ref.counts]);
    expect(relativeError(got.sums, ref.sums)).toBeLessThanOrEqual(1e-5);
  });

  it('chunks with accumulate: the same totals, in the order the chunking fixes', async () => {
    const [n, k, d] = [900, 13, 9];
    const chunks = [300, 257, 343];
    const points = randomArray(n * d, random);
    const assignments = Uint32Array.from({ length: n }, () => Math.floor(random() * k));
    const got = await update(points, assignments, { n, k, d }, chunks);
    const ref = kmeansUpdateReference(points, assignments, { n, k, d });
    expect([...got.counts]).toEqual([...ref.counts]);
    expect(bits(got.sums)).toEqual(bits(float32Sums(points, assignments, { n, k, d }, chunks)));
    expect(relativeError(got.centres, ref.centres)).toBeLessThanOrEqual(1e-5);
  });

  it('is deterministic: two runs give the same bits', async () => {
    // Few large clusters: thousands of additions per sum, where any change of order shows.
    const [n, k, d] = [20000, 5, 16];
    const points = randomArray(n * d, random, -100, 100);
    const assignments = Uint32Array.from({ length: n }, () => Math.floor(random() * k));
    const a = await update(points, assignments, { n, k, d });
    const b = await update(points, assignments, { n, k, d });
    expect(bits(b.sums)).toEqual(bits(a.sums));
    expect(bits(b.centres)).toEqual(bits(a.centres));
    // Negative control: the same float32 additions in another order (as float atomics could
    // do them) give other bits here, so the comparison above would catch scheduling-dependent sums.
    const order = Uint32Array.from({ length: n }, (_, i) => n - 1 - i);
    const reversed = float32Sums(
      Float32Array.from({ length: n * d }, (_, x) => points[order[Math.floor(x / d)]! * d + (x % d)]!),
      Uint32Array.from(order, (i) => assignments[i]!),
      { n, k, d },
    );
    expect(bits(reversed)).not.toEqual(bits(a.sums));
  });
});

describe('kmeans top-8 candidates (kmeans_topk_sg)', () => {
  /** Runs kmeansTopK on poisoned outputs; masked centres get ‖c‖² = 3e38. */
  async function topk(points: Float32Array, centres: Float32Array, masked: Set<number>, p: { n: number; k: number; d: number }) {
    const T = KMEANS_TOPK;
    const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
    const norms = gpu.buffer(4 * p.k);
    await kmeansNorms(gpu, gc, norms, p.k, p.d);
    const cn = await gpu.read(norms, Float32Array, p.k);
    for (const j of masked) cn[j] = 3e38;
    gpu.write(norms, cn);
    const out = { index: gpu.upload(new Uint32Array(p.n * T).fill(POISON_INDEX)), distance: gpu.upload(nanArray(p.n * T)) };
    await kmeansTopK(gpu, gp, gc, norms, out, p);
    const index = await gpu.read(out.index, Uint32Array, p.n * T);
    const distance = await gpu.read(out.distance, Float32Array, p.n * T);
    [gp, gc, norms, out.index, out.distance].forEach((b) => gpu.release(b));
    return { index, distance };
  }
  // Points past a subgroup's 32 and a workgroup's 256, centres past a 32-slab, fewer than 8 unmasked, d past 8 vec4s.
  const cases: { n: number; k: number; d: number; masked: number }[] = [
    { n: 1, k: 1, d: 4, masked: 0 },
    { n: 33, k: 5, d: 8, masked: 0 },
    { n: 257, k: 33, d: 36, masked: 3 },
    { n: 70, k: 70, d: 68, masked: 64 },
    { n: 300, k: 256, d: 12, masked: 17 },
  ];
  for (const c of cases) {
    it(`grid values (exact in f32, many ties): n=${c.n} k=${c.k} d=${c.d}, ${c.masked} masked: indices and distances equal the float64 reference`, async (ctx) => {
      const why = kmeansTopKUnsupported(gpu, c);
      if (why) return ctx.skip(why);
      // Eighths in [−1, 1]: every distance is exact in float32, so order and ties must match exactly.
      const grid = () => Math.round(16 * random() - 8) / 8;
      const points = Float32Array.from({ length: c.n * c.d }, grid);
      const centres = Float32Array.from({ length: c.k * c.d }, grid);
      const masked = new Set<number>();
      while (masked.size < c.masked) masked.add(Math.floor(random() * c.k));
      const got = await topk(points, centres, masked, c);
      const ref = kmeansTopKReference(points, centres, (j) => masked.has(j), c);
      expect([...got.index]).toEqual([...ref.index]);
      expect([...got.distance].map((v, i) => (ref.index[i] === KMEANS_NO_CENTRE ? v === 3.4028234663852886e38 : v === ref.distance[i]))).not.toContain(false);
    });
  }
  it('random values: each candidate within 1e-5 of the reference distance at its rank', async (ctx) => {
    const p = { n: 129, k: 97, d: 64 };
    const why = kmeansTopKUnsupported(gpu, p);
    if (why) return ctx.skip(why);
    const points = randomArray(p.n * p.d, random);
    const centres = randomArray(p.k * p.d, random);
    const got = await topk(points, centres, new Set(), p);
    const ref = kmeansTopKReference(points, centres, () => false, p);
    let worst = 0;
    for (let i = 0; i < p.n * KMEANS_TOPK; i++) worst = Math.max(worst, Math.abs(got.distance[i]! - ref.distance[i]!) / (2 * p.d));
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(got.index.every((j) => j < p.k)).toBe(true);
  });
  it('points past one stage texture: 8192 points of d = 1024 fill it, and 45 more are staged after (one full texture row, 13 of the next)', async (ctx) => {
    // At d = 1024 a texture row holds 32 points and the 32 MiB texture 256 rows.
    const p = { n: 8192 + 45, k: 9, d: 1024 };
    const why = kmeansTopKUnsupported(gpu, p);
    if (why) return ctx.skip(why);
    const grid = () => Math.round(16 * random() - 8) / 8;
    const points = Float32Array.from({ length: p.n * p.d }, grid);
    const centres = Float32Array.from({ length: p.k * p.d }, grid);
    const got = await topk(points, centres, new Set([4]), p);
    const ref = kmeansTopKReference(points, centres, (j) => j === 4, p);
    expect([...got.index]).toEqual([...ref.index]);
    expect([...got.distance].every((v, i) => v === (ref.index[i] === KMEANS_NO_CENTRE ? 3.4028234663852886e38 : ref.distance[i]))).toBe(true);
  });
  it('d past the texture width (32 points of d/4 texels a row) is refused with the limit', (ctx) => {
    const why = kmeansTopKUnsupported(gpu, { n: 1, k: 1, d: 4 });
    if (why) return ctx.skip(why);
    const width = gpu.report.limits.maxTextureDimension2D!;
    const [ok, over] = [width / 8, width / 8 + 4];
    expect(kmeansTopKUnsupported(gpu, { n: 1, k: 1, d: ok })).toBeNull();
    expect(kmeansTopKUnsupported(gpu, { n: 1, k: 1, d: over })).toBe(
      `d = ${over}: 32 points of d/4 texels exceed the adapter's texture width (maxTextureDimension2D ${width}); d ≤ ${ok} is supported`,
    );
    expect(kmeansAssignUnsupported(gpu, 'sg', { n: 1, k: 1, d: over })).toMatch(`d ≤ ${ok} is supported`);
    expect(kmeansAssignUnsupported(gpu, 'tiled', { n: 1, k: 1, d: over })).toBeNull();
  });
  it('negative control: an unmasked reference disagrees with a masked run', async (ctx) => {
    const p = { n: 40, k: 20, d: 8 };
    if (kmeansTopKUnsupported(gpu, p)) return ctx.skip(kmeansTopKUnsupported(gpu, p)!);
    const points = randomArray(p.n * p.d, random);
    const centres = randomArray(p.k * p.d, random);
    const got = await topk(points, centres, new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), p);
    const ref = kmeansTopKReference(points, centres, () => false, p);
    expect([...got.index]).not.toEqual([...ref.index]);
    expect(got.index.every((j) => j >= 10 && j < 20)).toBe(true);
  });
});

describe('kmeans checks can fail', () => {
  it('points left unwritten (poisoned outputs) are reported', async () => {
    const r = await check('blocked', { n: 40, k: 5, d: 6 }, { shortRows: 36 });
    expect(r.badIndex).toEqual([36, 37, 38, 39]);
  });

  it('a wrong index or distance is reported; a near-tie is exempt', () => {
    // Points on a line: x = 0, 1, 2; centres at 0 and 2 (point 1 is an exact tie).
    const points = [0, 1, 2];
    const centres = [0, 2];
    const p = { n: 3, k: 2, d: 1 };
    const ref = kmeansAssignReference(points, centres, p);
    expect([...ref.index]).toEqual([0, 0, 1]);
    expect(checkAssignment({ index: [0, 1, 1], distance: [0, 1, 0] }, points, centres, p)).toMatchObject({ badIndex: [], badDistance: [], exempt: 1 });
    expect(checkAssignment({ index: [1, 0, 1], distance: [4, 1, 0] }, points, centres, p).badIndex).toEqual([0]);
    expect(checkAssignment({ index: [0, 0, 1], distance: [0, 1.5, 0] }, points, centres, p).badDistance).toEqual([1]);
  });

  it('bad shapes and unsupported variants say why', async () => {
    expect(kmeansAssignUnsupported(gpu, 'sg', { n: 8, k: 8, d: 3 })).toMatch(/not a multiple of 4|subgroup/);
    const b = gpu.buffer(16);
    await expect(kmeansAssignWith(gpu, 'naive', b, b, { index: gpu.buffer(16), distance: gpu.buffer(16) }, { n: 0, k: 1, d: 1 })).rejects.toThrow(
      /n must be a positive integer, got 0/,
    );
    await expect(kmeansAssignWith(gpu, 'naive', b, b, { index: gpu.buffer(16), distance: gpu.buffer(16) }, { n: 2 ** 26, k: 1, d: 4 })).rejects.toThrow(
      /first \+ n = 67108864 outputs exceed the \d+-byte storage binding limit/,
    );
    await expect(kmeansAssignWith(gpu, 'naive', b, b, { index: gpu.buffer(4096), distance: gpu.buffer(4096) }, { n: 1000, k: 1, d: 4 })).rejects.toThrow(
      /points \(n×d f32\) needs 16000 bytes, buffer .* has 16/,
    );
    await expect(kmeansAssignWith(gpu, 'naive', gpu.buffer(64), b, { index: gpu.buffer(16), distance: gpu.buffer(16) }, { n: 4, k: 1, d: 5 })).rejects.toThrow(
      /points \(n×d f32\) needs 80 bytes, buffer .* has 64/,
    );
  });
});

describe('kmeans: points in one buffer larger than a storage binding', () => {
  it('assignment and update bind it in ranges: correct, and the sums of chunks at the same boundaries', async () => {
    // 128 MiB is lavapipe's binding limit: 64 floats a point, one range of kmeansChunkRows points and a short one.
    const [k, d] = [8, 64];
    const rows = kmeansChunkRows(gpu, d);
    const n = rows + 777;
    expect(4 * n * d).toBeGreaterThan(gpu.report.limits.maxStorageBufferBindingSize!);
    const points = randomArray(n * d, random);
    const centres = randomArray(k * d, random);
    const [gp, gc] = [gpu.upload(points), gpu.upload(centres)];
    const out = { index: gpu.upload(new Uint32Array(n).fill(POISON_INDEX)), distance: gpu.upload(nanArray(n)) };
    const variant = kmeansAssignUnsupported(gpu, 'sg', { n, k, d }) ? 'blocked' : 'sg';
    await kmeansAssignWith(gpu, variant, gp, gc, out, { n, k, d });
    const got = { index: await gpu.read(out.index, Uint32Array, n), distance: await gpu.read(out.distance, Float32Array, n) };
    const r = checkAssignment(got, points, centres, { n, k, d });
    expect(r.badIndex).toEqual([]);
    expect(r.badDistance).toEqual([]);

    const ga = gpu.upload(got.index);
    const sums = { sums: gpu.upload(nanArray(k * d)), counts: gpu.upload(new Uint32Array(k)), centres: gpu.upload(nanArray(k * d)) };
    await kmeansUpdate(gpu, gp, ga, sums, { n, k, d });
    const gotSums = await gpu.read(sums.sums, Float32Array, k * d);
    expect([...bits(gotSums)]).toEqual([...bits(float32Sums(points, got.index, { n, k, d }, [rows, n - rows]))]);
    [gp, gc, ga, out.index, out.distance, ...Object.values(sums)].forEach((b) => gpu.release(b));
  });
});
