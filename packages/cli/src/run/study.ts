/**
 * `mode study`: the three papers' claims at small scale, each over several seeds, aggregated as
 * mean ± sample standard deviation:
 * - MoDE: `mode run`; the metadata-weighted ensemble against the uniform average, the best single
 *   expert (an oracle), the seed model and the equal-compute single model, zero-shot per task;
 *   the linear probe on the experts' concatenated features against one model's.
 * - DeCLIP: one model per loss set (none, each loss alone, all), the same steps, zero-shot per
 *   task and retrieval.
 * - MetaCLIP: a long-tailed noisy raw pool (noisy-pool.ts) against its curation at `t`, the same
 *   steps; per task top-1, balanced accuracy (mean recall over classes) and tail-class accuracy
 *   (mean recall over the task's classes in the pool's rarer half).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EnsembleResult, ProbeResult } from '@mode/ensembler';
import { barChart, esc, htmlPage, table } from './report.js';

export type TaskResult = EnsembleResult & { probe?: ProbeResult };

/** What `mode eval --out` writes, per task (zero-shot or retrieval). */
export type EvalResult =
  | { task: string; top1: number; perClass: { images: number[]; hits: number[] } }
  | { task: 'retrieval'; imageToText: { r1: number }; textToImage: { r1: number } };

export interface StudyCell {
  task: string;
  column: string;
  value: number;
}

export interface StudyRun {
  claim: string;
  variant: string;
  seed: number;
  cells: StudyCell[];
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

/** A `mode run`'s results as cells: each model's zero-shot top-1 and the probe's accuracies. */
export function modeCells(results: readonly TaskResult[]): StudyCell[] {
  return results.flatMap((r) => {
    const cells: StudyCell[] = [];
    const add = (column: string, value: number) => cells.push({ task: r.task, column, value });
    add('ensemble', r.ensemble.top1);
    add('uniform', r.uniform.top1);
    add('best expert', r.experts[r.bestExpert]!.top1);
    for (const [name, a] of Object.entries(r.baselines)) add(name, a.top1);
    if (r.probe) {
      add('probe: experts concatenated', r.probe.concatenated);
      for (const [name, a] of Object.entries(r.probe.baselines)) add(`probe: ${name}`, a);
    }
    return cells;
  });
}

/**
 * One model's `mode eval` results as cells: top-1 and balanced accuracy per zero-shot task, the
 * mean recall over `tail[task]`'s classes where given, and retrieval R@1 both ways.
 */
export function modelCells(results: readonly EvalResult[], tail: Record<string, number[]> = {}): StudyCell[] {
  return results.flatMap((r): StudyCell[] => {
    if ('imageToText' in r)
      return [
        { task: r.task, column: 'R@1 image→text', value: r.imageToText.r1 },
        { task: r.task, column: 'R@1 text→image', value: r.textToImage.r1 },
      ];
    const recall = (c: number) => r.perClass.hits[c]! / Math.max(1, r.perClass.images[c]!);
    const classes = r.perClass.images.map((_, c) => c);
    const mean = (cs: number[]) => cs.reduce((a, c) => a + recall(c), 0) / cs.length;
    const cells = [
      { task: r.task, column: 'top-1', value: r.top1 },
      { task: r.task, column: 'balanced', value: mean(classes) },
    ];
    const t = tail[r.task];
    if (t?.length) cells.push({ task: r.task, column: 'tail classes', value: mean(t) });
    return cells;
  });
}

export interface StudyRow {
  claim: string;
  variant: string;
  task: string;
  /** Column → the value over seeds. */
  cells: Record<string, { mean: number; std: number; n: number }>;
}

/** The study's tables: per claim, variant and task, each column over seeds. */
export function aggregate(runs: readonly StudyRun[]): StudyRow[] {
  const rows = new Map<string, { claim: string; variant: string; task: string; values: Record<string, number[]> }>();
  for (const run of runs)
    for (const c of run.cells) {
      const key = [run.claim, run.variant, c.task].join('\u0000');
      const row = rows.get(key) ?? { claim: run.claim, variant: run.variant, task: c.task, values: {} };
      (row.values[c.column] ??= []).push(c.value);
      rows.set(key, row);
    }
  return [...rows.values()].map((r) => ({
    claim: r.claim,
    variant: r.variant,
    task: r.task,
    cells: Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, meanStd(v)])),
  }));
}

