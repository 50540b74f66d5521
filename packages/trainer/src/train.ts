/**
 * The training loop, in one file (llm.c's habit): data → losses → backward → NaN guard → clip →
 * AdamW with warm-up + cosine → clamp logit_scale → metrics → checkpoint. Every source of
 * randomness is either saved in the checkpoint (weights, moments, the NN queue) or a pure
 * function of (seed, step) or (seed, epoch, sample), so a resumed run is bit-identical.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdamW, clipScale, concat, cosineSchedule, gradNorm as globalGradNorm, manualSeed, noGrad, tensor, type Tensor } from '@mode/autograd';
import {
  defaultDataDir,
  defaultMix,
  loadSynonyms,
  readTokenizer,
  maskTokens,
  openMix,
  Rng,
  type BadRecords,
  type Batch,
  type MixSource,
  type TextTokenizer,
} from '@mode/data';
import type { Gpu } from '@mode/gpu';
import { autotuner } from '@mode/kernels';
import { checkTokenizer, CLIP, EOT_ID, loadClip, preset, type ClipConfig } from '@mode/models';
import { findCheckpoint, flagChanges, loadCheckpoint, readCheckpointState, saveCheckpoint, type RunFlags } from './checkpoint.js';
import { DeclipHeads } from './heads.js';
import { cacheFeatures, FeatureQueue, lossWeights, stepLosses, type DeclipTerm, type LossTerm, type StepInputs } from './losses.js';

export interface TrainOptions {
  /** Run folder: checkpoint/, metrics.jsonl, final.safetensors. */
  out: string;
  /** Model preset (tiny, small, medium, b32); default small. */
  preset?: string;
  declip?: DeclipTerm[];
  steps: number;
  /** Pairs per optimiser step. */
  batchSize?: number;
  /** Micro-batches per step (gradient accumulation, for batches larger than memory). */
  accumulate?: number;
  seed?: number;
  lr?: number;
  /** Linear warm-up steps (default: a tenth of the run, at most 500). */
  warmup?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  /** Where `mode data prepare` put the data sets (tokenizer, synonyms, default mix). */
  dataDir?: string;
  /** A tokenizer file (`mode data tokenizer`, or OpenAI's `bpe_simple_vocab_16e6.txt.gz`) instead of the data folder's; the model records which. */
  tokenizer?: string;
  /** Data sets to train on; default: defaultMix(dataDir). */
  data?: MixSource[];
  resume?: boolean;
  /**
   * Continue from another run's checkpoint (MoDE: a data expert from the seed model): its weights,
   * DeCLIP heads, AdamW moments, NN queue and step, so the schedule goes on where the seed stopped
   * (`steps` is the whole schedule's length, as the reference's 32 epochs). The model and loss
   * flags are the seed's; the data order starts afresh from `seed`.
   */
  from?: string;
  /**
   * Start from this model's weights only (a model file, or an OpenCLIP hub folder): its
   * architecture replaces the preset, the optimiser and the schedule start afresh (OpenCLIP's
   * fine-tuning from `--pretrained`). The run's tokenizer must be the model's.
   */
  initWeights?: string;
  /** Train on only these pairs (by key), e.g. a data expert's; `subset` names them in the flags. */
  include?: { keys: ReadonlySet<string>; subset: string };
  /** End the run at this step (writing final.safetensors) though the schedule runs to `steps`: the seed model stops at 27 of 32. */
  stopAt?: number;
  /** Steps between checkpoints (and one at the end, and on abort). */
  checkpointEvery?: number;
  /** NN supervision's queue length. */
  queueSize?: number;
  /** Loader worker threads (0: in-process). */
  workers?: number;
  /**
   * OpenCLIP's training transform, RandomResizedCrop(scale = cropScale, bicubic), for runs without
   * DeCLIP's views (those keep their own augmentation); default [0.9, 1].
   */
  cropScale?: [number, number];
  /** Bad samples (corrupt images, missing captions, truncated shards) are skipped and counted by kind instead of stopping the run. */
  skipBad?: boolean;
  /** Aborting (SIGINT/SIGTERM in the CLI) ends the step under way, checkpoints and returns. */
  signal?: AbortSignal;
  onStep?: (r: StepReport) => void;
  /**
   * Profile this step (1-based): OUT/profile.json (time by kernel, GPU timestamps) and
   * OUT/trace.json (Chrome trace). Profiling puts each dispatch in its own pass: that step is slower.
   */
  profileStep?: number;
  /** For tests of the guard: multiply this loss term by NaN at this step. */
  injectNaN?: { step: number; term: LossTerm };
}

