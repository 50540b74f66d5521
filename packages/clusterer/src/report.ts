/**
 * The clustering report: sizes and balance, the top caption words of each cluster, purity
 * against the ground-truth groups the data carries, and inertia per iteration.
 *
 * Top words: a cluster's caption words (lower case, letters and digits, stop words and 1-letter
 * words dropped), ranked by count × log(clusters / clusters containing the word), so the words of
 * every caption ("photo") sink. Purity: Σ over clusters of its most common group's count, over
 * the pairs that carry a group.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AssignResult } from './assign.js';
import type { Clusters } from './cluster.js';

const STOP = new Set(
  'a an the of and or in on at to for with by from is are was be this that these those it its as into over under up down out off very some any no not but if then so than too just also photo picture image rendering'.split(
    ' ',
  ),
);

export const captionWords = (caption: string) => (caption.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((w) => w.length > 1 && !STOP.has(w));

export interface LevelReport {
  clusters: number;
  sizes: number[];
  minSize: number;
  maxSize: number;
  /** maxSize / minSize (Infinity with an empty cluster). */
  balance: number;
  /** Over the pairs that carry a group; null when none does. */
  purity: number | null;
  topWords: string[][];
  /** The most common group per cluster (null: none). */
  topGroup: (string | null)[];
}

export interface ClusterReport {
  pairs: number;
  fine: LevelReport;
  coarse: LevelReport;
  inertia: { fine: number[]; coarse: number[] };
  peakBytes: number;
}

function level(clusters: number, of: (i: number) => number, rows: { caption: string; group: string | null }[], topN: number): LevelReport {
  const sizes = new Array<number>(clusters).fill(0);
  const words = Array.from({ length: clusters }, () => new Map<string, number>());
  const groups = Array.from({ length: clusters }, () => new Map<string, number>());
  rows.forEach((r, i) => {
    const c = of(i);
    sizes[c]!++;
    for (const w of captionWords(r.caption)) words[c]!.set(w, (words[c]!.get(w) ?? 0) + 1);
    if (r.group !== null) groups[c]!.set(r.group, (groups[c]!.get(r.group) ?? 0) + 1);
  });
  const df = new Map<string, number>();
  for (const m of words) for (const w of m.keys()) df.set(w, (df.get(w) ?? 0) + 1);
  const topWords = words.map((m) =>
    [...m.entries()]
      .map(([w, n]) => [w, n * Math.log(clusters / df.get(w)!)] as const)
      .filter(([, s]) => s > 0 || clusters === 1)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, topN)
      .map(([w]) => w),
  );
  let pure = 0;
  let grouped = 0;
  const topGroup = groups.map((m) => {
    let best: string | null = null;
    let bestN = 0;
    for (const [g, n] of m) {
      grouped += n;
      if (n > bestN || (n === bestN && best !== null && g < best)) [best, bestN] = [g, n];
    }
    pure += bestN;
    return best;
  });
  const minSize = Math.min(...sizes);
  const maxSize = Math.max(...sizes);
  return { clusters, sizes, minSize, maxSize, balance: minSize ? maxSize / minSize : Infinity, purity: grouped ? pure / grouped : null, topWords, topGroup };
}

export function clusterReport(c: Clusters, a: AssignResult, topN = 5): ClusterReport {
  const rows = a.shards.flatMap((s) => s.rows);
  const pairs = a.shards.flatMap((s) => s.pairs);
  return {
    pairs: rows.length,
    fine: level(c.k, (i) => pairs[i]!.fine, rows, topN),
    coarse: level(c.experts, (i) => pairs[i]!.expert, rows, topN),
    inertia: { fine: c.history.fine.map((h) => h.inertia), coarse: c.history.coarse.map((h) => h.inertia) },
    peakBytes: c.peakBytes,
  };
}

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);

/** The report as Markdown: every expert, the largest and smallest fine clusters. */
export function reportMarkdown(r: ClusterReport): string {
  const lines = [
    `# Clusters`,
    '',
    `${r.pairs} pairs; ${r.fine.clusters} fine clusters (sizes ${r.fine.minSize}–${r.fine.maxSize}, purity ${pct(r.fine.purity)}), ` +
      `${r.coarse.clusters} experts (sizes ${r.coarse.minSize}–${r.coarse.maxSize}, purity ${pct(r.coarse.purity)}); peak GPU buffers ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB.`,
    '',
    '## Experts',
    '',
    '| expert | pairs | top group | top words |',
    '|---|---|---|---|',
    ...r.coarse.sizes.map((n, k) => `| ${k} | ${n} | ${r.coarse.topGroup[k] ?? '–'} | ${r.coarse.topWords[k]!.join(', ')} |`),
    '',
    '## Fine clusters (the 10 largest, then the 10 smallest)',
    '',
    '| cluster | pairs | top group | top words |',
    '|---|---|---|---|',
  ];
  const order = r.fine.sizes.map((n, i) => [n, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const shown = order.length <= 20 ? order : [...order.slice(0, 10), ...order.slice(-10)];
  for (const [n, i] of shown) lines.push(`| ${i} | ${n} | ${r.fine.topGroup[i] ?? '–'} | ${r.fine.topWords[i]!.join(', ')} |`);
  lines.push(
    '',
    '## Inertia per iteration',
    '',
    `fine: ${r.inertia.fine.map((x) => x.toPrecision(6)).join(', ')}`,
    '',
    `coarse: ${r.inertia.coarse.map((x) => x.toPrecision(6)).join(', ')}`,
    '',
  );
  return lines.join('\n');
}

export function writeReport(out: string, r: ClusterReport): void {
  for (const [name, text] of [
    ['report.json', JSON.stringify(r, null, 1) + '\n'],
    ['report.md', reportMarkdown(r)],
  ] as const) {
    writeFileSync(join(out, `${name}.${process.pid}.tmp`), text);
    renameSync(join(out, `${name}.${process.pid}.tmp`), join(out, name));
  }
}
