/**
 * The MoDE paper's representation result at small scale: a linear probe (multinomial logistic
 * regression) on the experts' image features concatenated, against the same probe on one
 * model's features (the seed, the equal-compute baseline).
 *
 * The probe: features standardised with the training set's mean and deviation, softmax
 * regression with L2 penalty 1e-4 on the weights, full-batch Adam (lr 0.01, 300 steps) in
 * float64 on the CPU: small, deterministic, the same for every feature set.
 */
import { l2Normalize, noGrad, tensor } from '@mode/autograd';
import { openClassification } from '@mode/data';
import type { CLIP } from '@mode/models';
import { concatRows } from './ensemble.js';

export interface ProbeOptions {
  steps?: number;
  lr?: number;
  l2?: number;
}

/** Trains the probe on (xTrain, yTrain) and returns its top-1 on (xTest, yTest). Rows of `dim` features. */
export function linearProbe(
  xTrain: Float32Array,
  yTrain: ArrayLike<number>,
  xTest: Float32Array,
  yTest: ArrayLike<number>,
  dim: number,
  classes: number,
  o: ProbeOptions = {},
): number {
  const n = yTrain.length;
  const steps = o.steps ?? 300;
  const lr = o.lr ?? 0.01;
  const l2 = o.l2 ?? 1e-4;
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += xTrain[i * dim + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) std[j]! += (xTrain[i * dim + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < dim; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const z = (x: Float32Array) => Float64Array.from(x, (v, i) => (v - mean[i % dim]!) / std[i % dim]!);
  const a = z(xTrain);
  const P = (dim + 1) * classes; // weights then biases
  const w = new Float64Array(P);
  const [m, v] = [new Float64Array(P), new Float64Array(P)];
  const g = new Float64Array(P);
  const logits = new Float64Array(classes);
  const forward = (x: Float64Array, i: number) => {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = w[dim * classes + c]!;
      for (let j = 0; j < dim; j++) s += x[i * dim + j]! * w[j * classes + c]!;
      logits[c] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += logits[c] = Math.exp(logits[c]! - max);
    for (let c = 0; c < classes; c++) logits[c]! /= sum;
  };
  for (let t = 1; t <= steps; t++) {
    g.fill(0);
    for (let i = 0; i < n; i++) {
      forward(a, i);
      logits[yTrain[i]!]! -= 1;
      for (let c = 0; c < classes; c++) {
        const e = logits[c]! / n;
        g[dim * classes + c]! += e;
        for (let j = 0; j < dim; j++) g[j * classes + c]! += e * a[i * dim + j]!;
      }
    }
    for (let p = 0; p < dim * classes; p++) g[p]! += l2 * w[p]!;
    for (let p = 0; p < P; p++) {
      m[p] = 0.9 * m[p]! + 0.1 * g[p]!;
      v[p] = 0.999 * v[p]! + 0.001 * g[p]! ** 2;
      w[p]! -= (lr * (m[p]! / (1 - 0.9 ** t))) / (Math.sqrt(v[p]! / (1 - 0.999 ** t)) + 1e-8);
    }
  }
  const b = z(xTest);
  let hits = 0;
  for (let i = 0; i < yTest.length; i++) {
    forward(b, i);
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[c]! > logits[best]!) best = c;
    if (best === yTest[i]) hits++;
  }
  return hits / yTest.length;
}

/** Normalised image features of each model on the first `limit` images of a split, and the labels. */
export async function imageFeatures(
  models: readonly CLIP[],
  dir: string,
  split: string,
  limit: number,
): Promise<{ features: Float32Array[]; labels: Uint32Array; classes: number }> {
  const S = models[0]!.config.vision.imageSize;
  const { loader, classes } = openClassification(dir, split, { batchSize: 128, imageSize: S, workers: 0 });
  const parts: Float32Array[][] = models.map(() => []);
  const labels: number[] = [];
  for await (const b of loader) {
    const n = Math.min(b.size, limit - labels.length);
    if (n <= 0) break;
    const x = tensor(b.images.subarray(0, n * 3 * S * S), [n, 3, S, S]);
    loader.release(b); // uploaded
    for (const [i, m] of models.entries()) {
      const f = noGrad(() => l2Normalize(m.encodeImage(x)));
      parts[i]!.push(await f.read());
      f.dispose();
    }
    x.dispose();
    for (let i = 0; i < n; i++) labels.push(b.labels![i]!);
  }
  return { features: parts.map(concatRows), labels: Uint32Array.from(labels), classes: classes.length };
}

/** Row-wise concatenation of feature sets of the same rows. */
export function concatFeatures(sets: readonly Float32Array[], rows: number): { features: Float32Array; dim: number } {
  const dims = sets.map((s) => s.length / rows);
  const dim = dims.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    let at = i * dim;
    sets.forEach((s, k) => {
      out.set(s.subarray(i * dims[k]!, (i + 1) * dims[k]!), at);
      at += dims[k]!;
    });
  }
  return { features: out, dim };
}

export interface ProbeResult {
  task: string;
  train: number;
  test: number;
  /** Top-1 of the probe on the experts' concatenated features. */
  concatenated: number;
  /** Top-1 of the probe on each baseline model's features. */
  baselines: Record<string, number>;
}

/** The probe on a classification set: trained on the first `trainLimit` images of `train`, tested on the first `limit` of `test`. */
export async function probeTask(
  o: {
    experts: CLIP[];
    baselines: Record<string, CLIP>;
    dir: string;
    task: string;
    trainSplit: string;
    testSplit: string;
    trainLimit: number;
    limit: number;
  } & ProbeOptions,
): Promise<ProbeResult> {
  const names = Object.keys(o.baselines);
  const models = [...o.experts, ...names.map((n) => o.baselines[n]!)];
  const tr = await imageFeatures(models, o.dir, o.trainSplit, o.trainLimit);
  const te = await imageFeatures(models, o.dir, o.testSplit, o.limit);
  const E = o.experts.length;
  const a = concatFeatures(tr.features.slice(0, E), tr.labels.length);
  const b = concatFeatures(te.features.slice(0, E), te.labels.length);
  const concatenated = linearProbe(a.features, tr.labels, b.features, te.labels, a.dim, tr.classes, o);
  const baselines: Record<string, number> = {};
  names.forEach((n, i) => {
    const dim = tr.features[E + i]!.length / tr.labels.length;
    baselines[n] = linearProbe(tr.features[E + i]!, tr.labels, te.features[E + i]!, te.labels, dim, tr.classes, o);
  });
  return { task: o.task, train: tr.labels.length, test: te.labels.length, concatenated, baselines };
}
