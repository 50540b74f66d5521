import type { Command } from 'commander';
import { Autotuner, autotuner, cachedPeak, peakCachePath, roof } from '@mode/kernels';
import { withDevice } from '../device.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('adapter, backend, features, limits and thread settings')
    .option('--json', 'print the report as JSON')
    .action((opts: { json?: boolean }) =>
      withDevice(program, {}, async (gpu) => {
        const r = gpu.report;
        const tuned = autotuner.choices(Autotuner.adapterId(gpu));
        const peak = cachedPeak(gpu);
        if (opts.json)
          return void console.log(
            JSON.stringify({ ...r, autotune: { cache: autotuner.path, choices: tuned }, peak: { cache: peakCachePath(), measured: peak } }, null, 2),
          );
        console.log(`adapter       ${r.name}${r.description && r.description !== r.name ? ` (${r.description})` : ''}`);
        console.log(`vendor        ${r.vendor || '–'}   architecture ${r.architecture || '–'}`);
        console.log(`backend       ${r.backend}${r.isCpu ? '   (software rasteriser: shaders run on the CPU)' : ''}`);
        console.log(`subgroups     ${r.subgroupSize ? `size ${r.subgroupSize.min}–${r.subgroupSize.max}` : 'not reported'}`);
        for (const note of r.driverNotes) console.log(`dawn note     ${note.replace(/^Warning: /, '')} (shown here only)`);
        if (r.threads) console.log(`threads       LP_NUM_THREADS=${r.threads.LP_NUM_THREADS} (set by ${r.threads.setBy}; llvmpipe only)`);
        console.log(`enabled       ${r.enabledFeatures.join(', ')}`);
        console.log(`features      ${r.features.join(', ')}`);
        console.log('limits');
        for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k.padEnd(44)} ${v}`);
        if (peak) {
          const top = roof(peak);
          const gb = (c: { value: number }) => (c.value / 1e9).toFixed(1);
          console.log(
            `peak          ${(top.flops / 1e9).toFixed(1)} GFLOP/s f32, ${(top.bandwidth / 1e9).toFixed(1)} GB/s streaming (mode bench peak, ${peak.date.slice(0, 10)}, ${peakCachePath()})`,
          );
          console.log(
            `  storage read ${gb(peak.bandwidth.read)}, write ${gb(peak.bandwidth.write)}, copy ${gb(peak.bandwidth.copy)}; uniform ${gb(peak.bandwidth.uniform)}; texture ${gb(peak.bandwidth.texture)}; gathers ${gb(peak.bandwidth.gather)} GB/s`,
          );
          const us = (s: number | null) => (s === null ? '–' : `${(s * 1e6).toFixed(0)} µs`);
          console.log(
            `  a dispatch ${us(peak.dispatch.recorded)} as recorded here (${us(peak.dispatch.gpu)} on the GPU), a submit ${us(peak.dispatch.submit)}, a readback ${us(peak.dispatch.readback)}`,
          );
        } else console.log(`peak          not measured on this adapter yet: mode bench peak (cached in ${peakCachePath()})`);
        const families = Object.entries(tuned);
        console.log(`autotune      ${autotuner.path}${families.length ? '' : ' (no choices cached for this adapter yet: `mode bench matmul` fills it)'}`);
        for (const [, choices] of families) for (const [key, variant] of Object.entries(choices)) console.log(`  ${key.padEnd(44)} ${variant}`);
      }),
    );
}
