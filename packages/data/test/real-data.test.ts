/**
 * The user's own data: images in any format through sharp (checked against PIL, OpenCLIP's
 * decoder), img2dataset shards by folder, brace pattern and glob, the members webdataset reads,
 * and bad samples named by shard and key or skipped and counted by kind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BadRecords,
  CLIP_MEAN,
  CLIP_STD,
  resizeToCHW,
  DataError,
  DataLoader,
  copies,
  countSamples,
  coverGeometry,
  resizeBicubic,
  toCHW,
  toFloat,
  normalizeCHW,
  decodeImage,
  decodePng,
  encodePng,
  expandBraces,
  expandGlob,
  firstSampleMembers,
  imageMember,
  indexShard,
  jpegHeader,
  readIndex,
  writeIndex,
  openClassification,
  openPairs,
  readShard,
  readTemplates,
  resolveShardSet,
  shardsOf,
  toPair,
  type RawSample,
} from '../src/index.js';
import { jpeg, photoPixels, writeClassTree, writeClipBenchmark, writeImg2datasetShards, type WrittenShards } from './img2dataset.js';
import { tmp } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const hasPil = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import PIL'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const pilWhy = 'needs /usr/bin/python3 with PIL (python3-pil, installed by scripts/setup.sh)';

/** PIL's RGB pixels of each file (optionally OpenCLIP's eval transform at `cover`, or a crop resized to `crop[4]`²). */
function pil(files: string[], o: { cover?: number; crop?: number[] } = {}): Record<string, { width: number; height: number; rgb: Buffer }> {
  const flags = [...(o.cover ? ['--cover', String(o.cover)] : []), ...(o.crop ? ['--crop', o.crop.join(',')] : [])];
  const out = execFileSync(PYTHON, [join(import.meta.dirname, 'pil_reference.py'), ...flags, ...files], {
    maxBuffer: 1 << 28,
  });
  const parsed = JSON.parse(out.toString()) as Record<string, { width: number; height: number; rgb: string }>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, { ...v, rgb: Buffer.from(v.rgb, 'base64') }]));
}

/** Per-channel absolute differences between RGBA (ours) and RGB (PIL's): max and mean. */
function diff(rgba: Uint8Array, rgb: Buffer): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  const n = rgb.length / 3;
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(rgba[i * 4 + c]! - rgb[i * 3 + c]!);
      max = Math.max(max, d);
      sum += d;
    }
  return { max, mean: sum / (n * 3) };
}

const raw = (w: number, h: number) => ({ raw: { width: w, height: h, channels: 3 as const } });

