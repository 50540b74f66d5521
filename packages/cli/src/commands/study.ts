import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runTask, type Task } from '../run/launcher.js';
import { modeCells, modelCells, readEval, readResults, writeStudy, type StudyRun } from '../run/study.js';

interface StudyFlags {
  out: string;
  seeds: string;
  claims: string;
  preset: string;
  steps: string;
  batch: string;
  evalLimit: string;
  declip: string;
  t: string;
  dataDir?: string;
  runArgs: string;
}

const CLAIMS = ['mode', 'declip', 'metaclip'];
const userError = (message: string) => Object.assign(new Error(message), { userFacing: true });

export function register(program: Command): void {
  program
    .command('study')
    .description(
      "The papers' claims at small scale over several seeds, mean ± std: MoDE (mode run: ensemble vs uniform vs best expert vs the equal-compute model), DeCLIP (each loss on and off), MetaCLIP (a long-tailed noisy raw pool vs its curation)",
    )
    .option('--out <dir>', 'study folder: one folder per run, study.md, study.json (resumable)', 'out/study')
    .option('--seeds <list>', 'seeds, comma-separated', '0,1,2')
    .option('--claims <list>', `which claims, comma-separated: ${CLAIMS.join(', ')}`, CLAIMS.join(','))
    .option('--preset <name>', 'model preset of every model', 'small')
    .option('--steps <n>', 'steps of the DeCLIP and MetaCLIP models (MoDE: mode run --seed-steps)', '400')
    .option('--batch <n>', 'pairs per step', '64')
    .option('--eval-limit <n>', 'images per evaluation task', '1500')
    .option('--declip <list>', 'DeCLIP loss sets, comma-separated (none, all, or + joined terms like mv+nn)', 'none,mv,ssl,mlm,nn,all')
    .option('--t <n>', "MetaCLIP's threshold for the noisy pool's curation", '100')
    .option('--data-dir <dir>', 'where `mode data prepare` wrote')
    .option('--run-args <flags>', 'more mode run flags for the MoDE runs, in one string (e.g. "--experts 2")', '')
    .action(async (flags: StudyFlags) => {
      const d = await import('@mode/data');
      const out = resolve(flags.out);
      const dataDir = resolve(flags.dataDir ?? d.defaultDataDir());
      const more = flags.runArgs.split(/\s+/).filter(Boolean);
      const seeds = flags.seeds.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw userError(`--seeds: "${s}" is not a non-negative integer`);
        return n;
      });
      const claims = flags.claims.split(',');
      for (const c of claims) if (!CLAIMS.includes(c)) throw userError(`--claims: "${c}" is not one of ${CLAIMS.join(', ')}`);
      const common = ['--preset', flags.preset, '--batch', flags.batch, '--data-dir', dataDir, '--no-progress'];
      const t0 = performance.now();
      const runs: StudyRun[] = [];
      const notes: Record<string, string> = {};
      const about = `mode study: preset ${flags.preset}, ${flags.steps} steps at batch ${flags.batch}, seeds ${seeds.join(', ')}, ${flags.evalLimit} images per task${more.length ? `; mode run ${more.join(' ')}` : ''}.`;
      // The tables are rewritten after every run, so a study stopped part-way has what it finished.
      const record = (run: StudyRun) => {
        runs.push(run);
        writeStudy(out, runs, about, notes);
      };
      const since = () => `${((performance.now() - t0) / 1000).toFixed(0)} s so far`;
      /** Runs `task` unless `output` exists; a killed task resumes (training from its checkpoint). */
      const once = async (output: string, task: Task) => {
        if (existsSync(output)) return;
        console.log(`study: ${task.name} (${since()})`);
        await runTask(task);
      };
      const trainTask = (name: string, dir: string, seed: number, extra: string[]): Task => ({
        name,
        args: [
          'train',
          ...(existsSync(join(dir, 'checkpoint')) ? ['--resume'] : []),
          '--out',
          dir,
          '--steps',
          flags.steps,
          '--seed',
          String(seed),
          ...common,
          ...extra,
        ],
        log: join(out, 'logs', `${name.replaceAll(' ', '-')}.log`),
      });
      const evalTask = (name: string, dir: string, tasks: string[]): Task => ({
        name: `${name} eval`,
        args: [
          'eval',
          '--model',
          join(dir, 'final.safetensors'),
          '--task',
          ...tasks,
          '--limit',
          flags.evalLimit,
          '--data-dir',
          dataDir,
          '--out',
          join(dir, 'eval.json'),
        ],
        log: join(out, 'logs', `${name.replaceAll(' ', '-')}-eval.log`),
      });

      const mode = async () => {
        for (const seed of seeds) {
          const dir = join(out, 'mode', `seed-${seed}`);
          console.log(`study: MoDE, seed ${seed} → ${dir} (${since()})`);
          // mode run resumes from what it finished: a killed study picks up where it was.
          await runTask({
            name: `MoDE seed ${seed}`,
            args: [
              'run',
              '--run',
              dir,
              '--preset',
              flags.preset,
              '--seed',
              String(seed),
              '--seed-steps',
              flags.steps,
              '--batch',
              flags.batch,
              '--eval-limit',
              flags.evalLimit,
              '--data-dir',
              dataDir,
              ...more,
            ],
            log: join(out, 'logs', `mode-${seed}.log`),
          });
          record({ claim: 'MoDE', variant: `${flags.preset}, ${readResults(dir)[0]!.weights.length} experts`, seed, cells: modeCells(readResults(dir)) });
        }
      };

      const declip = async () => {
        for (const variant of flags.declip.split(','))
          for (const seed of seeds) {
            const terms = variant === 'all' ? 'mv,ssl,mlm,nn' : variant.replaceAll('+', ',');
            const dir = join(out, 'declip', `${variant}-seed-${seed}`);
            await once(join(dir, 'final.safetensors'), trainTask(`DeCLIP ${variant} seed ${seed}`, dir, seed, ['--declip', terms]));
            await once(join(dir, 'eval.json'), evalTask(`DeCLIP ${variant} seed ${seed}`, dir, ['fashion-mnist', 'mnist', 'openmoji', 'retrieval']));
            record({ claim: 'DeCLIP', variant: variant === 'none' ? 'CLIP only' : `+ ${variant}`, seed, cells: modelCells(readEval(join(dir, 'eval.json'))) });
          }
      };

      const metaclip = async () => {
        const pool = join(out, 'metaclip', 'pool');
        const classesFile = join(out, 'metaclip', 'pool-classes.json');
        const beside = ['emoji', 'clipart'].map((s) => join(dataDir, s));
        if (!existsSync(classesFile) || !existsSync(join(pool, 'dataset.json'))) {
          console.log(`study: building the noisy long-tailed pool in ${pool} (${since()})`);
          const besideCount = beside.reduce((a, dir) => a + d.readDatasetInfo(dir).splits.train!.count, 0);
          const built = await d.writeNoisyPool({ dataDir, out: pool, beside: besideCount, seed: 0 });
          writeFileSync(`${classesFile}.tmp`, JSON.stringify({ classes: built.classes, noise: built.noise, beside: besideCount }, null, 1) + '\n');
          renameSync(`${classesFile}.tmp`, classesFile);
        }
        const {
          classes,
          noise,
          beside: besideCount,
        } = JSON.parse(readFileSync(classesFile, 'utf8')) as {
          classes: import('@mode/data').PoolClass[];
          noise: number;
          beside: number;
        };
        // Tail: the rarer half of the 20 pool classes, per task.
        const tail: Record<string, number[]> = { 'fashion-mnist': [], mnist: [] };
        classes.forEach((c, rank) => rank >= classes.length / 2 && tail[c.set]!.push(c.label));
        const labelled = classes.reduce((a, c) => a + c.count, 0);
        const shards = [...beside, pool].flatMap((dir) => d.datasetShards(dir, 'train'));
        const curatedCounts: string[] = [];
        for (const seed of seeds) {
          const curated = join(out, 'metaclip', `curate-seed-${seed}`);
          await once(join(curated, 'curated', 'dataset.json'), {
            name: `MetaCLIP curate seed ${seed}`,
            args: ['curate', '--pool', ...shards, '--t', flags.t, '--seed', String(seed), '--out', curated, '--no-progress'],
            log: join(out, 'logs', `metaclip-curate-${seed}.log`),
          });
          if (seed === seeds[0]) {
            const stats = JSON.parse(readFileSync(join(curated, 'stats.json'), 'utf8')) as { kept: number; pool: { texts: number } };
            curatedCounts.push(`all pairs ${stats.pool.texts} → ${Math.round(stats.kept)}`, ...(await poolClassCounts(d, join(curated, 'curated'), classes)));
          }
          for (const [variant, data] of [
            ['raw pool', [...beside, pool]],
            [`curated, t = ${flags.t}`, [join(curated, 'curated')]],
          ] as const) {
            const dir = join(out, 'metaclip', `${variant.startsWith('raw') ? 'raw' : 'curated'}-seed-${seed}`);
            const name = `MetaCLIP ${variant.startsWith('raw') ? 'raw' : 'curated'} seed ${seed}`;
            await once(join(dir, 'final.safetensors'), trainTask(name, dir, seed, ['--data', ...data]));
            await once(join(dir, 'eval.json'), evalTask(name, dir, ['fashion-mnist', 'mnist']));
            record({ claim: 'MetaCLIP', variant, seed, cells: modelCells(readEval(join(dir, 'eval.json')), tail) });
          }
        }
        notes.MetaCLIP = [
          `Raw pool: ${labelled} Fashion-MNIST and MNIST pairs over 20 classes, Zipf-skewed (head ${(100 * classes[0]!.share).toFixed(1)}%, tail ${(100 * classes.at(-1)!.share).toFixed(2)}%), ${noise} noise pairs captioned with file names, and ${besideCount} emoji and clip-art pairs. Tail classes: the rarer 10 of the 20.`,
          '',
          `Class counts, raw → curated (seed ${seeds[0]}): ${curatedCounts.join('; ')}.`,
        ].join('\n');
      };

      const byName: Record<string, () => Promise<void>> = { mode, declip, metaclip };
      for (const c of claims) await byName[c]!();
      const w = writeStudy(out, runs, about, notes);
      console.log(`study: ${runs.length} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s; ${w.md}`);
    });
}

/** Per pool class (by rank), its pairs in the raw pool → in a curated set, read from the pairs' json groups. */
async function poolClassCounts(d: typeof import('@mode/data'), curated: string, classes: import('@mode/data').PoolClass[]): Promise<string[]> {
  const counts = new Map<string, number>();
  for await (const raw of d.readShards(d.datasetShards(curated, 'train'))) {
    if (!raw.files.json) continue;
    const group = (JSON.parse(new TextDecoder().decode(raw.files.json)) as { group?: string }).group ?? '';
    counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  return [
    ...classes.map((c) => `${c.set === 'mnist' ? 'digit ' : ''}${c.word} ${c.count} → ${counts.get(`${c.set}/${c.word}`) ?? 0}`),
    `noise → ${counts.get('noise') ?? 0}`,
  ];
}
