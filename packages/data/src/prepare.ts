/**
 * `mode data prepare`: builds the default data sets once into a cache folder from installed
 * npm and Debian packages, then trains the tokenizer and builds the EDA synonym table from the
 * captions. Each set is written to `NAME.partial/` and renamed when complete, so an
 * interrupted run resumes with the sets it has not finished.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DatasetBuilder, datasetShards, readDatasetInfo, type DatasetInfo, type LabelledSample, type PairSample } from './dataset.js';
import { BadRecords, DataError, report } from './errors.js';
import { toPair } from './records.js';
import { readShards } from './shards.js';
import { OpenAiTokenizer } from './openai-tokenizer.js';
import { Tokenizer } from './tokenizer.js';
import { tokenizerFromJSON, type AnyTokenizerJSON, type TextTokenizer } from './tokenizers.js';
import { buildSynonymTable, loadFrequencies, loadWordNet } from './wordnet.js';
import { emojiEntries, emojiPairs, loadEmojiSheet } from './sources/emoji.js';
import { scanClipart } from './sources/clipart.js';
import { renderInOrder, type RenderTask } from './render-pool.js';
import { fashionMnistSet, idxSamples, missingFiles, mnistSet, readIdxSplit, type IdxSet } from './sources/idx.js';
import { OPENMOJI_TEMPLATES, openmojiItems } from './sources/openmoji.js';
import { OPENCLIPART_DIR } from './sources/paths.js';

/** Bump when an importer's output changes: sets built by an older version are rebuilt. */
export const IMPORTER_VERSION = 1;

export const SOURCES = ['emoji', 'clipart', 'fashion-mnist', 'mnist', 'openmoji'] as const;
export type SourceName = (typeof SOURCES)[number];

/** `$MODE_DATA_DIR`, else `$XDG_CACHE_HOME/mode/data`, else `~/.cache/mode/data`. */
export function defaultDataDir(): string {
  return process.env.MODE_DATA_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mode', 'data');
}

export interface ProgressEvent {
  source: string;
  done: number;
  total: number;
}

export interface PrepareOptions {
  out?: string;
  only?: readonly SourceName[];
  /** Rebuild sets that are already there. */
  force?: boolean;
  skipBad?: boolean;
  vocabSize?: number;
  /** Longest side of rendered clip art, and OpenMoji size. */
  clipartSize?: number;
  openmojiSize?: number;
  /** Threads rasterising SVGs (default: one per core, at most 4; from the compiled dist/ only). */
  threads?: number;
  /** At most this many records per source and split (for quick runs and tests). */
  limit?: number;
  onStart?: (source: string, total: number) => void;
  onProgress?: (e: ProgressEvent) => void;
  onDone?: (source: string, info: DatasetInfo, reused: boolean) => void;
}

export interface PrepareResult {
  out: string;
  sets: Record<string, { info: DatasetInfo; reused: boolean }>;
  tokenizer?: { path: string; vocabSize: number; captions: number };
  synonyms?: { path: string; words: number };
  bad: BadRecords;
  seconds: number;
  bytes: number;
}

const setupFix = 'Fix: bash scripts/setup.sh (or: apt-get install openclipart-svg dataset-fashion-mnist)';

function missingSourceError(what: string, path: string): Error {
  return Object.assign(new Error(`${what} is not installed (${path} is missing). ${setupFix}`), { userFacing: true });
}

/** Bytes under a folder. */
export function folderBytes(dir: string): number {
  let n = 0;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    n += d.isDirectory() ? folderBytes(p) : statSync(p).size;
  }
  return n;
}

