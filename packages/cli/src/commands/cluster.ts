import { join } from 'node:path';
import type { Command } from 'commander';
import { withDevice } from '../device.js';
import { progress } from '../progress.js';
import { int, parsePart, parseSources } from '../sources.js';

const positive = (name: string, s: string) => {
  const n = Number(s);
  if (!(n > 0)) throw Object.assign(new Error(`--${name} must be a positive number, got "${s}"`), { userFacing: true });
  return n;
};

interface EmbedFlags {
  tokenizer?: string;
  model?: string;
  vectors?: string;
  keys?: string;
  data?: string[];
  dataDir?: string;
  out: string;
  dtype: string;
  batch: string;
  part?: string;
}

interface ClusterFlags {
  embeddings: string;
  fine: string;
  experts: string;
  out: string;
  balanced: boolean;
  init: string;
  seed: string;
  maxIter: string;
  tol: string;
  extra: string;
  assign: boolean;
}

interface AssignFlags {
  embeddings: string;
  clusters: string;
  out?: string;
  seed: string;
  extra: string;
  part?: string;
}

/** Assigns every embedded pair, writes the report, prints the experts. */
async function assignAndReport(
  c: typeof import('@mode/clusterer'),
  gpu: import('@mode/gpu').Gpu,
  o: { embeddings: string; clusters: import('@mode/clusterer').Clusters; out: string; seed: number; extra: number; part?: { index: number; count: number } },
): Promise<void> {
  const a = await c.assignPairs(gpu, {
    embeddings: o.embeddings,
    clusters: o.clusters,
    out: o.out,
    seed: o.seed,
    extraFraction: o.extra,
    ...(o.part && { part: o.part }),
  });
  if (!a) {
    console.log(`assigned part ${o.part!.index}/${o.part!.count} of the embedding shards in ${o.out}`);
    return;
  }
  const r = c.clusterReport(o.clusters, a);
  c.writeReport(o.out, r);
  const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
  console.log(
    `${r.pairs} pairs → ${r.fine.clusters} fine clusters (sizes ${r.fine.minSize}–${r.fine.maxSize}, purity ${pct(r.fine.purity)}) → ${r.coarse.clusters} experts (purity ${pct(r.coarse.purity)})`,
  );
  for (let k = 0; k < r.coarse.clusters; k++)
    console.log(
      `  expert ${k}: ${a.manifest.own[k]} pairs + ${a.manifest.extra[k]} out-of-cluster; ${r.coarse.topGroup[k] ?? '–'}; ${r.coarse.topWords[k]!.join(', ')}`,
    );
  console.log(`wrote ${o.out}/assignment.json, assign-*.jsonl, report.md, report.json`);
}

