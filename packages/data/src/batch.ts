/**
 * Turning a list of stored records into model inputs: image decode (any format, `decodeImage`),
 * the image transform (DeCLIP's views, OpenCLIP's training crop or CLIP's eval transform),
 * normalisation to CHW, tokenisation, EDA. Pure and deterministic given the seed and each
 * sample's position, so the same batch comes out in-process or on a worker thread.
 */
import { augmentView, cropBox, type AugmentConfig } from './augment.js';
import { decodeImage, decodeRegion, type Fit } from './decode.js';
import { eda } from './eda.js';
import { DataError, type BadRecord } from './errors.js';
import { CLIP_MEAN, CLIP_STD, normalizeCHW, resizeToCHW, toCHW, toFloat } from './image.js';
import { Rng } from './rng.js';
import { tokenizerFromJSON, type AnyTokenizerJSON, type TextTokenizer } from './tokenizers.js';
import type { SynonymTable } from './wordnet.js';

/** Everything a batch builder needs; plain data, so it can be sent to a worker. */
export interface BatchSpec {
  kind: 'pairs' | 'classification';
  imageSize: number;
  /** Augmented views per image (DeCLIP: 2). Ignored without `augment`. */
  views: 1 | 2;
  /** DeCLIP augmentations (in JavaScript, on the decoded image); null for `cropScale`'s or the eval transform. */
  augment: AugmentConfig | null;
  /**
   * Without `augment`: OpenCLIP's training transform, RandomResizedCrop(imageSize, scale = cropScale,
   * ratio 3/4–4/3) with bicubic resampling (done by libvips). null: CLIP's eval transform, shorter
   * side to imageSize (bicubic), centre crop.
   */
  cropScale: readonly [number, number] | null;
  seed: number;
  mean: readonly number[];
  std: readonly number[];
  /** Transparent pixels are composited over this colour (RGB in [0, 1]). */
  background: [number, number, number];
  tokenizer: AnyTokenizerJSON | null;
  contextLength: number;
  /** EDA: a second caption per pair, edited with one of the three operations. */
  eda: { synonyms: SynonymTable; p: number } | null;
  skipBad: boolean;
}

export interface JobSample {
  key: string;
  /** Shard the record came from (named in errors). */
  source: string;
  /** The image file's bytes (JPEG, PNG, WebP, ...). */
  image: Uint8Array;
  text?: string;
  label?: number;
  json?: unknown;
}

export interface BatchJob {
  epoch: number;
  /** Position of the job's first sample in the epoch's order: seeds each sample's randomness. */
  start: number;
  samples: JobSample[];
}

export interface Batch {
  /** Samples in the batch (fewer than asked when bad records were skipped, or at the end of an epoch). */
  size: number;
  epoch: number;
  keys: string[];
  /** size × 3 × imageSize × imageSize, normalised. */
  images: Float32Array;
  /** The second augmented view, when `views` is 2. */
  images2?: Float32Array;
  texts?: string[];
  /** size × contextLength token ids (start, tokens, end, padding 0). */
  tokens?: Int32Array;
  edaTexts?: string[];
  edaTokens?: Int32Array;
  labels?: Int32Array;
  json?: unknown[];
  /** Records of this batch skipped as bad (`skipBad`). */
  bad: BadRecord[];
}

/** Buffers to transfer (not copy) when posting a batch between threads. */
export const transferList = (b: Batch): ArrayBuffer[] =>
  [b.images, b.images2, b.tokens, b.edaTokens, b.labels].filter((a): a is Float32Array | Int32Array => !!a).map((a) => a.buffer as ArrayBuffer);

export const DEFAULT_SPEC: Omit<BatchSpec, 'kind'> = {
  imageSize: 64,
  views: 1,
  augment: null,
  cropScale: null,
  seed: 0,
  mean: CLIP_MEAN,
  std: CLIP_STD,
  background: [1, 1, 1],
  tokenizer: null,
  contextLength: 77,
  eda: null,
  skipBad: false,
};

/**
 * Float32 buffers handed back by the consumer (`DataLoader.release`) for the next batches. A fresh
 * 38 MB batch costs its first touch page by page, the largest single cost of building one where
 * page faults are dear (measured 110 ms per 64 × 224² batch on a 2-core VM: 1.7 ms per image);
 * a reused one costs nothing. Only whole buffers of the exact byte length are reused, so a view
 * never hides a larger backing store.
 */
