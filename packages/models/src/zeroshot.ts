import { concat, l2Normalize, linear, mean, mul, noGrad, reshape, type Tensor } from '@mode/autograd';
import type { CLIP } from './clip.js';

/**
 * OpenCLIP's zero-shot classifier: per class, the normalised mean of the normalised embeddings
 * of its prompt templates. `textFeatures` [C·T, D] holds class c's T template embeddings in rows
 * c·T … c·T + T − 1 (unnormalised). Returns [C, D].
 */
export function classifierFromFeatures(textFeatures: Tensor, classes: number, templates: number): Tensor {
  const D = textFeatures.shape[1]!;
  if (textFeatures.ndim !== 2 || textFeatures.shape[0] !== classes * templates)
    throw new RangeError(`zero-shot classifier: features [${textFeatures.shape}] are not ${classes} classes × ${templates} templates rows`);
  return noGrad(() => l2Normalize(mean(reshape(l2Normalize(textFeatures), [classes, templates, D]), 1)));
}

/**
 * The classifier for `classes` classes from their tokenized prompts: `tokens` holds C·T rows of
 * the model's context length, class-major (class c, template t at row c·T + t). Embedded in
 * chunks of `batch` prompts.
 */
export async function zeroShotClassifier(model: CLIP, tokens: Int32Array, classes: number, templates: number, batch = 256): Promise<Tensor> {
  const L = model.config.text.contextLength;
  const rows = classes * templates;
  if (tokens.length !== rows * L) throw new RangeError(`zeroShotClassifier: ${tokens.length} ids are not ${classes} × ${templates} prompts of ${L} tokens`);
  const per = Math.max(templates, Math.floor(batch / templates) * templates);
  const parts: Tensor[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    parts.push(noGrad(() => classifierFromFeatures(model.encodeText(tokens.subarray(r * L, (r + n) * L)), n / templates, templates)).keep());
    await model.logit_scale.engine.flush();
  }
  if (parts.length === 1) return parts[0]!;
  const all = noGrad(() => concat(parts, 0));
  parts.forEach((p) => p.dispose());
  return all;
}

/** Zero-shot logits 100 · norm(image) · Wᵀ for image features [B, D] (normalised here) and a classifier [C, D]. */
export const zeroShotLogits = (imageFeatures: Tensor, classifier: Tensor) => noGrad(() => mul(linear(l2Normalize(imageFeatures), classifier), 100));
