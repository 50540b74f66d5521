import { renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { freshSeed, selftest, selftestSummary, selftestTable, SELFTEST_CHECKS } from '@mode/kernels';
import { withDevice } from '../device.js';

export function register(program: Command): void {
  program
    .command('selftest')
    .description('run each kernel once against its CPU float64 reference')
    .option('--seed <n>', 'input seed (printed each run, so a failure can be replayed)', (v) => Number(v))
    .option('--profile', 'print the per-kernel profile after the run')
    .option('--trace <file>', 'write a Chrome trace-event JSON of every dispatch (opens in Perfetto)')
    .action((opts: { seed?: number; profile?: boolean; trace?: string }) =>
      withDevice(program, { profile: !!(opts.profile || opts.trace) }, async (gpu) => {
        const seed = opts.seed ?? freshSeed();
        console.log(`selftest on ${gpu.report.name} (seed ${seed}): ${SELFTEST_CHECKS.length} checks`);
        // Each row is printed as its check finishes (the sg kernels take seconds each to compile on lavapipe).
        const table = selftestTable(SELFTEST_CHECKS);
        console.log(table.header);
        const results = await selftest(gpu, seed, { onCheck: (r) => console.log(table.row(r)) });
        console.log(selftestSummary(results));
        if (opts.profile) console.log(`\n${gpu.profiler.table()}`);
        if (opts.trace) {
          writeFileSync(`${opts.trace}.tmp`, JSON.stringify(gpu.profiler.chromeTrace()));
          renameSync(`${opts.trace}.tmp`, opts.trace);
          console.log(`trace: ${opts.trace} (${gpu.profiler.records.length} dispatches; open in https://ui.perfetto.dev)`);
        }
        return results.some((r) => r.status === 'failed') ? 1 : 0;
      }),
    );
}
