import type { Command } from 'commander';
import { withDevice } from '../device.js';
import { int, parseSources } from '../sources.js';

export function register(program: Command): void {
  program
    .command('eval')
    .description('Zero-shot top-1/top-5 of a trained model (fashion-mnist, mnist, openmoji) or retrieval recall@1/5/10 on held-out pairs')
    .requiredOption('--model <file>', 'a model written by mode train (OUT/final.safetensors)')
    .option(
      '--task <names...>',
      'fashion-mnist, mnist, openmoji, retrieval, or a folder: a classification data set, a CLIP_benchmark folder (test/0.tar… with nshards.txt, classnames.txt, zeroshot_classification_templates.txt) or an ImageNet-style class-folder tree (val/CLASS/*.JPEG)',
      ['fashion-mnist', 'mnist', 'openmoji', 'retrieval'],
    )
    .option('--data-dir <dir>', 'where `mode data prepare` wrote')
    .option(
      '--data <patterns...>',
      'retrieval on your own pairs (all of them): folders of .tar shards, brace patterns or globs, joined with :: as --train-data',
    )
    .option(
      '--tokenizer <file>',
      "a tokenizer file (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the data folder's; it must be the model's own",
    )
    .option('--templates <file>', "prompt templates, one per line with {c} (or {}) for the class name, e.g. OpenAI's 80 ImageNet templates")
    .option('--classnames <file>', "class names, one per line in label order (a class-folder tree: its folders' sorted order)")
    .option('--workers <n>', 'loader worker threads', '1')
    .option('--limit <n>', 'at most this many images per task')
    .option('--json', 'print the results as JSON')
    .option('--out <file>', 'also write the results as JSON to this file (atomically)')
    .action(
      async (flags: {
        model: string;
        task: string[];
        dataDir?: string;
        data?: string[];
        templates?: string;
        classnames?: string;
        tokenizer?: string;
        workers: string;
        limit?: string;
        json?: boolean;
        out?: string;
      }) => {
        const t = await import('@mode/trainer');
        const d = await import('@mode/data');
        if (flags.data && !flags.task.includes('retrieval'))
          throw Object.assign(new Error('--data goes with --task retrieval (your own pairs); classification sets are given to --task as folders'), {
            userFacing: true,
          });
        // Read before the device opens: a template without {c} fails at once, naming its line.
        const templates = flags.templates ? d.readTemplates(flags.templates) : undefined;
        const classes = flags.classnames ? d.readClassNames(flags.classnames) : undefined;
        const sources = flags.data ? parseSources(flags.data) : undefined;
        const m = await import('@mode/models');
        const ag = await import('@mode/autograd');
        await withDevice(program, {}, async (gpu) => {
          const engine = await ag.init(gpu);
          try {
            let model;
            try {
              model = m.loadClip(flags.model);
            } catch (e) {
              throw Object.assign(e as Error, { userFacing: true });
            }
            const results = [];
            for (const task of flags.task) {
              const r = await t.evaluate(model, task, {
                ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
                ...(flags.limit ? { limit: int('limit', flags.limit) } : {}),
                ...(templates ? { templates } : {}),
                ...(flags.tokenizer ? { tokenizer: flags.tokenizer } : {}),
                ...(classes ? { classes } : {}),
                ...(sources ? { sources } : {}),
                workers: int('workers', flags.workers),
              });
              results.push(r);
              if (flags.json) continue;
              const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
              if ('imageToText' in r) {
                const f = (x: { r1: number; r5: number; r10: number }) => `R@1 ${pct(x.r1)}  R@5 ${pct(x.r5)}  R@10 ${pct(x.r10)}`;
                console.log(`retrieval (${r.count} held-out pairs)  image→text ${f(r.imageToText)}  text→image ${f(r.textToImage)}`);
              } else
                console.log(
                  `${r.task.padEnd(14)} ${r.count} images, ${r.classes} classes × ${r.templates} templates  top-1 ${pct(r.top1)}  top-5 ${pct(r.top5)}  (chance ${pct(r.chance)})`,
                );
            }
            if (flags.json) console.log(JSON.stringify(results, null, 2));
            if (flags.out) {
              const { renameSync, writeFileSync } = await import('node:fs');
              writeFileSync(`${flags.out}.${process.pid}.tmp`, JSON.stringify(results, null, 1) + '\n');
              renameSync(`${flags.out}.${process.pid}.tmp`, flags.out);
            }
            model.dispose();
          } finally {
            await engine.destroy();
          }
        });
      },
    );
}