export interface StepReport {
  step: number;
  steps: number;
  loss: number;
  terms: Partial<Record<LossTerm, number>>;
  lr: number;
  gradNorm: number;
  logitScale: number;
  pairsPerSecond: number;
  seconds: number;
  /** Pairs in this step's batch (fewer than the batch size where bad samples were skipped). */
  pairs: number;
  /** With `skipBad`: the samples skipped so far, by kind. */
  skipped?: Record<string, number>;
}

export interface TrainResult {
  step: number;
  interrupted: boolean;
  final: string | null;
  config: ClipConfig;
  last: StepReport | null;
  /** With `skipBad`: what was skipped (counts by kind, the first examples). */
  bad?: BadRecords;
}

/** An error that says what is wrong and how to fix it (the CLI prints it without a stack). */
const userError = (message: string) => Object.assign(new Error(message), { userFacing: true });

/** NaN or Inf in a loss term or the gradients: the run stops, its last good checkpoint kept. */
export class NonFiniteError extends Error {
  readonly userFacing = true;
  constructor(
    readonly step: number,
    readonly term: string,
    value: number,
    checkpoint: string | null,
  ) {
    super(
      `step ${step}: ${term === 'gradients' ? 'the gradient norm' : `the ${term} loss`} is ${value}; the update was not applied. ` +
        (checkpoint ? `The last good checkpoint is ${checkpoint} (resume with --resume, perhaps with a lower --lr).` : 'No checkpoint was written yet.'),
    );
  }
}

/** `--init-weights`: the model to fine-tune, checked against the run's tokenizer (ids must mean the same strings). */
function initialModel(path: string, tokenizer: TextTokenizer, tokenizerSource: string): CLIP {
  let model: CLIP;
  try {
    model = loadClip(path);
  } catch (e) {
    throw userError(`--init-weights ${path}: ${(e as Error).message}`);
  }
  checkTokenizer(model, tokenizer, tokenizerSource, `--init-weights ${path}`);
  const t = model.config.text;
  if (t.vocabSize !== tokenizer.vocabSize || (t.eotId ?? EOT_ID) !== tokenizer.eot)
    throw userError(
      `--init-weights ${path}: its text tower has ${t.vocabSize} token ids ending at ${t.eotId ?? EOT_ID}, the tokenizer ${tokenizerSource} ${tokenizer.vocabSize} ending at ${tokenizer.eot}. Fix: pass the model's tokenizer (--tokenizer)`,
    );
  return model;
}

/** Pairs held out of training (by key hash) for retrieval evaluation. */
export const HOLDOUT = 0.05;

const finite = (x: number) => Number.isFinite(x);

