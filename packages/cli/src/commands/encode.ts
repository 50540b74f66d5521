import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Command } from 'commander';
import { withEngine } from '../device.js';

const userError = (m: string) => Object.assign(new Error(m), { userFacing: true });

export function register(program: Command): void {
  program
    .command('encode')
    .description('L2-normalised image and text features of a model (as clip-retrieval and OpenCLIP encode), as JSON')
    .requiredOption('--model <model>', 'a model file (mode train, mode model import) or an OpenCLIP hub folder')
    .option('--tokenizer <file>', "the model's tokenizer (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the one it recorded")
    .option('--image <files...>', 'images (JPEG, PNG, WebP, …): the eval transform at the model’s size, its mean and std')
    .option('--text <strings...>', 'captions')
    .requiredOption('--out <file>', 'JSON: {"tokens": [[ids]], "text": [[…]], "image": [[…]]} (written whole, then renamed)')
    .action(async (flags: { model: string; tokenizer?: string; image?: string[]; text?: string[]; out: string }) => {
      if (!flags.image?.length && !flags.text?.length) throw userError('nothing to encode. Fix: give --image FILE… and/or --text STRING…');
      const d = await import('@mode/data');
      const m = await import('@mode/models');
      const ag = await import('@mode/autograd');
      await withEngine(program, async () => {
        let model;
        try {
          model = m.loadClip(flags.model);
        } catch (e) {
          throw userError((e as Error).message);
        }
        const out: { tokens?: number[][]; text?: number[][]; image?: number[][] } = {};
        const rows = (f: Float32Array, n: number) => Array.from({ length: n }, (_, i) => Array.from(f.subarray((i * f.length) / n, ((i + 1) * f.length) / n)));
        if (flags.text?.length) {
          // The tokenizer the model recorded (a file path), unless given; an imported OpenCLIP model records OpenAI's by name only.
          const recorded = model.tokenizer?.source;
          const source = flags.tokenizer ?? (recorded && isAbsolute(recorded) ? recorded : undefined);
          if (!source)
            throw userError(
              `${flags.model} records no tokenizer file${recorded ? ` (it was trained with ${recorded})` : ''}. Fix: pass --tokenizer (OpenAI's bpe_simple_vocab_16e6.txt.gz for OpenCLIP models)`,
            );
          const tokenizer = d.readTokenizer(source);
          m.checkTokenizer(model, tokenizer, source, flags.model);
          const L = model.config.text.contextLength;
          const tokens = tokenizer.tokenize(flags.text, L);
          // Each caption's ids up to its end token (the padding after it left out).
          out.tokens = flags.text.map((_, i) => {
            const ids = Array.from(tokens.subarray(i * L, (i + 1) * L));
            return ids.slice(0, ids.indexOf(tokenizer.eot) + 1);
          });
          const f = ag.noGrad(() => ag.l2Normalize(model.encodeText(tokens)));
          out.text = rows(await f.read(), flags.text.length);
          f.dispose();
        }
        if (flags.image?.length) {
          const S = model.config.vision.imageSize;
          const pre = model.preprocess ?? m.OPENAI_PREPROCESS(S);
          const pixels = new Float32Array(flags.image.length * 3 * S * S);
          for (const [i, file] of flags.image.entries()) {
            let bytes: Uint8Array;
            try {
              bytes = readFileSync(file);
            } catch (e) {
              throw userError(`--image ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
            }
            const img = await d.decodeImage(bytes, { file, record: 0 }, { kind: 'cover', size: S }, { rgb: true });
            d.toCHW(img, [1, 1, 1], pre.mean, pre.std, pixels, i * 3 * S * S);
          }
          const x = ag.tensor(pixels, [flags.image.length, 3, S, S]);
          const f = ag.noGrad(() => ag.l2Normalize(model.encodeImage(x)));
          out.image = rows(await f.read(), flags.image.length);
          [x, f].forEach((t) => t.dispose());
        }
        writeFileSync(`${flags.out}.tmp`, JSON.stringify(out) + '\n');
        renameSync(`${flags.out}.tmp`, flags.out);
        console.log(`${flags.out}: ${out.text?.length ?? 0} texts, ${out.image?.length ?? 0} images, ${model.config.embedDim}-d features`);
        model.dispose();
      });
    });
}
