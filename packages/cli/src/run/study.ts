/**
 * `mode study`: the papers' claims at small scale, as `mode run`s with several seeds and the
 * numbers aggregated (mean ± sample standard deviation over seeds):
 * - MoDE: the metadata-weighted ensemble against the uniform average, the best single expert, the
 *   seed model and the equal-compute single model, zero-shot per task; the linear probe on the
 *   experts' concatenated features against one model's;
 * - DeCLIP: the same runs with the DeCLIP losses on (`--declip`), same steps.
 * (MetaCLIP's raw-against-curated pool claim needs a long-tailed noisy pool: not yet.)
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnsembleResult, ProbeResult } from '@mode/ensembler';

type TaskResult = EnsembleResult & { probe?: ProbeResult };

export interface StudyRun {
  variant: string;
  seed: number;
  results: TaskResult[];
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export interface StudyRow {
  variant: string;
  task: string;
  /** Column → top-1 over seeds. */
  cells: Record<string, { mean: number; std: number; n: number }>;
}

/** The study's table: per variant and task, each model's top-1 (zero-shot and probe) over seeds. */
export function aggregate(runs: readonly StudyRun[]): StudyRow[] {
  const rows = new Map<string, { variant: string; task: string; values: Record<string, number[]> }>();
  for (const run of runs)
    for (const r of run.results) {
      const key = `${run.variant}\u0000${r.task}`;
      const row = rows.get(key) ?? { variant: run.variant, task: r.task, values: {} };
      const add = (col: string, v: number) => (row.values[col] ??= []).push(v);
      add('ensemble', r.ensemble.top1);
      add('uniform', r.uniform.top1);
      add('best expert', r.experts[r.bestExpert]!.top1);
      for (const [name, a] of Object.entries(r.baselines)) add(name, a.top1);
      if (r.probe) {
        add('probe: experts concatenated', r.probe.concatenated);
        for (const [name, a] of Object.entries(r.probe.baselines)) add(`probe: ${name}`, a);
      }
      rows.set(key, row);
    }
  return [...rows.values()].map((r) => ({
    variant: r.variant,
    task: r.task,
    cells: Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, meanStd(v)])),
  }));
}

const cell = (c: { mean: number; std: number } | undefined) => (c ? `${(100 * c.mean).toFixed(1)} ± ${(100 * c.std).toFixed(1)}` : '–');

export function studyMarkdown(rows: readonly StudyRow[], about: string): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r.cells)))];
  return [
    '# mode study',
    '',
    about,
    '',
    `| variant | task | ${cols.join(' | ')} |`,
    `|${'---|'.repeat(cols.length + 2)}`,
    ...rows.map((r) => `| ${r.variant} | ${r.task} | ${cols.map((c) => cell(r.cells[c])).join(' | ')} |`),
    '',
    'Top-1 in %, mean ± sample standard deviation over the seeds; "best expert" is chosen on the test itself (an oracle).',
    '',
  ].join('\n');
}

export function writeStudy(dir: string, runs: readonly StudyRun[], about: string): { json: string; md: string } {
  const rows = aggregate(runs);
  const json = join(dir, 'study.json');
  const md = join(dir, 'study.md');
  for (const [path, text] of [
    [json, JSON.stringify({ about, rows, runs: runs.map((r) => ({ variant: r.variant, seed: r.seed })) }, null, 1) + '\n'],
    [md, studyMarkdown(rows, about)],
  ] as const) {
    writeFileSync(`${path}.${process.pid}.tmp`, text);
    renameSync(`${path}.${process.pid}.tmp`, path);
  }
  return { json, md };
}

export const readResults = (run: string) => JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as TaskResult[];
