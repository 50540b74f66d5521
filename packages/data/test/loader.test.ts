import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DataError,
  DataLoader,
  DatasetBuilder,
  Tokenizer,
  datasetShards,
  importManifest,
  openClassification,
  openMix,
  openPairs,
  readManifest,
  BadRecords,
  type Batch,
} from '../src/index.js';
import { testPng, tmp } from './helpers.js';

const captions = (n: number) => Array.from({ length: n }, (_, i) => `a picture number ${i} of a big red hand, waving`);

async function pairSet(n: number, corrupt: number[] = []): Promise<string> {
  const dir = join(tmp('set'), 'pairs');
  const b = new DatasetBuilder(dir, { name: 'test', kind: 'pairs' }, { samplesPerShard: 8 });
  const text = captions(n);
  await b.writeSplit(
    'train',
    text.map((t, i) => ({
      key: `k${String(i).padStart(3, '0')}`,
      png: corrupt.includes(i) ? testPng(i).subarray(0, 60) : testPng(i, 20),
      text: t,
      json: { i },
    })),
  );
  b.finish();
  return dir;
}

const all = async (loader: AsyncIterable<Batch>) => {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
};

const workerEntry = new URL('../dist/prefetch-worker.js', import.meta.url);
const built = existsSync(fileURLToPath(workerEntry));

describe('data loader', () => {
  it('yields every record once per epoch, shuffled, as normalised CHW images with tokens and EDA captions', async () => {
    const dir = await pairSet(37);
    const tok = Tokenizer.train(captions(37), { vocabSize: 300 });
    const loader = openPairs(dir, {
      batchSize: 10,
      imageSize: 16,
      seed: 5,
      augment: true,
      views: 2,
      tokenizer: tok,
      contextLength: 24,
      eda: { synonyms: { big: ['large'], hand: ['paw'] } },
      epochs: 2,
      workers: 0,
    });
    expect(loader.mode).toBe('in-process');
    const batches = await all(loader);
    expect(batches.map((b) => b.size)).toEqual([10, 10, 10, 7, 10, 10, 10, 7]);
    for (const epoch of [0, 1]) {
      const keys = batches.filter((b) => b.epoch === epoch).flatMap((b) => b.keys);
      expect([...keys].sort()).toEqual(Array.from({ length: 37 }, (_, i) => `k${String(i).padStart(3, '0')}`));
    }
    const e0 = batches.filter((b) => b.epoch === 0).flatMap((b) => b.keys);
    const e1 = batches.filter((b) => b.epoch === 1).flatMap((b) => b.keys);
    expect(e0).not.toEqual(e1);
    const b = batches[0]!;
    expect(b.images).toHaveLength(10 * 3 * 16 * 16);
    expect(b.images2).toHaveLength(10 * 3 * 16 * 16);
    expect(b.images).not.toEqual(b.images2);
    expect(Math.max(...b.images)).toBeLessThan(2.2); // (1 − mean) / std
    expect(b.tokens).toHaveLength(10 * 24);
    expect(tok.decode(b.tokens!.subarray(0, 24))).toBe(b.texts![0]);
    expect(b.edaTexts).toHaveLength(10);
    expect(b.edaTokens).toHaveLength(10 * 24);
    expect(b.edaTexts!.some((t, i) => t !== b.texts![i])).toBe(true);
  });

  it('is deterministic under a seed (same batches, same pixels), and the seed matters', async () => {
    const dir = await pairSet(20);
    const run = (seed: number) => all(openPairs(dir, { batchSize: 6, imageSize: 12, seed, augment: true, workers: 0 }));
    const [a, b, c] = await Promise.all([run(1), run(1), run(2)]);
    expect(a.map((x) => x.keys)).toEqual(b.map((x) => x.keys));
    a.forEach((x, i) => expect(Buffer.from(x.images.buffer).equals(Buffer.from(b[i]!.images.buffer))).toBe(true));
    expect(a.map((x) => x.keys)).not.toEqual(c.map((x) => x.keys));
  });

  it.skipIf(!built)('worker threads (compiled dist/ entry) build the same batches as in-process', async () => {
    const dir = await pairSet(30);
    const tok = Tokenizer.train(captions(30), { vocabSize: 300 });
    const opts = { batchSize: 7, imageSize: 12, seed: 3, augment: true, views: 2 as const, tokenizer: tok, eda: { synonyms: { big: ['large'] } } };
    const inProcess = await all(openPairs(dir, { ...opts, workers: 0 }));
    const loader = openPairs(dir, { ...opts, workers: 2, workerUrl: workerEntry });
    expect(loader.mode).toBe('worker');
    const threaded = await all(loader);
    expect(threaded.map((b) => b.keys)).toEqual(inProcess.map((b) => b.keys));
    threaded.forEach((b, i) => {
      const r = inProcess[i]!;
      expect(Buffer.from(b.images.buffer).equals(Buffer.from(r.images.buffer))).toBe(true);
      expect(Buffer.from(b.images2!.buffer).equals(Buffer.from(r.images2!.buffer))).toBe(true);
      expect([...b.tokens!]).toEqual([...r.tokens!]);
      expect(b.edaTexts).toEqual(r.edaTexts);
    });
  });

  it.skipIf(!built)('a corrupt image decoded on a worker still names the shard and the record', async () => {
    const dir = await pairSet(12, [5]);
    const err = await all(openPairs(dir, { batchSize: 4, imageSize: 8, workers: 1, workerUrl: workerEntry })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).message).toMatch(/train-000000\.tar: record k005: corrupt or unreadable image/);
  });

  it('corrupt image: an error naming shard and record, or with skipBad counted and left out', async () => {
    const dir = await pairSet(12, [5, 9]);
    const shard = datasetShards(dir)[0]!;
    const err = await all(openPairs(dir, { batchSize: 4, imageSize: 8, workers: 0, shuffle: false })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).message.startsWith(`${shard}: record k005: corrupt or unreadable image (`)).toBe(true);
    expect([(err as DataError).file, (err as DataError).record]).toEqual([shard, 'k005']);
    const loader = openPairs(dir, { batchSize: 4, imageSize: 8, workers: 0, shuffle: false, skipBad: true });
    const batches = await all(loader);
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(10);
    expect(loader.bad!.count).toBe(2);
    expect(loader.bad!.summary()).toMatch(/2 bad records skipped \(.*\):\n.*record k005: corrupt or unreadable image/);
  });

  it('a consumer that stops early ends the loader cleanly (in-process and on workers)', async () => {
    const dir = await pairSet(40);
    for (const workers of built ? [0, 2] : [0]) {
      const loader = openPairs(dir, { batchSize: 4, imageSize: 8, epochs: Infinity, workers, workerUrl: workerEntry });
      let n = 0;
      for await (const b of loader) if ((n += b.size) >= 12) break;
      expect(n).toBe(12);
    }
  });

  it('holds out a deterministic, disjoint validation fraction by key', async () => {
    const dir = await pairSet(40);
    const keys = async (take: 'train' | 'val') =>
      (await all(openPairs(dir, { batchSize: 64, imageSize: 8, workers: 0, holdout: { fraction: 0.25, take } }))).flatMap((b) => b.keys);
    const [train, val] = [await keys('train'), await keys('val')];
    expect(train.length + val.length).toBe(40);
    expect(val.length).toBeGreaterThan(3);
    expect(train.filter((k) => val.includes(k))).toEqual([]);
  });
});

