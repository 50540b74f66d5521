import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KERNELS_DIR, Gpu } from '@mode/gpu';
import { freshSeed, selftest, SELFTEST_CHECKS, selftestSummary, selftestTable, strided, type SelftestCheck, type SelftestResult } from '../src/index.js';

const seed = freshSeed();
console.log(`selftest tests: seed ${seed} (replay with MODE_SEED=${seed})`);
let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

/** A check that copies [1, 2, 3] with kernels/strided.wgsl and compares with `expected`. */
const copyCheck = (name: string, expected: number[], extra: Partial<SelftestCheck> = {}): SelftestCheck => ({
  kernel: name,
  case: 'copy n=3',
  files: ['strided'],
  tolerance: 1e-6,
  async run(g) {
    const a = g.upload(new Float32Array([1, 2, 3]));
    const out = g.upload(new Float32Array(3).fill(NaN));
    await strided(g, 'copy', a, a, out, { shape: [3], a: { strides: [1] }, out: { strides: [1] } });
    const got = await g.read(out);
    [a, out].forEach((b) => g.release(b));
    return [[got, expected]];
  },
  ...extra,
});

describe('selftest coverage', () => {
  it('its checks declare every kernels/*.wgsl file, and only those', () => {
    const files = readdirSync(DEFAULT_KERNELS_DIR)
      .filter((f) => f.endsWith('.wgsl'))
      .map((f) => f.slice(0, -'.wgsl'.length))
      .sort();
    const declared = [...new Set(SELFTEST_CHECKS.flatMap((c) => c.files))].sort();
    expect(declared).toEqual(files);
  });

  it('records the kernel files a check dispatched, and fails a check that dispatches others than it declares', async () => {
    const [right, wrong] = await selftest(gpu, seed, { checks: [copyCheck('right', [1, 2, 3]), copyCheck('wrong', [1, 2, 3], { files: ['reduce'] })] });
    expect(right).toMatchObject({ status: 'passed', dispatched: ['strided'], relativeError: 0 });
    expect(wrong).toMatchObject({ status: 'failed', dispatched: ['strided'], reason: 'dispatched strided; it declares reduce' });
  });

  it('real checks dispatch exactly the files they declare (embedding_bwd also runs unary’s fill)', async () => {
    const checks = SELFTEST_CHECKS.filter((c) => c.kernel === 'embedding_bwd' || c.kernel === 'reduce');
    expect(checks.length).toBeGreaterThanOrEqual(2);
    const results = await selftest(gpu, seed, { checks });
    for (const [i, r] of results.entries()) expect(r, r.case).toMatchObject({ status: 'passed', dispatched: [...checks[i]!.files].sort() });
  });
});

describe('selftest results', () => {
  it('a check the adapter cannot run is skipped with its reason, not passed, and shows no error', async () => {
    const checks = [
      copyCheck('runs', [1, 2, 3]),
      copyCheck('cannot', [1, 2, 3], { unsupported: () => 'needs a feature this adapter lacks' }),
      copyCheck('wrong', [1, 2, 4]),
    ];
    const results = await selftest(gpu, seed, { checks });
    expect(results.map((r) => r.status)).toEqual(['passed', 'skipped', 'failed']);
    expect(results[1]).toMatchObject({ relativeError: null, reason: 'needs a feature this adapter lacks', dispatched: [] });
    const table = selftestTable(checks);
    const row = table.row(results[1]!);
    expect(row).toMatch(/skipped: needs a feature this adapter lacks$/);
    expect(row).not.toMatch(/\bok\b|NaN/);
    expect(table.row(results[0]!)).toMatch(/ ok$/);
    expect(table.row(results[2]!)).toMatch(/ FAIL$/);
    expect(selftestSummary(results)).toBe('1 of 3 checks passed, 1 failed, 1 skipped (this adapter cannot run them)');
    // Rows line up under the header, whatever the names' lengths.
    const at = table.header.indexOf('rel. error');
    expect(row.slice(at - 2, at + 10).trim()).toBe('–');
  });

  it('reports each check as it finishes, before the next one starts', async () => {
    const reported: string[] = [];
    const seenBySecond: string[] = [];
    const second = copyCheck('second', [1, 2, 3]);
    const run = second.run;
    second.run = (g, r) => (seenBySecond.push(...reported), run(g, r));
    const results = await selftest(gpu, seed, {
      checks: [copyCheck('first', [1, 2, 3]), second],
      onCheck: (r: SelftestResult, i, total) => reported.push(`${i + 1}/${total} ${r.kernel} ${r.status}`),
    });
    expect(seenBySecond).toEqual(['1/2 first passed']);
    expect(reported).toEqual(['1/2 first passed', '2/2 second passed']);
    expect(results).toHaveLength(2);
  });

  it('a check that throws or leaves NaN fails, and the others still run', async () => {
    const results = await selftest(gpu, seed, {
      checks: [
        copyCheck('throws', [], { run: async () => Promise.reject(new RangeError('bad size')), files: [] }),
        copyCheck('nan', [1, 2, 3], { run: async () => [[new Float32Array([1, NaN, 3]), [1, 2, 3]]], files: [] }),
        copyCheck('fine', [1, 2, 3]),
      ],
    });
    expect(results[0]).toMatchObject({ status: 'failed', relativeError: null, reason: 'threw RangeError: bad size' });
    expect(results[1]).toMatchObject({ status: 'failed', relativeError: Infinity });
    expect(results[2]).toMatchObject({ status: 'passed' });
  });
});
