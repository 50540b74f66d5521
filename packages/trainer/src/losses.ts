import {
  add,
  concat,
  crossEntropy,
  embedding,
  infoNCE,
  kmeansAssign,
  l2Normalize,
  mean,
  mul,
  noGrad,
  reshape,
  slice,
  sum,
  tensor,
  type Tensor,
} from '@mode/autograd';
import { IGNORE_INDEX } from '@mode/data';
import type { CLIP } from '@mode/models';
import type { DeclipHeads } from './heads.js';

/** DeCLIP's extra supervision, each switchable (`--declip mv,ssl,mlm,nn`). */
export const DECLIP_TERMS = ['mv', 'ssl', 'mlm', 'nn'] as const;
export type DeclipTerm = (typeof DECLIP_TERMS)[number];
export type LossTerm = 'clip' | 'ssl' | 'mlm' | 'nn';

/** Parses `mv,ssl,mlm,nn` (any subset, or `none`); an unknown name is an error naming the valid ones. */
export function parseDeclip(spec: string | readonly string[]): DeclipTerm[] {
  const names = (typeof spec === 'string' ? spec.split(',') : [...spec]).map((s) => s.trim()).filter((s) => s && s !== 'none');
  for (const n of names)
    if (!DECLIP_TERMS.includes(n as DeclipTerm)) throw new Error(`--declip: unknown loss "${n}"; use any of ${DECLIP_TERMS.join(', ')} (or none)`);
  return DECLIP_TERMS.filter((t) => names.includes(t));
}

/**
 * DeCLIP's weights, 0.4 · (multi-view) CLIP + 0.2 · SimSiam + 0.2 · MLM + 0.2 · NN, over the
 * terms switched on and renormalised to sum to 1 (so plain CLIP has weight 1, and a subset keeps
 * the paper's proportions).
 */
export function lossWeights(terms: readonly DeclipTerm[]): Record<LossTerm, number> {
  const raw: Record<LossTerm, number> = {
    clip: 0.4,
    ssl: terms.includes('ssl') ? 0.2 : 0,
    mlm: terms.includes('mlm') ? 0.2 : 0,
    nn: terms.includes('nn') ? 0.2 : 0,
  };
  const total = raw.clip + raw.ssl + raw.mlm + raw.nn;
  return { clip: raw.clip / total, ssl: raw.ssl / total, mlm: raw.mlm / total, nn: raw.nn / total };
}

/** One micro-batch, as the loss needs it: images on the GPU, token ids on the CPU. */
export interface StepInputs {
  images: Tensor;
  /** The second augmented view (multi-view CLIP and SimSiam). */
  images2?: Tensor;
  tokens: Int32Array;
  /** The EDA-edited caption (multi-view CLIP). */
  edaTokens?: Int32Array;
  /** MLM: masked token ids and, per position, the original id or IGNORE_INDEX. */
  mlm?: { input: Int32Array; labels: Int32Array };
}

/**
 * FIFO queue of detached, normalised text embeddings for nearest-neighbour supervision, oldest
 * first. Kept as one [count, d] tensor rebuilt by concat at each enqueue: a copy of the queue
 * per step, small next to the step, and the saved state is that one tensor.
 */
export class FeatureQueue {
  features: Tensor | null = null;
  constructor(readonly capacity: number) {}
  get count(): number {
    return this.features?.shape[0] ?? 0;
  }
  /** Appends rows [b, d] (detached), dropping the oldest beyond capacity. */
  enqueue(rows: Tensor): void {
    const next = noGrad(() => {
      const all = this.features ? concat([this.features, rows.detach()], 0) : rows.detach();
      const n = all.shape[0]!;
      return n > this.capacity ? slice(all, 0, n - this.capacity, n) : all;
    }).keep();
    this.features?.dispose();
    this.features = next;
  }
  load(rows: Tensor | null): void {
    this.features?.dispose();
    this.features = rows ? rows.keep() : null;
  }
  dispose(): void {
    this.features?.dispose();
    this.features = null;
  }
}

/** Nearest queue entry of each caption by cosine (for unit vectors the smallest squared distance), detached. */
const nearest = (texts: Tensor, queue: Tensor) => noGrad(() => embedding(queue, kmeansAssign(texts.detach(), queue).index));

/** Every micro-batch's normalised features without gradients, and the whole batch's NN neighbours (`stepLosses`' `contrast`). */
export interface FeatureCache {
  features: { i1: Tensor[]; t1: Tensor[]; i2?: Tensor[]; t2?: Tensor[] };
  neighbours?: Tensor;
}

/**
 * OpenCLIP's `--accum-freq`, first half: the features every contrastive term reads, per
 * micro-batch, without gradients; the NN neighbours from the queue as it was before the step.
 */
export function cacheFeatures(model: CLIP, parts: readonly StepInputs[], o: { terms: readonly DeclipTerm[]; queue: FeatureQueue | null }): FeatureCache {
  return noGrad(() => {
    const each = (f: (x: StepInputs) => Tensor) => parts.map((x) => l2Normalize(f(x)).keep());
    const mv = o.terms.includes('mv');
    const features: FeatureCache['features'] = {
      i1: each((x) => model.encodeImage(x.images)),
      t1: each((x) => model.encodeText(x.tokens)),
      ...(mv ? { i2: each((x) => model.encodeImage(x.images2!)), t2: each((x) => model.encodeText(x.edaTokens!)) } : {}),
    };
    const q = o.queue?.features;
    const neighbours = o.terms.includes('nn') && q ? nearest(concat(features.t1, 0), q).keep() : undefined;
    return { features, ...(neighbours ? { neighbours } : {}) };
  });
}

