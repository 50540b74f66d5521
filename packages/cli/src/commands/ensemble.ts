import type { Command } from 'commander';
import { withDevice } from '../device.js';

interface EnsembleFlags {
  tokenizer?: string;
  experts: string[];
  clusters: string[];
  encoder: string;
  baseline?: string[];
  task: string[];
  limit?: string;
  dataDir?: string;
  out?: string;
  json?: boolean;
  probe?: boolean;
  probeTrain: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function register(program: Command): void {
  program
    .command('ensemble')
    .description(
      "Zero-shot with the data experts, weighted per task by how close its class names are to each expert's fine centres (MoDE), beside the uniform average, each expert and baselines",
    )
    .requiredOption('--experts <files...>', "the experts' final.safetensors, in expert order")
    .requiredOption(
      '--clusters <dirs...>',
      'written by mode cluster (fine centres, fine → expert); several: their experts numbered one after another (an expert added for new data)',
    )
    .requiredOption('--encoder <file>', 'the clustering text encoder: the seed model the captions were embedded with')
    .option('--baseline <name=file...>', 'single models to score beside the ensemble (e.g. seed=…, equal-compute=…)')
    .option('--task <names...>', 'fashion-mnist, mnist, openmoji, or a classification set folder', ['fashion-mnist', 'mnist', 'openmoji'])
    .option('--limit <n>', 'at most this many images per task')
    .option('--data-dir <dir>', 'where `mode data prepare` wrote')
    .option(
      '--tokenizer <file>',
      "a tokenizer file (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the data folder's; it must be the models' own",
    )
    .option('--probe', "also a linear probe on the experts' concatenated image features vs each baseline's (tasks with a train split)")
    .option('--probe-train <n>', 'training images of the probe', '2000')
    .option('--out <file>', 'write the results as JSON')
    .option('--json', 'print the results as JSON')
    .action(async (flags: EnsembleFlags) => {
      const e = await import('@mode/ensembler');
      const c = await import('@mode/clusterer');
      const m = await import('@mode/models');
      const d = await import('@mode/data');
      const t = await import('@mode/trainer');
      const ag = await import('@mode/autograd');
      const { existsSync, renameSync, writeFileSync } = await import('node:fs');
      const { basename, join } = await import('node:path');
      const userError = (msg: string) => Object.assign(new Error(msg), { userFacing: true });
      const clusters = c.mergeClusters(flags.clusters.map(c.readClusters), flags.clusters);
      if (flags.experts.length !== clusters.experts)
        throw userError(
          `--experts: ${flags.experts.length} models, but ${flags.clusters.join(' + ')} ${flags.clusters.length > 1 ? 'have' : 'has'} ${clusters.experts} experts. Fix: pass one final.safetensors per expert, in order`,
        );
      const dataDir = flags.dataDir ?? d.defaultDataDir();
      const baselines = (flags.baseline ?? []).map((b) => {
        const i = b.indexOf('=');
        if (i < 1) throw userError(`--baseline ${b}: write NAME=FILE`);
        return [b.slice(0, i), b.slice(i + 1)] as const;
      });
      await withDevice(program, {}, async (gpu) => {
        const engine = await ag.init(gpu);
        try {
          const load = (f: string) => {
            try {
              return m.loadClip(f);
            } catch (err) {
              throw Object.assign(err as Error, { userFacing: true });
            }
          };
          const experts = flags.experts.map(load);
          const encoder = load(flags.encoder);
          if (encoder.config.embedDim !== clusters.d)
            throw userError(
              `--encoder ${flags.encoder} embeds into ${encoder.config.embedDim} dimensions, the clusters were fitted on ${clusters.d}. Fix: pass the model the captions were embedded with`,
            );
          const base = Object.fromEntries(baselines.map(([name, f]) => [name, load(f)]));
          const tokenizer = d.tokenizerFor({ dataDir, ...(flags.tokenizer ? { tokenizer: flags.tokenizer } : {}) });
          const source = flags.tokenizer ?? join(dataDir, 'tokenizer.json');
          [...flags.experts.map((f, i) => [f, experts[i]!] as const), [flags.encoder, encoder] as const].forEach(([f, model]) =>
            m.checkTokenizer(model, tokenizer, source, f),
          );
          const results = [];
          for (const task of flags.task) {
            const known = (t.EVAL_TASKS as Record<string, { dir: string; split: string }>)[task];
            const dir = known ? join(dataDir, known.dir) : task;
            if (!existsSync(join(dir, 'dataset.json')))
              throw userError(`unknown task "${task}": use fashion-mnist, mnist, openmoji, or a classification set folder`);
            const splits = Object.keys(d.readDatasetInfo(dir).splits);
            const split = known?.split ?? (splits.includes('test') ? 'test' : splits[0]!);
            const r = await e.ensembleZeroShot({
              experts,
              encoder,
              clusters,
              tokenizer,
              dir,
              split,
              task: known ? task : basename(task),
              baselines: base,
              ...(flags.limit ? { limit: Number(flags.limit) } : {}),
              keepFeatures: !!flags.probe && splits.includes('train'),
            });
            const { features: testFeatures, ...result } = r;
            const probe =
              flags.probe && splits.includes('train')
                ? await e.probeTask({
                    experts,
                    baselines: base,
                    dir,
                    task: r.task,
                    trainSplit: 'train',
                    testSplit: split,
                    trainLimit: Number(flags.probeTrain),
                    limit: flags.limit ? Number(flags.limit) : Infinity,
                    ...(testFeatures ? { test: testFeatures } : {}),
                  })
                : null;
            results.push(probe ? { ...result, probe } : result);
            if (flags.json) continue;
            console.log(
              `${r.task}: ${r.count} images, ${r.classes} classes (chance ${pct(r.chance)}); weights ${r.weights.map((w) => w.toFixed(3)).join(' ')} (mean class distance ${r.meanDistance.toFixed(3)}, classes per expert ${r.classesPerExpert.join('/')})`,
            );
            console.log(
              `  ensemble ${pct(r.ensemble.top1)} top-1, ${pct(r.ensemble.top5)} top-5; uniform ${pct(r.uniform.top1)}; best expert (${r.bestExpert}) ${pct(r.experts[r.bestExpert]!.top1)}`,
            );
            console.log(
              `  experts ${r.experts.map((a) => pct(a.top1)).join(', ')}${Object.entries(r.baselines)
                .map(([n, a]) => `; ${n} ${pct(a.top1)}`)
                .join('')}`,
            );
            if (probe)
              console.log(
                `  linear probe (${probe.train} train, ${probe.test} test images): experts concatenated ${pct(probe.concatenated)}${Object.entries(
                  probe.baselines,
                )
                  .map(([n, a]) => `; ${n} ${pct(a)}`)
                  .join('')}`,
              );
          }
          if (flags.json) console.log(JSON.stringify(results, null, 2));
          if (flags.out) {
            writeFileSync(`${flags.out}.${process.pid}.tmp`, JSON.stringify(results, null, 1) + '\n');
            renameSync(`${flags.out}.${process.pid}.tmp`, flags.out);
            console.log(`wrote ${flags.out}`);
          }
          [...experts, encoder, ...Object.values(base)].forEach((x) => x.dispose());
        } finally {
          await engine.destroy();
        }
      });
    });
}
