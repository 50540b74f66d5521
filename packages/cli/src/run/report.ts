/**
 * The run's report: one static HTML page (no server, no script), tables and inline SVG plots —
 * loss curves of the seed, the experts and the equal-compute baseline; cluster sizes and top
 * words; accuracy of the ensemble against the baselines per task; the ensemble weights per task;
 * the stages' times.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterReport } from '@mode/clusterer';
import type { EnsembleResult, ProbeResult } from '@mode/ensembler';

/** A task's row of results.json, as `mode ensemble --probe` writes it. */
type TaskResult = EnsembleResult & { probe?: ProbeResult };

export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** A line plot of named series of (x, y) points, as SVG. */
export function linePlot(series: { name: string; points: [number, number][] }[], o: { title: string; x: string; y: string }): string {
  const W = 640;
  const H = 300;
  const [l, r, t, b] = [56, 150, 28, 40];
  const all = series.flatMap((s) => s.points);
  if (!all.length) return `<p>${esc(o.title)}: no data</p>`;
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const sx = (x: number) => l + ((x - x0) / (x1 - x0 || 1)) * (W - l - r);
  const sy = (y: number) => H - b - ((y - y0) / (y1 - y0 || 1)) * (H - t - b);
  const ticks = (a: number, z: number) => Array.from({ length: 5 }, (_, i) => a + ((z - a) * i) / 4);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<text x="${l}" y="16" font-weight="bold">${esc(o.title)}</text>`,
    `<line x1="${l}" y1="${H - b}" x2="${W - r}" y2="${H - b}" stroke="#333"/><line x1="${l}" y1="${t}" x2="${l}" y2="${H - b}" stroke="#333"/>`,
    ...ticks(x0, x1).map((x) => `<text x="${sx(x)}" y="${H - b + 16}" text-anchor="middle" font-size="11">${Math.round(x)}</text>`),
    ...ticks(y0, y1).map((y) => `<text x="${l - 6}" y="${sy(y) + 4}" text-anchor="end" font-size="11">${y.toFixed(2)}</text>`),
    `<text x="${(l + W - r) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${esc(o.x)}</text>`,
    `<text x="14" y="${(t + H - b) / 2}" transform="rotate(-90 14 ${(t + H - b) / 2})" text-anchor="middle" font-size="12">${esc(o.y)}</text>`,
  ];
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    parts.push(
      `<polyline class="series" fill="none" stroke="${c}" stroke-width="1.5" points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`,
    );
    parts.push(
      `<rect x="${W - r + 10}" y="${t + i * 18}" width="12" height="12" fill="${c}"/><text x="${W - r + 28}" y="${t + i * 18 + 11}" font-size="12">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** A bar chart of labelled values, as SVG. */
export function barChart(bars: { label: string; value: number }[], o: { title: string; format?: (v: number) => string; max?: number }): string {
  const W = 640;
  const row = 22;
  const H = 30 + row * bars.length;
  const l = 140;
  const max = o.max ?? Math.max(1e-12, ...bars.map((b) => b.value));
  const f = o.format ?? ((v: number) => v.toFixed(3));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<text x="4" y="16" font-weight="bold">${esc(o.title)}</text>`,
    ...bars.map((b, i) => {
      const w = (Math.max(0, b.value) / max) * (W - l - 80);
      const y = 26 + i * row;
      return `<text x="${l - 6}" y="${y + 14}" text-anchor="end" font-size="12">${esc(b.label)}</text><rect class="bar" x="${l}" y="${y}" width="${w.toFixed(1)}" height="${row - 6}" fill="${COLOURS[i % COLOURS.length]}"/><text x="${l + w + 4}" y="${y + 14}" font-size="12">${esc(f(b.value))}</text>`;
    }),
    '</svg>',
  ].join('\n');
}

