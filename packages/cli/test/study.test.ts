import { describe, expect, it } from 'vitest';
import { aggregate, meanStd, modeCells, modelCells, studyHtml, studyMarkdown, type StudyRun } from '../src/run/study.js';

const result = (task: string, ensemble: number, seed: number) => ({
  task,
  classes: 10,
  count: 100,
  chance: 0.1,
  weights: [0.5, 0.5],
  rawWeights: [0, 0],
  meanDistance: 0.5,
  classesPerExpert: [5, 5],
  ensemble: { top1: ensemble, top5: 1 },
  uniform: { top1: 0.5, top5: 1 },
  experts: [
    { top1: 0.4, top5: 1 },
    { top1: 0.6, top5: 1 },
  ],
  bestExpert: 1,
  baselines: { seed: { top1: seed, top5: 1 } },
});

describe('mode study', () => {
  it('mean ± sample standard deviation per claim, variant, task and model', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([4])).toEqual({ mean: 4, std: 0, n: 1 });
    const runs: StudyRun[] = [
      { claim: 'MoDE', variant: 'CLIP', seed: 0, cells: modeCells([result('mnist', 0.6, 0.5), result('openmoji', 0.1, 0.1)]) },
      { claim: 'MoDE', variant: 'CLIP', seed: 1, cells: modeCells([result('mnist', 0.8, 0.7), result('openmoji', 0.1, 0.1)]) },
    ];
    const rows = aggregate(runs);
    expect(rows.map((r) => r.task)).toEqual(['mnist', 'openmoji']);
    expect(rows[0]!.cells.ensemble!.mean).toBeCloseTo(0.7, 12);
    expect(rows[0]!.cells.ensemble!.std).toBeCloseTo(Math.SQRT2 / 10, 12);
    expect(rows[0]!.cells['best expert']).toEqual({ mean: 0.6, std: 0, n: 2 });
    expect(rows[0]!.cells.seed!.mean).toBeCloseTo(0.6, 12);
    expect(studyMarkdown(rows, 'about')).toMatch(/## MoDE[^]*\| CLIP \| mnist \| 70\.0 ± 14\.1 \| 50\.0 ± 0\.0 \| 60\.0 ± 0\.0 \| 60\.0 ± 14\.1 \|/);
  });

  it("one model's cells: top-1, balanced accuracy over classes, tail classes, retrieval", () => {
    // Class 0: 90 images, 81 right; class 1: 10 images, 1 right. top-1 0.82, balanced (0.9 + 0.1) / 2.
    const cells = modelCells(
      [
        { task: 'mnist', top1: 0.82, perClass: { images: [90, 10], hits: [81, 1] } },
        { task: 'retrieval', imageToText: { r1: 0.25 }, textToImage: { r1: 0.5 } },
      ],
      { mnist: [1] },
    );
    const by = Object.fromEntries(cells.map((c) => [`${c.task} ${c.column}`, c.value]));
    expect(by['mnist top-1']).toBe(0.82);
    expect(by['mnist balanced']).toBeCloseTo(0.5, 12);
    expect(by['mnist tail classes']).toBeCloseTo(0.1, 12);
    expect(by['retrieval R@1 image→text']).toBe(0.25);
    expect(by['retrieval R@1 text→image']).toBe(0.5);
    const md = studyMarkdown(aggregate([{ claim: 'MetaCLIP', variant: 'raw pool', seed: 0, cells }]), 'about', { MetaCLIP: 'the pool' });
    const html = studyHtml(aggregate([{ claim: 'MetaCLIP', variant: 'raw <pool>', seed: 0, cells }]), 'about', { MetaCLIP: 'the pool' });
    expect(html).toMatch(/<h2>MetaCLIP<\/h2>\n<p>the pool<\/p>\n<table><thead><tr><th>variant<\/th><th>task<\/th><th>top-1<\/th>/);
    expect(html).toContain('<td>raw &lt;pool&gt;</td><td>mnist</td><td>82.0 ± 0.0</td>');
    expect(html.match(/<svg /g)).toHaveLength(1); // a bar chart per task with a top-1 (retrieval has none)
    expect(md).toMatch(/## MetaCLIP\n\nthe pool\n\n\| variant \| task \| top-1 \| balanced \| tail classes \| R@1 image→text \| R@1 text→image \|/);
  });
});
