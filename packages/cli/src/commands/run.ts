import { availableParallelism } from 'node:os';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runTasks, type Task } from '../run/launcher.js';
import { ensureDir, stages, type AddedExpert, type RunOptions } from '../run/pipeline.js';
import { writeRunReport } from '../run/report.js';
import { int, parseSource } from '../sources.js';

interface RunFlags {
  run: string;
  dataDir?: string;
  seedModel?: string;
  tokenizer?: string;
  preset: string;
  experts: string;
  fine: string;
  seedSteps: string;
  expertSteps: string;
  batch: string;
  seed: string;
  t: string;
  evalLimit: string;
  task: string[];
  parallel?: string;
  checkpointEvery: string;
  declip: string;
  launcher: string;
  slurmConfig?: string;
  partition?: string;
  time?: string;
  cpusPerTask?: string;
  mem?: string;
  gres?: string;
  sbatchArgs?: string;
  arrayTasks: string;
  addExpert?: string[];
  data?: string[];
}

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'MoDE end to end: data → curate → seed model → embed + cluster → experts (independent processes) → equal-compute baseline → ensemble evaluation → HTML report; resumable',
    )
    .option('--run <dir>', 'run folder (git ignores out/)', 'out/run')
    .option('--data-dir <dir>', 'where the prepared data sets go')
    .option(
      '--data <patterns...>',
      'your own pairs instead of the prepared emoji and clip art: folders of .tar shards (img2dataset), brace patterns or globs, joined with ::; curated, then the whole training mix',
    )
    .option('--preset <name>', 'model preset', 'small')
    .option('--experts <n>', 'data experts (coarse clusters)', '4')
    .option('--fine <k>', 'fine clusters', '256')
    .option('--seed-steps <n>', 'steps of the seed model', '400')
    .option('--expert-steps <n>', "steps of each expert (the seed's schedule runs this much further)", '40')
    .option('--batch <n>', 'pairs per step', '64')
    .option('--seed <n>', 'seed of everything', '0')
    .option('--t <n>', "MetaCLIP's balancing threshold for the curated pairs", '50')
    .option('--eval-limit <n>', 'images per evaluation task', '1500')
    .option('--task <names...>', 'evaluation tasks', ['fashion-mnist', 'mnist', 'openmoji'])
    .option('--parallel <n>', 'expert processes at once (default: one per two cores)')
    .option('--checkpoint-every <n>', "steps between the training stages' checkpoints", '50')
    .option(
      '--seed-model <model>',
      'start from a pretrained seed (a model file or an OpenCLIP hub folder): no seed training; the experts and the baseline fine-tune it',
    )
    .option('--tokenizer <file>', "the tokenizer of every stage (OpenAI's bpe_simple_vocab_16e6.txt.gz for an OpenCLIP seed); default: the data folder's")
    .option('--declip <terms>', "DeCLIP losses of the seed model, any of mv,ssl,mlm,nn (the experts and baseline continue with the seed's)", 'none')
    .option(
      '--launcher <name>',
      'local (child processes on this machine) or slurm (sbatch jobs: the experts as one array, each stage after the one before)',
      'local',
    )
    .option('--slurm-config <file>', 'sbatch resources as JSON: partition, time, cpusPerTask, mem, gres, extra, and per-stage overrides under "stages"')
    .option('--partition <name>', 'SLURM partition')
    .option('--time <limit>', 'SLURM time limit per task (e.g. 2:00:00)')
    .option('--cpus-per-task <n>', 'SLURM CPUs per task')
    .option('--mem <size>', 'SLURM memory per task (e.g. 8G)')
    .option('--gres <spec>', 'SLURM generic resources per task (e.g. gpu:1)')
    .option('--sbatch-args <flags>', 'more sbatch flags for every job, in one string')
    .option(
      '--add-expert <data...>',
      'to a finished run: one more expert for this data (DIR[:SPLIT][@FRACTION]), from the same seed, with fine centres of its own; then only the ensemble is redone',
    )
    .option('--array-tasks <n>', 'with --launcher slurm: array tasks of the shard-parallel steps (curation count and sample, embedding, assignment)', '4')
    .action(async (flags: RunFlags) => {
      if (!['local', 'slurm'].includes(flags.launcher))
        throw Object.assign(new Error(`--launcher: "${flags.launcher}" is not local or slurm`), { userFacing: true });
      const d = await import('@mode/data');
      const t = await import('@mode/trainer');
      const o: RunOptions = {
        run: resolve(flags.run),
        dataDir: resolve(flags.dataDir ?? d.defaultDataDir()),
        preset: flags.preset,
        experts: int('experts', flags.experts),
        fine: int('fine', flags.fine),
        seedSteps: int('seed-steps', flags.seedSteps),
        expertSteps: int('expert-steps', flags.expertSteps),
        batch: int('batch', flags.batch),
        seed: int('seed', flags.seed),
        t: int('t', flags.t),
        evalLimit: int('eval-limit', flags.evalLimit),
        tasks: flags.task,
        checkpointEvery: int('checkpoint-every', flags.checkpointEvery),
        declip: flags.declip,
        arrayTasks: Math.max(1, int('array-tasks', flags.arrayTasks)),
        added: [],
        ...(flags.seedModel ? { seedModel: resolve(flags.seedModel) } : {}),
        ...(flags.tokenizer ? { tokenizer: resolve(flags.tokenizer) } : {}),
        ...(flags.data ? { pool: d.splitSpecs(flags.data).flatMap((p) => d.resolveShardSet(p).shards.map((f) => resolve(f))) } : {}),
        parallel: flags.parallel ? int('parallel', flags.parallel) : Math.max(1, Math.floor(availableParallelism() / 2)),
      };
      ensureDir(o.run);
      o.added = addedExperts(o, flags.addExpert, d);
      const all = stages(o, (dir) => t.findCheckpoint(dir) !== null);
      const t0 = performance.now();
      const timings: { stage: string; seconds: number; skipped: boolean }[] = [];
      const devices = program.opts<{ backend?: string; adapter?: string }>();
      const deviceArgs = [...(devices.backend ? ['--backend', devices.backend] : []), ...(devices.adapter ? ['--adapter', devices.adapter] : [])];
      const head = (i: number) => `stage ${i + 1}/${all.length + 1} ${all[i]!.name}`;
      const withDevice = (tasks: Task[]) => tasks.map((task) => ({ ...task, args: [...deviceArgs, ...task.args] }));
      if (flags.launcher === 'local')
        for (const [i, stage] of all.entries()) {
          const s0 = performance.now();
          if (stage.done()) {
            console.log(`${head(i)}: already done`);
            timings.push({ stage: stage.name, seconds: 0, skipped: true });
            continue;
          }
          console.log(`${head(i)}…`);
          await runTasks(withDevice(await stage.tasks()), stage.parallel ?? 1);
          const seconds = (performance.now() - s0) / 1000;
          timings.push({ stage: stage.name, seconds, skipped: false });
          console.log(`${head(i)}: done in ${seconds.toFixed(1)} s (run ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        }
      else {
        const { SlurmLauncher, readSlurmConfig } = await import('../run/slurm.js');
        const config = {
          ...(flags.slurmConfig ? readSlurmConfig(flags.slurmConfig) : {}),
          ...(flags.partition && { partition: flags.partition }),
          ...(flags.time && { time: flags.time }),
          ...(flags.cpusPerTask && { cpusPerTask: int('cpus-per-task', flags.cpusPerTask) }),
          ...(flags.mem && { mem: flags.mem }),
          ...(flags.gres && { gres: flags.gres }),
          ...(flags.sbatchArgs && { extra: flags.sbatchArgs.split(/\s+/).filter(Boolean) }),
        };
        const slurm = new SlurmLauncher(o.run, config);
        await slurm.reattach();
        // Stages are submitted as one chain of dependent jobs, as far as they can be planned now
        // (curation's task lists the prepared data's shards: it waits for the data stage's job).
        for (let i = 0; i < all.length;) {
          const chain: { name: string; tasks: Task[]; parallel?: number }[] = [];
          for (; i < all.length; i++) {
            const stage = all[i]!;
            if (stage.done()) {
              console.log(`${head(i)}: already done`);
              timings.push({ stage: stage.name, seconds: 0, skipped: true });
              continue;
            }
            let steps: { name: string; tasks: Task[] }[];
            try {
              steps = stage.steps ? await stage.steps() : [{ name: stage.name, tasks: await stage.tasks() }];
            } catch (e) {
              if (chain.length) break;
              throw e;
            }
            console.log(`${head(i)}: submitting ${steps.length} job${steps.length > 1 ? 's' : ''}`);
            // The scheduler decides how many run at once unless --parallel says.
            for (const step of steps) chain.push({ name: step.name, tasks: withDevice(step.tasks), ...(flags.parallel && { parallel: o.parallel }) });
          }
          if (chain.length) timings.push(...(await slurm.runChain(chain)));
        }
      }
      const report = writeRunReport(o.run, o.experts + o.added.length, timings);
      writeFileSync(join(o.run, 'run.json'), JSON.stringify({ options: o, stages: timings, seconds: (performance.now() - t0) / 1000 }, null, 1) + '\n');
      console.log(`stage ${all.length + 1}/${all.length + 1} report: ${report}`);
      console.log(`mode run: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; results ${join(o.run, 'results.json')}`);
    });
}

/**
 * The experts added to this run (RUN/added.json), with `data` appended as a new one unless an
 * expert for it is there already (a rerun of the same command resumes it).
 */
function addedExperts(o: RunOptions, data: string[] | undefined, d: typeof import('@mode/data')): AddedExpert[] {
  const file = join(o.run, 'added.json');
  const added: AddedExpert[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AddedExpert[]) : [];
  if (!data?.length) return added;
  const sources = data.map((s) => {
    const p = parseSource(s);
    return { ...p, dir: resolve(p.dir) };
  });
  const spec = sources.map((p) => `${p.dir}${p.split ? `:${p.split}` : ''}${p.fraction !== undefined ? `@${p.fraction}` : ''}`);
  if (added.some((a) => a.data.join('\n') === spec.join('\n'))) return added;
  const embeddings = join(o.run, 'embeddings', 'embeddings.json');
  if (!existsSync(embeddings))
    throw Object.assign(
      new Error(`--add-expert: ${o.run} has no clustered run yet (no ${embeddings}). Fix: run mode run --run ${o.run} first, then add experts`),
      {
        userFacing: true,
      },
    );
  // Fine centres in proportion: the run's fine clusters per pair, times the new data's pairs.
  const runPairs = (JSON.parse(readFileSync(embeddings, 'utf8')) as { count: number }).count;
  const newPairs = d.mixCount(sources);
  const fine = Math.max(1, Math.min(Math.floor(newPairs), Math.round((o.fine * newPairs) / runPairs)));
  const next = [...added, { expert: o.experts + added.length, data: spec, fine }];
  writeFileSync(`${file}.tmp`, JSON.stringify(next, null, 1) + '\n');
  renameSync(`${file}.tmp`, file);
  console.log(`mode run: adding expert ${o.experts + added.length} for ${spec.join(', ')} (~${Math.round(newPairs)} pairs, ${fine} fine centres)`);
  return next;
}
