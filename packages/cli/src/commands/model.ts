import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { withEngine } from '../device.js';

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
      await withEngine(program, async () => {
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
      });
    });
  model
    .command('import')
    .description("An OpenCLIP model as this project's model file (weights, config, tokenizer record, preprocessing)")
    .argument('<src>', 'an OpenCLIP hub folder (open_clip_config.json + open_clip_model.safetensors), or an OpenCLIP .safetensors with --config')
    .option('--config <file>', "OpenCLIP's model_configs/NAME.json for a bare safetensors file")
    .requiredOption('--out <file>', 'the model file to write (.safetensors)')
    .action(async (src: string, flags: { config?: string; out: string }) => {
      const m = await import('@mode/models');
      await withEngine(program, async () => {
        const clip = m.loadClip(src, flags.config ? { openclipConfig: flags.config } : {});
        mkdirSync(dirname(resolve(flags.out)), { recursive: true });
        await clip.save(flags.out);
        const c = clip.config;
        console.log(
          `${flags.out}: ViT ${c.vision.layers}×${c.vision.width}/${c.vision.patchSize} at ${c.vision.imageSize} px, text ${c.text.layers}×${c.text.width}, ` +
            `${c.gelu === 'quick' ? 'QuickGELU' : 'GELU'}, tokenizer ${clip.tokenizer ? clip.tokenizer.source : 'unrecorded'}`,
        );
        clip.dispose();
      });
    });
  model
    .command('export')
    .description('A model as an OpenCLIP hub folder, which open_clip.create_model_and_transforms(name, pretrained=FILE) loads')
    .argument('<model>', 'a model file (mode train, mode model import) or an OpenCLIP folder')
    .option('--format <name>', 'openclip', 'openclip')
    .requiredOption('--out <dir>', 'the folder to write (open_clip_config.json, open_clip_model.safetensors)')
    .action(async (src: string, flags: { format: string; out: string }) => {
      if (flags.format !== 'openclip') throw Object.assign(new Error(`--format ${flags.format}: only openclip`), { userFacing: true });
      const m = await import('@mode/models');
      await withEngine(program, async () => {
        const clip = m.loadClip(src);
        await m.saveOpenClip(clip, flags.out);
        console.log(`${flags.out}: ${m.OPENCLIP_CONFIG} + ${m.OPENCLIP_WEIGHTS}`);
        clip.dispose();
      });
    });
}
