import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { suite } from '../src/peak.js';

describe('mode bench peak --quick', () => {
  it('measures every ceiling and fixed cost, names the best configuration, and leaves the cache alone', async () => {
    const cache = join(mkdtempSync(join(tmpdir(), 'mode-peak-')), 'peak.json');
    process.env.MODE_PEAK_CACHE = cache;
    try {
      const r = await suite.run({ quick: true });
      expect(r.suite).toBe('peak');
      const row = (name: string) => r.rows.find((x) => String(x.ceiling).startsWith(name))!;
      for (const name of ['f32 arithmetic, multiply + add', 'f32 arithmetic, fma()']) expect(row(name)).toMatchObject({ unit: 'GFLOP/s' });
      for (const name of ['storage read', 'storage write', 'storage copy', 'uniform window', 'per-lane gathers', 'texture reads'])
        expect(row(name)).toMatchObject({ unit: 'GB/s' });
      for (const x of r.rows.filter((x) => x.unit !== 'µs' || !String(x['best configuration']).includes('no timestamp'))) expect(x.value).toBeGreaterThan(0);
      expect(row('f32 arithmetic, multiply + add')['best configuration']).toMatch(/^\d+ chains, wg \d+$/);
      expect(row('empty dispatch, as recorded here')).toMatchObject({ unit: 'µs' });
      // The sweep lists every configuration it measured.
      expect(r.sections![0]!.rows.length).toBeGreaterThanOrEqual(4 + 10 + 1);
      expect(existsSync(cache), 'a quick look is not the adapter’s measured peak').toBe(false);
    } finally {
      delete process.env.MODE_PEAK_CACHE;
    }
  }, 120_000);
});