/** Mean cosine similarity of matching rows, −mean(cos(p, z)) with z treated as a constant. */
function negCosine(p: Tensor, z: Tensor): Tensor {
  return mul(mean(sum(mul(l2Normalize(p), l2Normalize(z.detach())), 1)), -1);
}

/**
 * The step's losses by term and their weighted total (in the graph). The queue is read as it was
 * before this step and the step's text embeddings are returned for the caller to enqueue after.
 */
export function stepLosses(
  model: CLIP,
  heads: DeclipHeads,
  x: StepInputs,
  o: {
    terms: readonly DeclipTerm[];
    weights: Record<LossTerm, number>;
    queue: FeatureQueue | null;
    poison?: LossTerm;
    /**
     * Gradient accumulation as OpenCLIP's `--accum-freq` (`cacheFeatures`): this micro-batch's
     * features, with gradients, take their place at `at` among every micro-batch's, so each
     * contrastive term is the whole batch's. `share`: this micro-batch's part of the batch (the
     * per-sample terms are weighted by it); `scaleGrad`: whether this pass gives logit_scale its
     * gradient (one pass does: it enters the loss directly, not through the features).
     */
    contrast?: { cache: FeatureCache; at: number; share: number; scaleGrad: boolean };
  },
): { total: Tensor; terms: Partial<Record<LossTerm, Tensor>>; textFeatures: Tensor } {
  const on = (t: DeclipTerm) => o.terms.includes(t);
  const c = o.contrast;
  const scale = c && !c.scaleGrad ? model.logit_scale.detach() : model.logit_scale;
  // Accumulating: the whole batch's features, this micro-batch's live among them.
  const whole = (key: keyof FeatureCache['features'], live: Tensor) =>
    c
      ? concat(
          c.cache.features[key]!.map((t, j) => (j === c.at ? live : t)),
          0,
        )
      : live;
  const img1 = model.encodeImage(x.images);
  const img2 = x.images2 && (on('mv') || on('ssl')) ? model.encodeImage(x.images2) : null;
  const i1 = l2Normalize(img1);
  const t1 = l2Normalize(model.encodeText(x.tokens));
  const terms: Partial<Record<LossTerm, Tensor>> = {};

  if (on('mv')) {
    if (!img2 || !x.edaTokens) throw new Error('multi-view loss: the batch has no second view or EDA caption (the loader needs views: 2 and eda)');
    const i2 = l2Normalize(img2);
    const t2 = l2Normalize(model.encodeText(x.edaTokens));
    const [wi1, wi2, wt1, wt2] = [whole('i1', i1), whole('i2', i2), whole('t1', t1), whole('t2', t2)];
    const pairs: [Tensor, Tensor][] = [
      [wi1, wt1],
      [wi2, wt1],
      [wi1, wt2],
      [wi2, wt2],
    ];
    terms.clip = mul(
      pairs.map(([a, b]) => infoNCE(a, b, scale)).reduce((s, l) => add(s, l)),
      0.25,
    );
  } else terms.clip = infoNCE(whole('i1', i1), whole('t1', t1), scale);

  if (on('ssl')) {
    if (!img2 || !heads.ssl) throw new Error('SimSiam loss: needs a second image view and the SimSiam heads');
    const z1 = heads.ssl.projector.forward(img1);
    const z2 = heads.ssl.projector.forward(img2);
    const p1 = heads.ssl.predictor.forward(z1);
    const p2 = heads.ssl.predictor.forward(z2);
    terms.ssl = mul(add(negCosine(p1, z2), negCosine(p2, z1)), 0.5);
  }

  if (on('mlm') && x.mlm && heads.mlm) {
    const rows: number[] = [];
    const labels: number[] = [];
    x.mlm.labels.forEach((l, i) => {
      if (l === IGNORE_INDEX) return;
      rows.push(i);
      labels.push(l);
    });
    // Only the masked positions reach the vocabulary head: the others would be ignored anyway.
    if (rows.length) {
      const w = model.config.text.width;
      const feats = model.text.tokenFeatures(x.mlm.input);
      terms.mlm = crossEntropy(heads.mlm.forward(embedding(reshape(feats, [feats.size / w, w]), rows)), labels);
    }
  }

  if (on('nn') && o.queue && o.queue.count > 0) {
    if (c) terms.nn = infoNCE(whole('i1', i1), c.cache.neighbours!, scale, { symmetric: false });
    else {
      const neighbours = nearest(t1, o.queue.features!);
      terms.nn = infoNCE(i1, neighbours, scale, { symmetric: false });
      neighbours.dispose();
    }
  }

  if (o.poison && terms[o.poison]) terms[o.poison] = add(terms[o.poison]!, tensor([NaN], []));
  let total: Tensor | null = null;
  for (const [k, v] of Object.entries(terms) as [LossTerm, Tensor][]) {
    // Accumulating, the CLIP term is already the whole batch's; the others are this micro-batch's means.
    const w = mul(v, o.weights[k] * (c && (k === 'ssl' || k === 'mlm') ? c.share : 1));
    total = total ? add(total, w) : w;
  }
  return { total: total!, terms, textFeatures: t1 };
}
