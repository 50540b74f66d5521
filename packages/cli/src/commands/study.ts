import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runTask } from '../run/launcher.js';
import { readResults, writeStudy, type StudyRun } from '../run/study.js';

interface StudyFlags {
  out: string;
  seeds: string;
  declip: string;
  preset: string;
  runArgs: string;
}

export function register(program: Command): void {
  program
    .command('study')
    .description(
      "The papers' claims at small scale: mode run with several seeds (MoDE: ensemble vs uniform vs best expert vs the equal-compute model; DeCLIP on and off), mean ± std",
    )
    .option('--out <dir>', 'study folder: one run folder per variant and seed, study.md, study.json', 'out/study')
    .option('--seeds <list>', 'seeds, comma-separated', '0,1,2')
    .option('--declip <terms>', 'the DeCLIP variant: these losses on (none: skip the variant)', 'mv,ssl,mlm,nn')
    .option('--preset <name>', 'model preset of every run', 'small')
    .option('--run-args <flags>', 'more mode run flags for every run, in one string (e.g. "--seed-steps 200 --experts 2")', '')
    .action(async (flags: StudyFlags) => {
      const out = resolve(flags.out);
      const more = flags.runArgs.split(/\s+/).filter(Boolean);
      const seeds = flags.seeds.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw Object.assign(new Error(`--seeds: "${s}" is not a non-negative integer`), { userFacing: true });
        return n;
      });
      const variants: [string, string[]][] = [['CLIP', []]];
      if (flags.declip !== 'none') variants.push([`DeCLIP ${flags.declip}`, ['--declip', flags.declip]]);
      const runs: StudyRun[] = [];
      const t0 = performance.now();
      for (const [variant, extra] of variants)
        for (const seed of seeds) {
          const dir = join(out, `${variant.split(' ')[0]!.toLowerCase()}-seed-${seed}`);
          console.log(`study: ${variant}, seed ${seed} → ${dir} (${((performance.now() - t0) / 1000).toFixed(0)} s so far)`);
          // Each run resumes from what it finished: a killed study picks up where it was.
          await runTask({
            name: `${variant} seed ${seed}`,
            args: ['run', '--run', dir, '--preset', flags.preset, '--seed', String(seed), ...extra, ...more],
            log: join(out, 'logs', `${variant.split(' ')[0]}-${seed}.log`),
          });
          runs.push({ variant, seed, results: readResults(dir) });
        }
      const about = `mode run --preset ${flags.preset} ${more.join(' ')} with seeds ${seeds.join(', ')}; variants: ${variants.map(([v]) => v).join('; ')}.`;
      const w = writeStudy(out, runs, about);
      console.log(`study: ${runs.length} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s; ${w.md}`);
    });
}
