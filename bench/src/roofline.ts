/**
 * Bench rows read against the adapter's measured ceilings (`mode bench peak`): every row with a
 * GFLOP/s (or GB/s) figure gains its share of the peak beside it, in every table of a results file.
 */
import type { Roof } from '@mode/gpu';
import type { SuiteResults } from './results.js';

/** The rate columns a share is added after: the suites' own names for "what this row achieved". */
const RATES: [rate: RegExp, share: string, of: (r: Roof) => number][] = [
  [/^GFLOP\/s( \(as done\))?$/, '% of peak FLOP/s', (r) => r.flops / 1e9],
  [/^GB\/s$/, '% of peak GB/s', (r) => r.bandwidth / 1e9],
];

/** `results` with `% of peak` columns after its rate columns and the roof named in each method; unchanged without rate columns. */
export function withPeakShares(results: SuiteResults, roof: Roof): SuiteResults {
  const one = (t: SuiteResults): SuiteResults => {
    let columns = [...t.columns];
    let rows = t.rows;
    let added = false;
    for (const [rate, share, of] of RATES) {
      const col = columns.find((c) => rate.test(c));
      if (!col || columns.includes(share)) continue;
      columns.splice(columns.indexOf(col) + 1, 0, share);
      rows = rows.map((r) => ({ ...r, [share]: typeof r[col] === 'number' ? Math.round((1e3 * (r[col] as number)) / of(roof)) / 10 : null }));
      added = true;
    }
    const method = added
      ? `${t.method} % of peak: against this adapter's measured ${(roof.flops / 1e9).toFixed(1)} GFLOP/s and ${(roof.bandwidth / 1e9).toFixed(1)} GB/s (${roof.from}).`
      : t.method;
    return { ...t, columns, rows, method };
  };
  return { ...one(results), ...(results.sections ? { sections: results.sections.map(one) } : {}) };
}
