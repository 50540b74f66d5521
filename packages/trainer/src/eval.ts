/**
 * Evaluation: zero-shot classification (top-1/top-5 with each set's prompt templates) and
 * image↔text retrieval (recall@1/5/10) on the pairs held out of training.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { l2Normalize, noGrad, tensor, type Tensor } from '@mode/autograd';
import { defaultDataDir, tokenizerFor, openClassification, openMix, readDatasetInfo, type MixSource, type TextTokenizer } from '@mode/data';
import { checkTokenizer, zeroShotClassifier, zeroShotLogits, type CLIP } from '@mode/models';
import { HOLDOUT } from './train.js';

export interface ZeroShotResult {
  task: string;
  classes: number;
  templates: number;
  count: number;
  top1: number;
  top5: number;
  /** 1 / classes: what guessing scores. */
  chance: number;
  /** Per class: its images and the top-1 hits among them (recall = hits / images). */
  perClass: { images: number[]; hits: number[] };
}

export interface RetrievalResult {
  task: 'retrieval';
  count: number;
  imageToText: { r1: number; r5: number; r10: number };
  textToImage: { r1: number; r5: number; r10: number };
}

/** The built-in evaluation tasks and the data set folder (and split) each reads. */
export const EVAL_TASKS = {
  'fashion-mnist': { dir: 'fashion-mnist', split: 'test' },
  mnist: { dir: 'mnist', split: 'test' },
  /** A style never trained on: OpenMoji's drawings, labelled by Unicode subgroup. */
  openmoji: { dir: 'openmoji', split: 'test' },
} as const;
export type EvalTask = keyof typeof EVAL_TASKS | 'retrieval';

/** The model's own mean and std (an imported OpenCLIP model's preprocess_cfg); the loader's default is OpenAI's. */
const normalisationOf = (model: CLIP) => (model.preprocess ? { mean: model.preprocess.mean, std: model.preprocess.std } : {});

const imagesOf = (b: { images: Float32Array; size: number }, S: number) => tensor(b.images, [b.size, 3, S, S]);

/** Zero-shot accuracy of `model` on a classification set folder (`limit`: at most that many images). */
export async function zeroShot(
  model: CLIP,
  o: {
    dir: string;
    split?: string;
    task?: string;
    tokenizer: TextTokenizer;
    batchSize?: number;
    limit?: number;
    /** Override the set's own class names / prompt templates (`{}` for the name). */
    classes?: readonly string[];
    templates?: readonly string[];
    /** Loader worker threads (0: in-process). */
    workers?: number;
  },
): Promise<ZeroShotResult> {
  const S = model.config.vision.imageSize;
  const L = model.config.text.contextLength;
  const labels = { ...(o.classes ? { classes: o.classes } : {}), ...(o.templates ? { templates: o.templates } : {}) };
  const { loader, classes, templates } = openClassification(
    o.dir,
    o.split,
    { batchSize: o.batchSize ?? 128, imageSize: S, workers: o.workers ?? 0, ...normalisationOf(model) },
    labels,
  );
  const prompts = classes.flatMap((c) => templates.map((t) => t.replace('{}', c)));
  const W = await zeroShotClassifier(model, o.tokenizer.tokenize(prompts, L), classes.length, templates.length);
  let [count, top1, top5] = [0, 0, 0];
  const C = classes.length;
  const perClass = { images: new Array<number>(C).fill(0), hits: new Array<number>(C).fill(0) };
  for await (const b of loader) {
    const n = Math.min(b.size, (o.limit ?? Infinity) - count);
    if (n <= 0) break;
    const logits = noGrad(() => {
      const x = imagesOf(b, S);
      loader.release(b); // uploaded
      return zeroShotLogits(model.encodeImage(x), W);
    });
    const v = await logits.read();
    logits.dispose();
    for (let i = 0; i < n; i++) {
      const row = v.subarray(i * C, (i + 1) * C);
      const label = b.labels![i]!;
      const target = row[label]!;
      const rank = row.reduce((r, x) => r + (x > target ? 1 : 0), 0);
      top1 += rank < 1 ? 1 : 0;
      perClass.images[label]!++;
      perClass.hits[label]! += rank < 1 ? 1 : 0;
      top5 += rank < 5 ? 1 : 0;
    }
    count += n;
  }
  W.dispose();
  return { task: o.task ?? o.dir, classes: C, templates: templates.length, count, top1: top1 / count, top5: top5 / count, chance: 1 / C, perClass };
}

/**
 * Recall@k both ways on the pairs of `sources` held out of training (HOLDOUT of them, by key hash),
 * or on all of them (`all`: the user's own evaluation pairs).
 */
