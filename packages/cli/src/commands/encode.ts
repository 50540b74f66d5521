import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Command } from 'commander';
import { withEngine } from '../device.js';

const userError = (m: string) => Object.assign(new Error(m), { userFacing: true });

/** A float32 [rows, cols] array in NumPy's .npy format (version 1.0), what numpy.load and clip-retrieval read. */
function npy(rows: number, cols: number, data: Float32Array): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // magic, version and length (10 bytes) + header: a multiple of 64
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Writes `bytes` whole, then renames it into place (a reader never sees a partial file). */
function writeAtomically(path: string, bytes: string | Buffer): void {
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
}

export function register(program: Command): void {
  program
    .command('encode')
    .description('L2-normalised image and text features of a model (as clip-retrieval and OpenCLIP encode), as JSON')
    .requiredOption('--model <model>', 'a model file (mode train, mode model import) or an OpenCLIP hub folder')
    .option('--tokenizer <file>', "the model's tokenizer (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the one it recorded")
    .option('--image <files...>', 'images (JPEG, PNG, WebP, …): the eval transform at the model’s size, its mean and std')
    .option('--text <strings...>', 'captions')
    .option(
      '--data <patterns...>',
      "pairs at scale (folders of .tar shards, brace patterns, globs, joined with ::): --out is then a folder of clip-retrieval's img_emb.npy, text_emb.npy and keys.txt",
    )
    .option('--skip-bad', 'with --data: skip corrupt images and empty captions (counted) instead of stopping')
    .requiredOption('--out <file>', 'JSON: {"tokens": [[ids]], "text": [[…]], "image": [[…]]} (written whole, then renamed); with --data, a folder')
    .action(async (flags: { model: string; tokenizer?: string; image?: string[]; text?: string[]; data?: string[]; skipBad?: boolean; out: string }) => {
      if (!flags.image?.length && !flags.text?.length && !flags.data?.length)
        throw userError('nothing to encode. Fix: give --image FILE…, --text STRING… or --data PATTERN');
      if (flags.data && (flags.image || flags.text)) throw userError('--data encodes pairs at scale into a folder; give --image and --text in another call');
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
        // The tokenizer the model recorded (a file path), unless given; an imported OpenCLIP model records OpenAI's by name only.
        const tokenizerOf = () => {
          const recorded = model.tokenizer?.source;
          const source = flags.tokenizer ?? (recorded && isAbsolute(recorded) ? recorded : undefined);
          if (!source)
            throw userError(
              `${flags.model} records no tokenizer file${recorded ? ` (it was trained with ${recorded})` : ''}. Fix: pass --tokenizer (OpenAI's bpe_simple_vocab_16e6.txt.gz for OpenCLIP models)`,
            );
          const tokenizer = d.readTokenizer(source);
          m.checkTokenizer(model, tokenizer, source, flags.model);
          return tokenizer;
        };
        const S = model.config.vision.imageSize;
        const pre = model.preprocess ?? m.OPENAI_PREPROCESS(S);
        if (flags.data) {
          // clip-retrieval's layout: the features of every pair in the shards' order, and their keys.
          const L = model.config.text.contextLength;
          const loader = d.openPairs(flags.data, {
            batchSize: 64,
            imageSize: S,
            tokenizer: tokenizerOf(),
            contextLength: L,
            mean: pre.mean,
            std: pre.std,
            shuffle: false,
            epochs: 1,
            workers: 1,
            skipBad: !!flags.skipBad,
          });
          const [images, texts, keys]: [Float32Array[], Float32Array[], string[]] = [[], [], []];
          for await (const b of loader) {
            const x = ag.tensor(b.images, [b.size, 3, S, S]);
            loader.release(b);
            const [fi, ft] = ag.noGrad(() => [ag.l2Normalize(model.encodeImage(x)), ag.l2Normalize(model.encodeText(b.tokens!))]);
            images.push(await fi!.read());
            texts.push(await ft!.read());
            keys.push(...b.keys);
            [x, fi!, ft!].forEach((t) => t.dispose());
          }
          const D = model.config.embedDim;
          const all = (parts: Float32Array[]) => {
            const out = new Float32Array(keys.length * D);
            let at = 0;
            for (const p of parts) {
              out.set(p, at);
              at += p.length;
            }
            return out;
          };
          mkdirSync(flags.out, { recursive: true });
          writeAtomically(join(flags.out, 'img_emb.npy'), npy(keys.length, D, all(images)));
          writeAtomically(join(flags.out, 'text_emb.npy'), npy(keys.length, D, all(texts)));
          writeAtomically(join(flags.out, 'keys.txt'), keys.join('\n') + '\n');
          const skipped = loader.bad?.count ?? 0;
          console.log(`${flags.out}: img_emb.npy, text_emb.npy [${keys.length}, ${D}], keys.txt${skipped ? ` (${skipped} bad samples skipped)` : ''}`);
          model.dispose();
          return;
        }
        if (flags.text?.length) {
          const tokenizer = tokenizerOf();
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
        writeAtomically(flags.out, JSON.stringify(out) + '\n');
        console.log(`${flags.out}: ${out.text?.length ?? 0} texts, ${out.image?.length ?? 0} images, ${model.config.embedDim}-d features`);
        model.dispose();
      });
    });
}
