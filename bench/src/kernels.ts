import { columnsOf } from './compare.js';
import { textTable, type SuiteResults } from './results.js';
import { SUITES, type Suite } from './suites.js';

type Row = Record<string, string | number | null>;

/**
 * The four kernel families at the sizes their speed bars are set at (issue 11), run back to back
 * in one process on one adapter, with one summary row per case: GFLOP/s, its ratio to the A·Bᵀ
 * 1024³ matmul of the same run, the ratios to naive WGSL and to each peer, and the bar it is held to.
 */
const PARTS = ['matmul', 'attention', 'kmeans', 'infonce'] as const;

/** Per suite: the column holding our GFLOP/s and the one holding the ratio to the plain kernel. */
const COLUMNS: Record<(typeof PARTS)[number], { rate: string; naive: string }> = {
  matmul: { rate: 'GFLOP/s', naive: '× naive' },
  attention: { rate: 'GFLOP/s', naive: '× naive' },
  kmeans: { rate: 'GFLOP/s', naive: '× naive' },
  // InfoNCE's plain kernel is its portable variant; it counts FLOPs as done (see its method).
  infonce: { rate: 'GFLOP/s (as done)', naive: '× portable' },
};

const PEERS_BAR = ['tfjs-webgpu', 'jax-js'];
const YARDSTICK = 'ABt 1024³';

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * a / b, only when both rows state the same clock (their `clock` column, see clock.ts); otherwise
 * the refusal as text, which the summary shows in place of the ratio.
 */
export function sameClockRatio(a: number, aRow: Row, b: number, bRow: Row): number | string {
  const [ca, cb] = [aRow.clock, bRow.clock];
  if (typeof ca !== 'string' || typeof cb !== 'string') return `n/a (clock not stated: ${String(ca ?? '?')} vs ${String(cb ?? '?')})`;
  if (ca !== cb) return `n/a (clocks differ: ${ca} vs ${cb})`;
  return a / b;
}

/** The slowest of our ratios over TensorFlow.js and jax-js (so: over the fastest of them), or null when neither ran. */
function overFastestPeer(row: Row): number | null {
  const ratios = PEERS_BAR.map((p) => num(row[`× ${p}`])).filter((x): x is number => x !== null);
  return ratios.length ? Math.min(...ratios) : null;
}

interface Bar {
  text: string;
  met: boolean | null;
}

/** The bar issue 11 sets for this case, judged on this run's numbers (null: the numbers to judge it are missing). */
function barFor(part: string, row: Row, rate: number, matmulRows: Row[]): Bar | null {
  const label = String(row.case);
  /** Our rate over the matmul row `c`'s, when that row exists, has a rate and shares our clock. */
  const over = (c: string): number | null => {
    const other = matmulRows.find((r) => r.case === c);
    const theirs = num(other?.['GFLOP/s']);
    return other && theirs !== null ? num(sameClockRatio(rate, row, theirs, other)) : null;
  };
  const all = (bars: Bar[]): Bar => ({
    text: bars.map((b) => b.text).join('; '),
    met: bars.some((b) => b.met === false) ? false : bars.every((b) => b.met === true) ? true : null,
  });
  const atLeast = (x: number | null, bar: number, text: string): Bar => ({ text, met: x === null ? null : x >= bar });
  const peers = atLeast(overFastestPeer(row), 2.5, '≥ 2.5× fastest of tfjs, jax-js');
  const half = atLeast(over(YARDSTICK), 0.5, '≥ ½ matmul A·Bᵀ 1024³');
  if (part === 'matmul') {
    if (label === 'ABt 1024³') return all([atLeast(rate, 20, '≥ 20 GFLOP/s'), peers]);
    if (label === 'AB 1024³') return all([atLeast(rate, 17, '≥ 17 GFLOP/s'), peers]);
    if (label.endsWith('³')) return null;
    // A trainer shape: within 25% of the 1024³ rate of its own layout (batched Q·Kᵀ is A·Bᵀ).
    const layout = label.split(' ')[0]!;
    return atLeast(over(`${layout} 1024³`), 0.75, `≥ 75% of ${layout} 1024³`);
  }
  // The other kernels' bars are set at their largest bench size only.
  if (part === 'attention' && label.includes('×1024×64')) return label.startsWith('fwd ') ? all([half, peers]) : half;
  if (part === 'kmeans' && label === 'n=1e+6 k=1024 d=256') return half;
  if (part === 'infonce' && label.startsWith('fwd+bwd B=8192 ')) return half;
  return null;
}