export async function train(o: TrainOptions): Promise<TrainResult> {
  const requestedBatch = o.batchSize ?? 64;
  const requestedAccumulate = o.accumulate ?? 1;
  if (!Number.isInteger(o.steps) || o.steps < 1) throw userError(`--steps must be a positive integer, got ${o.steps}`);
  if (requestedBatch % requestedAccumulate) throw userError(`--batch ${requestedBatch} is not a multiple of --accumulate ${requestedAccumulate}`);
  if (requestedBatch / requestedAccumulate < 2)
    throw userError(`micro-batches of ${requestedBatch / requestedAccumulate} pair: contrastive losses need at least 2`);
  const dataDir = o.dataDir ?? defaultDataDir();
  const mix = o.data ?? defaultMix(dataDir);
  let flags: RunFlags = {
    preset: o.preset ?? 'small',
    declip: [...(o.declip ?? [])],
    steps: o.steps,
    batchSize: requestedBatch,
    accumulate: requestedAccumulate,
    seed: o.seed ?? 0,
    lr: o.lr ?? 5e-4,
    warmup: o.warmup ?? Math.min(500, Math.ceil(o.steps / 10)),
    weightDecay: o.weightDecay ?? 0.2,
    data: mix.map((m) => `${m.dir}${m.split ? `:${m.split}` : ''}${m.fraction !== undefined ? `@${m.fraction}` : ''}`),
    queueSize: o.queueSize ?? 4096,
    ...(o.cropScale ? { cropScale: o.cropScale } : {}),
    ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}),
    ...(o.include ? { subset: o.include.subset } : {}),
    ...(o.initWeights ? { initWeights: resolve(o.initWeights) } : {}),
  };
  if (o.initWeights && o.from) throw userError('--init-weights and --seed-model: a run starts from one of them');
  // A continued run takes the model, loss and optimiser flags of the run it continues.
  const from = o.from ? findCheckpoint(o.from) : null;
  if (o.from && !from) throw userError(`--seed-model ${o.from}: no checkpoint there. Fix: train the seed model first (mode train --out ${o.from})`);
  if (from) {
    const seedState = readCheckpointState(from);
    const f = seedState.flags;
    if (o.steps <= seedState.step)
      throw userError(
        `--steps ${o.steps}: the run in ${o.from} is already at step ${seedState.step}. Fix: --steps is the whole schedule, larger than ${seedState.step}`,
      );
    flags = {
      ...flags,
      preset: f.preset,
      declip: f.declip,
      batchSize: f.batchSize,
      accumulate: f.accumulate,
      lr: f.lr,
      warmup: f.warmup,
      weightDecay: f.weightDecay,
      queueSize: f.queueSize,
      ...(f.tokenizer ? { tokenizer: f.tokenizer } : {}),
      from: { run: o.from!, step: seedState.step },
    };
  }
  const terms = flags.declip as DeclipTerm[];
  const weights = lossWeights(terms);
  const { batchSize, accumulate } = flags;
  mkdirSync(o.out, { recursive: true });
  const existing = findCheckpoint(o.out);
  if (o.resume && !existing) throw userError(`--resume: ${o.out} holds no checkpoint. Fix: start the run without --resume`);
  if (!o.resume && existing)
    throw userError(
      `${o.out} already holds a run (checkpoint at step ${readCheckpointState(existing).step}). Fix: pass --resume to continue it, or choose another --out`,
    );

  const tokenizerSource = flags.tokenizer ?? join(dataDir, 'tokenizer.json');
  const tokenizer = readTokenizer(tokenizerSource);
  if (tokenizer.kind === 'openai' && terms.includes('mlm'))
    throw userError(
      `--declip mlm masks tokens with the project tokenizer's mask id, and OpenAI's vocabulary (${tokenizerSource}) has none. Fix: drop mlm from --declip, or train with a mode tokenizer`,
    );
  manualSeed(flags.seed);
  const model = flags.initWeights
    ? initialModel(flags.initWeights, tokenizer, tokenizerSource)
    : // The text tower pools at the tokenizer's end-of-text id (the project's is the config's default).
      new CLIP(preset(flags.preset, { vocabSize: tokenizer.vocabSize, ...(tokenizer.kind === 'openai' ? { eotId: tokenizer.eot } : {}) }), {
        seed: flags.seed,
      });
  const config = model.config;
  model.tokenizer = { id: tokenizer.id, source: resolve(tokenizerSource) };
  const heads = new DeclipHeads({
    embedDim: config.embedDim,
    textWidth: config.text.width,
    vocab: config.text.vocabSize,
    ssl: terms.includes('ssl'),
    mlm: terms.includes('mlm'),
    seed: flags.seed + 1,
  });
  const params: [string, Tensor][] = [...model.namedParameters(), ...heads.namedParameters().map(([n, t]): [string, Tensor] => [`declip.${n}`, t])];
  const opt = new AdamW(params, { lr: flags.lr, betas: [0.9, 0.98], eps: 1e-6, weightDecay: flags.weightDecay });
  const queue = terms.includes('nn') ? new FeatureQueue(flags.queueSize) : null;
  const metricsPath = join(o.out, 'metrics.jsonl');

  let step = 0;
  let cursor = { epoch: 0, batch: 0 };
  let metricsLines = 0;
  if (existing) {
    const state = readCheckpointState(existing);
    const changes = flagChanges(state.flags, flags);
    if (changes.length)
      throw userError(
        `--resume refused: these flags differ from the checkpoint's (${existing}):\n  ${changes.join('\n  ')}\nFix: resume with the same flags, or start a new --out`,
      );
    loadCheckpoint(existing, { model, heads, opt, queue }, state);
    autotuner.pin(state.autotune ?? {});
    ({ step, cursor, metricsLines } = state);
    // Metrics written after the checkpoint belong to steps that will run again.
    const lines = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').filter(Boolean) : [];
    writeFileSync(
      metricsPath,
      lines
        .slice(0, metricsLines)
        .map((l) => l + '\n')
        .join(''),
    );
  } else if (from) {
    const state = readCheckpointState(from);
    loadCheckpoint(from, { model, heads, opt, queue }, state);
    autotuner.pin(state.autotune ?? {});
    step = state.step;
    writeFileSync(metricsPath, '');
  } else writeFileSync(metricsPath, '');

  const needViews = terms.includes('mv') || terms.includes('ssl');
  const loader = openMix(mix, {
    batchSize,
    imageSize: config.vision.imageSize,
    seed: flags.seed,
    augment: needViews,
    views: needViews ? 2 : 1,
    cropScale: flags.cropScale ?? [0.9, 1],
    skipBad: !!o.skipBad,
    tokenizer,
    contextLength: config.text.contextLength,
    // The model's own normalisation (an imported OpenCLIP model's preprocess_cfg); else OpenAI's constants.
    ...(model.preprocess ? { mean: model.preprocess.mean, std: model.preprocess.std } : {}),
    ...(terms.includes('mv') ? { eda: { synonyms: loadSynonyms(dataDir) } } : {}),
    epochs: Infinity,
    dropLast: true,
    shuffleBuffer: 5000,
    holdout: { fraction: HOLDOUT, take: 'train' },
    workers: o.workers ?? 1,
    start: cursor,
    ...(o.include ? { include: o.include.keys } : {}),
  });
  if (o.stopAt !== undefined && !(Number.isInteger(o.stopAt) && o.stopAt > 0 && o.stopAt <= flags.steps))
    throw userError(`--stop-at ${o.stopAt} must be a step of the schedule, 1…${flags.steps}`);
  const end = o.stopAt ?? flags.steps;
  const schedule = cosineSchedule({ lr: flags.lr, warmup: flags.warmup, total: flags.steps });
  const save = () =>
    saveCheckpoint(o.out, { model, heads, opt, queue, state: { step, cursor: { ...cursor }, flags, metricsLines, autotune: autotuner.choicesMade() } });
  let last: StepReport | null = null;
  let interrupted = false;
  const S = config.vision.imageSize;
  const L = config.text.contextLength;
  const gpu = model.logit_scale.engine.gpu;

  try {
    if (step < end)
      for await (const batch of loader) {
        const t0 = performance.now();
        if (batch.epoch !== cursor.epoch) cursor = { epoch: batch.epoch, batch: 0 };
        const profiling = o.profileStep === step + 1;
        if (profiling) {
          gpu.profiler.clear();
          gpu.profiler.enabled = true;
        }
        opt.lr = schedule(step);
        // A batch is short where bad samples were skipped: its micro-batches split what it has.
        const size = batch.size;
        if (size / accumulate < 2)
          throw userError(
            `step ${step + 1}: ${size} good pairs in the batch after skipping bad samples, too few for ${accumulate} micro-batches of at least 2`,
          );
        const sums: Partial<Record<LossTerm, number>> = {};
        const parts = Array.from({ length: accumulate }, (_, a) => {
          const [from, to] = [Math.floor((a * size) / accumulate), Math.floor(((a + 1) * size) / accumulate)];
          const x = microBatch(batch, from, to - from, S, L);
          if (terms.includes('mlm')) x.mlm = maskTokens(x.tokens, config.text.vocabSize, new Rng([flags.seed, step, a, 0x313]));
          return { x, share: (to - from) / size }; // share: 1 / accumulate when the batch is whole
        });
        // OpenCLIP's --accum-freq: every micro-batch's features first, without gradients; then each
        // micro-batch again with gradients in its place among them, so the contrastive batch is the whole batch.
        const cache =
          accumulate > 1
            ? cacheFeatures(
                model,
                parts.map((p) => p.x),
                { terms, queue },
              )
            : null;
        for (const [a, { x, share }] of parts.entries()) {
          const contrast = cache ? { contrast: { cache, at: a, share, scaleGrad: a === 0 } } : {};
          const r = stepLosses(model, heads, x, { terms, weights, queue, ...contrast, ...(o.injectNaN?.step === step ? { poison: o.injectNaN.term } : {}) });
          for (const t of Object.values(r.terms)) t.keep();
          r.textFeatures.keep();
          r.total.keep();
          r.total.backward();
          r.total.dispose();
          for (const [k, t] of Object.entries(r.terms) as [LossTerm, Tensor][]) {
            const v = await t.item();
            t.dispose();
            if (!finite(v)) throw new NonFiniteError(step, k, v, findCheckpoint(o.out));
            // The contrastive terms of an accumulated step are the whole batch's in every pass.
            sums[k] = cache && (k === 'clip' || k === 'nn') ? v : (sums[k] ?? 0) + v * share;
          }
          // The queue grows after the step (the whole batch's captions at once when accumulating).
          if (!cache) queue?.enqueue(r.textFeatures);
          r.textFeatures.dispose();
          [x.images, x.images2].forEach((t) => t?.dispose());
        }
        if (cache) {
          const texts = noGrad(() => concat(cache.features.t1, 0));
          queue?.enqueue(texts);
          texts.dispose();
          [...Object.values(cache.features).flat(), cache.neighbours].forEach((t) => t?.dispose());
        }
        const total = (Object.entries(sums) as [LossTerm, number][]).reduce((s, [k, v]) => s + weights[k] * v, 0);
        loader.release(batch); // uploaded: its buffers serve the next batches (no fresh pages to fault in)
        // The norm is read for the NaN guard anyway, so clipping is AdamW's gradient scale (no pass over the gradients).
        const norm = globalGradNorm(params.map(([, p]) => p));
        const gradNorm = await norm.item();
        norm.dispose();
        if (!finite(gradNorm)) throw new NonFiniteError(step, 'gradients', gradNorm, findCheckpoint(o.out));
        const lr = opt.lr;
        await opt.step(clipScale(gradNorm, o.maxGradNorm ?? 1));
        opt.zeroGrad();
        model.clampLogitScale();
        step++;
        cursor.batch++;
        const seconds = (performance.now() - t0) / 1000;
        last = {
          step,
          steps: flags.steps,
          loss: total,
          terms: sums,
          lr,
          gradNorm,
          logitScale: await model.logit_scale.item(),
          pairsPerSecond: size / seconds,
          seconds,
          pairs: size,
          ...(loader.bad ? { skipped: { ...loader.bad.kinds } } : {}),
        };
        if (profiling) {
          gpu.profiler.enabled = false;
          writeProfile(o.out, gpu, step);
        }
        appendFileSync(metricsPath, JSON.stringify(last) + '\n');
        metricsLines++;
        o.onStep?.(last);
        interrupted = !!o.signal?.aborted;
        if (step % (o.checkpointEvery ?? 50) === 0 || step === end || interrupted) await save();
        if (step >= end || interrupted) break;
      }
  } finally {
    queue?.dispose();
    opt.dispose();
    heads.dispose();
  }
  let final: string | null = null;
  if (!interrupted) {
    final = join(o.out, 'final.safetensors');
    await model.save(final);
  }
  model.dispose();
  return { step, interrupted, final, config, last, ...(loader.bad ? { bad: loader.bad } : {}) };
}

