/**
 * A small, learnable image-text set for the trainer's tests, made on the spot (no prepared data
 * needed): a coloured block in one of four corners on a noisy grey field, captioned with its
 * colour and corner. Written as a data folder like `mode data prepare`'s: `shapes/` (pairs),
 * `digits/` (a classification set, for captioning and zero-shot), `tokenizer.json`, `synonyms.json`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetBuilder, encodePng, Rng, Tokenizer } from '@mode/data';

export const COLOURS: [string, [number, number, number]][] = [
  ['red', [220, 30, 30]],
  ['green', [30, 200, 60]],
  ['blue', [40, 60, 230]],
  ['yellow', [240, 220, 40]],
];
export const CORNERS = ['top left', 'top right', 'bottom left', 'bottom right'];

function image(colour: number, corner: number, rng: Rng, size = 32): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  const [cr, cg, cb] = COLOURS[colour]![1];
  const half = size / 2;
  const [x0, y0] = [(corner % 2) * half, Math.floor(corner / 2) * half];
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const inside = x >= x0 + 2 && x < x0 + half - 2 && y >= y0 + 2 && y < y0 + half - 2;
      const g = 100 + rng.int(56);
      [px[i], px[i + 1], px[i + 2]] = inside ? [cr, cg, cb] : [g, g, g];
    }
  return encodePng(px, size, size, 3);
}

export async function makeDataDir(n = 192): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mode-trainer-data-'));
  const rng = new Rng(7);
  const captions: string[] = [];
  const pairs = Array.from({ length: n }, (_, i) => {
    const [c, k] = [i % 4, Math.floor(i / 4) % 4];
    const text = `a ${COLOURS[c]![0]} block at the ${CORNERS[k]}.`;
    captions.push(text);
    return { key: `s${String(i).padStart(4, '0')}`, png: image(c, k, rng), text };
  });
  const b = new DatasetBuilder(join(dir, 'shapes'), { name: 'shapes', kind: 'pairs' }, { samplesPerShard: 64 });
  await b.writeSplit('train', pairs);
  b.finish();
  const classes = COLOURS.map(([name]) => name);
  const c = new DatasetBuilder(
    join(dir, 'colours'),
    { name: 'colours', kind: 'classification', classes, templates: ['a {} block.', 'something {}.'] },
    { samplesPerShard: 64 },
  );
  for (const split of ['train', 'test'])
    await c.writeSplit(
      split,
      Array.from({ length: 48 }, (_, i) => ({ key: `${split}${i}`, png: image(i % 4, (i >> 2) % 4, rng), label: i % 4 })),
    );
  c.finish();
  const tok = Tokenizer.train([...captions, ...classes.map((x) => `a ${x} block. something ${x}.`)], { vocabSize: 320 });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
  writeFileSync(join(dir, 'synonyms.json'), JSON.stringify({ block: ['square'], top: ['upper'] }));
  return dir;
}
