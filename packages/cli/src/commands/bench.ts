import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('bench')
    .description('run a benchmark suite (no suite: list them); results go to bench/results/')
    .argument('[suite]', 'suite name')
    .option('--quick', 'fewer sizes and shorter timing')
    .option('--retune', 're-measure autotuned choices instead of using the cache')
    .option('--trace <file>', 'write a Chrome trace-event JSON of the run (opens in Perfetto)')
    .option(
      '--data <pattern>',
      'loader: your own shards for the real-data rows (a folder of .tar, a brace pattern or a glob; default: 256-px JPEG shards the bench makes)',
    )
    .action(async (suite: string | undefined, opts: { quick?: boolean; retune?: boolean; trace?: string; data?: string }) => {
      // The bench package imports every other package: load it only when asked.
      const { SUITES, withPeakShares, writeResults } = await import('@mode/bench');
      if (!suite || !SUITES[suite]) {
        if (suite) console.error(`mode bench: no suite "${suite}"`);
        console.log('suites:');
        for (const [name, load] of Object.entries(SUITES)) console.log(`  ${name.padEnd(12)} ${(await load()).description}`);
        process.exitCode = suite ? 1 : 0;
        return;
      }
      let results = await (await SUITES[suite]()).run(opts);
      // GPU suites' rates beside the adapter's measured ceilings, where `mode bench peak` has run on it.
      if (suite !== 'peak' && results.adapter !== 'cpu') {
        const [{ Gpu }, { roofOf }] = await Promise.all([import('@mode/gpu'), import('@mode/kernels')]);
        const gpu = await Gpu.open();
        const roof = gpu.report.name === results.adapter ? roofOf(gpu) : null;
        gpu.destroy();
        if (roof) results = withPeakShares(results, roof);
        else console.log("(no % of peak: the adapter's ceilings are not measured yet; mode bench peak measures them)");
      }
      // A quick look writes beside the full run's results, never over them.
      const { json, markdown } = writeResults(opts.quick ? { ...results, suite: `${results.suite} quick` } : results);
      console.log(`results: ${json}\n         ${markdown}`);
    });
}