const cell = (c: { mean: number; std: number } | undefined) => (c ? `${(100 * c.mean).toFixed(1)} ± ${(100 * c.std).toFixed(1)}` : '–');

/** One markdown table per claim; `notes[claim]` printed under its heading. */
export function studyMarkdown(rows: readonly StudyRow[], about: string, notes: Record<string, string> = {}): string {
  const out = ['# mode study', '', about, ''];
  for (const claim of [...new Set(rows.map((r) => r.claim))]) {
    const mine = rows.filter((r) => r.claim === claim);
    const cols = [...new Set(mine.flatMap((r) => Object.keys(r.cells)))];
    out.push(`## ${claim}`, '');
    if (notes[claim]) out.push(notes[claim]!, '');
    out.push(
      `| variant | task | ${cols.join(' | ')} |`,
      `|${'---|'.repeat(cols.length + 2)}`,
      ...mine.map((r) => `| ${r.variant} | ${r.task} | ${cols.map((c) => cell(r.cells[c])).join(' | ')} |`),
      '',
    );
  }
  out.push('In %, mean ± sample standard deviation over the seeds. "best expert" is chosen on the test itself (an oracle).', '');
  return out.join('\n');
}

/** The same tables as one static HTML page (study.html), with a bar chart of top-1 per claim and task. */
export function studyHtml(rows: readonly StudyRow[], about: string, notes: Record<string, string> = {}): string {
  const body = ['<h1>mode study</h1>', `<p>${esc(about)}</p>`];
  for (const claim of [...new Set(rows.map((r) => r.claim))]) {
    const mine = rows.filter((r) => r.claim === claim);
    const cols = [...new Set(mine.flatMap((r) => Object.keys(r.cells)))];
    body.push(`<h2>${esc(claim)}</h2>`);
    for (const para of (notes[claim] ?? '').split('\n\n').filter(Boolean)) body.push(`<p>${esc(para)}</p>`);
    body.push(
      table(
        ['variant', 'task', ...cols],
        mine.map((r) => [r.variant, r.task, ...cols.map((c) => cell(r.cells[c]))]),
      ),
    );
    const first = cols.find((c) => c === 'top-1' || c === 'ensemble') ?? cols[0]!;
    for (const task of [...new Set(mine.map((r) => r.task))]) {
      const bars = mine
        .filter((r) => r.task === task)
        .flatMap((r) =>
          claim === 'MoDE' ? cols.filter((c) => !c.startsWith('probe')).map((c) => [c, r.cells[c]] as const) : [[r.variant, r.cells[first]] as const],
        )
        .filter(([, c]) => c !== undefined)
        .map(([label, c]) => ({ label, value: c!.mean }));
      if (bars.length)
        body.push(
          barChart(bars, { title: `${task}: ${claim === 'MoDE' ? 'top-1' : first} (mean over seeds)`, format: (v) => `${(100 * v).toFixed(1)}%`, max: 1 }),
        );
    }
  }
  body.push('<p>In %, mean ± sample standard deviation over the seeds. "best expert" is chosen on the test itself (an oracle).</p>');
  return htmlPage('mode study', body);
}

const write = (path: string, text: string) => {
  writeFileSync(`${path}.${process.pid}.tmp`, text);
  renameSync(`${path}.${process.pid}.tmp`, path);
};

export function writeStudy(dir: string, runs: readonly StudyRun[], about: string, notes: Record<string, string> = {}): { json: string; md: string } {
  const rows = aggregate(runs);
  const json = join(dir, 'study.json');
  const md = join(dir, 'study.md');
  write(json, JSON.stringify({ about, notes, rows, runs }, null, 1) + '\n');
  write(md, studyMarkdown(rows, about, notes));
  write(join(dir, 'study.html'), studyHtml(rows, about, notes));
  return { json, md };
}

export const readResults = (run: string) => JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as TaskResult[];
export const readEval = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as EvalResult[];
