import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stages, type RunOptions } from '../src/run/pipeline.js';

const base: RunOptions = {
  run: '/runs/r',
  dataDir: '/cache/data',
  preset: 'tiny',
  experts: 2,
  fine: 8,
  seedSteps: 4,
  expertSteps: 2,
  batch: 8,
  seed: 0,
  t: 50,
  evalLimit: 10,
  tasks: ['mnist'],
  parallel: 1,
  checkpointEvery: 5,
  declip: 'none',
  arrayTasks: 2,
  added: [],
};

/** The `--data` values of a task's arguments. */
const dataOf = (args: string[]) => {
  const i = args.indexOf('--data');
  const out: string[] = [];
  for (let j = i + 1; i >= 0 && j < args.length && !args[j]!.startsWith('--'); j++) out.push(args[j]!);
  return out;
};

describe('mode run --data: your shards through the MoDE stages', () => {
  it('curation reads your shards, and the curated pairs are the whole training mix', async () => {
    const pool = ['/shards/00000.tar', '/shards/00001.tar'];
    const all = stages({ ...base, pool }, () => false);
    const task = async (name: string) => (await all.find((s) => s.name === name)!.tasks())[0]!.args;
    const curate = await task('curate');
    expect(curate.slice(curate.indexOf('--pool') + 1, curate.indexOf('--pool') + 3)).toEqual(pool);
    const curated = join(base.run, 'curate', 'curated');
    expect(dataOf(await task('seed'))).toEqual([curated]);
    expect(dataOf(await task('embed'))).toEqual([curated]);
  });

  it('without --data the prepared mix adds 5% of Fashion-MNIST and MNIST', async () => {
    const all = stages(base, () => false);
    const seed = (await all.find((s) => s.name === 'seed')!.tasks())[0]!.args;
    expect(dataOf(seed)).toEqual([join(base.run, 'curate', 'curated'), '/cache/data/fashion-mnist@0.05', '/cache/data/mnist@0.05']);
  });
});

describe('mode run --seed-model: MoDE from a pretrained seed', () => {
  it('imports the seed; each expert and the baseline fine-tune it (fresh schedule); every stage tokenizes with --tokenizer', async () => {
    const all = stages({ ...base, seedModel: '/models/hub', tokenizer: '/vocab/bpe.txt.gz' }, () => false);
    const task = async (name: string) => (await all.find((s) => s.name === name)!.tasks())[0]!.args;
    const seedFile = join(base.run, 'seed', 'final.safetensors');
    expect(await task('seed')).toEqual(['model', 'import', '/models/hub', '--out', seedFile]);
    const expert = await task('experts');
    expect(expert.slice(0, 5)).toEqual(['train', '--init-weights', seedFile, '--steps', '2']);
    expect(expert).toContain('--expert');
    expect(expert).not.toContain('--seed-model');
    const baseline = await task('baseline');
    expect(baseline.slice(0, 5)).toEqual(['train', '--init-weights', seedFile, '--steps', '4']); // 2 experts × 2 steps
    for (const name of ['embed', 'experts', 'baseline', 'evaluate']) expect((await task(name)).join(' '), name).toContain('--tokenizer /vocab/bpe.txt.gz');
  });
});
