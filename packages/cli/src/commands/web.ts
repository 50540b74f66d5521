/**
 * The browser side: `mode serve` and `mode export` put a run's experts on a page that classifies
 * on the browser's own GPU; `mode classify` is the same classification in Node (the page's logits
 * equal its output).
 */
import type { Command } from 'commander';
import { withDevice } from '../device.js';

const userError = (msg: string) => Object.assign(new Error(msg), { userFacing: true });

async function site(flags: { run: string; dataDir?: string; samples: string; debug?: boolean }) {
  const web = await import('@mode/web');
  const d = await import('@mode/data');
  const t = await import('@mode/trainer');
  const dataDir = flags.dataDir ?? d.defaultDataDir();
  const tasks = Object.entries(t.EVAL_TASKS).map(([name, v]) => ({ name, dir: v.dir, split: v.split }));
  const samplesPerTask = Number(flags.samples);
  if (!Number.isInteger(samplesPerTask) || samplesPerTask < 0) throw userError(`--samples ${flags.samples}: give a whole number of images per task`);
  const t0 = performance.now();
  const s = await web.buildSite(flags.run, { dataDir, tasks, samplesPerTask, debug: !!flags.debug });
  const js = s.files.get('app.js') as { bytes: Uint8Array };
  console.log(
    `site for ${s.manifest.run}: ${s.manifest.experts.length} experts, ${s.manifest.clusters.length} clustering(s), ${s.manifest.tasks.length} tasks, ${s.manifest.samples.length} samples; app.js ${(js.bytes.byteLength / 1024).toFixed(0)} KiB (bundled in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return { web, s };
}

interface ClassifyFlags {
  tokenizer?: string;
  run: string;
  image: string[];
  classes?: string;
  task?: string;
  dataDir?: string;
  out?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const siteOptions = (c: Command) =>
    c
      .option('--run <dir>', 'a folder `mode run` wrote', 'out/run')
      .option('--data-dir <dir>', 'where `mode data prepare` wrote (tokenizer, test sets)')
      .option('--samples <n>', 'test images per task offered as samples', '6')
      .option('--debug', 'unminified script with a source map');
  siteOptions(
    program
      .command('serve')
      .description("a page that classifies images with the run's experts on the browser's GPU (the same WGSL kernels), served on 127.0.0.1")
      .option('--port <n>', 'port (0: any free one)', '8080'),
  ).action(async (flags: { run: string; dataDir?: string; samples: string; debug?: boolean; port: string }) => {
    const { web, s } = await site(flags);
    const { url } = await web.serveSite(s, { port: Number(flags.port) });
    console.log(`serving ${url}  (Ctrl-C to stop; headless Chromium needs --enable-unsafe-webgpu)`);
  });
  siteOptions(
    program
      .command('export')
      .description('the same page as static files (index.html, app.js, artifacts/) for any web host')
      .requiredOption('--out <dir>', 'the folder to write (replaced whole)'),
  ).action(async (flags: { run: string; dataDir?: string; samples: string; debug?: boolean; out: string }) => {
    const { web, s } = await site(flags);
    const r = web.exportSite(s, flags.out);
    console.log(
      `wrote ${flags.out}: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB; serve it with any static server (WebGPU needs https or localhost)`,
    );
  });
  program
    .command('classify')
    .description(
      "zero-shot classification of image files with a run's ensemble: top-5 of the ensemble, the uniform average and each expert, and the weights (what the browser page computes)",
    )
    .option('--run <dir>', 'a folder `mode run` wrote', 'out/run')
    .requiredOption('--image <files...>', 'PNG files')
    .option('--classes <names>', "class names, comma-separated (default: the task's)")
    .option('--task <name>', 'fashion-mnist, mnist or openmoji: its class names and prompt templates', 'fashion-mnist')
    .option('--data-dir <dir>', 'where `mode data prepare` wrote')
    .option(
      '--tokenizer <file>',
      "a tokenizer file (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the run's own (mode run --tokenizer), else the data folder's; it must be the models' own",
    )
    .option('--out <file>', 'write the logits as JSON')
    .option('--json', 'print the result as JSON')
    .action(async (flags: ClassifyFlags) => {
      const web = await import('@mode/web');
      const e = await import('@mode/ensembler');
      const c = await import('@mode/clusterer');
      const m = await import('@mode/models');
      const d = await import('@mode/data');
      const t = await import('@mode/trainer');
      const ag = await import('@mode/autograd');
      const { existsSync, readFileSync, renameSync, writeFileSync } = await import('node:fs');
      const { join } = await import('node:path');
      const dataDir = flags.dataDir ?? d.defaultDataDir();
      const a = web.runArtifacts(flags.run);
      const known = (t.EVAL_TASKS as Record<string, { dir: string }>)[flags.task ?? 'fashion-mnist'];
      if (!known) throw userError(`--task ${flags.task}: use ${Object.keys(t.EVAL_TASKS).join(', ')}`);
      const info = d.readDatasetInfo(join(dataDir, known.dir));
      const classes = flags.classes
        ? flags.classes
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : info.classes!;
      // The task's templates go with its own class names; other names get the page's default prompt.
      const templates = flags.classes ? ['a photo of a {}.'] : (info.templates ?? ['a photo of a {}.']);
      if (classes.length === 0) throw userError('--classes: no class names. Fix: --classes "cat,dog,bird"');
      const images = await Promise.all(
        flags.image.map((f) => {
          if (!existsSync(f)) throw userError(`--image ${f}: no such file`);
          return d.decodeImage(new Uint8Array(readFileSync(f)), { file: f, record: 0 });
        }),
      );
      await withDevice(program, {}, async (gpu) => {
        const engine = await ag.init(gpu);
        try {
          const experts = a.experts.map((f) => m.loadClip(f));
          const encoder = m.loadClip(a.encoder);
          const clusters = c.mergeClusters(a.clusters.map(c.readClusters), a.clusters);
          const S = experts[0]!.config.vision.imageSize;
          // --tokenizer, else the run's own (mode run --tokenizer), else the data folder's.
          const tokenizerFile = flags.tokenizer ?? a.tokenizer;
          const tokenizer = d.tokenizerFor({ dataDir, ...(tokenizerFile ? { tokenizer: tokenizerFile } : {}) });
          for (const model of [...experts, encoder]) m.checkTokenizer(model, tokenizer, tokenizerFile ?? join(dataDir, 'tokenizer.json'), 'a model of the run');
          const task = await e.zeroShotTask({ experts, encoder, clusters, tokenizer, classes, templates });
          const pixels = new Float32Array(images.length * 3 * S * S);
          images.forEach((img, i) => pixels.set(d.evalImage(img, S), i * 3 * S * S));
          const r = await task.classify(pixels, images.length);
          const C = task.classes.length;
          const rows = (l: Float32Array) => Array.from({ length: images.length }, (_, i) => Array.from(l.subarray(i * C, (i + 1) * C)));
          const result = {
            run: flags.run,
            classes: task.classes,
            templates,
            weights: [...task.weights.weights],
            images: flags.image,
            logits: { ensemble: rows(r.ensemble), uniform: rows(r.uniform), experts: r.experts.map(rows) },
          };
          if (flags.json) console.log(JSON.stringify(result, null, 1));
          else {
            console.log(`weights ${result.weights.map((w) => w.toFixed(4)).join(' ')} (${experts.length} experts, ${C} classes)`);
            const top = (l: Float32Array, i: number) =>
              e
                .topK(l, i, C, Math.min(5, C))
                .map((x) => `${task.classes[x.index]} ${x.logit.toFixed(4)}`)
                .join(', ');
            flags.image.forEach((f, i) => {
              console.log(`${f}`);
              console.log(`  ensemble  ${top(r.ensemble, i)}`);
              console.log(`  uniform   ${top(r.uniform, i)}`);
              r.experts.forEach((l, k) => console.log(`  expert ${k}  ${top(l, i)}`));
            });
          }
          if (flags.out) {
            writeFileSync(`${flags.out}.${process.pid}.tmp`, JSON.stringify(result) + '\n');
            renameSync(`${flags.out}.${process.pid}.tmp`, flags.out);
            if (!flags.json) console.log(`wrote ${flags.out}`);
          }
          task.dispose();
          [...experts, encoder].forEach((x) => x.dispose());
        } finally {
          await engine.destroy();
        }
      });
    });
}