export async function prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
  const started = performance.now();
  const out = options.out ?? defaultDataDir();
  const only = new Set<SourceName>(options.only ?? SOURCES);
  const bad = new BadRecords();
  const ledger = options.skipBad ? bad : undefined;
  const limit = options.limit ?? Infinity;
  const sets: PrepareResult['sets'] = {};
  let rebuiltPairs = false;

  const existing = (name: string): DatasetInfo | undefined => {
    if (options.force || !existsSync(join(out, name, 'dataset.json'))) return undefined;
    const info = readDatasetInfo(join(out, name)) as DatasetInfo & { importer?: number; limit?: number | null };
    return info.importer === IMPORTER_VERSION && (info.limit ?? Infinity) === limit ? info : undefined;
  };
  const stamp = { importer: IMPORTER_VERSION, limit: Number.isFinite(limit) ? limit : null };

  const build = async (
    name: SourceName,
    total: () => number,
    run: (b: DatasetBuilder, tick: () => void) => Promise<Partial<DatasetInfo>>,
    meta: Omit<DatasetInfo, 'format' | 'splits' | 'seconds'>,
    shard: { samplesPerShard: number; gzip: boolean },
  ) => {
    const old = existing(name);
    if (old) {
      sets[name] = { info: old, reused: true };
      options.onDone?.(name, old, true);
      return;
    }
    const builder = new DatasetBuilder(join(out, name), meta, shard);
    try {
      const n = total();
      options.onStart?.(name, n);
      let done = 0;
      const tick = () => options.onProgress?.({ source: name, done: ++done, total: n });
      const extra = await run(builder, tick);
      const info = builder.finish({ ...extra, ...(stamp as Partial<DatasetInfo>) });
      sets[name] = { info, reused: false };
      if (meta.kind === 'pairs') rebuiltPairs = true;
      options.onDone?.(name, info, false);
    } catch (e) {
      builder.abort();
      throw e;
    }
  };

  /** Samples of the rendered tasks, in order; blank renders are left out and counted, other failures reported (skipped with --skip-bad). */
  async function* rendered<S>(tasks: RenderTask[], tick: () => void, skipped: Record<string, number>): AsyncGenerator<S> {
    for await (const r of renderInOrder(tasks, options.threads)) {
      if (r.sample) {
        yield r.sample as S;
        continue;
      }
      if (/renders blank/.test(r.error.reason)) skipped['blank render'] = (skipped['blank render'] ?? 0) + 1;
      else {
        report(r.error, ledger);
        skipped['bad'] = (skipped['bad'] ?? 0) + 1;
      }
      tick();
    }
  }

  if (only.has('emoji')) {
    let entries: ReturnType<typeof emojiEntries> = [];
    await build(
      'emoji',
      () => (entries = emojiEntries(ledger).slice(0, limit)).length,
      async (b, tick) => {
        await b.writeSplit('train', emojiPairs(entries, loadEmojiSheet()), tick);
        return {};
      },
      {
        name: 'emoji',
        kind: 'pairs',
        description: 'Noto emoji (64×64 RGBA) captioned with CLDR English labels and tags, Unicode group and subgroup',
        source: 'npm emoji-datasource-google (images), npm emojibase-data (captions)',
        license: 'images Apache-2.0 (Noto Emoji), captions MIT (emojibase) / Unicode CLDR',
      },
      { samplesPerShard: 1000, gzip: false },
    );
  }

  if (only.has('clipart')) {
    if (!existsSync(OPENCLIPART_DIR)) throw missingSourceError('Debian package openclipart-svg', OPENCLIPART_DIR);
    let scan: ReturnType<typeof scanClipart> = { entries: [], skipped: {} };
    const size = options.clipartSize ?? 128;
    await build(
      'clipart',
      () => {
        scan = scanClipart({ bad: ledger });
        scan.entries = scan.entries.slice(0, limit);
        return scan.entries.length;
      },
      async (b, tick) => {
        const skipped = { ...scan.skipped };
        await b.writeSplit(
          'train',
          rendered<PairSample>(
            scan.entries.map((item) => ({ kind: 'clipart', item, size })),
            tick,
            skipped,
          ),
          tick,
        );
        return { skipped };
      },
      {
        name: 'clipart',
        kind: 'pairs',
        description: `Openclipart SVGs rendered with resvg to ${size}×${size} RGB on white, captioned from dc:title, dc:description and dc:subject`,
        source: `Debian openclipart-svg (${OPENCLIPART_DIR})`,
        license: 'public domain',
      },
      { samplesPerShard: 1000, gzip: false },
    );
  }

  const idx = async (set: IdxSet) => {
    const missing = missingFiles(set);
    if (missing.length) throw missingSourceError(set.source, missing[0]!);
    let splits: { train: ReturnType<typeof readIdxSplit>; test: ReturnType<typeof readIdxSplit> } | undefined;
    await build(
      set.name as SourceName,
      () => {
        splits = { train: readIdxSplit(set.splits.train, set.classes.length), test: readIdxSplit(set.splits.test, set.classes.length) };
        return Math.min(splits.train.count, limit) + Math.min(splits.test.count, limit);
      },
      async (b, tick) => {
        for (const split of ['train', 'test'] as const) await b.writeSplit(split, idxSamples(splits![split], `${set.name}-${split}`, limit), tick);
        return { classes: set.classes, templates: set.templates };
      },
      { name: set.name, kind: 'classification', description: set.description, source: set.source, license: set.license },
      { samplesPerShard: 10000, gzip: true },
    );
  };
  if (only.has('fashion-mnist')) await idx(fashionMnistSet());
  if (only.has('mnist')) await idx(mnistSet());

  if (only.has('openmoji')) {
    let om: ReturnType<typeof openmojiItems> = { items: [], classes: [], subgroups: [] };
    const size = options.openmojiSize ?? 64;
    await build(
      'openmoji',
      () => {
        om = openmojiItems();
        om.items = om.items.slice(0, limit);
        return om.items.length;
      },
      async (b, tick) => {
        const skipped: Record<string, number> = {};
        await b.writeSplit(
          'test',
          rendered<LabelledSample>(
            om.items.map((item) => ({ kind: 'openmoji', item, size })),
            tick,
            skipped,
          ),
          tick,
        );
        return { classes: om.classes, templates: OPENMOJI_TEMPLATES, skipped, subgroups: om.subgroups } as Partial<DatasetInfo>;
      },
      {
        name: 'openmoji',
        kind: 'classification',
        description: `OpenMoji colour SVGs rendered to ${size}×${size}, labelled by Unicode emoji subgroup (skin tones, components and extras left out)`,
        source: 'npm openmoji',
        license: 'CC BY-SA 4.0 (OpenMoji, HfG Schwäbisch Gmünd)',
      },
      { samplesPerShard: 1000, gzip: false },
    );
  }

  // Tokenizer and EDA synonyms from every pairs set's captions.
  const result: PrepareResult = { out, sets, bad, seconds: 0, bytes: 0 };
  const pairDirs = ['emoji', 'clipart'].map((n) => join(out, n)).filter((d) => existsSync(join(d, 'dataset.json')));
  if (pairDirs.length) {
    const tokPath = join(out, 'tokenizer.json');
    const synPath = join(out, 'synonyms.json');
    const vocabSize = options.vocabSize ?? 4096;
    const stale =
      rebuiltPairs ||
      options.force ||
      !existsSync(tokPath) ||
      !existsSync(synPath) ||
      (JSON.parse(readFileSync(tokPath, 'utf8')) as { requestedVocabSize?: number }).requestedVocabSize !== vocabSize;
    const captions: string[] = [];
    for await (const raw of readShards(
      pairDirs.flatMap((d) => datasetShards(d)),
      { bad: ledger },
    )) {
      try {
        captions.push(toPair(raw).text);
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        report(e, ledger);
      }
    }
    if (stale) {
      options.onStart?.('tokenizer', 2);
      const tok = Tokenizer.train(captions, { vocabSize });
      writeFileSync(tokPath, JSON.stringify({ ...tok.toJSON(), requestedVocabSize: vocabSize, vocabSize: tok.vocabSize, captions: captions.length }) + '\n');
      options.onProgress?.({ source: 'tokenizer', done: 1, total: 2 });
      const vocabulary = new Set(captions.flatMap((c) => c.toLowerCase().match(/\p{L}+/gu) ?? []));
      const table = buildSynonymTable(vocabulary, loadWordNet(), loadFrequencies());
      writeFileSync(synPath, JSON.stringify(table) + '\n');
      options.onProgress?.({ source: 'tokenizer', done: 2, total: 2 });
    }
    const tokJson = JSON.parse(readFileSync(tokPath, 'utf8')) as { vocabSize: number };
    result.tokenizer = { path: tokPath, vocabSize: tokJson.vocabSize, captions: captions.length };
    result.synonyms = { path: synPath, words: Object.keys(JSON.parse(readFileSync(synPath, 'utf8')) as object).length };
  }

  result.seconds = (performance.now() - started) / 1000;
  result.bytes = existsSync(out) ? folderBytes(out) : 0;
  writeFileSync(
    join(out, 'manifest.json'),
    JSON.stringify(
      {
        format: 'mode-data-cache-1',
        sets: Object.fromEntries(
          Object.entries(sets).map(([k, v]) => [
            k,
            { kind: v.info.kind, splits: Object.fromEntries(Object.entries(v.info.splits).map(([s, i]) => [s, i.count])) },
          ]),
        ),
        tokenizer: result.tokenizer ? 'tokenizer.json' : undefined,
        synonyms: result.synonyms ? 'synonyms.json' : undefined,
      },
      null,
      2,
    ) + '\n',
  );
  return result;
}

