import type { Command } from 'commander';
import { Gpu, type OpenOptions } from '@mode/gpu';
import { useMeasuredRoof } from '@mode/kernels';

/** Adds the device options every GPU command shares. */
export function deviceOptions(program: Command): Command {
  return program
    .option('--backend <name>', 'Dawn backend: vulkan, metal, d3d12, opengl, null')
    .option('--adapter <name>', 'require an adapter whose name contains this string (e.g. llvmpipe)')
    .option('--power <preference>', 'power preference: low-power or high-performance');
}

/** Opens the device with the program's options, runs `fn`, and destroys the device so the process exits. */
export async function withDevice(program: Command, extra: Partial<OpenOptions>, fn: (gpu: Gpu) => Promise<number | void>): Promise<void> {
  const o = program.opts<{ backend?: string; adapter?: string; power?: GPUPowerPreference }>();
  const gpu = await Gpu.open({ backend: o.backend, adapter: o.adapter, powerPreference: o.power, ...extra });
  useMeasuredRoof(gpu); // profiles read against the adapter's ceilings where `mode bench peak` measured them
  try {
    process.exitCode = (await fn(gpu)) ?? 0;
  } finally {
    gpu.destroy();
  }
}

/** withDevice with the autograd engine initialised on the device for `fn` (and destroyed after). */
export async function withEngine(program: Command, fn: (gpu: Gpu) => Promise<number | void>): Promise<void> {
  const ag = await import('@mode/autograd');
  await withDevice(program, {}, async (gpu) => {
    const engine = await ag.init(gpu);
    try {
      return await fn(gpu);
    } finally {
      await engine.destroy();
    }
  });
}
