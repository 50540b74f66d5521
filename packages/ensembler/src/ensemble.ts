/**
 * Zero-shot classification with the experts: each expert's raw cosine logits (normalised image
 * features against its own zero-shot classifier), ensembled with the task's metadata weights;
 * beside it the uniform average, every single expert, and any baseline models (the seed, the
 * equal-compute single model).
 */
import { l2Normalize, linear, noGrad, tensor, type Tensor } from '@mode/autograd';
import { openClassification, type TextTokenizer } from '@mode/data';
import { zeroShotClassifier, type CLIP } from '@mode/models';
import { combineLogits, metadataWeights, type TaskWeights } from './weights.js';

export interface Accuracy {
  top1: number;
  top5: number;
}

export interface EnsembleResult {
  task: string;
  classes: number;
  count: number;
  chance: number;
  /** The metadata weights per expert, and what they came from. */
  weights: number[];
  rawWeights: number[];
  meanDistance: number;
  /** Classes whose nearest fine centre belongs to each expert. */
  classesPerExpert: number[];
  ensemble: Accuracy;
  uniform: Accuracy;
  experts: Accuracy[];
  /** The expert with the best top-1 on this task (chosen on the test itself: an oracle). */
  bestExpert: number;
  baselines: Record<string, Accuracy>;
  /** With `keepFeatures`: per model (experts, then baselines), the images' normalised features. */
  features?: { features: Float32Array[]; labels: Uint32Array };
}

export interface Clusters {
  /** Fine centres [K × d], as fitted. */
  fine: Float32Array;
  fineToExpert: Uint32Array;
  experts: number;
}

/** Per class the normalised mean of its normalised template embeddings (the zero-shot classifier), [C × D] on the host. */
export async function classEmbeddings(model: CLIP, tokenizer: TextTokenizer, classes: readonly string[], templates: readonly string[]): Promise<Float32Array> {
  const W = await classifier(model, tokenizer, classes, templates);
  const v = await W.read();
  W.dispose();
  return v;
}

/** Each class's template-averaged, normalised text embedding, [C × D] on the GPU (the caller disposes it). */
export function classifier(model: CLIP, tokenizer: TextTokenizer, classes: readonly string[], templates: readonly string[]): Promise<Tensor> {
  const prompts = classes.flatMap((c) => templates.map((t) => t.replace('{}', c)));
  return zeroShotClassifier(model, tokenizer.tokenize(prompts, model.config.text.contextLength), classes.length, templates.length);
}

/** Weights for a task: its class names embedded by the clustering text encoder, against the fine centres. */
export async function taskWeights(
  encoder: CLIP,
  tokenizer: TextTokenizer,
  classes: readonly string[],
  templates: readonly string[],
  clusters: Clusters,
): Promise<TaskWeights> {
  const e = await classEmbeddings(encoder, tokenizer, classes, templates);
  return metadataWeights(e, encoder.config.embedDim, clusters.fine, clusters.fineToExpert, clusters.experts);
}

/** Arrays joined end to end. */
export const concatRows = (ps: Float32Array[]): Float32Array => {
  const out = new Float32Array(ps.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of ps) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Ranks of the target among a row's logits: top-1 and top-5 hits. */
function score(logits: Float32Array, labels: ArrayLike<number>, n: number, C: number, acc: { top1: number; top5: number }): void {
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * C, (i + 1) * C);
    const target = row[labels[i]!]!;
    let rank = 0;
    for (let j = 0; j < C; j++) if (row[j]! > target) rank++;
    if (rank < 1) acc.top1++;
    if (rank < 5) acc.top5++;
  }
}

export interface EnsembleOptions {
  experts: CLIP[];
  /** The clustering text encoder (the seed model's text tower). */
  encoder: CLIP;
  clusters: Clusters;
  tokenizer: TextTokenizer;
  dir: string;
  split: string;
  task?: string;
  limit?: number;
  baselines?: Record<string, CLIP>;
  batchSize?: number;
  /** Return the normalised image features of every model (experts, then baselines) and the labels: the linear probe's test set. */
  keepFeatures?: boolean;
}

