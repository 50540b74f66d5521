import { renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatTable } from '@mode/gpu';
import { freshSeed, selftest } from '@mode/kernels';
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
        console.log(`selftest on ${gpu.report.name} (seed ${seed})`);
        const results = await selftest(gpu, seed);
        const rows = results.map((r) => [
          r.kernel,
          r.case,
          r.relativeError.toExponential(2),
          r.tolerance.toExponential(0),
          r.ms.toFixed(1),
          r.passed ? 'ok' : 'FAIL',
        ]);
        console.log(formatTable(['kernel', 'case', 'rel. error', 'tolerance', 'ms', 'result'], rows));
        const failed = results.filter((r) => !r.passed).length;
        const skipped = results.filter((r) => r.skipped).length;
        console.log(
          `${results.length - failed - skipped} of ${results.length - skipped} checks passed${skipped ? ` (${skipped} skipped: this adapter cannot run them)` : ''}`,
        );
        if (opts.profile) console.log(`\n${gpu.profiler.table()}`);
        if (opts.trace) {
          writeFileSync(`${opts.trace}.tmp`, JSON.stringify(gpu.profiler.chromeTrace()));
          renameSync(`${opts.trace}.tmp`, opts.trace);
          console.log(`trace: ${opts.trace} (${gpu.profiler.records.length} dispatches; open in https://ui.perfetto.dev)`);
        }
        return failed ? 1 : 0;
      }),
    );
}
