import type { Command } from 'commander';
import { withDevice } from '../device.js';

export function register(program: Command): void {
  const model = program.command('model').description('Model presets and files');
  model
    .command('summary')
    .description('Parameters by part and FLOPs per step of a preset or a saved model')
    .option('--preset <name>', 'tiny, small, medium, b32', 'small')
    .option('--model <file>', 'a saved model instead of a preset')
    .option('--batch <n>', 'batch size for the FLOPs', '64')
    .option('--names', 'list every parameter with its shape (OpenCLIP names)')
    .action(async (flags: { preset: string; model?: string; batch: string; names?: boolean }) => {
      const m = await import('@mode/models');
      const ag = await import('@mode/autograd');
      await withDevice(program, {}, async (gpu) => {
        const engine = await ag.init(gpu);
        try {
          let clip;
          try {
            clip = flags.model ? m.loadClip(flags.model) : new m.CLIP(m.preset(flags.preset), { seed: 0 });
          } catch (e) {
            throw Object.assign(e as Error, { userFacing: true });
          }
          console.log(flags.model ? `model ${flags.model}` : `preset ${flags.preset}`);
          console.log(m.summaryTable(clip, Number(flags.batch)));
          if (flags.names) for (const [n, t] of clip.namedParameters()) console.log(`${n.padEnd(56)} [${t.shape.join(', ')}]`);
          clip.dispose();
        } finally {
          await engine.destroy();
        }
      });
    });
}
