/**
 * Zero-shot classification of given images (not a data set) with the metadata-weighted ensemble:
 * what `mode classify` prints and the browser page shows, one code path for both. A task (its
 * classes) is prepared once — each expert's zero-shot classifier and the experts' weights — and
 * then classifies any number of images.
 */
import { l2Normalize, linear, noGrad, tensor, type Tensor } from '@mode/autograd';
import type { TextTokenizer } from '@mode/data';
import type { CLIP } from '@mode/models';
import { classifier, taskWeights, type Clusters } from './ensemble.js';
import { combineLogits, type TaskWeights } from './weights.js';

export interface TaskLogits {
  /** Images classified. */
  count: number;
  /** Per expert [count × classes], raw cosine logits (normalised image features · the expert's classifier). */
  experts: Float32Array[];
  /** Σ_k w_k · experts[k] with the task's metadata weights. */
  ensemble: Float32Array;
  /** The experts' plain average. */
  uniform: Float32Array;
  /** Wall seconds per expert's image tower (GPU work included). */
  seconds: number[];
}

export interface ZeroShotTask {
  readonly classes: readonly string[];
  readonly weights: TaskWeights;
  /** Wall seconds: the experts' text classifiers, and the clustering encoder's class embeddings + weights. */
  readonly prepareSeconds: { classifiers: number; weights: number };
  /** Logits for `count` images, CHW-normalised as `evalImage` gives them, end to end. */
  classify(images: Float32Array, count: number): Promise<TaskLogits>;
  dispose(): void;
}

export async function zeroShotTask(o: {
  experts: readonly CLIP[];
  encoder: CLIP;
  clusters: Clusters;
  tokenizer: TextTokenizer;
  classes: readonly string[];
  templates: readonly string[];
}): Promise<ZeroShotTask> {
  if (o.experts.length === 0) throw new RangeError('zeroShotTask: no experts');
  if (o.experts.length !== o.clusters.experts)
    throw new RangeError(`zeroShotTask: ${o.experts.length} expert models for ${o.clusters.experts} experts in the clusters`);
  const classes = o.classes.map((c) => c.trim()).filter(Boolean);
  if (classes.length === 0) throw new RangeError('zeroShotTask: no class names (give at least one)');
  const templates = o.templates.length ? o.templates : ['a photo of a {}.'];
  const S = o.experts[0]!.config.vision.imageSize;
  for (const [k, m] of o.experts.entries())
    if (m.config.vision.imageSize !== S) throw new RangeError(`zeroShotTask: expert 0 takes ${S}-px images, expert ${k} ${m.config.vision.imageSize}-px`);
  let t0 = performance.now();
  const weights = await taskWeights(o.encoder, o.tokenizer, classes, templates, o.clusters);
  const weightSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const Ws: Tensor[] = [];
  for (const m of o.experts) Ws.push((await classifier(m, o.tokenizer, classes, templates)).keep());
  const classifierSeconds = (performance.now() - t0) / 1000;
  const uniform = o.experts.map(() => 1 / o.experts.length);
  return {
    classes,
    weights,
    prepareSeconds: { classifiers: classifierSeconds, weights: weightSeconds },
    async classify(images, count) {
      if (images.length !== count * 3 * S * S) throw new RangeError(`classify: ${images.length} values are not ${count} images of 3 × ${S} × ${S}`);
      const x = tensor(images, [count, 3, S, S]);
      const logits: Float32Array[] = [];
      const seconds: number[] = [];
      try {
        for (const [k, m] of o.experts.entries()) {
          const t = performance.now();
          const y = noGrad(() => linear(l2Normalize(m.encodeImage(x)), Ws[k]!));
          logits.push(await y.read());
          y.dispose();
          seconds.push((performance.now() - t) / 1000);
        }
      } finally {
        x.dispose();
      }
      return { count, experts: logits, ensemble: combineLogits(logits, weights.weights), uniform: combineLogits(logits, uniform), seconds };
    },
    dispose: () => Ws.forEach((W) => W.dispose()),
  };
}

/** The `k` best classes of row `i` of [rows × C] logits, best first. */
export function topK(logits: Float32Array, i: number, C: number, k = 5): { index: number; logit: number }[] {
  const row = Array.from(logits.subarray(i * C, (i + 1) * C), (logit, index) => ({ index, logit }));
  return row.sort((a, b) => b.logit - a.logit || a.index - b.index).slice(0, k);
}
