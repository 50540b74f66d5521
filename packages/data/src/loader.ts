/**
 * The data loader: streams shards (order shuffled per epoch, then a shuffle buffer, as
 * WebDataset does), groups records into batch jobs, and builds batches on worker threads
 * ahead of the consumer (`prefetch` batches in flight) so the device is not left waiting.
 * Batches come out in the same order with the same contents whatever the worker count.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DECLIP_AUGMENT, type AugmentConfig } from './augment.js';
import { ArrayPool, BatchBuilder, DEFAULT_SPEC, type Batch, type BatchJob, type BatchSpec, type JobSample } from './batch.js';
import { BadRecords, DataError, report } from './errors.js';
import { readDatasetInfo, type SplitInfo } from './dataset.js';
import { classFolderTree, countSamples, folderSamples, labelFiles, resolveShardSet, splitSpecs, type ShardSet } from './patterns.js';
import { toClass, toPair } from './records.js';
import { Rng, hashString } from './rng.js';
import { readShards, type RawSample } from './shards.js';
import { defaultIndexDir, indexedSample, readIndex, readIndexedSample, type IndexedSample, type ShardIndex } from './shard-index.js';
import type { TextTokenizer } from './tokenizers.js';
import type { SynonymTable } from './wordnet.js';

export interface LoaderOptions {
  shards: string[];
  /** Samples from elsewhere than tar shards (a class-folder tree), read in order instead of `shards`. */
  samples?: () => AsyncIterable<RawSample>;
  kind: 'pairs' | 'classification';
  batchSize: number;
  imageSize?: number;
  seed?: number;
  /** DeCLIP augmentations (true: the defaults); false for CLIP's eval transform. Default false. */
  augment?: boolean | AugmentConfig;
  views?: 1 | 2;
  /** Without `augment`: OpenCLIP's training crop, RandomResizedCrop(scale = cropScale), bicubic. Default: the eval transform. */
  cropScale?: readonly [number, number];
  tokenizer?: TextTokenizer;
  contextLength?: number;
  /** A second caption per pair edited by EDA. */
  eda?: { synonyms: SynonymTable; p?: number };
  shuffle?: boolean;
  /** Records held for shuffling across shard boundaries. */
  shuffleBuffer?: number;
  /** Passes over the data (Infinity: endless). */
  epochs?: number;
  dropLast?: boolean;
  /** Count and report bad records (`loader.bad`) instead of throwing. */
  skipBad?: boolean;
  /** Worker threads building batches; 0 builds them in-process. Default 1. */
  workers?: number;
  /** Batches built ahead of the consumer. Default 2 per worker (2 in-process). */
  prefetch?: number;
  /** Hold out a deterministic fraction of records by key hash: `take` selects which side. */
  holdout?: { fraction: number; take: 'train' | 'val' };
  /**
   * Per shard (by path): keep a deterministic `fraction` of its records (by key hash, a different
   * hash than the holdout's), and, for a classification shard read as pairs, caption each image
   * from a prompt template with its class name (the template picked by key hash).
   */
  shardOptions?: Record<string, ShardOptions>;
  /**
   * Resume mid-epoch: start at this epoch, skipping its first `batch` batches (they are read and
   * shuffled as before, not built), so the order continues exactly where a run stopped.
   */
  start?: { epoch: number; batch: number };
  /** Classification: labels must be below this. */
  numClasses?: number;
  /** Only the records whose key is in this set (a data expert's pairs), after the holdout. */
  include?: ReadonlySet<string>;
  mean?: readonly number[];
  std?: readonly number[];
  /** Worker entry; default `prefetch-worker.js` beside this module (present in dist/ only). */
  workerUrl?: URL;
  /**
   * Where shard indexes are (`mode data index`; default `defaultIndexDir()`), false for none. When
   * every shard has a current index, samples are admitted and shuffled from the indexes and read by
   * seeking: a resume reads only the samples it still needs. The order is the same either way.
   */
  indexDir?: string | false;
}