function manifestDir(lines: string[], images: Record<string, Uint8Array>) {
  const dir = tmp('manifest');
  mkdirSync(join(dir, 'img'));
  for (const [name, bytes] of Object.entries(images)) writeFileSync(join(dir, 'img', name), bytes);
  const file = join(dir, 'pairs.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

describe('your own data: JSONL manifests and classification sets', () => {
  it('imports image-text pairs and reads them back through the loader', async () => {
    const file = manifestDir(
      [
        JSON.stringify({ image: 'img/a.png', text: 'a red square', source: 'me' }),
        JSON.stringify({ image: 'img/b.png', text: 'a blue circle' }),
        JSON.stringify({ image: 'img/c.svg', text: 'a black box' }),
      ],
      { 'a.png': testPng(1), 'b.png': testPng(2), 'c.svg': Buffer.from('<svg width="10" height="10"><rect width="8" height="8"/></svg>') },
    );
    const out = join(tmp(), 'mine');
    const info = await importManifest(file, { out });
    expect(info.kind).toBe('pairs');
    expect(info.splits.train!.count).toBe(3);
    const batches = await all(openPairs(out, { batchSize: 8, imageSize: 8, workers: 0, shuffle: false }));
    expect(batches[0]!.texts).toEqual(['a red square', 'a blue circle', 'a black box']);
    expect((batches[0]!.json![0] as { source: string }).source).toBe('me');
  });

  it('each bad line names the manifest and the line; skipBad counts them', async () => {
    const file = manifestDir(
      [
        JSON.stringify({ image: 'img/a.png', text: 'fine' }),
        JSON.stringify({ image: 'img/a.png' }),
        '{"image": "img/a.png", "text": "bro',
        JSON.stringify({ image: 'img/bad.png', text: 'corrupt image' }),
        JSON.stringify({ image: 'img/missing.png', text: 'no file' }),
      ],
      { 'a.png': testPng(1), 'bad.png': testPng(2).subarray(0, 50) },
    );
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d, 0x0a])]));
    expect(() => [...readManifest(file)]).toThrow(`${file}: record line 2: missing caption (no "text"; or give a "label" for a classification set)`);
    const bad = new BadRecords();
    expect([...readManifest(file, bad)]).toHaveLength(3);
    expect(bad.examples.map((e) => e.record)).toEqual(['line 2', 'line 3', 'line 6']);
    expect(bad.examples[2]!.reason).toMatch(/not valid UTF-8 \(byte 2: 0xff\)/);
    await expect(importManifest(file, { out: join(tmp(), 'x') })).rejects.toThrow(/line 2: missing caption/);
    const ledger = new BadRecords();
    const info = await importManifest(file, { out: join(tmp(), 'y'), bad: ledger });
    expect(info.splits.train!.count).toBe(1);
    expect(ledger.count).toBe(5);
    expect(ledger.summary()).toMatch(/line 4 \(.*bad\.png\): corrupt PNG/);
    expect(ledger.summary()).toMatch(/line 5 \(.*missing\.png\): cannot read image/);
  });

  it('imports a classification set (labels, class names, templates) and loads it for evaluation', async () => {
    const file = manifestDir(
      ['cat', 'dog', 'cat', 'bird'].map((label, i) => JSON.stringify({ image: `img/${i}.png`, label })),
      Object.fromEntries([0, 1, 2, 3].map((i) => [`${i}.png`, testPng(i)])),
    );
    const out = join(tmp(), 'cls');
    const info = await importManifest(file, { out, templates: ['a photo of a {}.'] });
    expect(info.kind).toBe('classification');
    expect(info.classes).toEqual(['bird', 'cat', 'dog']);
    const { loader, classes, templates } = openClassification(out, 'test', { batchSize: 3, imageSize: 8, workers: 0 });
    expect([classes, templates]).toEqual([['bird', 'cat', 'dog'], ['a photo of a {}.']]);
    const batches = await all(loader);
    expect(batches.flatMap((b) => [...b.labels!])).toEqual([1, 2, 1, 0]);
    expect(batches[0]!.images).toHaveLength(3 * 3 * 8 * 8);
  });
});

