import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, type Gpu } from '@mode/gpu';

/** bench/results/, or $MODE_BENCH_RESULTS (scripts/device-check.sh writes a lent machine's results there). */
export const RESULTS_DIR = process.env.MODE_BENCH_RESULTS ?? fileURLToPath(new URL('../results/', import.meta.url));

/** One suite's results: written as `<suite>-<adapter>.json` and `.md` in bench/results/. */
export interface SuiteResults {
  suite: string;
  /** Adapter (or `cpu` for CPU-only suites) the numbers were measured on. */
  adapter: string;
  date: string;
  /** How the numbers were taken: timer, repetitions, what a FLOP counts. */
  method: string;
  columns: string[];
  rows: Record<string, string | number | null>[];
  /** Further tables written after this one in the Markdown (a combined run's parts), each with its own method. */
  sections?: SuiteResults[];
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/** Writes JSON and a Markdown table atomically (temporary name, then rename); returns the paths. */
export function writeResults(results: SuiteResults, dir = RESULTS_DIR): { json: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${slug(results.suite)}-${slug(results.adapter)}`);
  const table = (r: SuiteResults) => [
    `${r.date}. ${r.method}`,
    '',
    `| ${r.columns.join(' | ')} |`,
    `|${r.columns.map(() => '---').join('|')}|`,
    ...r.rows.map((row) => `| ${r.columns.map((c) => cell(row[c])).join(' | ')} |`),
    '',
  ];
  const md = [
    `# ${results.suite} on ${results.adapter}`,
    '',
    ...table(results),
    ...(results.sections ?? []).flatMap((section) => [`## ${section.suite}`, '', ...table(section)]),
  ].join('\n');
  for (const [path, text] of [
    [`${base}.json`, JSON.stringify(results, null, 2)],
    [`${base}.md`, md],
  ] as const) {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  }
  return { json: `${base}.json`, markdown: `${base}.md` };
}

/** The rows as an aligned text table for the terminal. */
export function textTable(results: SuiteResults): string {
  return formatTable(
    results.columns,
    results.rows.map((r) => results.columns.map((c) => cell(r[c]))),
  );
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3);
  return v;
}

/** Writes the run's Chrome trace (every profiled dispatch) atomically, when a path was asked for. */
export function writeTrace(gpu: Gpu, path: string | undefined): void {
  if (!path) return;
  writeFileSync(`${path}.tmp`, JSON.stringify(gpu.profiler.chromeTrace()));
  renameSync(`${path}.tmp`, path);
}