export class ArrayPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly max = 8) {}

  /** A Float32Array of `length`, reused where a buffer of its size was given back (its old values stay until overwritten). */
  float32(length: number): Float32Array {
    const i = this.free.findIndex((b) => b.byteLength === length * 4);
    return i < 0 ? new Float32Array(length) : new Float32Array(this.free.splice(i, 1)[0]!);
  }

  /** Keeps `buffers` for reuse (at most `max`; the oldest beyond are dropped). */
  give(buffers: readonly ArrayBuffer[]): void {
    for (const b of buffers) if (b.byteLength > 0 && !this.free.includes(b)) this.free.push(b);
    this.free.splice(0, Math.max(0, this.free.length - this.max));
  }

  /** Everything kept (to send to a worker's own pool). */
  take(): ArrayBuffer[] {
    return this.free.splice(0);
  }

  get size(): number {
    return this.free.length;
  }
}

/** Writes one sample's views, normalised CHW, into the batch's arrays at `offset`. */
type Writer = (views: readonly Float32Array[], offset: number) => void;

export class BatchBuilder {
  private readonly tokenizer: TextTokenizer | undefined;

  constructor(
    readonly spec: BatchSpec,
    readonly pool = new ArrayPool(),
  ) {
    this.tokenizer = spec.tokenizer ? tokenizerFromJSON(spec.tokenizer) : undefined;
  }

  /** One sample decoded and transformed, ready to be written into its place in the batch. */
  private async pixels(s: JobSample, epoch: number, index: number): Promise<Writer> {
    const { spec } = this;
    const S = spec.imageSize;
    const where = { file: s.source, record: s.key };
    const decoded = (fit: Fit) => decodeImage(s.image, where, fit, { rgb: true });
    if (spec.augment) {
      // DeCLIP's views resample in JavaScript: a large image is first shrunk by libvips to 4× the
      // output (its crops keep at least 0.9× the output's resolution at scale 0.2).
      const img = toFloat(await decoded({ kind: 'shorter', max: 4 * S }), spec.background);
      const views = Array.from({ length: spec.views }, (_, v) => augmentView(img, S, new Rng([spec.seed, epoch, index, v]), spec.augment!));
      return (outs, offset) => views.forEach((view, v) => normalizeCHW(view, outs[v]!, offset, spec.mean, spec.std));
    }
    const scale = spec.cropScale;
    const rng = new Rng([spec.seed, epoch, index, 0]);
    const fit: Fit = scale ? { kind: 'crop', size: S, box: (W, H) => cropBox(W, H, rng, scale) } : { kind: 'cover', size: S };
    const { image, resize } = await decodeRegion(s.image, where, fit, { rgb: true });
    return (outs, offset) =>
      resize
        ? resizeToCHW(image, resize.outW, resize.outH, resize.window, spec.background, spec.mean, spec.std, outs[0]!, offset)
        : toCHW(image, spec.background, spec.mean, spec.std, outs[0]!, offset);
  }

  async build(job: BatchJob): Promise<Batch> {
    const { spec } = this;
    const S = spec.imageSize;
    const per = 3 * S * S;
    const views = spec.augment ? spec.views : 1;
    const kept: { s: JobSample; index: number; write: Writer }[] = [];
    const bad: BadRecord[] = [];
    // Every image of the batch in flight at once: libvips decodes on its own threads.
    const settled = await Promise.allSettled(job.samples.map((s, i) => this.pixels(s, job.epoch, job.start + i)));
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') return kept.push({ s: job.samples[i]!, index: job.start + i, write: r.value });
      const e = r.reason as unknown;
      if (!(e instanceof DataError) || !spec.skipBad) throw e;
      bad.push(e.toJSON());
    });
    const n = kept.length;
    // Each sample is written straight into its place: no per-sample array, no copy.
    const images = this.pool.float32(n * per);
    const images2 = views === 2 ? this.pool.float32(n * per) : undefined;
    const outs = images2 ? [images, images2] : [images];
    kept.forEach((k, i) => k.write(outs, i * per));
    const batch: Batch = { size: n, epoch: job.epoch, keys: kept.map((k) => k.s.key), images, bad };
    if (images2) batch.images2 = images2;
    if (spec.kind === 'classification') {
      batch.labels = Int32Array.from(kept, (k) => k.s.label ?? -1);
      return batch;
    }
    batch.texts = kept.map((k) => k.s.text ?? '');
    batch.json = kept.map((k) => k.s.json);
    if (spec.eda) {
      const { synonyms, p } = spec.eda;
      batch.edaTexts = kept.map((k) => eda(k.s.text ?? '', new Rng([spec.seed, job.epoch, k.index, 0x0eda]), { synonyms, p }));
    }
    if (this.tokenizer) {
      batch.tokens = this.tokenizer.tokenize(batch.texts, spec.contextLength);
      if (batch.edaTexts) batch.edaTokens = this.tokenizer.tokenize(batch.edaTexts, spec.contextLength);
    }
    return batch;
  }
}
