/**
 * A raw pool for MetaCLIP's claim (curation beats the raw pool at the same steps): the
 * Fashion-MNIST and MNIST training images captioned as pairs, with Zipf-skewed class frequencies
 * (the 20 classes in a seeded order, share ∝ rank^−s, s set so the head class holds `head/tail`
 * times the tail's: 43% and 0.54% at the defaults), plus noise pairs whose captions are camera
 * file names (`DSC_04821`), which match no metadata entry, as alt-texts often do.
 *
 * Captions name the class with a word that is a metadata entry (MetaCLIP balances per entry):
 * "a photo of a boot." (the set's own "ankle boot" is no entry), "a photo of the number 7.".
 */
import { join } from 'node:path';
import { DatasetBuilder, readDatasetInfo, type DatasetInfo, type PairSample } from './dataset.js';
import { Rng } from './rng.js';
import { readShards } from './shards.js';

/** Each Fashion-MNIST class as a word of the default metadata (numbers, WordNet, SUBTLEX). */
export const FASHION_POOL_WORDS = ['top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneakers', 'bag', 'boot'] as const;
const FASHION_ORDER = ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

export interface NoisyPoolOptions {
  dataDir: string;
  out: string;
  /** Labelled pairs (all 20 classes). The head class must fit its set's ~6000 images. */
  labelled?: number;
  /** Share of the whole pool (these and `beside` pairs) that is noise. */
  noise?: number;
  /** Pairs that sit beside this pool in the raw pool (emoji, clip-art): counted for `noise`. */
  beside?: number;
  /** Head share / tail share. */
  headOverTail?: number;
  seed?: number;
}

export interface PoolClass {
  set: 'fashion-mnist' | 'mnist';
  label: number;
  /** The word its captions use. */
  word: string;
  count: number;
  share: number;
}

/** Zipf shares of n ranks, share ∝ r^−s with first/last = ratio. */
export function zipfShares(n: number, ratio: number): number[] {
  const s = Math.log(ratio) / Math.log(n);
  const w = Array.from({ length: n }, (_, r) => (r + 1) ** -s);
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

const NOISE_PREFIXES = ['DSC', 'IMG', 'DSCN', 'P', 'image', 'photo', 'upload', 'file'];

/** Builds the pool as a pairs data set in `out` (one `train` split); returns its classes by rank. */
export async function writeNoisyPool(o: NoisyPoolOptions): Promise<{ info: DatasetInfo; classes: PoolClass[]; noise: number }> {
  const labelled = o.labelled ?? 12_000;
  const rng = new Rng(o.seed ?? 0);
  const all: Omit<PoolClass, 'count' | 'share'>[] = [
    ...FASHION_ORDER.map((_, label) => ({ set: 'fashion-mnist' as const, label, word: FASHION_POOL_WORDS[label]! })),
    ...Array.from({ length: 10 }, (_, label) => ({ set: 'mnist' as const, label, word: String(label) })),
  ];
  for (const set of ['fashion-mnist', 'mnist'] as const) {
    const classes = readDatasetInfo(join(o.dataDir, set)).classes!;
    const expect = set === 'mnist' ? all.slice(10).map((c) => String(c.label)) : FASHION_ORDER;
    if (classes.join('\n') !== expect.join('\n'))
      throw Object.assign(new Error(`${join(o.dataDir, set)}: classes ${classes.join(', ')} are not ${expect.join(', ')}. Fix: npx mode data prepare`), {
        userFacing: true,
      });
  }
  rng.shuffle(all); // a seeded order of the classes, then Zipf counts down it
  const shares = zipfShares(all.length, o.headOverTail ?? 80);
  const classes: PoolClass[] = all.map((c, r) => ({ ...c, share: shares[r]!, count: Math.max(1, Math.round(labelled * shares[r]!)) }));
  const total = classes.reduce((a, c) => a + c.count, 0);
  const noiseShare = o.noise ?? 0.3;
  const noise = Math.round((noiseShare / (1 - noiseShare)) * (total + (o.beside ?? 0)));
  const want = new Map(classes.map((c) => [`${c.set}/${c.label}`, c]));
  const taken = new Map<string, number>();
  const pairs: PairSample[] = [];
  const spare: { set: string; label: number; png: Uint8Array; key: string }[] = [];
  for (const set of ['fashion-mnist', 'mnist'] as const) {
    const dir = join(o.dataDir, set);
    const shards = readDatasetInfo(dir).splits.train!.shards.map((f) => join(dir, f));
    for await (const raw of readShards(shards)) {
      const label = Number(new TextDecoder().decode(raw.files.cls!));
      const id = `${set}/${label}`;
      const c = want.get(id)!;
      const n = taken.get(id) ?? 0;
      const png = raw.files.png!;
      if (n < c.count) {
        taken.set(id, n + 1);
        const text = set === 'mnist' ? `a photo of the number ${c.word}.` : `a photo of a ${c.word}.`;
        pairs.push({ key: `pool-${set}-${raw.key}`, png, text, json: { group: `${set}/${c.word}`, label, set } });
      } else spare.push({ set, label, png, key: raw.key });
    }
  }
  for (const c of classes) {
    const got = taken.get(`${c.set}/${c.label}`) ?? 0;
    if (got < c.count)
      throw Object.assign(new Error(`noisy pool: ${c.set} class ${c.word} has ${got} training images, the pool wants ${c.count}. Fix: a smaller --labelled`), {
        userFacing: true,
      });
  }
  if (spare.length < noise)
    throw Object.assign(new Error(`noisy pool: ${spare.length} images left for ${noise} noise pairs. Fix: a smaller noise share`), { userFacing: true });
  for (const s of rng.shuffle(spare).slice(0, noise)) {
    const name = `${NOISE_PREFIXES[rng.int(NOISE_PREFIXES.length)]}_${String(rng.int(100_000)).padStart(5, '0')}`;
    pairs.push({ key: `noise-${s.set}-${s.key}`, png: s.png, text: name, json: { group: 'noise', set: s.set } });
  }
  rng.shuffle(pairs);
  const builder = new DatasetBuilder(o.out, {
    name: 'noisy-pool',
    kind: 'pairs',
    description: `Fashion-MNIST and MNIST training images as pairs, Zipf-skewed classes (head ${(100 * shares[0]!).toFixed(1)}%, tail ${(100 * shares.at(-1)!).toFixed(2)}%), and ${noise} noise pairs captioned with file names`,
    source: 'mode data noisy-pool',
  });
  await builder.writeSplit('train', pairs);
  const info = builder.finish();
  return { info, classes, noise };
}
