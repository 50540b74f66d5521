import { writeFileSync, renameSync } from 'node:fs';
import { Command } from 'commander';
import { formatTable, Gpu, GpuError, type OpenOptions } from '@mode/gpu';
import { freshSeed, selftest } from '@mode/kernels';

const program = new Command('mode')
  .description('Train and serve CLIP data experts on any Dawn-supported GPU')
  .option('--backend <name>', 'Dawn backend: vulkan, metal, d3d12, opengl, null')
  .option('--adapter <name>', 'require an adapter whose name contains this string (e.g. llvmpipe)')
  .option('--power <preference>', 'power preference: low-power or high-performance')
  .showHelpAfterError();

function openOptions(extra: Partial<OpenOptions> = {}): OpenOptions {
  const o = program.opts<{ backend?: string; adapter?: string; power?: GPUPowerPreference }>();
  return { backend: o.backend, adapter: o.adapter, powerPreference: o.power, ...extra };
}

/** Opens the device, runs `fn`, and destroys the device so the process exits by itself. */
async function withDevice(extra: Partial<OpenOptions>, fn: (gpu: Gpu) => Promise<number | void>): Promise<void> {
  const gpu = await Gpu.open(openOptions(extra));
  try {
    process.exitCode = (await fn(gpu)) ?? 0;
  } finally {
    gpu.destroy();
  }
}

program
  .command('info')
  .description('adapter, backend, features, limits and thread settings')
  .option('--json', 'print the report as JSON')
  .action((opts: { json?: boolean }) =>
    withDevice({}, async (gpu) => {
      const r = gpu.report;
      if (opts.json) return void console.log(JSON.stringify(r, null, 2));
      console.log(`adapter       ${r.name}${r.description && r.description !== r.name ? ` (${r.description})` : ''}`);
      console.log(`vendor        ${r.vendor || '–'}   architecture ${r.architecture || '–'}`);
      console.log(`backend       ${r.backend}${r.isCpu ? '   (software rasteriser: shaders run on the CPU)' : ''}`);
      console.log(`subgroups     ${r.subgroupSize ? `size ${r.subgroupSize.min}–${r.subgroupSize.max}` : 'not reported'}`);
      console.log(`threads       LP_NUM_THREADS=${r.threads.LP_NUM_THREADS} (set by ${r.threads.setBy}; llvmpipe only)`);
      console.log(`enabled       ${r.enabledFeatures.join(', ')}`);
      console.log(`features      ${r.features.join(', ')}`);
      console.log('limits');
      for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k.padEnd(44)} ${v}`);
    }),
  );

program
  .command('selftest')
  .description('run each kernel once against its CPU float64 reference')
  .option('--seed <n>', 'input seed (printed each run, so a failure can be replayed)', (v) => Number(v))
  .option('--profile', 'print the per-kernel profile after the run')
  .option('--trace <file>', 'write a Chrome trace-event JSON of every dispatch (opens in Perfetto)')
  .action((opts: { seed?: number; profile?: boolean; trace?: string }) =>
    withDevice({ profile: !!(opts.profile || opts.trace) }, async (gpu) => {
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
      console.log(`${results.length - failed} of ${results.length} checks passed`);
      if (opts.profile) console.log(`\n${gpu.profiler.table()}`);
      if (opts.trace) {
        writeFileSync(`${opts.trace}.tmp`, JSON.stringify(gpu.profiler.chromeTrace()));
        renameSync(`${opts.trace}.tmp`, opts.trace);
        console.log(`trace: ${opts.trace} (${gpu.profiler.records.length} dispatches; open in https://ui.perfetto.dev)`);
      }
      return failed ? 1 : 0;
    }),
  );

program.parseAsync().catch((e: unknown) => {
  // Our own errors already say what failed and how to fix it: no stack trace needed.
  console.error(e instanceof GpuError ? `mode: ${e.name}: ${e.message}` : e);
  process.exit(1);
});