export function register(program: Command): void {
  program
    .command('embed')
    .description("Embed one caption per pair with a text encoder (a CLIP model's text tower) into shards, or import vectors from a .npy file")
    .option('--model <file>', 'a model written by mode train (its text tower embeds the captions)')
    .option('--vectors <file.npy>', 'vectors from any encoder instead (2-D float .npy, one row per caption)')
    .option('--keys <file>', 'with --vectors: one key per line, in row order')
    .option(
      '--data <dirs...>',
      'data set folders, folders of .tar shards, brace patterns or globs, DIR[:SPLIT][@FRACTION], several joined with :: (default: the training mix of mode train)',
    )
    .option('--data-dir <dir>', 'where `mode data prepare` wrote')
    .option(
      '--tokenizer <file>',
      "a tokenizer file (mode data tokenizer, or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the data folder's; it must be the models' own",
    )
    .option('--out <dir>', 'embeddings folder', 'out/embeddings')
    .option('--dtype <type>', 'f16 or f32', 'f16')
    .option('--batch <n>', 'captions per encoder call', '256')
    .option('--part <i/n>', 'only the data shards i, i+n, … (a job array task); then the same command without --part writes the manifest')
    .action(async (flags: EmbedFlags) => {
      const c = await import('@mode/clusterer');
      if (flags.vectors) {
        const m = c.importNpy(flags.vectors, flags.out, flags.keys);
        console.log(`imported ${m.count} vectors of dimension ${m.dim} into ${flags.out}`);
        return;
      }
      if (!flags.model) throw Object.assign(new Error('mode embed: give --model FILE (a CLIP model) or --vectors FILE.npy'), { userFacing: true });
      if (flags.dtype !== 'f16' && flags.dtype !== 'f32')
        throw Object.assign(new Error(`--dtype must be f16 or f32, got "${flags.dtype}"`), { userFacing: true });
      const d = await import('@mode/data');
      const m = await import('@mode/models');
      const ag = await import('@mode/autograd');
      const dataDir = flags.dataDir ?? d.defaultDataDir();
      const sources = flags.data ? parseSources(flags.data) : d.defaultMix(dataDir);
      const total = d.mixCount(sources);
      await withDevice(program, {}, async (gpu) => {
        const engine = await ag.init(gpu);
        const bar = progress({ unit: 'captions' });
        bar.start('embed', total);
        let last = 0;
        try {
          let model;
          try {
            model = m.loadClip(flags.model!);
          } catch (e) {
            throw Object.assign(e as Error, { userFacing: true });
          }
          const tokenizer = d.tokenizerFor({ dataDir, ...(flags.tokenizer ? { tokenizer: flags.tokenizer } : {}) });
          m.checkTokenizer(model, tokenizer, flags.tokenizer ?? join(dataDir, 'tokenizer.json'), flags.model!);
          const t0 = performance.now();
          const r = await c.embedCaptions({
            sources,
            encoder: c.clipTextEncoder(model, tokenizer, flags.model!),
            out: flags.out,
            dtype: flags.dtype as 'f16' | 'f32',
            batchSize: int('batch', flags.batch),
            ...(flags.part !== undefined && { part: parsePart(flags.part) }),
            onProgress: (done) => {
              bar.update(done);
              if (!bar.active && done - last >= 5000) {
                last = done;
                const s = (performance.now() - t0) / 1000;
                console.log(`embedded ${done}/~${total} captions, ${(done / s).toFixed(0)}/s`);
              }
            },
          });
          bar.stop();
          if (!r) {
            console.log(`embedded part ${flags.part} of the captions into ${flags.out}`);
            return;
          }
          console.log(`embedded ${r.count} captions (dimension ${r.dim}, ${r.dtype}) in ${r.shards.length} shards: ${flags.out}/embeddings.json`);
        } finally {
          bar.stop();
          await engine.destroy();
        }
      });
    });

  program
    .command('cluster')
    .description("MoDE's clustering: balanced fine k-means of the caption embeddings, coarse k-means into experts, every pair assigned, a report")
    .option('--embeddings <dir>', 'written by mode embed', 'out/embeddings')
    .option('--fine <k>', 'fine clusters', '1024')
    .option('--experts <n>', 'coarse clusters = data experts', '4')
    .option('--out <dir>', 'clusters folder', 'out/clusters')
    .option('--no-balanced', 'plain k-means (every cluster at most ⌈N/K⌉ points otherwise)')
    .option('--init <how>', 'kmeans++ or random', 'kmeans++')
    .option('--seed <n>', 'seed of the initialisation, re-seeding and the out-of-cluster sample', '0')
    .option('--max-iter <n>', 'Lloyd iterations per chunk', '50')
    .option('--tol <x>', 'stop when (Σ‖Δc‖)² is below this', '1e-3')
    .option('--extra <fraction>', "each expert's out-of-cluster sample", '0.02')
    .option('--no-assign', 'fit and write the centres only (then mode assign, e.g. as a job array with --part)')
    .action(async (flags: ClusterFlags) => {
      const c = await import('@mode/clusterer');
      const { mkdirSync } = await import('node:fs');
      if (flags.init !== 'kmeans++' && flags.init !== 'random')
        throw Object.assign(new Error(`--init must be kmeans++ or random, got "${flags.init}"`), { userFacing: true });
      const o = {
        embeddings: flags.embeddings,
        out: flags.out,
        fine: int('fine', flags.fine),
        experts: int('experts', flags.experts),
        balanced: flags.balanced,
        init: flags.init,
        seed: int('seed', flags.seed),
        maxIter: int('max-iter', flags.maxIter),
        tol: positive('tol', flags.tol),
      } as const;
      const extra = positive('extra', flags.extra);
      mkdirSync(flags.out, { recursive: true });
      await withDevice(program, {}, async (gpu) => {
        let inertia = 0;
        const bar = progress({ unit: 'iterations', value: (done, total) => `iteration ${done}/${total}, inertia ${inertia.toPrecision(6)}` });
        let level = '';
        const clusters = await c.fitClusters(gpu, {
          ...o,
          onIteration: (l, it) => {
            inertia = it.inertia;
            if (l !== level) bar.start(`${l} k-means`, o.maxIter);
            level = l;
            bar.update(it.iteration + 1);
            if (!bar.active)
              console.log(
                `${l} chunk ${it.chunk} iteration ${it.iteration + 1}: inertia ${it.inertia.toPrecision(6)}, shift ${it.shift.toExponential(2)}, sizes ${it.minSize}–${it.maxSize}${it.empty ? `, ${it.empty} empty re-seeded` : ''}, ${it.seconds.toFixed(2)} s`,
              );
          },
        });
        bar.stop();
        c.writeClusters(flags.out, clusters, { ...o, embeddings: flags.embeddings });
        console.log(
          `fitted ${o.fine} fine and ${o.experts} coarse centres (peak GPU buffers ${(clusters.peakBytes / 2 ** 20).toFixed(1)} MiB): ${flags.out}/clusters.json`,
        );
        if (flags.assign) await assignAndReport(c, gpu, { embeddings: flags.embeddings, clusters, out: flags.out, seed: o.seed, extra });
      });
    });

  program
    .command('assign')
    .description('Assign every embedded pair to its nearest fine centre and so its expert (e.g. embeddings made after the clusters were fitted)')
    .option('--embeddings <dir>', 'written by mode embed', 'out/embeddings')
    .option('--clusters <dir>', 'written by mode cluster', 'out/clusters')
    .option('--out <dir>', 'where the assignment goes (default: the clusters folder)')
    .option('--seed <n>', 'seed of the out-of-cluster sample', '0')
    .option('--extra <fraction>', "each expert's out-of-cluster sample", '0.02')
    .option('--part <i/n>', 'only the embedding shards i, i+n, … (a job array task); then the same command without --part writes the manifest and report')
    .action(async (flags: AssignFlags) => {
      const c = await import('@mode/clusterer');
      const { mkdirSync } = await import('node:fs');
      const clusters = c.readClusters(flags.clusters);
      const out = flags.out ?? flags.clusters;
      mkdirSync(out, { recursive: true });
      await withDevice(program, {}, async (gpu) => {
        await assignAndReport(c, gpu, {
          embeddings: flags.embeddings,
          clusters,
          out,
          seed: int('seed', flags.seed),
          extra: positive('extra', flags.extra),
          ...(flags.part !== undefined && { part: parsePart(flags.part) }),
        });
      });
    });
}