/** A sample the index admitted, read (by seeking) only when its batch is built. */
interface IndexRef {
  shard: string;
  sample: IndexedSample;
}

export interface ShardOptions {
  /** The source's weight: below 1 the share of its records kept, above 1 each record repeated (see `copies`). */
  fraction?: number;
  captions?: { classes: readonly string[]; templates: readonly string[] };
}

/** Whether a record is in a set thinned to `fraction` (by a hash of its key: the same records every run). */
export const inFraction = (key: string, fraction: number | undefined) => fraction === undefined || hashString(`${key}\u0000sample`) / 4294967296 < fraction;

/**
 * How many times a record of a source weighted `weight` appears in an epoch: 0 or 1 below 1 (the
 * record is in the kept share or not), ⌊w⌋ or ⌊w⌋ + 1 above (OpenCLIP's upsampling factors,
 * decided by the same key hash, so w records an epoch on average and the same every run).
 */
export function copies(key: string, weight: number | undefined): number {
  if (weight === undefined) return 1;
  const whole = Math.floor(weight);
  return whole + (inFraction(key, weight - whole) ? 1 : 0);
}

/** A classification record's caption: one of its set's templates, chosen by a hash of the key (so the same every epoch). */
export function templateCaption(key: string, label: number, captions: NonNullable<ShardOptions['captions']>): string {
  const t = captions.templates;
  return t[hashString(key) % t.length]!.replace('{}', captions.classes[label]!);
}