export async function ensembleZeroShot(o: EnsembleOptions): Promise<EnsembleResult> {
  if (o.experts.length !== o.clusters.experts)
    throw new RangeError(`ensembleZeroShot: ${o.experts.length} expert models for ${o.clusters.experts} experts in the clusters`);
  const S = o.experts[0]!.config.vision.imageSize;
  const { loader, classes, templates } = openClassification(o.dir, o.split, { batchSize: o.batchSize ?? 128, imageSize: S, workers: 0 });
  const C = classes.length;
  const w = await taskWeights(o.encoder, o.tokenizer, classes, templates, o.clusters);
  const uniform = new Array<number>(o.experts.length).fill(1 / o.experts.length);
  const baselines = Object.entries(o.baselines ?? {});
  const models = [...o.experts, ...baselines.map(([, m]) => m)];
  for (const m of models)
    if (m.config.vision.imageSize !== S)
      throw new RangeError(`ensembleZeroShot: the models take ${S}-px and ${m.config.vision.imageSize}-px images; evaluate them apart`);
  const Ws: Tensor[] = [];
  for (const m of models) Ws.push((await classifier(m, o.tokenizer, classes, templates)).keep());
  const acc = () => ({ top1: 0, top5: 0 });
  const per = models.map(acc);
  const [ens, uni] = [acc(), acc()];
  let count = 0;
  const features: Float32Array[][] = models.map(() => []);
  const labels: number[] = [];
  try {
    for await (const b of loader) {
      const n = Math.min(b.size, (o.limit ?? Infinity) - count);
      if (n <= 0) break;
      const x = tensor(b.images.subarray(0, n * 3 * S * S), [n, 3, S, S]);
      loader.release(b); // uploaded
      const logits: Float32Array[] = [];
      for (const [i, m] of models.entries()) {
        const f = noGrad(() => l2Normalize(m.encodeImage(x)));
        const t = noGrad(() => linear(f, Ws[i]!));
        logits.push(await t.read());
        if (o.keepFeatures) features[i]!.push(await f.read());
        [f, t].forEach((z) => z.dispose());
      }
      if (o.keepFeatures) for (let i = 0; i < n; i++) labels.push(b.labels![i]!);
      x.dispose();
      logits.forEach((l, i) => score(l, b.labels!, n, C, per[i]!));
      const expertLogits = logits.slice(0, o.experts.length);
      score(combineLogits(expertLogits, w.weights), b.labels!, n, C, ens);
      score(combineLogits(expertLogits, uniform), b.labels!, n, C, uni);
      count += n;
    }
  } finally {
    Ws.forEach((W) => W.dispose());
  }
  const norm = (a: { top1: number; top5: number }): Accuracy => ({ top1: a.top1 / count, top5: a.top5 / count });
  const experts = per.slice(0, o.experts.length).map(norm);
  const classesPerExpert = new Array<number>(o.experts.length).fill(0);
  for (const k of w.expertOf) classesPerExpert[k]!++;
  return {
    task: o.task ?? o.dir,
    classes: C,
    count,
    chance: 1 / C,
    weights: [...w.weights],
    rawWeights: [...w.raw],
    meanDistance: w.distance.reduce((a, b) => a + b, 0) / C,
    classesPerExpert,
    ensemble: norm(ens),
    uniform: norm(uni),
    experts,
    bestExpert: experts.reduce((best, a, k) => (a.top1 > experts[best]!.top1 ? k : best), 0),
    baselines: Object.fromEntries(baselines.map(([name], i) => [name, norm(per[o.experts.length + i]!)])),
    ...(o.keepFeatures ? { features: { features: features.map(concatRows), labels: Uint32Array.from(labels) } } : {}),
  };
}
