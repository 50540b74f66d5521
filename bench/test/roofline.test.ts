import { describe, expect, it } from 'vitest';
import type { SuiteResults } from '../src/results.js';
import { withPeakShares } from '../src/roofline.js';

const table = (columns: string[], rows: SuiteResults['rows']): SuiteResults => ({ suite: 's', adapter: 'a', date: '', method: 'M.', columns, rows });

describe('bench rows against the roof', () => {
  it('adds % of peak after the rate columns of every table, naming the roof in the method', () => {
    const roof = { flops: 80e9, bandwidth: 16e9, dispatchSeconds: 3e-4, from: 'mode bench peak, 2026-12-07' };
    const r = withPeakShares(
      {
        ...table(
          ['case', 'GFLOP/s', '× naive'],
          [
            { case: 'a', 'GFLOP/s': 20, '× naive': 3 },
            { case: 'b', 'GFLOP/s': null },
          ],
        ),
        sections: [table(['k', 'GB/s'], [{ k: 'x', 'GB/s': 4 }])],
      },
      roof,
    );
    expect(r.columns).toEqual(['case', 'GFLOP/s', '% of peak FLOP/s', '× naive']);
    expect(r.rows.map((x) => x['% of peak FLOP/s'])).toEqual([25, null]);
    expect(r.method).toBe("M. % of peak: against this adapter's measured 80.0 GFLOP/s and 16.0 GB/s (mode bench peak, 2026-12-07).");
    expect(r.sections![0]!.columns).toEqual(['k', 'GB/s', '% of peak GB/s']);
    expect(r.sections![0]!.rows[0]!['% of peak GB/s']).toBe(25);
    // A table without a rate column is left as it is.
    const plain = table(['case', 'images/s'], [{ case: 'a', 'images/s': 5 }]);
    expect(withPeakShares(plain, roof)).toEqual(plain);
  });
});
