/**
 * `mode run`: MoDE end to end as a list of stages, each from documented input files to documented
 * output files with a validity check, so a finished stage is skipped and a killed one resumes
 * (training from its checkpoint, embedding from its finished shards). Stages know nothing of
 * launchers: each returns the `mode` tasks it needs, which the launcher runs.
 *
 *   data → curate → seed → embed → cluster → experts → baseline → evaluate → report
 *
 * Everything lands in one run folder:
 *   curate/curated/      MetaCLIP-curated emoji and clip-art pairs, or your --data shards' (a data set folder)
 *   seed/                the seed model, stopped at --seed-steps of a schedule that runs
 *                        --expert-steps further (final.safetensors, checkpoint/, metrics.jsonl)
 *   embeddings/          its text tower's caption embeddings
 *   clusters/            fine and coarse centres, the assignment, report.md
 *   experts/K/           expert K: the seed continued on its pairs to the schedule's end
 *   baseline/            the seed continued on all pairs for the experts' total extra steps
 *   results.json         ensemble vs uniform vs each expert vs the baselines, per task
 *   report.html          the report; run.json the stages' times
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Task } from './launcher.js';

export interface RunOptions {
  run: string;
  dataDir: string;
  preset: string;
  experts: number;
  fine: number;
  seedSteps: number;
  expertSteps: number;
  batch: number;
  seed: number;
  /** MetaCLIP's balancing threshold for the curated pairs. */
  t: number;
  evalLimit: number;
  tasks: string[];
  /** Expert processes at once. */
  parallel: number;
  /** Steps between the training stages' checkpoints. */
  checkpointEvery: number;
  /** DeCLIP losses of the seed (the experts and the baseline continue with the seed's). */
  declip: string;
  /** Array tasks of the shard-parallel steps (curation, embedding, assignment) on a cluster. */
  arrayTasks: number;
  /** Experts added later for new data (RUN/added.json), numbered after the run's. */
  added: AddedExpert[];
  /**
   * Your own pairs (`mode run --data`): the shards curation reads instead of the prepared emoji and
   * clip art; the curated pairs are then the whole training mix (no MNIST captions added).
   */
  pool?: string[];
  /**
   * A pretrained seed (`mode run --seed-model M`: a model file or an OpenCLIP hub folder): the
   * seed stage imports it instead of training one; each expert fine-tunes it on its cluster with a
   * fresh optimiser and its own schedule (`--expert-steps`), and the equal-compute baseline
   * fine-tunes it on all pairs for the experts' total steps.
   */
  seedModel?: string;
  /** The tokenizer of every stage, when not the data folder's (`--tokenizer`; OpenAI's for an OpenCLIP seed). */
  tokenizer?: string;
}

/**
 * An expert added to a finished run for new data (MoDE: new data, a new expert, the others
 * untouched): its captions embedded by the seed's text tower, fine centres of its own (in
 * proportion to its pairs), the seed continued on it; the ensemble then weighs it like the rest.
 */
export interface AddedExpert {
  expert: number;
  /** Its data, as `mode train --data` takes it. */
  data: string[];
  /** Its fine centres. */
  fine: number;
}

export interface Stage {
  name: string;
  /** What the stage leaves when complete. */
  done(): boolean;
  /** The tasks still to run (a resumed stage returns only what is missing). */
  tasks(): Task[] | Promise<Task[]>;
  /** Tasks of this stage that may run at once. */
  parallel?: number;
  /**
   * The same work split for a cluster (the SLURM launcher): named steps, each one job (an array
   * when it has several tasks) after the one before: map over shards, reduce, map, finish.
   */
  steps?(): { name: string; tasks: Task[] }[] | Promise<{ name: string; tasks: Task[] }[]>;
}

const write = (path: string, text: string) => {
  writeFileSync(`${path}.${process.pid}.tmp`, text);
  renameSync(`${path}.${process.pid}.tmp`, path);
};