describe('decodeImage (sharp)', () => {
  it('a PNG decodes to the same RGBA as pngjs (alpha kept for compositing)', async () => {
    const px = Uint8Array.from({ length: 13 * 9 * 4 }, (_, i) => (i * 7919) % 256);
    const png = encodePng(px, 13, 9, 4);
    const a = await decodeImage(png);
    expect([a.width, a.height]).toEqual([13, 9]);
    expect(Buffer.from(a.data).equals(Buffer.from(decodePng(png).data))).toBe(true);
  });

  it('grey, 16-bit, CMYK and WebP images become 8-bit sRGB with alpha', async () => {
    const rgb = photoPixels(3, 20, 12);
    const grey = await decodeImage(await sharp(rgb, raw(20, 12)).greyscale().png().toBuffer());
    for (let i = 0; i < 20 * 12; i++) expect(grey.data[i * 4]).toBe(grey.data[i * 4 + 2]);
    const deep = await decodeImage(await sharp(rgb, raw(20, 12)).toColourspace('rgb16').png().toBuffer());
    expect(deep.data.length).toBe(20 * 12 * 4);
    for (let i = 0; i < 20 * 12 * 3; i++) expect(Math.abs(deep.data[Math.floor(i / 3) * 4 + (i % 3)]! - rgb[i]!)).toBeLessThanOrEqual(1);
    const cmyk = await decodeImage(await sharp(rgb, raw(20, 12)).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer());
    expect(diff(cmyk.data, rgb).mean).toBeLessThan(12); // through a CMYK profile and back
    const webp = await decodeImage(await sharp(rgb, raw(20, 12)).webp({ lossless: true }).toBuffer());
    expect(diff(webp.data, rgb).max).toBe(0);
  });

  it('EXIF orientation is applied: a 6 (90° clockwise) swaps width and height and moves the pixels', async () => {
    const rgb = photoPixels(5, 16, 8);
    const png = await sharp(rgb, raw(16, 8)).withMetadata({ orientation: 6 }).png().toBuffer();
    const img = await decodeImage(png);
    expect([img.width, img.height]).toEqual([8, 16]);
    // Rotated clockwise: output (x, y) is input (y, H - 1 - x), H = 8.
    for (const [x, y] of [
      [0, 0],
      [7, 15],
      [3, 9],
    ]) {
      const src = ((7 - x!) * 16 + y!) * 3;
      const dst = (y! * 8 + x!) * 4;
      expect([...img.data.subarray(dst, dst + 3)]).toEqual([...rgb.subarray(src, src + 3)]);
    }
  });

  it("jpegHeader reads a JPEG's size, components and EXIF orientation as libvips does, and gives up on anything else", async () => {
    const rgb = photoPixels(6, 24, 10);
    const files = await Promise.all([
      sharp(rgb, raw(24, 10)).jpeg({ quality: 90 }).toBuffer(),
      sharp(rgb, raw(24, 10)).jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer(),
      sharp(rgb, raw(24, 10)).greyscale().jpeg().toBuffer(),
      sharp(rgb, raw(24, 10)).toColourspace('cmyk').jpeg().toBuffer(),
      ...[3, 6, 8].map((orientation) => sharp(rgb, raw(24, 10)).withMetadata({ orientation }).jpeg().toBuffer()),
      sharp(rgb, raw(24, 10))
        .withExif({ IFD0: { Copyright: 'x' } })
        .jpeg()
        .toBuffer(),
    ]);
    for (const f of files) {
      const meta = await sharp(f).metadata();
      const plainRgb = meta.space === 'srgb' && meta.channels === 3 && meta.depth === 'uchar';
      expect(jpegHeader(f)).toEqual({ width: meta.width, height: meta.height, orientation: meta.orientation ?? 1, plainRgb });
    }
    // A rotated JPEG's crop box is chosen on its displayed size (read in JavaScript) and cut from the rotated pixels.
    const rotated = await sharp(rgb, raw(24, 10)).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const seen: number[] = [];
    const box = (w: number, h: number) => (seen.push(w, h), { x: 1, y: 2, w: w - 1, h: h - 3 });
    const ours = await decodeImage(rotated, undefined, { kind: 'crop', size: 8, box }, { rgb: true });
    expect(seen).toEqual([10, 24]);
    const libvips = await sharp(rotated)
      .autoOrient()
      .extract({ left: 1, top: 2, width: 9, height: 21 })
      .resize(8, 8, { fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer();
    expect(Buffer.from(ours.data)).toEqual(libvips);
    const png = await sharp(rgb, raw(24, 10)).png().toBuffer();
    for (const bytes of [png, Buffer.from('not an image'), files[0]!.subarray(0, 20)]) expect(jpegHeader(bytes)).toBeUndefined();
  });

  it('a truncated or non-image file throws a DataError naming the shard and key', async () => {
    const full = await jpeg(1, 64);
    for (const bytes of [full.subarray(0, full.length >> 1), Buffer.from('not an image')]) {
      const err = await decodeImage(bytes, { file: 'x/00001.tar', record: '000010004' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataError);
      expect((err as DataError).message).toMatch(/^x\/00001\.tar: record 000010004: corrupt or unreadable image/);
      expect((err as DataError).kind).toBe('corrupt image');
    }
  });

  it('rgb: an sRGB JPEG comes out as RGB, an image with alpha as RGBA; toCHW equals normalizeCHW(toFloat) for both', async () => {
    const j = await decodeImage(await jpeg(4, 30, 20), undefined, { kind: 'cover', size: 16 }, { rgb: true });
    expect([j.channels, j.data.length]).toEqual([3, 16 * 16 * 3]);
    const rgba = Uint8Array.from({ length: 9 * 7 * 4 }, (_, i) => (i * 37) % 256);
    const p = await decodeImage(encodePng(rgba, 9, 7, 4), undefined, { kind: 'native' }, { rgb: true });
    expect(p.channels ?? 4).toBe(4);
    const mean = [0.4, 0.5, 0.6];
    const std = [0.2, 0.3, 0.25];
    for (const img of [j, p]) {
      const fused = toCHW(img, [1, 0.5, 0], mean, std);
      const twoPass = normalizeCHW(toFloat(img, [1, 0.5, 0]), undefined, 0, mean, std);
      for (let i = 0; i < fused.length; i++) expect(fused[i]).toBeCloseTo(twoPass[i]!, 5);
    }
  });

  it('fits: cover gives size², crop gives size² of the box, shorter never enlarges', async () => {
    const j = await jpeg(2, 90, 60);
    const c = await decodeImage(j, undefined, { kind: 'cover', size: 32 });
    expect([c.width, c.height]).toEqual([32, 32]);
    let seen: number[] = [];
    const k = await decodeImage(j, undefined, { kind: 'crop', size: 24, box: (w, h) => ((seen = [w, h]), { x: 3, y: 4, w: 50, h: 40 }) });
    expect(seen).toEqual([90, 60]);
    expect([k.width, k.height]).toEqual([24, 24]);
    expect([
      (await decodeImage(j, undefined, { kind: 'shorter', max: 30 })).height,
      (await decodeImage(j, undefined, { kind: 'shorter', max: 300 })).height,
    ]).toEqual([30, 60]);
  });
});

describe.skipIf(!hasPil)(`pixels equal PIL's (${pilWhy})`, () => {
  let dir: string;
  const files: Record<string, string> = {};
  beforeAll(async () => {
    dir = tmp('pil');
    const rgb = photoPixels(11, 77, 53);
    const src = sharp(rgb, raw(77, 53));
    files.jpeg = join(dir, 'baseline.jpg');
    writeFileSync(files.jpeg, await src.clone().jpeg({ quality: 85, mozjpeg: false, progressive: false }).toBuffer());
    files.jpeg420 = join(dir, 'subsampled.jpg');
    writeFileSync(files.jpeg420, await src.clone().jpeg({ quality: 75, chromaSubsampling: '4:2:0' }).toBuffer());
    files.png = join(dir, 'image.png');
    writeFileSync(files.png, await src.clone().png().toBuffer());
    files.webp = join(dir, 'image.webp');
    writeFileSync(files.webp, await src.clone().webp({ quality: 80 }).toBuffer());
  });

  it('baseline JPEG (4:4:4 and 4:2:0), PNG and WebP decode within 1 level per channel', async () => {
    const ref = pil(Object.values(files));
    for (const [name, f] of Object.entries(files)) {
      const ours = await decodeImage(readFileSync(f));
      expect([ours.width, ours.height], name).toEqual([ref[f]!.width, ref[f]!.height]);
      expect(diff(ours.data, ref[f]!.rgb).max, name).toBeLessThanOrEqual(1);
    }
  });

  // Shrinking runs in libvips: measured on these noisy images (every pixel an edge, the hardest
  // case), mean |Δ| ≤ 0.1 and max ≤ 2 levels. Enlarging is PIL's own algorithm in JavaScript: the
  // same bytes as PIL from the same decoded pixels (a PNG here).
  it("the eval transform (shorter side bicubic, centre crop) is within 2 levels of torchvision's on PIL shrinking, equal enlarging", async () => {
    const paths = { js: 0, libvips: 0 };
    for (const size of [24, 32, 53, 64, 120]) {
      const ref = pil([files.png!], { cover: size })[files.png!]!;
      const ours = await decodeImage(readFileSync(files.png!), undefined, { kind: 'cover', size });
      expect([ours.width, ours.height]).toEqual([size, size]);
      const d = diff(ours.data, ref.rgb);
      const g = coverGeometry(77, 53, size);
      const libvips = g.w <= 77 && g.h <= 53;
      paths[libvips ? 'libvips' : 'js']++;
      expect(d.max, `max |Δ| at ${size}`).toBeLessThanOrEqual(libvips ? 2 : 0);
      expect(d.mean, `mean |Δ| at ${size}`).toBeLessThan(0.25);
    }
    expect(paths).toEqual({ js: 2, libvips: 3 });
  });

  it("resizeBicubic (the browser page's and mode classify's eval transform) equals PIL's, shrinking and enlarging, RGB and RGBA", async () => {
    for (const rgb of [true, false]) {
      const img = await decodeImage(readFileSync(files.png!), undefined, { kind: 'native' }, { rgb });
      expect(img.channels ?? 4).toBe(rgb ? 3 : 4);
      for (const size of [16, 24, 53, 64, 120]) {
        const ref = pil([files.png!], { cover: size })[files.png!]!;
        const g = coverGeometry(img.width, img.height, size);
        const ours = resizeBicubic(img, g.w, g.h, { x: g.left, y: g.top, w: size, h: size });
        const rgba = rgb ? Uint8Array.from({ length: size * size * 4 }, (_, i) => (i % 4 === 3 ? 255 : ours.data[(i >> 2) * 3 + (i % 4)]!)) : ours.data;
        expect(diff(rgba, ref.rgb).max, `at ${size}`).toBe(0);
      }
    }
  });

  it('resizeToCHW writes what resizeBicubic then toCHW would, for RGB and RGBA, into its place', async () => {
    for (const rgb of [true, false]) {
      const img = await decodeImage(readFileSync(files.jpeg!), undefined, { kind: 'native' }, { rgb });
      for (const [w, h, win] of [
        [40, 30, { x: 3, y: 2, w: 31, h: 25 }],
        [150, 101, { x: 0, y: 10, w: 150, h: 80 }],
        [77, 53, { x: 0, y: 0, w: 77, h: 53 }],
      ] as const) {
        const out = new Float32Array(2 + 3 * win.w * win.h).fill(Number.NaN);
        resizeToCHW(img, w, h, win, [1, 1, 1], CLIP_MEAN, CLIP_STD, out, 2);
        const ref = toCHW(resizeBicubic(img, w, h, win), [1, 1, 1], CLIP_MEAN, CLIP_STD);
        expect(Number.isNaN(out[0]) && Number.isNaN(out[1])).toBe(true);
        expect(out.subarray(2)).toEqual(ref);
      }
    }
  });

  it("RandomResizedCrop's crop + bicubic resize is within 2 levels of PIL's shrinking (libvips), equal from the same pixels enlarging", async () => {
    for (const box of [
      [3, 5, 70, 44, 32],
      [0, 0, 77, 53, 40],
      [10, 7, 30, 20, 64],
      [20, 2, 50, 50, 50],
      [30, 20, 40, 30, 36],
    ]) {
      const [x, y, w, h, size] = box as [number, number, number, number, number];
      const libvips = size <= w && size <= h;
      for (const f of [files.png!, files.jpeg!]) {
        const ref = pil([f], { crop: box })[f]!;
        const ours = await decodeImage(readFileSync(f), undefined, { kind: 'crop', size, box: () => ({ x, y, w, h }) });
        const d = diff(ours.data, ref.rgb);
        expect(d.mean, `mean |Δ| for ${box} of ${f}`).toBeLessThan(0.25);
        expect(d.max, `max |Δ| for ${box} of ${f}`).toBeLessThanOrEqual(f === files.png && !libvips ? 0 : 2);
      }
    }
  });
});

describe.skipIf(!hasPil)(`shards written by Python's tarfile with PIL's JPEGs, as img2dataset writes them (${pilWhy})`, () => {
  it('read, counted, indexed and decoded like ours: captions intact, pixels within 1 level of PIL', async () => {
    const d = tmp('pytar');
    const script = `
import io, json, sys, tarfile
from PIL import Image
d = sys.argv[1]
for s in range(2):
    with tarfile.open(f"{d}/{s:05d}.tar", "w") as t:  # Python's default format (PAX), as webdataset's TarWriter
        for i in range(5):
            key = f"{s * 10000 + i:09d}"
            img = Image.new("RGB", (48, 40), (40 * i, 200 - 30 * i, 90 + s * 50))
            for x in range(48):
                img.putpixel((x, x % 40), (255, 255, 255))
            b = io.BytesIO(); img.save(b, "JPEG", quality=90)
            cap = f"café photo {s} {i} — ünïcode"
            for ext, data in (("jpg", b.getvalue()), ("txt", cap.encode()), ("json", json.dumps({"caption": cap, "key": key}).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}"); info.size = len(data); t.addfile(info, io.BytesIO(data))
`;
    execFileSync(PYTHON, ['-c', script, d]);
    const set = resolveShardSet(join(d, '{00000..00001}.tar'));
    expect(set.kind).toBe('pairs');
    expect(set.shards.map(countSamples)).toEqual([5, 5]);
    const texts: string[] = [];
    const loader = openPairs(join(d, '*.tar'), { batchSize: 4, imageSize: 16, shuffle: false, workers: 0, indexDir: false });
    for await (const b of loader) texts.push(...b.texts!);
    expect(texts).toHaveLength(10);
    expect(texts[6]).toBe('café photo 1 1 — ünïcode');
    const indexDir = tmp('pytar-index');
    for (const shard of set.shards) writeIndex(await indexShard(shard), indexDir);
    const indexed = openPairs(join(d, '*.tar'), { batchSize: 4, imageSize: 16, shuffle: false, workers: 0, indexDir });
    const again: string[] = [];
    for await (const b of indexed) again.push(...b.texts!);
    expect(again).toEqual(texts);
    const raws = [];
    for await (const r of readShard(set.shards[0]!)) raws.push(r);
    const file = join(d, 'first.jpg');
    writeFileSync(file, raws[3]!.files.jpg!);
    const ref = pil([file])[file]!;
    expect(diff((await decodeImage(readFileSync(file))).data, ref.rgb).max).toBeLessThanOrEqual(1);
  });
});

describe('members, captions and patterns', () => {
  const sample = (files: Record<string, string | Uint8Array>): RawSample => ({
    key: 'k1',
    shard: 's.tar',
    files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? Buffer.from(v) : v])),
  });

  it("the image is the first of jpg jpeg png webp in any case; the caption is .txt, else .json's caption", () => {
    const img = Buffer.from('x');
    expect(imageMember(sample({ webp: 'w', PNG: 'p', txt: 't' }).files)!.ext).toBe('PNG');
    expect(imageMember(sample({ webp: 'w', jpeg: 'j' }).files)!.ext).toBe('jpeg');
    expect(toPair(sample({ JPG: img, txt: 'a cat' })).text).toBe('a cat');
    expect(toPair(sample({ jpg: img, json: '{"caption": "from json"}' })).text).toBe('from json');
    expect(() => toPair(sample({ jpg: img, txt: '  ' }))).toThrow(/s\.tar: record k1: missing caption \(k1\.txt is empty\)/);
    expect(() => toPair(sample({ jpg: img, json: '{"url": "u"}' }))).toThrow(/missing caption \(no k1\.txt, and no "caption" in k1\.json/);
    expect(() => toPair(sample({ txt: 'a', bmp: img }))).toThrow(/missing image \(no k1\.jpg, \.jpeg, \.png or \.webp; members: txt, bmp\)/);
  });

  it('brace patterns expand ranges (zero-padded), lists and several braces; globs match files', () => {
    expect(expandBraces('s/{00000..00002}.tar')).toEqual(['s/00000.tar', 's/00001.tar', 's/00002.tar']);
    expect(expandBraces('{a,b}/{1..2}')).toEqual(['a/1', 'a/2', 'b/1', 'b/2']);
    expect(expandBraces('x{9..11}')).toEqual(['x9', 'x10', 'x11']);
    expect(expandBraces('plain.tar')).toEqual(['plain.tar']);
    expect(() => expandBraces('s/{0..2.tar')).toThrow(/without its "}"/);
    const d = tmp('glob');
    for (const f of ['00000.tar', '00001.tar', '00002.tar.gz', 'notes.txt']) writeFileSync(join(d, f), '');
    expect(expandGlob(join(d, '*.tar'))).toEqual([join(d, '00000.tar'), join(d, '00001.tar')]);
    expect(expandGlob(join(d, '0000[12].tar*'))).toEqual([join(d, '00001.tar'), join(d, '00002.tar.gz')]);
    expect(shardsOf(d)).toEqual(['00000.tar', '00001.tar', '00002.tar.gz'].map((f) => join(d, f)));
    expect(() => shardsOf(join(d, '{00000..00004}.tar'))).toThrow(/3 of its 5 shards do not exist/);
    expect(() => shardsOf(join(d, 'nothing-*.tar'))).toThrow(/matches no \.tar/);
  });
});

describe('img2dataset shards', () => {
  let dir: string;
  let w: WrittenShards;
  beforeAll(async () => {
    dir = tmp('img2dataset');
    w = await writeImg2datasetShards(dir, { shards: 3, perShard: 12, size: 40, awkward: true });
  });

  it('are found by folder, brace pattern, glob and ::, counted from their headers, and read as pairs', () => {
    const byFolder = resolveShardSet(dir);
    expect(byFolder.kind).toBe('pairs');
    expect(byFolder.shards).toEqual(w.shards);
    expect(resolveShardSet(join(dir, '{00000..00002}.tar')).shards).toEqual(w.shards);
    expect(resolveShardSet(join(dir, '0000[01].tar')).shards).toEqual(w.shards.slice(0, 2));
    expect(firstSampleMembers(w.shards[1]!).sort()).toEqual(['jpg', 'json', 'txt']);
    expect(w.shards.map(countSamples)).toEqual([12, 12, 12]);
    expect(() => resolveShardSet(join(dir, 'missing'))).toThrow(/--data .*missing: 1 of its 1 shard does not exist/);
  });

  it('without skipBad the loader stops at the first bad sample, naming its shard and key', async () => {
    const loader = openPairs(join(dir, '{00000..00002}.tar'), { batchSize: 8, imageSize: 24, shuffle: false, workers: 0, epochs: 1 });
    const err = await (async () => {
      for await (const _ of loader);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).message).toContain(`${w.shards[0]}: record ${w.awkward['empty caption']}: missing caption`);
  });

  it('with skipBad every good sample arrives (CMYK, rotated, WebP, .JPG, JSON caption) and the bad ones are counted by kind', async () => {
    const loader = openPairs([`${join(dir, '00000.tar')}::${join(dir, '0000[12].tar')}`], {
      batchSize: 8,
      imageSize: 24,
      shuffle: false,
      workers: 0,
      epochs: 1,
      skipBad: true,
      cropScale: [0.9, 1],
    });
    const keys: string[] = [];
    for await (const b of loader) {
      keys.push(...b.keys);
      for (const v of b.images) expect(Number.isFinite(v)).toBe(true);
    }
    const bad = [w.awkward['empty caption'], w.awkward['truncated jpeg']];
    expect(keys).toEqual(w.keys.filter((k) => !bad.includes(k)));
    for (const k of ['cmyk jpeg', 'exif-rotated jpeg', 'webp', 'upper-case JPG', 'json caption']) expect(keys).toContain(w.awkward[k]);
    expect(loader.bad!.count).toBe(2);
    expect(loader.bad!.kinds).toEqual({ 'missing caption': 1, 'corrupt image': 1 });
    expect(loader.bad!.summary()).toMatch(/^2 bad records skipped \(1 corrupt image, 1 missing caption\)/);
  });

  it('batches are the same in-process and on worker threads, with the OpenCLIP crop and the eval transform', async () => {
    const good = join(dir, '{00001..00002}.tar');
    for (const cropScale of [[0.9, 1] as const, undefined]) {
      const run = async (workers: number) => {
        const loader = openPairs(good, { batchSize: 6, imageSize: 20, seed: 3, workers, epochs: 1, ...(cropScale ? { cropScale } : {}) });
        const out: Float32Array[] = [];
        for await (const b of loader) out.push(b.images);
        return { out, mode: loader.mode };
      };
      const a = await run(0);
      const b = await run(2);
      expect(a.out.length).toBe(4);
      if (b.mode === 'worker') expect(b.out).toEqual(a.out);
    }
  });

  it('released batches lend their buffers to later ones, in-process and on workers, without changing a value', async () => {
    const good = join(dir, '{00001..00002}.tar');
    const run = async (workers: number, release: boolean) => {
      const loader = openPairs(good, { batchSize: 6, imageSize: 20, seed: 3, workers, epochs: 3, cropScale: [0.9, 1] });
      const out: Float32Array[] = [];
      const given = new Set<ArrayBufferLike>();
      let reused = 0;
      for await (const b of loader) {
        out.push(b.images.slice());
        if (b.size !== 6) continue; // only whole batches share a size
        if (given.has(b.images.buffer)) reused++;
        if (!release) continue;
        b.images.fill(Number.NaN); // what a careless consumer might leave: overwritten before reuse
        loader.release(b);
        given.add(b.images.buffer);
      }
      return { out, reused, mode: loader.mode };
    };
    const plain = await run(0, false);
    const inProcess = await run(0, true);
    expect(inProcess.out).toEqual(plain.out);
    expect(inProcess.reused).toBeGreaterThan(3);
    const workers = await run(2, true);
    if (workers.mode === 'worker') expect(workers.out).toEqual(plain.out);
  });

  it('the eval transform and the crop differ, and the crop varies with the seed', async () => {
    const first = async (o: { seed: number; cropScale?: [number, number] }) => {
      const loader = new DataLoader({ shards: [w.shards[1]!], kind: 'pairs', batchSize: 4, imageSize: 16, shuffle: false, workers: 0, ...o });
      for await (const b of loader) return b.images;
      throw new Error('no batch');
    };
    const ev = await first({ seed: 1 });
    const c1 = await first({ seed: 1, cropScale: [0.5, 0.6] });
    const c2 = await first({ seed: 2, cropScale: [0.5, 0.6] });
    expect(c1).not.toEqual(ev);
    expect(c1).not.toEqual(c2);
    expect(await first({ seed: 2 })).toEqual(ev);
  });

  it('with an index: the same batches; a resume mid-epoch seeks, reading only the samples it still needs', async () => {
    const indexDir = tmp('index');
    for (const shard of w.shards) writeIndex(await indexShard(shard), indexDir);
    const options = (o: { indexDir: string | false; start?: { epoch: number; batch: number } }) =>
      new DataLoader({
        shards: w.shards,
        kind: 'pairs',
        batchSize: 5,
        imageSize: 16,
        seed: 4,
        shuffleBuffer: 20,
        skipBad: true,
        epochs: 2,
        workers: 0,
        cropScale: [0.9, 1],
        ...o,
      });
    const all = async (loader: DataLoader) => {
      const out: { keys: string[]; images: Float32Array }[] = [];
      for await (const b of loader) out.push({ keys: b.keys, images: b.images });
      return out;
    };
    const streamed = new DataLoader({ ...options({ indexDir: false }).options });
    const full = await all(streamed);
    const viaIndex = options({ indexDir });
    expect(viaIndex.indexes()).not.toBeNull();
    expect(await all(viaIndex)).toEqual(full);
    expect(viaIndex.bad!.kinds).toEqual(streamed.bad!.kinds);
    // Resume at the second epoch's sixth batch: the rest is identical, and only its samples are read.
    expect(full).toHaveLength(14); // 34 good pairs an epoch: 7 batches of 5 (the last of 4)
    const start = { epoch: 1, batch: 5 };
    const at = 7 + 5;
    const resumedStream = options({ indexDir: false, start });
    const resumedIndex = options({ indexDir, start });
    expect(await all(resumedStream)).toEqual(full.slice(at));
    expect(await all(resumedIndex)).toEqual(full.slice(at));
    const remaining = full.slice(at).reduce((n, b) => n + b.keys.length, 0);
    const perSample = Math.max(...w.shards.map((f) => readFileSync(f).length)) / 12;
    expect(resumedIndex.bytesRead).toBeGreaterThan(0);
    expect(resumedIndex.bytesRead).toBeLessThan((remaining + 2) * perSample * 1.5);
    expect(resumedIndex.bytesRead).toBeLessThan(resumedStream.bytesRead / 2);
  });

  it('a weight above 1 repeats each sample ⌊w⌋ or ⌊w⌋ + 1 times an epoch, by key hash; the same with an index', async () => {
    const shard = w.shards[1]!;
    const indexDir = tmp('index-w');
    writeIndex(await indexShard(shard), indexDir);
    const keysOf = async (dir: string | false, weight: number) => {
      const loader = new DataLoader({
        shards: [shard],
        kind: 'pairs',
        batchSize: 100,
        imageSize: 8,
        shuffle: false,
        workers: 0,
        shardOptions: { [shard]: { fraction: weight } },
        indexDir: dir,
      });
      const keys: string[] = [];
      for await (const b of loader) keys.push(...b.keys);
      return keys;
    };
    const keys = await keysOf(false, 2.5);
    const count = (k: string) => keys.filter((x) => x === k).length;
    const all = w.keys.slice(12, 24);
    for (const k of all) expect(count(k)).toBe(copies(k, 2.5));
    expect(new Set(all.map(count))).toEqual(new Set([2, 3]));
    expect(await keysOf(indexDir, 2.5)).toEqual(keys);
    const half = await keysOf(false, 0.5);
    expect(half.length).toBeGreaterThan(0);
    expect(half.length).toBeLessThan(12);
    expect(half.every((k) => copies(k, 0.5) === 1)).toBe(true);
  });

  it('an index is used only while the shard is unchanged; a gzipped shard is not indexed', async () => {
    const d = tmp('stale');
    const shard = join(d, '00000.tar');
    writeFileSync(shard, readFileSync(w.shards[1]!));
    const indexDir = tmp('index2');
    writeIndex(await indexShard(shard), indexDir);
    expect(readIndex(shard, indexDir)?.samples).toHaveLength(12);
    writeFileSync(shard, Buffer.concat([readFileSync(shard), Buffer.alloc(512)]));
    expect(readIndex(shard, indexDir)).toBeUndefined();
    const gz = join(d, '00001.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(w.shards[1]!)));
    await expect(indexShard(gz)).rejects.toThrow(/gzipped: a \.tar\.gz cannot be seeked into/);
  });

  it('a truncated shard is a bad sample of kind "truncated shard"', async () => {
    const cut = join(dir, 'cut');
    mkdirSync(cut, { recursive: true });
    const bytes = readFileSync(w.shards[1]!);
    writeFileSync(join(cut, '00000.tar'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const bad = new BadRecords();
    const got: string[] = [];
    for await (const s of readShard(join(cut, '00000.tar'), { bad })) got.push(s.key);
    expect(got.length).toBeGreaterThan(0);
    expect(bad.kinds).toEqual({ 'truncated shard': 1 });
  });
});

describe('CLIP_benchmark folders and templates', () => {
  it('reads test/{0..n-1}.tar with nshards.txt, classnames.txt and {c} templates', async () => {
    const d = tmp('clipbench');
    const labels = await writeClipBenchmark(d, { shards: 2, perShard: 5, classes: ['apple', 'banana', 'cherry'], size: 24 });
    const set = resolveShardSet(d);
    expect(set).toMatchObject({ kind: 'classification', classes: ['apple', 'banana', 'cherry'], templates: ['a photo of a {}.', 'a blurry photo of a {}.'] });
    const { loader, classes } = openClassification(d, undefined, { batchSize: 4, imageSize: 16, workers: 0 });
    expect(classes).toHaveLength(3);
    const got: number[] = [];
    for await (const b of loader) got.push(...b.labels!);
    expect(got).toEqual(labels);
    writeFileSync(join(d, 'test', 'nshards.txt'), '3\n');
    expect(() => resolveShardSet(d)).toThrow(/nshards\.txt says 3 shards, but 1 are missing/);
  });

  it('reads an ImageNet-style class-folder tree (val/CLASS/*.JPEG): folder names or a class-names file', async () => {
    const d = tmp('tree');
    await writeClassTree(d, { classes: ['n01440764', 'n01443537'], per: 3, size: 20 });
    for (const dir of [d, join(d, 'val')]) {
      const { loader, classes } = openClassification(dir, undefined, { batchSize: 4, imageSize: 16, workers: 0 });
      expect(classes).toEqual(['n01440764', 'n01443537']);
      const got: number[] = [];
      const keys: string[] = [];
      for await (const b of loader) {
        got.push(...b.labels!);
        keys.push(...b.keys);
      }
      expect(got).toEqual([0, 0, 0, 1, 1, 1]);
      expect(keys[0]).toBe('n01440764/ILSVRC_0_0');
    }
    const named = openClassification(d, undefined, { batchSize: 4, imageSize: 16, workers: 0 }, { classes: ['tench', 'goldfish'] });
    expect(named.classes).toEqual(['tench', 'goldfish']);
    expect(() => openClassification(d, undefined, { batchSize: 4, imageSize: 16 }, { classes: ['tench'] })).toThrow(/1 class names for 2 class folders/);
  });

  it('a template without {c} or {} is an error naming the file and line', () => {
    const d = tmp('templates');
    const f = join(d, 't.txt');
    writeFileSync(f, 'a photo of a {c}.\n\nitap of a photo.\n');
    expect(() => readTemplates(f)).toThrow(new RegExp(`${f}:3: template "itap of a photo\\." has no \\{c\\} or \\{\\}`));
    writeFileSync(f, 'a {} and a {c}\n');
    expect(readTemplates(f)).toEqual(['a {} and a {}']);
    expect(existsSync(f)).toBe(true);
  });
});
