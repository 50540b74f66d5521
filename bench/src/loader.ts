/**
 * Loader throughput: images per second read from WebDataset shards, PNG-decoded, augmented
 * (DeCLIP's two views or CLIP's eval transform), normalised and batched — in-process and on
 * worker threads. Uses the prepared cache (`mode data prepare`) when it is there, else a
 * temporary set of Noto emoji cut from the npm package.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DatasetBuilder,
  defaultDataDir,
  emojiEntries,
  emojiPairs,
  loadSynonyms,
  loadTokenizer,
  openPairs,
  Tokenizer,
  type OpenOptions,
  type TextTokenizer,
} from '@mode/data';
import { realDataSection } from './loader-real.js';
import { textTable } from './results.js';
import type { BenchOptions, Suite } from './suites.js';
import { timeAsync } from './timing.js';

interface Setup {
  dirs: string[];
  label: string;
  tokenizer: TextTokenizer;
  synonyms: Record<string, string[]>;
  cleanup(): void;
}

async function setup(): Promise<Setup> {
  const cache = defaultDataDir();
  const dirs = ['emoji', 'clipart'].map((d) => join(cache, d)).filter((d) => existsSync(join(d, 'dataset.json')));
  if (dirs.length && existsSync(join(cache, 'tokenizer.json'))) {
    return {
      dirs,
      label: `cache ${cache} (${dirs.map((d) => d.split('/').pop()).join(' + ')})`,
      tokenizer: loadTokenizer(cache),
      synonyms: loadSynonyms(cache),
      cleanup: () => undefined,
    };
  }
  const tmp = mkdtempSync(join(tmpdir(), 'mode-bench-loader-'));
  const entries = emojiEntries().slice(0, 1024);
  const b = new DatasetBuilder(join(tmp, 'emoji'), { name: 'emoji', kind: 'pairs' });
  await b.writeSplit('train', emojiPairs(entries));
  b.finish();
  return {
    dirs: [join(tmp, 'emoji')],
    label: '1024 Noto emoji (64×64) in a temporary set; run `mode data prepare` to bench the full cache',
    tokenizer: Tokenizer.train(
      entries.map((e) => e.caption),
      { vocabSize: 2048 },
    ),
    synonyms: {},
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

export const suite: Suite = {
  description: 'data loader: images/s decoded + augmented (DeCLIP views, eval transform), in-process and on worker threads',
  async run(options: BenchOptions) {
    const s = await setup();
    const batchSize = 64;
    const batches = options.quick ? 4 : 8;
    const cores = cpus().length;
    const configs: { name: string; size: number; workers: number; opts: Partial<OpenOptions> }[] = [];
    for (const size of options.quick ? [64] : [64, 128]) {
      configs.push({ name: 'decode + eval transform', size, workers: 0, opts: { augment: false } });
      configs.push({ name: 'decode + 1 DeCLIP view', size, workers: 0, opts: { augment: true, views: 1 } });
      configs.push({
        name: 'DeCLIP: 2 views + tokens + EDA',
        size,
        workers: 0,
        opts: { augment: true, views: 2, tokenizer: s.tokenizer, eda: { synonyms: s.synonyms } },
      });
      for (const workers of [...new Set([1, Math.max(1, cores - 1), cores])])
        configs.push({
          name: 'DeCLIP: 2 views + tokens + EDA',
          size,
          workers,
          opts: { augment: true, views: 2, tokenizer: s.tokenizer, eda: { synonyms: s.synonyms } },
        });
    }
    const rows: Record<string, string | number | null>[] = [];
    try {
      for (const c of configs) {
        const loader = openPairs(s.dirs, { batchSize, imageSize: c.size, seed: 1, epochs: Infinity, workers: c.workers, ...c.opts });
        const it = loader[Symbol.asyncIterator]();
        await it.next(); // start-up: workers, first shard, first batches
        const t = await timeAsync(
          async () => {
            for (let i = 0; i < batches; i++) loader.release((await it.next()).value!);
          },
          { maxTime: options.quick ? 0.5 : 2, minSamples: options.quick ? 2 : 3 },
        );
        await it.return(undefined);
        const images = (batches * batchSize) / t.median;
        const views = c.opts.augment && c.opts.views === 2 ? 2 : 1;
        rows.push({
          pipeline: c.name,
          size: `${c.size}×${c.size}`,
          threads: loader.mode === 'worker' ? `${c.workers} worker${c.workers > 1 ? 's' : ''}` : 'in-process',
          'images/s': Math.round(images),
          'views/s': Math.round(images * views),
          'ms/batch': Math.round((t.median / batches) * 1000 * 10) / 10,
          '±%': Math.round(t.rme * 10) / 10,
        });
        console.log(`  ${c.name} ${c.size}px ${loader.mode === 'worker' ? `${c.workers}w` : 'in-process'}: ${Math.round(images)} images/s`);
      }
    } finally {
      s.cleanup();
    }
    const real = await realDataSection(options, s.tokenizer);
    const results = {
      suite: 'loader',
      adapter: 'cpu',
      date: new Date().toISOString(),
      method: `benchmark.js median of ${batches} batches × ${batchSize} images per sample, after start-up, reading ${s.label}; ${cores} cores; workers built from dist/ (in-process when running from sources). images/s counts source images; views/s counts augmented outputs.`,
      columns: ['pipeline', 'size', 'threads', 'images/s', 'views/s', 'ms/batch', '±%'],
      rows,
      sections: [real],
    };
    console.log(textTable(results));
    console.log(`\n${real.suite}\n${textTable(real)}`);
    return results;
  },
};
