import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runTasks } from '../run/launcher.js';
import { ensureDir, stages, type RunOptions } from '../run/pipeline.js';
import { writeRunReport } from '../run/report.js';
import { int } from '../sources.js';

interface RunFlags {
  run: string;
  dataDir?: string;
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
}

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'MoDE end to end: data → curate → seed model → embed + cluster → experts (independent processes) → equal-compute baseline → ensemble evaluation → HTML report; resumable',
    )
    .option('--run <dir>', 'run folder (git ignores out/)', 'out/run')
    .option('--data-dir <dir>', 'where the prepared data sets go')
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
    .option('--declip <terms>', "DeCLIP losses of the seed model, any of mv,ssl,mlm,nn (the experts and baseline continue with the seed's)", 'none')
    .action(async (flags: RunFlags) => {
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
        parallel: flags.parallel ? int('parallel', flags.parallel) : Math.max(1, Math.floor(availableParallelism() / 2)),
      };
      ensureDir(o.run);
      const all = stages(o, (dir) => t.findCheckpoint(dir) !== null);
      const t0 = performance.now();
      const timings: { stage: string; seconds: number; skipped: boolean }[] = [];
      const devices = program.opts<{ backend?: string; adapter?: string }>();
      const deviceArgs = [...(devices.backend ? ['--backend', devices.backend] : []), ...(devices.adapter ? ['--adapter', devices.adapter] : [])];
      for (const [i, stage] of all.entries()) {
        const s0 = performance.now();
        const head = `stage ${i + 1}/${all.length + 1} ${stage.name}`;
        if (stage.done()) {
          console.log(`${head}: already done`);
          timings.push({ stage: stage.name, seconds: 0, skipped: true });
          continue;
        }
        console.log(`${head}…`);
        const tasks = (await stage.tasks()).map((task) => ({ ...task, args: [...deviceArgs, ...task.args] }));
        await runTasks(tasks, stage.parallel ?? 1);
        stage.after?.();
        const seconds = (performance.now() - s0) / 1000;
        timings.push({ stage: stage.name, seconds, skipped: false });
        console.log(`${head}: done in ${seconds.toFixed(1)} s (run ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
      const report = writeRunReport(o.run, o.experts, timings);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(o.run, 'run.json'), JSON.stringify({ options: o, stages: timings, seconds: (performance.now() - t0) / 1000 }, null, 1) + '\n');
      console.log(`stage ${all.length + 1}/${all.length + 1} report: ${report}`);
      console.log(`mode run: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; results ${join(o.run, 'results.json')}`);
    });
}