// `DataLoader` is also usable on raw shard lists.
it('DataLoader over shard paths', async () => {
  const dir = await pairSet(5);
  const batches = await all(new DataLoader({ shards: datasetShards(dir), kind: 'pairs', batchSize: 2, workers: 0, dropLast: true }));
  expect(batches.map((b) => b.size)).toEqual([2, 2]);
});

describe('training mixes and resuming', () => {
  it('resumes mid-epoch: starting at (epoch, batch) gives exactly the batches an uninterrupted loader gives from there', async () => {
    const dir = await pairSet(45);
    const opts = { batchSize: 4, imageSize: 8, seed: 3, augment: true, workers: 0, epochs: 3, dropLast: true, shuffleBuffer: 16 } as const;
    const whole = await all(openPairs(dir, opts));
    expect(whole).toHaveLength(33);
    const resumed = await all(openPairs(dir, { ...opts, start: { epoch: 1, batch: 5 } }));
    expect(resumed.map((b) => [b.epoch, b.keys])).toEqual(whole.slice(11 + 5).map((b) => [b.epoch, b.keys]));
    expect(Array.from(resumed[0]!.images)).toEqual(Array.from(whole[16]!.images));
  });

  it('mixes pairs and captioned classification sets, each thinned to its fraction', async () => {
    const pairs = await pairSet(40);
    const file = manifestDir(
      Array.from({ length: 60 }, (_, i) => JSON.stringify({ image: `img/${i}.png`, label: ['cat', 'dog', 'bird'][i % 3] })),
      Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`${i}.png`, testPng(i)])),
    );
    const cls = join(tmp(), 'cls');
    await importManifest(file, { out: cls, templates: ['a photo of a {}.', 'a drawing of the {}.'] });
    const loader = openMix([{ dir: pairs }, { dir: cls, split: 'test', fraction: 0.5 }], { batchSize: 100, imageSize: 8, workers: 0, shuffle: false });
    const texts = (await all(loader)).flatMap((b) => b.texts!);
    const captioned = texts.filter((t) => /^a (photo|drawing) of (a|the) (cat|dog|bird)\.$/.test(t));
    expect(texts.length - captioned.length).toBe(40);
    // About half of the 60 labelled images, by key hash: the same ones on every run.
    expect(captioned.length).toBeGreaterThan(18);
    expect(captioned.length).toBeLessThan(42);
    expect(new Set(captioned.map((t) => t.split(' ')[1])).size).toBe(2);
  });
});