/** The cache's tokenizer (after `mode data prepare`). */
export function loadTokenizer(dir = defaultDataDir()): TextTokenizer {
  return readTokenizer(join(dir, 'tokenizer.json'));
}

/**
 * A tokenizer file: the project's (`mode data tokenizer --out`, or the cache's tokenizer.json), or
 * OpenAI CLIP's merges (`bpe_simple_vocab_16e6.txt.gz` as OpenAI and OpenCLIP ship it, gzipped or
 * not). A bad one is an error naming it.
 */
export function readTokenizer(path: string): TextTokenizer {
  if (!existsSync(path))
    throw Object.assign(new Error(`no tokenizer at ${path}. Fix: npx mode data prepare, or mode data tokenizer --data PATTERN --out ${path}`), {
      userFacing: true,
    });
  try {
    const raw = readFileSync(path);
    const text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
    if (!text.trimStart().startsWith('{')) return OpenAiTokenizer.fromMergesFile(text, path);
    return tokenizerFromJSON(JSON.parse(text) as AnyTokenizerJSON);
  } catch (e) {
    throw Object.assign(
      new Error(
        `${path}: not a tokenizer (${(e as Error).message}). Fix: a mode tokenizer JSON (mode data tokenizer) or OpenAI's bpe_simple_vocab_16e6.txt.gz`,
      ),
      { userFacing: true },
    );
  }
}

/** `--tokenizer FILE` when given, else the data folder's tokenizer.json. */
export const tokenizerFor = (o: { tokenizer?: string; dataDir?: string }): TextTokenizer =>
  o.tokenizer ? readTokenizer(o.tokenizer) : loadTokenizer(o.dataDir);

/** The cache's EDA synonym table (after `mode data prepare`). */
export function loadSynonyms(dir = defaultDataDir()): Record<string, string[]> {
  const path = join(dir, 'synonyms.json');
  if (!existsSync(path)) throw Object.assign(new Error(`no synonym table at ${path}. Fix: npx mode data prepare`), { userFacing: true });
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, string[]>;
}

export type { PairSample };