export async function retrieval(
  model: CLIP,
  o: { sources: MixSource[]; tokenizer: TextTokenizer; batchSize?: number; limit?: number; all?: boolean },
): Promise<RetrievalResult> {
  const S = model.config.vision.imageSize;
  const L = model.config.text.contextLength;
  const loader = openMix(o.sources, {
    ...normalisationOf(model),
    batchSize: o.batchSize ?? 128,
    imageSize: S,
    tokenizer: o.tokenizer,
    contextLength: L,
    shuffle: false,
    ...(o.all ? {} : { holdout: { fraction: HOLDOUT, take: 'val' as const } }),
    workers: 0,
  });
  const imgs: Float32Array[] = [];
  const txts: Float32Array[] = [];
  let count = 0;
  for await (const b of loader) {
    if (count >= (o.limit ?? Infinity)) break;
    const x = imagesOf(b, S);
    loader.release(b); // uploaded
    const [fi, ft] = noGrad(() => [l2Normalize(model.encodeImage(x)), l2Normalize(model.encodeText(b.tokens!))]) as [Tensor, Tensor];
    imgs.push(await fi.read());
    txts.push(await ft.read());
    [fi, ft, x].forEach((t) => t.dispose());
    count += b.size;
  }
  const D = model.config.embedDim;
  const n = Math.min(count, o.limit ?? Infinity);
  const I = concatRows(imgs, n * D);
  const T = concatRows(txts, n * D);
  return { task: 'retrieval', count: n, imageToText: recalls(I, T, n, D), textToImage: recalls(T, I, n, D) };
}

function concatRows(parts: Float32Array[], length: number): Float32Array {
  const out = new Float32Array(length);
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, length - at);
    out.set(p.subarray(0, take), at);
    at += take;
  }
  return out;
}

/** Fraction of queries whose own match ranks in the top k by cosine (ties count against). */
export function recalls(queries: Float32Array, keys: Float32Array, n: number, d: number): { r1: number; r5: number; r10: number } {
  const hits = { r1: 0, r5: 0, r10: 0 };
  for (let i = 0; i < n; i++) {
    const dot = (j: number) => {
      let s = 0;
      for (let k = 0; k < d; k++) s += queries[i * d + k]! * keys[j * d + k]!;
      return s;
    };
    const own = dot(i);
    let rank = 0;
    for (let j = 0; j < n; j++) if (j !== i && dot(j) >= own) rank++;
    if (rank < 1) hits.r1++;
    if (rank < 5) hits.r5++;
    if (rank < 10) hits.r10++;
  }
  return { r1: hits.r1 / n, r5: hits.r5 / n, r10: hits.r10 / n };
}

/**
 * Runs a task (`mode eval --task`): a built-in name on the prepared data; `retrieval` (the prepared
 * pairs held out of training, or all of `sources`: the user's pairs); or a folder: a data set
 * folder (its `test` split, else its first), a CLIP_benchmark folder (`test/0.tar`… with
 * `nshards.txt`, `classnames.txt`, `zeroshot_classification_templates.txt`), an ImageNet-style
 * class-folder tree (`val/CLASS/*.JPEG`), or labelled shards by pattern. `classes` and
 * `templates` replace the set's own.
 */
export async function evaluate(
  model: CLIP,
  task: EvalTask | string,
  o: {
    dataDir?: string;
    /** A tokenizer file instead of the data folder's; it must be the one the model was trained with. */
    tokenizer?: string;
    limit?: number;
    sources?: MixSource[];
    classes?: readonly string[];
    templates?: readonly string[];
    workers?: number;
  } = {},
): Promise<ZeroShotResult | RetrievalResult> {
  const dataDir = o.dataDir ?? defaultDataDir();
  const tokenizer = tokenizerFor({ dataDir, ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}) });
  checkTokenizer(model, tokenizer, o.tokenizer ?? join(dataDir, 'tokenizer.json'), 'the model');
  const lim = o.limit !== undefined ? { limit: o.limit } : {};
  if (task === 'retrieval')
    return o.sources
      ? retrieval(model, { sources: o.sources, tokenizer, all: true, ...lim })
      : retrieval(model, { sources: [{ dir: join(dataDir, 'emoji') }, { dir: join(dataDir, 'clipart') }], tokenizer, ...lim });
  const labels = { ...(o.classes ? { classes: o.classes } : {}), ...(o.templates ? { templates: o.templates } : {}), workers: o.workers ?? 0 };
  const t = (EVAL_TASKS as Record<string, { dir: string; split: string }>)[task];
  if (t) return zeroShot(model, { dir: join(dataDir, t.dir), split: t.split, task, tokenizer, ...lim, ...labels });
  if (!existsSync(task) && !/[{*?[]/.test(task))
    throw Object.assign(
      new Error(
        `unknown task "${task}": use one of ${[...Object.keys(EVAL_TASKS), 'retrieval'].join(', ')}, or a folder: a classification data set, a CLIP_benchmark folder or a class-folder tree`,
      ),
      { userFacing: true },
    );
  const split = existsSync(join(task, 'dataset.json')) ? Object.keys(readDatasetInfo(task).splits) : undefined;
  return zeroShot(model, {
    dir: task,
    ...(split ? { split: split.includes('test') ? 'test' : split[0]! } : {}),
    task: basename(task.replace(/\/+$/, '')),
    tokenizer,
    ...lim,
    ...labels,
  });
}