export const table = (head: string[], rows: (string | number)[][]) =>
  `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`).join('')}</tbody></table>`;

function losses(run: string, name: string): [number, number][] {
  const path = join(run, name, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number })
    .map((m) => [m.step, m.loss]);
}

/** Writes RUN/report.html from the run folder's files; returns its path. */
export function writeRunReport(run: string, experts: number, timings: { stage: string; seconds: number; skipped: boolean }[]): string {
  const results = existsSync(join(run, 'results.json')) ? (JSON.parse(readFileSync(join(run, 'results.json'), 'utf8')) as TaskResult[]) : [];
  const clusters = existsSync(join(run, 'clusters', 'report.json'))
    ? (JSON.parse(readFileSync(join(run, 'clusters', 'report.json'), 'utf8')) as ClusterReport)
    : null;
  const curves = [
    { name: 'seed', points: losses(run, 'seed') },
    ...Array.from({ length: experts }, (_, k) => ({ name: `expert ${k}`, points: losses(run, join('experts', String(k))) })),
    { name: 'equal-compute', points: losses(run, 'baseline') },
  ].filter((s) => s.points.length);
  const body: string[] = [`<h1>mode run: ${esc(run)}</h1>`, `<p>Generated ${new Date().toISOString()}.</p>`];
  body.push('<h2>Accuracy (zero-shot top-1)</h2>');
  if (results.length) {
    const names = Object.keys(results[0]!.baselines);
    body.push(
      table(
        ['task', 'images', 'chance', 'ensemble (metadata weights)', 'uniform average', 'best expert', ...names],
        results.map((r) => [
          r.task,
          r.count,
          pct(r.chance),
          pct(r.ensemble.top1),
          pct(r.uniform.top1),
          `${pct(r.experts[r.bestExpert]!.top1)} (expert ${r.bestExpert})`,
          ...names.map((n) => pct(r.baselines[n]!.top1)),
        ]),
      ),
    );
    for (const r of results)
      body.push(
        barChart(
          [
            { label: 'ensemble', value: r.ensemble.top1 },
            { label: 'uniform', value: r.uniform.top1 },
            ...r.experts.map((a, k) => ({ label: `expert ${k}`, value: a.top1 })),
            ...Object.entries(r.baselines).map(([n, a]) => ({ label: n, value: a.top1 })),
          ],
          { title: `${r.task}: top-1`, format: (v) => pct(v), max: 1 },
        ),
      );
    const probes = results.filter((r) => r.probe);
    if (probes.length) {
      const pn = Object.keys(probes[0]!.probe!.baselines);
      body.push(
        '<h2>Linear probe</h2>',
        "<p>Logistic regression on the experts' image features concatenated, against the same probe on one model's features (MoDE's representation result).</p>",
        table(
          ['task', 'train / test images', 'experts concatenated', ...pn],
          probes.map((r) => [r.task, `${r.probe!.train} / ${r.probe!.test}`, pct(r.probe!.concatenated), ...pn.map((n) => pct(r.probe!.baselines[n]!))]),
        ),
      );
    }
    body.push(
      '<h2>Ensemble weights per task</h2>',
      '<p>softmax(w̃ / 8) of MoDE §2 step 6; with class distances this small the weights stay close to uniform.</p>',
    );
    body.push(
      table(
        ['task', 'mean class distance', 'classes per expert', ...Array.from({ length: experts }, (_, k) => `w${k}`)],
        results.map((r) => [r.task, r.meanDistance.toFixed(3), r.classesPerExpert.join(' / '), ...r.weights.map((w) => w.toFixed(4))]),
      ),
    );
    for (const r of results)
      body.push(
        barChart(
          r.weights.map((w, k) => ({ label: `expert ${k}`, value: w })),
          { title: `${r.task}: weights`, format: (v) => v.toFixed(4) },
        ),
      );
  } else body.push('<p>No results yet (the evaluate stage has not run).</p>');
  body.push('<h2>Training loss</h2>', linePlot(curves, { title: 'loss per step', x: 'step', y: 'loss' }));
  if (clusters) {
    body.push(
      '<h2>Clusters</h2>',
      `<p>${clusters.pairs} pairs; ${clusters.fine.clusters} fine clusters (sizes ${clusters.fine.minSize}–${clusters.fine.maxSize}, purity ${pct(clusters.fine.purity)}); ${clusters.coarse.clusters} experts (purity ${pct(clusters.coarse.purity)}).</p>`,
      table(
        ['expert', 'pairs', 'top group', 'top words'],
        clusters.coarse.sizes.map((n, k) => [k, n, clusters.coarse.topGroup[k] ?? '–', clusters.coarse.topWords[k]!.join(', ')]),
      ),
      barChart(
        clusters.coarse.sizes.map((n, k) => ({ label: `expert ${k}`, value: n })),
        { title: 'pairs per expert', format: (v) => String(v) },
      ),
      linePlot([{ name: 'fine', points: clusters.inertia.fine.map((y, i) => [i + 1, y] as [number, number]) }], {
        title: 'fine k-means inertia',
        x: 'iteration',
        y: 'inertia',
      }),
    );
  }
  const profile = join(run, 'seed', 'profile.json');
  if (existsSync(profile)) {
    const p = JSON.parse(readFileSync(profile, 'utf8')) as {
      step: number;
      adapter: string;
      clock: string;
      roof?: { flops: number; bandwidth: number; dispatchSeconds: number | null; from: string } | null;
      overhead?: { dispatches: number; seconds: number; share: number } | null;
      kernels: { kernel: string; calls: number; totalMs: number; gflops?: number; gbps?: number; peakFlops?: number; peakBandwidth?: number }[];
    };
    const total = p.kernels.reduce((a, k) => a + k.totalMs, 0);
    const roof = p.roof ?? null;
    const share = (x: number | undefined) => (x === undefined ? '–' : pct(x));
    body.push(
      '<h2>Where a training step goes</h2>',
      `<p>The seed's step ${p.step} on ${esc(p.adapter)}, by kernel (${esc(p.clock)}: ${total.toFixed(1)} ms in all). Chrome trace: <a href="seed/trace.json">seed/trace.json</a> (open it in Perfetto or chrome://tracing).</p>`,
      roof
        ? `<p>Against the adapter's measured ceilings (${esc(roof.from)}): ${(roof.flops / 1e9).toFixed(1)} GFLOP/s f32, ${(roof.bandwidth / 1e9).toFixed(1)} GB/s.</p>`
        : "<p>The adapter's ceilings are not measured yet: <code>mode bench peak</code> adds % of peak here.</p>",
      table(
        ['kernel', 'calls', 'ms', 'share', 'GFLOP/s', 'GB/s', ...(roof ? ['% peak FLOP/s', '% peak GB/s'] : [])],
        [
          ...p.kernels.map((k) => [
            k.kernel,
            k.calls,
            k.totalMs.toFixed(1),
            pct(k.totalMs / total),
            k.gflops === undefined ? '–' : k.gflops.toFixed(1),
            k.gbps === undefined ? '–' : k.gbps.toFixed(1),
            ...(roof ? [share(k.peakFlops), share(k.peakBandwidth)] : []),
          ]),
          // The fixed cost of the step's dispatches, its own line: count × an empty dispatch's measured cost.
          ...(p.overhead
            ? [
                [
                  `dispatch overhead (${p.overhead.dispatches} × ${((roof?.dispatchSeconds ?? 0) * 1e6).toFixed(0)} µs)`,
                  p.overhead.dispatches,
                  (p.overhead.seconds * 1e3).toFixed(1),
                  pct(p.overhead.share),
                  '',
                  '',
                  ...(roof ? ['', ''] : []),
                ],
              ]
            : []),
        ],
      ),
      barChart(
        p.kernels.slice(0, 12).map((k) => ({ label: k.kernel, value: k.totalMs })),
        { title: 'ms by kernel (top 12)', format: (v) => `${v.toFixed(1)} ms` },
      ),
    );
    // The same kernels on the roofline (written by the trainer beside the profile when the roof is measured).
    const roofline = join(run, 'seed', 'roofline.svg');
    if (existsSync(roofline)) body.push(readFileSync(roofline, 'utf8'));
  }
  body.push(
    '<h2>Stages</h2>',
    table(
      ['stage', 'seconds', ''],
      timings.map((t) => [t.stage, t.seconds.toFixed(1), t.skipped ? 'already done' : '']),
    ),
  );
  const html = htmlPage('mode run report', body);
  const path = join(run, 'report.html');
  writeFileSync(`${path}.${process.pid}.tmp`, html);
  renameSync(`${path}.${process.pid}.tmp`, path);
  return path;
}

/** A static page around `body`: the reports' one style. */
export function htmlPage(title: string, body: string[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}svg{display:block;margin:1em 0}</style>
</head><body>
${body.join('\n')}
</body></html>
`;
}
