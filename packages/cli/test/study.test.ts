import { describe, expect, it } from 'vitest';
import { aggregate, meanStd, studyMarkdown, type StudyRun } from '../src/run/study.js';

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
  it('mean ± sample standard deviation per variant, task and model', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([4])).toEqual({ mean: 4, std: 0, n: 1 });
    const runs: StudyRun[] = [
      { variant: 'CLIP', seed: 0, results: [result('mnist', 0.6, 0.5), result('openmoji', 0.1, 0.1)] },
      { variant: 'CLIP', seed: 1, results: [result('mnist', 0.8, 0.7), result('openmoji', 0.1, 0.1)] },
    ];
    const rows = aggregate(runs);
    expect(rows.map((r) => r.task)).toEqual(['mnist', 'openmoji']);
    expect(rows[0]!.cells.ensemble!.mean).toBeCloseTo(0.7, 12);
    expect(rows[0]!.cells.ensemble!.std).toBeCloseTo(Math.SQRT2 / 10, 12);
    expect(rows[0]!.cells['best expert']).toEqual({ mean: 0.6, std: 0, n: 2 });
    expect(rows[0]!.cells.seed!.mean).toBeCloseTo(0.6, 12);
    expect(studyMarkdown(rows, 'about')).toMatch(/\| CLIP \| mnist \| 70\.0 ± 14\.1 \| 50\.0 ± 0\.0 \| 60\.0 ± 0\.0 \| 60\.0 ± 14\.1 \|/);
  });
});