/** The compiled worker entry beside this module, or undefined when running from TypeScript sources. */
export function defaultWorkerUrl(): URL | undefined {
  const url = new URL('./prefetch-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : undefined;
}

interface WorkerReply {
  id: number;
  batch?: Batch;
  error?: { data?: { file: string; record: string | number | undefined; reason: string }; message?: string };
}

interface Pending {
  promise: Promise<Batch>;
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly bad: BadRecords | undefined;
  readonly spec: BatchSpec;
  /** 'worker' when batches are built on worker threads, 'in-process' otherwise. */
  readonly mode: 'worker' | 'in-process';
  private readonly workerUrl: URL | undefined;
  private readonly workers: number;

  constructor(readonly options: LoaderOptions) {
    this.bad = options.skipBad ? new BadRecords() : undefined;
    const augment = options.augment === true ? DECLIP_AUGMENT : options.augment || null;
    this.spec = {
      ...DEFAULT_SPEC,
      kind: options.kind,
      imageSize: options.imageSize ?? DEFAULT_SPEC.imageSize,
      views: options.views ?? 1,
      augment,
      cropScale: options.cropScale ?? null,
      seed: options.seed ?? 0,
      mean: options.mean ?? DEFAULT_SPEC.mean,
      std: options.std ?? DEFAULT_SPEC.std,
      tokenizer: options.tokenizer ? options.tokenizer.toJSON() : null,
      contextLength: options.contextLength ?? 77,
      eda: options.eda ? { synonyms: options.eda.synonyms, p: options.eda.p ?? 0.1 } : null,
      skipBad: !!options.skipBad,
    };
    const requested = options.workers ?? 1;
    this.workerUrl = requested > 0 ? (options.workerUrl ?? defaultWorkerUrl()) : undefined;
    this.workers = this.workerUrl ? requested : 0;
    this.mode = this.workers > 0 ? 'worker' : 'in-process';
  }

  /** Bytes read from shards so far (streamed, or by seeking with an index). */
  bytesRead = 0;

  /** Released batches' buffers: reused in-process, or sent back to a worker with its next job. */
  private readonly pool = new ArrayPool();

  /**
   * Hands a batch's arrays back for reuse by later batches: call it once the batch is consumed
   * (uploaded, copied) and never touch its arrays again. Optional; unreleased batches are
   * fresh memory each time, which costs page faults (see `ArrayPool`).
   */
  release(batch: Batch): void {
    this.pool.give([batch.images, batch.images2].flatMap((a) => (a ? [a.buffer as ArrayBuffer] : [])));
  }

  /** Every shard's current index, or null when one is missing, stale or gzipped (then everything streams). */
  indexes(): Map<string, ShardIndex> | null {
    const dir = this.options.indexDir ?? defaultIndexDir();
    if (dir === false || this.options.samples || !this.options.shards.length) return null;
    const found = new Map<string, ShardIndex>();
    for (const shard of this.options.shards) {
      const index = readIndex(shard, dir);
      if (!index) return null;
      found.set(shard, index);
    }
    return found;
  }

  /** The admitted samples of `shards` in order: read and parsed (streaming), or as index references. */
  private async *admitted(shards: readonly string[], indexes: Map<string, ShardIndex> | null): AsyncGenerator<JobSample | IndexRef> {
    const o = this.options;
    if (!indexes) {
      const onBytes = (n: number) => (this.bytesRead += n);
      for await (const raw of o.samples ? o.samples() : readShards(shards, { bad: this.bad, onBytes })) {
        const n = copies(raw.key, o.shardOptions?.[raw.shard]?.fraction);
        const s = n > 0 ? this.toJobSample(raw) : undefined;
        for (let c = 0; s && c < n; c++) yield s;
      }
      return;
    }
    // The same decisions as streaming, made on what the index holds (text members; images as placeholders).
    for (const shard of shards) {
      const index = indexes.get(shard)!;
      const weight = o.shardOptions?.[shard]?.fraction;
      for (const sample of index.samples) {
        const n = copies(sample.key, weight);
        if (n > 0 && this.toJobSample(indexedSample(shard, sample))) for (let c = 0; c < n; c++) yield { shard, sample };
      }
      if (index.truncated) report(DataError.fromJSON(index.truncated), this.bad);
    }
  }

  /** A batch's sample: an index reference is read now, by seeking. */
  private materialize(x: JobSample | IndexRef): JobSample {
    if (!('sample' in x)) return x;
    const s = this.toJobSample(readIndexedSample(x.shard, x.sample, (n) => (this.bytesRead += n)));
    if (!s) throw new DataError(x.shard, x.sample.key, 'no longer what its index says: the shard changed. Fix: mode data index it again');
    return s;
  }

  /** Batch jobs in order: per epoch, shards shuffled, records through a shuffle buffer, cut into batches. */
  async *jobs(): AsyncGenerator<BatchJob> {
    const o = this.options;
    const seed = o.seed ?? 0;
    const epochs = o.epochs ?? 1;
    const shuffle = o.shuffle ?? true;
    const first = o.start ?? { epoch: 0, batch: 0 };
    const indexes = this.indexes();
    for (let epoch = first.epoch; epoch < epochs; epoch++) {
      let skip = epoch === first.epoch ? first.batch : 0;
      const shards = shuffle ? new Rng([seed, epoch, 0x5a]).shuffle(o.shards.slice()) : o.shards;
      const rng = new Rng([seed, epoch, 0xb0]);
      const buffer: (JobSample | IndexRef)[] = [];
      const size = shuffle ? (o.shuffleBuffer ?? 1000) : 0;
      let batch: (JobSample | IndexRef)[] = [];
      let start = 0;
      const materialize = (x: JobSample | IndexRef) => this.materialize(x);
      // Batches before a resume's cursor are counted, not read (with an index) nor built.
      const emit = function* (s: JobSample | IndexRef): Generator<BatchJob> {
        batch.push(s);
        if (batch.length === o.batchSize) {
          if (skip > 0) skip--;
          else yield { epoch, start, samples: batch.map(materialize) };
          start += batch.length;
          batch = [];
        }
      };
      for await (const s of this.admitted(shards, indexes)) {
        if (size <= 0) {
          yield* emit(s);
          continue;
        }
        if (buffer.length < size) {
          buffer.push(s);
          continue;
        }
        const i = rng.int(size);
        const out = buffer[i]!;
        buffer[i] = s;
        yield* emit(out);
      }
      rng.shuffle(buffer);
      for (const s of buffer) yield* emit(s);
      if (batch.length && !o.dropLast) yield { epoch, start, samples: batch.map(materialize) };
      // An endless loader over too little data would spin without ever yielding.
      if (start === 0 && (o.dropLast || !batch.length) && !Number.isFinite(epochs))
        throw Object.assign(new Error(`the data holds ${batch.length} records after filtering, fewer than one batch of ${o.batchSize}`), { userFacing: true });
    }
  }

  private toJobSample(raw: Parameters<typeof toPair>[0]): JobSample | undefined {
    const o = this.options;
    if (o.holdout) {
      const inVal = hashString(raw.key) / 4294967296 < o.holdout.fraction;
      if (inVal !== (o.holdout.take === 'val')) return undefined;
    }
    if (o.include && !o.include.has(raw.key)) return undefined;
    const so = o.shardOptions?.[raw.shard];
    try {
      if (so?.captions && o.kind === 'pairs') {
        const r = toClass(raw, so.captions.classes.length);
        return { key: r.key, source: r.source, image: new Uint8Array(r.image), text: templateCaption(r.key, r.label, so.captions) };
      }
      // Copy out of tar-stream's buffers: a view would drag its whole backing store to the worker.
      if (o.kind === 'classification') {
        const r = toClass(raw, o.numClasses);
        return { key: r.key, source: r.source, image: new Uint8Array(r.image), label: r.label };
      }
      const r = toPair(raw);
      return { key: r.key, source: r.source, image: new Uint8Array(r.image), text: r.text, json: r.json };
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      report(e, this.bad);
      return undefined;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    const build = this.workers > 0 ? this.workerPool() : this.inProcess();
    const depth = Math.max(1, this.options.prefetch ?? 2 * Math.max(1, this.workers));
    const queue: Pending[] = [];
    const jobs = this.jobs();
    let done = false;
    const fill = async () => {
      while (!done && queue.length < depth) {
        const next = await jobs.next();
        if (next.done) {
          done = true;
          break;
        }
        const promise = build.run(next.value);
        promise.catch(() => undefined); // surfaced when awaited in order
        queue.push({ promise });
      }
    };
    try {
      await fill();
      while (queue.length) {
        const batch = await queue.shift()!.promise;
        await fill();
        for (const b of batch.bad) this.bad?.add(b);
        yield batch;
      }
    } finally {
      await jobs.return(undefined);
      await build.close();
    }
  }

  private inProcess(): { run(job: BatchJob): Promise<Batch>; close(): Promise<void> } {
    const builder = new BatchBuilder(this.spec, this.pool);
    return {
      // Yield to the event loop between batches, as a worker's reply would.
      run: (job) => new Promise((resolve, reject) => setImmediate(() => builder.build(job).then(resolve, reject))),
      close: async () => undefined,
    };
  }

  private workerPool(): { run(job: BatchJob): Promise<Batch>; close(): Promise<void> } {
    const waiting = new Map<number, { resolve(b: Batch): void; reject(e: unknown): void }>();
    const workers = Array.from({ length: this.workers }, () => {
      const w = new Worker(this.workerUrl!, { workerData: { spec: this.spec } });
      w.on('message', (msg: WorkerReply) => {
        const p = waiting.get(msg.id);
        if (!p) return;
        waiting.delete(msg.id);
        if (msg.batch) p.resolve(msg.batch);
        else if (msg.error?.data) p.reject(DataError.fromJSON(msg.error.data));
        else p.reject(new Error(`loader worker: ${msg.error?.message ?? 'unknown error'}`));
      });
      w.on('error', (e) => {
        for (const p of waiting.values()) p.reject(e);
        waiting.clear();
      });
      w.on('exit', (code) => {
        if (!waiting.size) return;
        for (const p of waiting.values()) p.reject(new Error(`loader worker exited (code ${code}) with batches in flight`));
        waiting.clear();
      });
      return w;
    });
    let next = 0;
    const inflight = new Set<Promise<Batch>>();
    return {
      run: (job) => {
        const p = new Promise<Batch>((resolve, reject) => {
          const id = next++;
          waiting.set(id, { resolve, reject });
          const spare = this.pool.take();
          workers[id % workers.length]!.postMessage({ id, job, spare }, [...job.samples.map((s) => s.image.buffer as ArrayBuffer), ...spare]);
        });
        inflight.add(p);
        const done = () => inflight.delete(p);
        p.then(done, done);
        return p;
      },
      // Let batches in flight finish first: terminating a worker inside zlib (PNG decoding) can
      // abort the whole process in Node 20 ("close before init"), seen when a consumer stops early.
      close: async () => {
        await Promise.allSettled([...inflight]);
        await Promise.all(workers.map((w) => w.terminate()));
      },
    };
  }
}

export type OpenOptions = Omit<LoaderOptions, 'shards' | 'kind' | 'numClasses'>;

/** A loader over pairs: data set folders, folders of shards, brace patterns or globs (see `resolveShardSet`). */
export function openPairs(dir: string | string[], options: OpenOptions): DataLoader {
  const dirs = Array.isArray(dir) ? dir : [dir];
  const shards = splitSpecs(dirs).flatMap((d) => {
    const set = resolveShardSet(d);
    if (set.kind !== 'pairs') throw Object.assign(new Error(`${d} holds a ${set.kind} set, not image-text pairs`), { userFacing: true });
    return set.shards;
  });
  return new DataLoader({ ...options, shards, kind: 'pairs' });
}

/**
 * A loader over one split of a classification set (a data set folder, a CLIP_benchmark folder, or
 * labelled shards by pattern); `classes` and `templates` come with it unless given (`labels`).
 */
export function openClassification(
  dir: string,
  split: string | undefined,
  options: OpenOptions,
  labels: { classes?: readonly string[]; templates?: readonly string[] } = {},
): { loader: DataLoader; classes: string[]; templates: string[] } {
  const tree = classFolderTree(dir);
  const set: ShardSet = tree ? { name: dir, kind: 'classification', shards: [], classes: tree.folders, ...labelFiles(tree.root) } : resolveShardSet(dir, split);
  if (set.kind !== 'classification')
    throw Object.assign(new Error(`${dir} is not a classification set (its samples have no .cls label)`), { userFacing: true });
  const classes = [...(labels.classes ?? set.classes ?? [])];
  if (!classes.length)
    throw Object.assign(
      new Error(`${dir}: no class names (no classnames.txt beside its shards or above them). Fix: pass a class-names file, one name per line`),
      {
        userFacing: true,
      },
    );
  if (tree && classes.length !== tree.folders.length)
    throw Object.assign(
      new Error(`${dir}: ${classes.length} class names for ${tree.folders.length} class folders. Fix: one name per folder, in the folders' sorted order`),
      {
        userFacing: true,
      },
    );
  const loader = new DataLoader({
    shuffle: false,
    ...options,
    shards: set.shards,
    ...(tree ? { samples: () => folderSamples(tree) } : {}),
    kind: 'classification',
    numClasses: classes.length,
  });
  return { loader, classes, templates: [...(labels.templates ?? set.templates ?? ['a photo of a {}.'])] };
}

/**
 * One source of a training mix: a data set folder or shards by pattern (`resolveShardSet`), its
 * split (classification: default `train`), its weight (`fraction`: below 1 a share of it, above 1 upsampled).
 */
export interface MixSource {
  dir: string;
  split?: string;
  fraction?: number;
}

/** A mix source's shards, and the captions of a classification set read as pairs. */
function mixShards(src: MixSource): { shards: string[]; captions: ShardOptions['captions'] | null } {
  const set = resolveShardSet(src.dir, src.split);
  if (set.kind === 'pairs') return { shards: set.shards, captions: null };
  if (!set.classes) throw Object.assign(new Error(`${src.dir}: classification set without class names (no classnames.txt)`), { userFacing: true });
  return { shards: set.shards, captions: { classes: set.classes, templates: set.templates ?? ['a photo of a {}.'] } };
}

/**
 * About how many samples a mix holds after thinning (exact before it): a data set's counts from
 * its manifest, other shards counted from their tar headers.
 */
export function mixCount(sources: readonly MixSource[]): number {
  return sources.reduce((total, src) => {
    const set = resolveShardSet(src.dir, src.split);
    const manifest = existsSync(join(src.dir, 'dataset.json')) ? readDatasetInfo(src.dir) : undefined;
    const bySplit = manifest && new Map(Object.values(manifest.splits).flatMap((sp) => sp.shards.map((f) => [join(src.dir, f), sp] as const)));
    let n = 0;
    const counted = new Set<SplitInfo>();
    for (const shard of set.shards) {
      const sp = bySplit?.get(shard);
      if (!sp) n += countSamples(shard);
      else if (!counted.has(sp)) {
        counted.add(sp);
        n += sp.count;
      }
    }
    return total + Math.round(n * (src.fraction ?? 1));
  }, 0);
}

/**
 * Image-text pairs from several data sets: pairs sets as they are, classification sets captioned
 * from their prompt templates (see ShardOptions), each thinned to its `fraction`.
 */
export function openMix(sources: readonly MixSource[], options: OpenOptions): DataLoader {
  const shards: string[] = [];
  const shardOptions: Record<string, ShardOptions> = {};
  for (const src of sources) {
    const { shards: files, captions } = mixShards(src);
    for (const f of files) {
      shards.push(f);
      shardOptions[f] = {
        ...(src.fraction !== undefined && src.fraction !== 1 ? { fraction: src.fraction } : {}),
        ...(captions ? { captions } : {}),
      };
    }
  }
  return new DataLoader({ ...options, shards, kind: 'pairs', shardOptions });
}

/** A pair's caption without its image, and the ground truth it carries (for cluster purity). */
export interface CaptionRecord {
  shard: string;
  key: string;
  text: string;
  /** The emoji group, the clip-art category, the class name; null when the record carries none. */
  group: string | null;
}

/**
 * The captions of a training mix in shard order, exactly as `openMix` captions and thins them
 * (images are not decoded): what the clusterer embeds.
 */
export async function* mixCaptions(sources: readonly MixSource[], options: { skipBad?: BadRecords } = {}): AsyncGenerator<CaptionRecord> {
  for (const src of sources) {
    const { shards, captions } = mixShards(src);
    for (const shard of shards) {
      for await (const raw of readShards([shard], { bad: options.skipBad })) {
        // Each caption once, whatever the weight: the clusterer assigns pairs by key.
        if (!inFraction(raw.key, src.fraction !== undefined && src.fraction < 1 ? src.fraction : undefined)) continue;
        try {
          if (captions) {
            const r = toClass(raw, captions.classes.length);
            yield { shard, key: r.key, text: templateCaption(r.key, r.label, captions), group: captions.classes[r.label]! };
          } else {
            const r = toPair(raw);
            const j = (r.json ?? {}) as { group?: unknown; category?: unknown };
            const group = typeof j.group === 'string' ? j.group : typeof j.category === 'string' ? j.category : null;
            yield { shard, key: r.key, text: r.text, group };
          }
        } catch (e) {
          if (!(e instanceof DataError) || !options.skipBad) throw e;
          report(e, options.skipBad);
        }
      }
    }
  }
}

/**
 * The default training mix: every emoji and clip-art pair, and 5% of the Fashion-MNIST and MNIST
 * training images (3,000 each) captioned from their prompt templates.
 */
export function defaultMix(dataDir: string): MixSource[] {
  return [
    { dir: join(dataDir, 'emoji') },
    { dir: join(dataDir, 'clipart') },
    { dir: join(dataDir, 'fashion-mnist'), fraction: 0.05 },
    { dir: join(dataDir, 'mnist'), fraction: 0.05 },
  ];
}
