/**
 * Test shards written the way img2dataset writes them: `{00000..N}.tar`, keys `shard·10⁴ + index`
 * padded to 9 digits, members `KEY.jpg` + `KEY.txt` + `KEY.json` (caption, url, key, status,
 * width, height), with the awkward samples real crawls have when asked (`awkward: true`): an
 * empty caption, a truncated JPEG, a CMYK JPEG, an EXIF-rotated JPEG, a WebP, an upper-case
 * `.JPG`, a caption only in the JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import tar from 'tar-stream';
import { Rng } from '../src/index.js';

const WORDS = ['red', 'blue', 'green', 'small', 'large', 'striped', 'round', 'square', 'bright', 'dark'];
const THINGS = ['cat', 'dog', 'car', 'house', 'tree', 'boat', 'cup', 'lamp'];

/** A `size`² RGB photo stand-in: a gradient tinted by `seed`, with noise (so JPEG has texture to code). */
export function photoPixels(seed: number, width: number, height = width): Buffer {
  const rng = new Rng(seed);
  const tint = [rng.int(256), rng.int(256), rng.int(256)];
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = Math.min(255, (tint[0]! + (x * 128) / width + rng.int(24)) | 0);
      px[i + 1] = Math.min(255, (tint[1]! + (y * 128) / height + rng.int(24)) | 0);
      px[i + 2] = Math.min(255, (tint[2]! + ((x + y) * 64) / width + rng.int(24)) | 0);
    }
  return px;
}

export const jpeg = (seed: number, width: number, height = width, quality = 90) =>
  sharp(photoPixels(seed, width, height), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();

/** Writes a tar of `entries` (name, body) in order, headers without time or owner. */
async function writeTar(path: string, entries: [string, Buffer | string][]): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const [name, body] of entries) pack.entry({ name, mtime: new Date(0) }, body);
  pack.finalize();
  await done;
  writeFileSync(path, Buffer.concat(chunks));
}

/** What a written set holds: the shard paths, every key in order, and the awkward samples by kind. */
export interface WrittenShards {
  shards: string[];
  keys: string[];
  awkward: Record<string, string>;
}

/** The awkward samples, by the index (within shard 0) they replace. */
const AWKWARD = ['empty caption', 'truncated jpeg', 'cmyk jpeg', 'exif-rotated jpeg', 'webp', 'upper-case JPG', 'json caption'] as const;

export async function writeImg2datasetShards(
  dir: string,
  o: { shards: number; perShard: number; size?: number; awkward?: boolean; seed?: number },
): Promise<WrittenShards> {
  mkdirSync(dir, { recursive: true });
  const size = o.size ?? 48;
  const rng = new Rng(o.seed ?? 7);
  const out: WrittenShards = { shards: [], keys: [], awkward: {} };
  for (let s = 0; s < o.shards; s++) {
    const entries: [string, Buffer | string][] = [];
    for (let i = 0; i < o.perShard; i++) {
      const key = String(s * 10000 + i).padStart(9, '0');
      const seed = s * 1000 + i;
      const caption = `a ${WORDS[rng.int(WORDS.length)]} ${THINGS[rng.int(THINGS.length)]} number ${seed}`;
      let files: [string, Buffer][] = [[`${key}.jpg`, await jpeg(seed, size, size - (i % 3))]];
      let txt: string | null = caption;
      const kind = o.awkward && s === 0 ? AWKWARD[i] : undefined;
      if (kind) out.awkward[kind] = key;
      if (kind === 'empty caption') txt = '';
      else if (kind === 'truncated jpeg') files = [[`${key}.jpg`, files[0]![1].subarray(0, files[0]![1].length >> 1)]];
      else if (kind === 'cmyk jpeg')
        files = [
          [
            `${key}.jpg`,
            await sharp(photoPixels(seed, size), { raw: { width: size, height: size, channels: 3 } })
              .toColourspace('cmyk')
              .jpeg()
              .toBuffer(),
          ],
        ];
      else if (kind === 'exif-rotated jpeg')
        files = [
          [
            `${key}.jpg`,
            await sharp(await jpeg(seed, size, size / 2))
              .withMetadata({ orientation: 6 })
              .jpeg()
              .toBuffer(),
          ],
        ];
      else if (kind === 'webp')
        files = [
          [
            `${key}.webp`,
            await sharp(photoPixels(seed, size), { raw: { width: size, height: size, channels: 3 } })
              .webp()
              .toBuffer(),
          ],
        ];
      else if (kind === 'upper-case JPG') files = [[`${key}.JPG`, files[0]![1]]];
      else if (kind === 'json caption') txt = null;
      entries.push(...files);
      if (txt !== null) entries.push([`${key}.txt`, txt]);
      entries.push([`${key}.json`, JSON.stringify({ url: `https://example.invalid/${key}.jpg`, key, status: 'success', width: size, height: size, caption })]);
      out.keys.push(key);
    }
    const path = join(dir, `${String(s).padStart(5, '0')}.tar`);
    await writeTar(path, entries);
    writeFileSync(join(dir, `${String(s).padStart(5, '0')}_stats.json`), JSON.stringify({ count: o.perShard, successes: o.perShard }));
    out.shards.push(path);
  }
  return out;
}

/**
 * A CLIP_benchmark test set as its webdatasets hold one: `test/{0..n-1}.tar` of `KEY.webp` +
 * `KEY.cls`, `test/nshards.txt`, `classnames.txt`, `zeroshot_classification_templates.txt` ({c}).
 * Labels cycle through the classes.
 */
export async function writeClipBenchmark(dir: string, o: { shards: number; perShard: number; classes: string[]; size?: number }): Promise<number[]> {
  mkdirSync(join(dir, 'test'), { recursive: true });
  const labels: number[] = [];
  for (let s = 0; s < o.shards; s++) {
    const entries: [string, Buffer | string][] = [];
    for (let i = 0; i < o.perShard; i++) {
      const label = labels.length % o.classes.length;
      const size = o.size ?? 32;
      const webp = await sharp(photoPixels(label * 100 + i, size), { raw: { width: size, height: size, channels: 3 } })
        .webp()
        .toBuffer();
      entries.push([`s${s}_${i}.webp`, webp], [`s${s}_${i}.cls`, String(label)]);
      labels.push(label);
    }
    await writeTar(join(dir, 'test', `${s}.tar`), entries);
  }
  writeFileSync(join(dir, 'test', 'nshards.txt'), `${o.shards}\n`);
  writeFileSync(join(dir, 'classnames.txt'), o.classes.join('\n') + '\n');
  writeFileSync(join(dir, 'zeroshot_classification_templates.txt'), 'a photo of a {c}.\na blurry photo of a {c}.\n');
  return labels;
}

/** An ImageNet-style tree: `val/CLASS/NAME.JPEG`, `per` images a class. */
export async function writeClassTree(dir: string, o: { classes: string[]; per: number; size?: number }): Promise<void> {
  for (const [c, name] of o.classes.entries()) {
    mkdirSync(join(dir, 'val', name), { recursive: true });
    for (let i = 0; i < o.per; i++) writeFileSync(join(dir, 'val', name, `ILSVRC_${c}_${i}.JPEG`), await jpeg(c * 100 + i, o.size ?? 40, (o.size ?? 40) + 6));
  }
}