/** One summary row per case of the parts (InfoNCE: its largest B only), judged against its bar. */
export function summarize(parts: SuiteResults[]): Row[] {
  const matmulRows = parts.find((p) => p.suite === 'matmul')?.rows ?? [];
  const yardstickRow = matmulRows.find((r) => r.case === YARDSTICK);
  const yardstick = num(yardstickRow?.['GFLOP/s']);
  const rows: Row[] = [];
  for (const part of parts) {
    const cols = COLUMNS[part.suite as (typeof PARTS)[number]];
    if (!cols) continue;
    let own = part.rows;
    if (part.suite === 'infonce') {
      // Cases read "fwd B=8192 d=512": keep the largest B.
      const bOf = (r: Row) => Number(/B=(\d+)/.exec(String(r.case))?.[1] ?? 0);
      const largest = Math.max(...own.map(bOf));
      own = own.filter((r) => bOf(r) === largest);
    }
    for (const r of own) {
      const rate = num(r[cols.rate]);
      if (rate === null) continue;
      const bar = barFor(part.suite, r, rate, matmulRows);
      rows.push({
        kernel: part.suite,
        case: r.case ?? null,
        variant: r.variant ?? null,
        clock: r.clock ?? null,
        'GFLOP/s': rate,
        '÷ matmul A·Bᵀ 1024³': yardstick === null ? null : sameClockRatio(rate, r, yardstick, yardstickRow!),
        '× naive': r[cols.naive] ?? null,
        ...Object.fromEntries(['tfjs-webgpu', 'jax-js', 'numpy-openblas'].map((p) => [`× ${p}`, r[`× ${p}`] ?? null])),
        'bar (issue 11)': bar?.text ?? null,
        met: bar ? (bar.met === null ? 'not measured' : bar.met ? 'yes' : 'NO') : null,
      });
    }
  }
  return rows;
}

export const suite: Suite = {
  description: 'the four kernels (matmul, attention, k-means, InfoNCE) at their headline sizes in one run, one summary row each against its speed bar',
  async run(options) {
    const parts: SuiteResults[] = [];
    for (const name of PARTS) {
      console.log(`\n== ${name} ==`);
      // --quick keeps each part's quick sizes (for a fast look); otherwise the headline sizes.
      const trace = options.trace?.replace(/(\.json)?$/, `-${name}$1`);
      parts.push(await (await SUITES[name]!()).run({ ...options, trace, headline: !options.quick }));
    }
    const rows = summarize(parts);
    const adapter = parts.find((p) => p.adapter !== 'cpu')?.adapter ?? 'unknown';
    const results: SuiteResults = {
      suite: 'kernels',
      adapter,
      date: new Date().toISOString(),
      method:
        `The four kernel suites run back to back in one process on one adapter (${PARTS.join(', ')}), at ${options.quick ? 'their quick sizes' : 'the sizes issue 11 sets its bars at'}; ` +
        `each part's own table and method (how it times, how it counts FLOPs) follow. GFLOP/s: ours as that part counts it. ` +
        `÷ matmul: over the A·Bᵀ 1024³ matmul row of this same run, only where both rows state the same clock (every part times wall time per call ` +
        `including the wait; a row on another clock is shown as "clocks differ", never divided). × columns: our speed over theirs (time ratios, one clock), from the part's table. ` +
        `bar: what issue 11 asks of the case; met is judged on this run's numbers ("not measured" where a ratio it needs is missing).`,
      columns: columnsOf(rows),
      rows,
      sections: parts,
    };
    console.log(`\n${textTable(results)}`);
    return results;
  },
};