export function stages(o: RunOptions, hasCheckpoint: (dir: string) => boolean): Stage[] {
  const r = (...p: string[]) => join(o.run, ...p);
  const d = (...p: string[]) => join(o.dataDir, ...p);
  const log = (name: string) => r('logs', `${name}.log`);
  const curated = r('curate', 'curated');
  const mix = o.pool ? [curated] : [curated, `${d('fashion-mnist')}@0.05`, `${d('mnist')}@0.05`];
  const total = o.seedSteps + o.expertSteps;
  const resume = (dir: string) => (hasCheckpoint(dir) ? ['--resume'] : []);
  const tok = o.tokenizer ? ['--tokenizer', o.tokenizer] : [];
  const seedFile = r('seed', 'final.safetensors');
  // An expert or the baseline starts from the seed: continuing its checkpoint, or fine-tuning a pretrained one.
  const fromSeed = (steps: number, data = mix) =>
    o.seedModel ? ['--init-weights', seedFile, '--steps', String(steps), '--declip', o.declip, '--data', ...data, ...tok] : ['--seed-model', r('seed'), ...tok];
  const train = (out: string) => [
    ...resume(out),
    '--out',
    out,
    '--data-dir',
    o.dataDir,
    '--batch',
    String(o.batch),
    '--checkpoint-every',
    String(o.checkpointEvery),
  ];
  /** A stage doing one task per added expert whose `output` is missing. */
  const perAdded = (name: string, output: (k: string) => string, task: (a: AddedExpert, k: string) => Omit<Task, 'log'>): Stage => ({
    name,
    done: () => o.added.every((a) => existsSync(output(String(a.expert)))),
    tasks: () => o.added.filter((a) => !existsSync(output(String(a.expert)))).map((a) => ({ ...task(a, String(a.expert)), log: log(`${name}-${a.expert}`) })),
  });
  const experts = [...Array.from({ length: o.experts }, (_, k) => k), ...o.added.map((a) => a.expert)].map((k) => r('experts', String(k), 'final.safetensors'));
  const parts = (f: (i: number, n: number) => Task) => Array.from({ length: o.arrayTasks }, (_, i) => f(i, o.arrayTasks));
  const curateArgs = () => ['curate', '--pool', ...pairsPool(), '--t', String(o.t), '--seed', String(o.seed), '--out', r('curate'), '--no-progress'];
  const embedArgs = ['embed', '--model', seedFile, '--out', r('embeddings'), '--data-dir', o.dataDir, '--data', ...mix, ...tok];
  const clusterArgs = [
    'cluster',
    '--embeddings',
    r('embeddings'),
    '--fine',
    String(o.fine),
    '--experts',
    String(o.experts),
    '--seed',
    String(o.seed),
    '--out',
    r('clusters'),
  ];
  const assignArgs = ['assign', '--embeddings', r('embeddings'), '--clusters', r('clusters'), '--seed', String(o.seed)];
  const pairsPool = () =>
    o.pool ?? ['emoji', 'clipart'].flatMap((s) => JSON.parse(readFileSync(d(s, 'dataset.json'), 'utf8')).splits.train.shards.map((f: string) => d(s, f)));
  return [
    {
      name: 'data',
      done: () => ['emoji', 'clipart', 'fashion-mnist', 'mnist', 'openmoji'].every((s) => existsSync(d(s, 'dataset.json'))) && existsSync(d('tokenizer.json')),
      tasks: () => [{ name: 'data', args: ['data', 'prepare', '--out', o.dataDir], log: log('data') }],
    },
    {
      name: 'curate',
      done: () => existsSync(join(curated, 'dataset.json')),
      tasks: () => [{ name: 'curate', args: curateArgs(), log: log('curate') }],
      // MetaCLIP's map (count per shard) → reduce (sum) → map (sample with the global counts).
      steps: () => [
        { name: 'curate-plan', tasks: [{ name: 'curate plan', args: [...curateArgs(), '--phase', 'plan'], log: log('curate-plan') }] },
        {
          name: 'curate-count',
          tasks: parts((i, n) => ({
            name: `curate count ${i}`,
            args: [...curateArgs(), '--phase', 'count', '--part', `${i}/${n}`],
            log: log(`curate-count-${i}`),
          })),
        },
        { name: 'curate-reduce', tasks: [{ name: 'curate reduce', args: [...curateArgs(), '--phase', 'reduce'], log: log('curate-reduce') }] },
        {
          name: 'curate-sample',
          tasks: parts((i, n) => ({
            name: `curate sample ${i}`,
            args: [...curateArgs(), '--phase', 'sample', '--part', `${i}/${n}`],
            log: log(`curate-sample-${i}`),
          })),
        },
        { name: 'curate', tasks: [{ name: 'curate', args: curateArgs(), log: log('curate') }] },
      ],
    },
    {
      name: 'seed',
      done: () => existsSync(r('seed', 'final.safetensors')),
      tasks: () => [
        o.seedModel
          ? { name: 'seed', args: ['model', 'import', o.seedModel, '--out', seedFile], log: log('seed') }
          : {
              name: 'seed',
              args: [
                'train',
                '--preset',
                o.preset,
                '--steps',
                String(total),
                '--stop-at',
                String(o.seedSteps),
                '--seed',
                String(o.seed),
                '--profile-step',
                String(Math.min(3, o.seedSteps)),
                '--declip',
                o.declip,
                '--data',
                ...mix,
                ...train(r('seed')),
                ...tok,
              ],
              log: log('seed'),
            },
      ],
    },
    {
      name: 'embed',
      done: () => existsSync(r('embeddings', 'embeddings.json')),
      tasks: () => [{ name: 'embed', args: embedArgs, log: log('embed') }],
      steps: () => [
        { name: 'embed-parts', tasks: parts((i, n) => ({ name: `embed ${i}`, args: [...embedArgs, '--part', `${i}/${n}`], log: log(`embed-${i}`) })) },
        { name: 'embed', tasks: [{ name: 'embed', args: embedArgs, log: log('embed') }] },
      ],
    },
    {
      name: 'cluster',
      done: () => existsSync(r('clusters', 'report.json')),
      tasks: () => [
        {
          name: 'cluster',
          args: clusterArgs,
          log: log('cluster'),
        },
      ],
      // Fit once, then assign the shards as an array, then the manifest and report.
      steps: () => [
        { name: 'cluster-fit', tasks: [{ name: 'cluster fit', args: [...clusterArgs, '--no-assign'], log: log('cluster') }] },
        { name: 'cluster-assign', tasks: parts((i, n) => ({ name: `assign ${i}`, args: [...assignArgs, '--part', `${i}/${n}`], log: log(`assign-${i}`) })) },
        { name: 'cluster', tasks: [{ name: 'assign', args: assignArgs, log: log('assign') }] },
      ],
    },
    {
      name: 'experts',
      parallel: o.parallel,
      done: () => Array.from({ length: o.experts }, (_, k) => existsSync(r('experts', String(k), 'final.safetensors'))).every(Boolean),
      tasks: () =>
        Array.from({ length: o.experts }, (_, k) => k)
          .filter((k) => !existsSync(r('experts', String(k), 'final.safetensors')))
          .map((k) => ({
            name: `expert ${k}`,
            args: ['train', ...fromSeed(o.expertSteps), '--expert', String(k), '--assignment', r('clusters'), ...train(r('experts', String(k)))],
            log: log(`expert-${k}`),
          })),
    },
    {
      name: 'baseline',
      done: () => existsSync(r('baseline', 'final.safetensors')),
      // Equal compute: the seed trained on all pairs for the experts' total extra steps.
      tasks: () => [
        {
          name: 'baseline',
          args: [
            'train',
            ...(o.seedModel ? fromSeed(o.experts * o.expertSteps) : [...fromSeed(0), '--steps', String(o.seedSteps + o.experts * o.expertSteps)]),
            '--seed',
            String(o.seed),
            ...train(r('baseline')),
          ],
          log: log('baseline'),
        },
      ],
    },
    perAdded(
      'added-embed',
      (k) => r('added', k, 'embeddings', 'embeddings.json'),
      (a, k) => ({
        name: `added ${k} embed`,
        args: ['embed', '--model', seedFile, '--out', r('added', k, 'embeddings'), '--data-dir', o.dataDir, '--data', ...a.data, ...tok],
      }),
    ),
    perAdded(
      'added-cluster',
      (k) => r('added', k, 'clusters', 'report.json'),
      (a, k) => ({
        name: `added ${k} cluster`,
        args: [
          'cluster',
          '--embeddings',
          r('added', k, 'embeddings'),
          '--fine',
          String(a.fine),
          '--experts',
          '1',
          '--seed',
          String(o.seed),
          '--out',
          r('added', k, 'clusters'),
        ],
      }),
    ),
    {
      ...perAdded(
        'added-experts',
        (k) => r('experts', k, 'final.safetensors'),
        (a, k) => ({
          name: `expert ${k}`,
          // --seed: the data order an expert of that number has.
          args: [
            'train',
            ...fromSeed(o.expertSteps, a.data),
            '--expert',
            '0',
            '--assignment',
            r('added', k, 'clusters'),
            ...(o.seedModel ? [] : ['--data', ...a.data]),
            '--seed',
            String(1 + a.expert),
            ...train(r('experts', k)),
          ],
        }),
      ),
      parallel: o.parallel,
    },
    {
      name: 'evaluate',
      // Redone when an expert was added since.
      done: () =>
        existsSync(r('results.json')) && (JSON.parse(readFileSync(r('results.json'), 'utf8')) as { weights: number[] }[])[0]?.weights.length === experts.length,
      tasks: () => [
        {
          name: 'evaluate',
          args: [
            'ensemble',
            '--experts',
            ...experts,
            '--clusters',
            r('clusters'),
            ...o.added.map((a) => r('added', String(a.expert), 'clusters')),
            '--encoder',
            seedFile,
            '--baseline',
            `seed=${seedFile}`,
            `equal-compute=${r('baseline', 'final.safetensors')}`,
            '--task',
            ...o.tasks,
            '--limit',
            String(o.evalLimit),
            '--probe',
            '--probe-train',
            String(Math.min(1000, o.evalLimit)),
            '--data-dir',
            o.dataDir,
            ...tok,
            '--out',
            r('results.json'),
          ],
          log: log('evaluate'),
        },
      ],
    },
  ].filter((stage) => o.added.length > 0 || !stage.name.startsWith('added-'));
}

/** `mode curate --out DIR`'s curated shards (DIR/curated) as a data set folder the trainer reads. */
export function writeCuratedInfo(dir: string, description: string): void {
  const curated = join(dir, 'curated');
  const shards = readdirSync(curated)
    .filter((f) => f.endsWith('.tar'))
    .sort();
  const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as { kept: number };
  const bytes = shards.reduce((s, f) => s + statSync(join(curated, f)).size, 0);
  const info = { format: 'mode-dataset-1', name: 'curated', kind: 'pairs', description, splits: { train: { count: Math.round(stats.kept), shards, bytes } } };
  write(join(curated, 'dataset.json'), JSON.stringify(info, null, 1) + '\n');
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
