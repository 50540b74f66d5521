import type { Command } from 'commander';
import { Autotuner, autotuner } from '@mode/kernels';
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
        if (opts.json) return void console.log(JSON.stringify({ ...r, autotune: { cache: autotuner.path, choices: tuned } }, null, 2));
        console.log(`adapter       ${r.name}${r.description && r.description !== r.name ? ` (${r.description})` : ''}`);
        console.log(`vendor        ${r.vendor || '–'}   architecture ${r.architecture || '–'}`);
        console.log(`backend       ${r.backend}${r.isCpu ? '   (software rasteriser: shaders run on the CPU)' : ''}`);
        console.log(`subgroups     ${r.subgroupSize ? `size ${r.subgroupSize.min}–${r.subgroupSize.max}` : 'not reported'}`);
        if (r.threads) console.log(`threads       LP_NUM_THREADS=${r.threads.LP_NUM_THREADS} (set by ${r.threads.setBy}; llvmpipe only)`);
        console.log(`enabled       ${r.enabledFeatures.join(', ')}`);
        console.log(`features      ${r.features.join(', ')}`);
        console.log('limits');
        for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k.padEnd(44)} ${v}`);
        const families = Object.entries(tuned);
        console.log(`autotune      ${autotuner.path}${families.length ? '' : ' (no choices cached for this adapter yet: `mode bench matmul` fills it)'}`);
        for (const [, choices] of families) for (const [key, variant] of Object.entries(choices)) console.log(`  ${key.padEnd(44)} ${variant}`);
      }),
    );
}