/** The profiled step's time by kernel and its Chrome trace, written atomically. */
function writeProfile(out: string, gpu: Gpu, step: number): void {
  const kernels = gpu.profiler.summary();
  const files: [string, string][] = [
    [
      'profile.json',
      JSON.stringify(
        {
          step,
          adapter: gpu.report.name,
          clock: 'GPU timestamps, each dispatch in its own pass',
          roof: gpu.profiler.roof,
          overhead: gpu.profiler.overhead(),
          kernels,
        },
        null,
        1,
      ) + '\n',
    ],
    ['trace.json', JSON.stringify(gpu.profiler.chromeTrace())],
  ];
  const roofline = gpu.profiler.roofline(`step ${step} by kernel, under the measured roof of ${gpu.report.name}`);
  if (roofline) files.push(['roofline.svg', roofline + '\n']);
  for (const [name, text] of files) {
    writeFileSync(join(out, `${name}.tmp`), text);
    renameSync(join(out, `${name}.tmp`), join(out, name));
  }
  gpu.profiler.clear();
}

/** Rows [start, start + n) of a loader batch as the losses take them. */
function microBatch(b: Batch, start: number, n: number, S: number, L: number): StepInputs {
  const per = 3 * S * S;
  const img = (a: Float32Array) => tensor(a.subarray(start * per, (start + n) * per), [n, 3, S, S]);
  return {
    images: img(b.images),
    ...(b.images2 ? { images2: img(b.images2) } : {}),
    tokens: b.tokens!.subarray(start * L, (start + n) * L),
    ...(b.edaTokens ? { edaTokens: b.edaTokens.subarray(start * L, (start + n) * L) } : {}),
  };
}
