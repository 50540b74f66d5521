// Embed → cluster → assign → report on the trainer's synthetic data folder, with a text encoder
// whose vectors are known (one direction per colour word), and with a real CLIP text tower.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import {
  assignPairs,
  clipTextEncoder,
  clusterReport,
  embedCaptions,
  expertKeys,
  fitClusters,
  importNpy,
  readClusters,
  readEmbeddingShard,
  readEmbeddingsManifest,
  writeClusters,
  writeReport,
  type TextEncoder,
} from '@mode/clusterer';
import { loadTokenizer, type MixSource } from '@mode/data';
import { Gpu } from '@mode/gpu';
import { CLIP, preset } from '@mode/models';
import { COLOURS, makeDataDir } from '../../trainer/test/fixture.js';

let gpu: Gpu;
let engine: ag.Engine;
let data: string;
let sources: MixSource[];
const tmp: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'mode-cluster-'));
  tmp.push(d);
  return d;
};

beforeAll(async () => {
  gpu = await Gpu.open({});
  engine = await ag.init(gpu);
  (globalThis as { keep?: unknown }).keep = { gpu, engine };
  data = await makeDataDir(192);
  tmp.push(data);
  sources = [{ dir: join(data, 'shapes') }, { dir: join(data, 'colours'), fraction: 0.5 }];
});
afterAll(async () => {
  await engine?.destroy();
  gpu?.destroy();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** 8-d vectors: the caption's colour picks one of 4 directions, plus a little noise from its text. */
function colourEncoder(calls: string[] = []): TextEncoder {
  return {
    name: 'colour-test-encoder',
    dim: 8,
    async encode(captions) {
      calls.push(...captions);
      const out = new Float32Array(captions.length * 8);
      captions.forEach((t, i) => {
        const c = COLOURS.findIndex(([name]) => t.includes(name));
        out[i * 8 + 2 * c] = 1;
        out[i * 8 + 2 * c + 1] = 0.01 * (t.length % 7);
      });
      return out;
    },
  };
}

describe('the clustering pipeline', () => {
  it('embeds one caption per pair, normalised, in shards with keys, captions and groups; a rerun keeps finished shards', async () => {
    const out = scratch();
    const calls: string[] = [];
    const m = await embedCaptions({ sources, encoder: colourEncoder(calls), out, dtype: 'f32' });
    // 192 pairs in 3 shards + about half of 48 captioned classification images in 1 shard.
    expect(m.shards.length).toBe(4);
    expect(m.count).toBe(calls.length);
    expect(m.count).toBeGreaterThan(192 + 10);
    const s = readEmbeddingShard(out, m, m.shards[3]!);
    expect(s.rows[0]!.group).toMatch(/^(red|green|blue|yellow)$/);
    expect(s.rows[0]!.caption).toMatch(/^(a \w+ block\.|something \w+\.)$/);
    for (let r = 0; r < s.info.rows; r++) {
      let n = 0;
      for (let j = 0; j < 8; j++) n += s.values[r * 8 + j]! ** 2;
      expect(Math.abs(n - 1)).toBeLessThan(1e-6);
    }
    // A killed run (no manifest yet, shard 2 missing) redoes only what is missing.
    rmSync(join(out, 'embeddings.json'));
    rmSync(join(out, 'emb-000002.safetensors'));
    const again: string[] = [];
    const m2 = await embedCaptions({ sources, encoder: colourEncoder(again), out, dtype: 'f32' });
    expect(again.length).toBe(m.shards[2]!.rows);
    expect(m2).toEqual(m);
  });

  it('clusters, assigns every pair with its 2% out-of-cluster sample, and reports purity and top words', async () => {
    const emb = scratch();
    await embedCaptions({ sources, encoder: colourEncoder(), out: emb });
    const out = scratch();
    const c = await fitClusters(gpu, { embeddings: emb, out, fine: 8, experts: 4, seed: 1 });
    writeClusters(out, c, { embeddings: emb });
    const back = readClusters(out);
    expect(back.fine).toEqual(c.fine);
    expect([...back.fineToExpert]).toEqual([...c.fineToExpert]);
    const a = await assignPairs(gpu, { embeddings: emb, clusters: back, out, seed: 0, extraFraction: 0.2 });
    const r = clusterReport(back, a);
    writeReport(out, r);
    expect(r.pairs).toBe(a.manifest.count);
    // Colours are four directions: each expert is one colour.
    expect(r.coarse.purity).toBe(1);
    expect(new Set(r.coarse.topGroup)).toEqual(new Set(COLOURS.map(([n]) => n)));
    expect(r.coarse.topWords.flat()).toEqual(expect.arrayContaining(['red', 'green', 'blue', 'yellow']));
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/## Experts/);
    const extra = a.manifest.extra.reduce((s, x) => s + x, 0);
    const expected = 0.2 * 3 * r.pairs;
    expect(Math.abs(extra - expected)).toBeLessThan(4 * Math.sqrt(expected));
    const keys = expertKeys(out, 0);
    expect(keys.size).toBe(a.manifest.own[0]! + a.manifest.extra[0]!);
    expect(() => expertKeys(out, 4)).toThrow(/expert 4 does not exist \(there are 4: 0–3\)/);
  });

  it('embedding and assignment split into parts (job array tasks) give the same files as one run', async () => {
    const whole = scratch();
    const m = await embedCaptions({ sources, encoder: colourEncoder(), out: whole, dtype: 'f32' });
    const parts = scratch();
    const calls: string[] = [];
    for (const index of [2, 0, 1])
      expect(await embedCaptions({ sources, encoder: colourEncoder(calls), out: parts, dtype: 'f32', part: { index, count: 3 } })).toBeNull();
    expect(existsSync(join(parts, 'embeddings.json'))).toBe(false);
    expect(calls.length).toBe(m.count); // every caption embedded once, by one part
    const after: string[] = [];
    expect(await embedCaptions({ sources, encoder: colourEncoder(after), out: parts, dtype: 'f32' })).toEqual(m);
    expect(after).toEqual([]); // the final run only writes the manifest
    for (const sh of m.shards) expect(readFileSync(join(parts, `${sh.name}.safetensors`))).toEqual(readFileSync(join(whole, `${sh.name}.safetensors`)));

    const c = await fitClusters(gpu, { embeddings: whole, out: scratch(), fine: 8, experts: 4, seed: 1 });
    const one = scratch();
    const a = await assignPairs(gpu, { embeddings: whole, clusters: c, out: one, seed: 3 });
    const split = scratch();
    for (const index of [0, 1]) expect(await assignPairs(gpu, { embeddings: whole, clusters: c, out: split, seed: 3, part: { index, count: 2 } })).toBeNull();
    expect(existsSync(join(split, 'assignment.json'))).toBe(false);
    // A part's file for other clusters (a stale mark) is recomputed, not reused.
    writeFileSync(join(split, 'assign-000001.jsonl.key'), 'stale');
    writeFileSync(join(split, 'assign-000001.jsonl'), '{}\n');
    const b = (await assignPairs(gpu, { embeddings: whole, clusters: c, out: split, seed: 3 }))!;
    expect(b.manifest).toEqual(a!.manifest);
    for (const f of readdirSync(one)) expect(readFileSync(join(split, f)), f).toEqual(readFileSync(join(one, f)));
    expect(readdirSync(split).sort()).toEqual(readdirSync(one).sort()); // the marks are gone
  });

  it('embeds with a CLIP text tower (the seed model) and clusters those vectors', async () => {
    const tok = loadTokenizer(data);
    const model = new CLIP(preset('tiny', { vocabSize: tok.vocabSize }), { seed: 0 });
    const emb = scratch();
    const m = await embedCaptions({ sources, encoder: clipTextEncoder(model, tok, 'tiny-seed-0'), out: emb });
    expect(m.dim).toBe(64);
    expect(m.dtype).toBe('f16');
    const s = readEmbeddingShard(emb, m, m.shards[0]!);
    // The tower's own features for the same captions, normalised, agree within f16 rounding.
    const direct = await ag
      .noGrad(() =>
        ag.l2Normalize(
          model.encodeText(
            tok.tokenize(
              s.rows.slice(0, 5).map((r) => r.caption),
              16,
            ),
          ),
        ),
      )
      .read();
    for (let i = 0; i < direct.length; i++) expect(Math.abs(direct[i]! - s.values[i]!)).toBeLessThan(1e-3);
    const c = await fitClusters(gpu, { embeddings: emb, out: scratch(), fine: 6, experts: 2 });
    expect(c.fine.length).toBe(6 * 64);
    model.dispose();
  });

  it('takes vectors from any encoder as a .npy file', async () => {
    const dir = scratch();
    const n = 50;
    const d = 3;
    const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`.padEnd(117, ' ') + '\n'; // 10 + 118 bytes: data starts 64-aligned
    const body = Float32Array.from({ length: n * d }, (_, i) => (i % d === Math.floor(i / d) % d ? 1 : 0.1));
    const file = join(dir, 'v.npy');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from([0x93]),
        Buffer.from('NUMPY'),
        Buffer.from([1, 0, header.length, 0]),
        Buffer.from(header, 'latin1'),
        Buffer.from(body.buffer),
      ]),
    );
    const m = importNpy(file, join(dir, 'emb'));
    expect(m.count).toBe(50);
    expect(readEmbeddingShard(join(dir, 'emb'), m, m.shards[0]!).rows[7]!.key).toBe('7');
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, 'not numpy');
    expect(() => importNpy(bad, join(dir, 'x'))).toThrow(/bad\.npy: not a \.npy file\. Fix: save a 2-D float array with numpy\.save/);
  });

  it('bad inputs name the file and the fix: wrong dimension, NaN vectors, K > N, an empty shard, no embeddings', async () => {
    const emb = scratch();
    await embedCaptions({ sources, encoder: colourEncoder(), out: emb, dtype: 'f32' });
    const m = readEmbeddingsManifest(emb);
    await expect(fitClusters(gpu, { embeddings: emb, out: scratch(), fine: 100000, experts: 4 })).rejects.toThrow(
      /--fine 100000 clusters is more than its \d+ captions\. Fix: use --fine \d+ or fewer/,
    );
    // Clusters of another dimension.
    const other = scratch();
    const wide: TextEncoder = {
      ...colourEncoder(),
      dim: 16,
      encode: async (t) => Float32Array.from({ length: t.length * 16 }, (_, i) => (i % 16 === 0 ? 1 : 0)),
    };
    await embedCaptions({ sources, encoder: wide, out: other });
    const c16 = await fitClusters(gpu, { embeddings: other, out: scratch(), fine: 2, experts: 1, balanced: false });
    await expect(assignPairs(gpu, { embeddings: emb, clusters: c16, out: scratch() })).rejects.toThrow(
      /embeddings of dimension 8, but the clusters were fitted on 16\. Fix: embed with the encoder the clusters were fitted on/,
    );
    // A NaN written into a shard's bytes.
    const file = join(emb, 'emb-000001.safetensors');
    const bytes = readFileSync(file);
    bytes.writeFloatLE(NaN, bytes.length - 4 * 8 * 3);
    writeFileSync(file, bytes);
    expect(() => readEmbeddingShard(emb, m, m.shards[1]!)).toThrow(/emb-000001\.safetensors: row \d+ \(key s\d+\) holds NaN or Inf\. Fix:/);
    // An encoder that returns NaN is refused before anything is written.
    const nan: TextEncoder = { ...colourEncoder(), encode: async (t) => new Float32Array(t.length * 8).fill(NaN) };
    await expect(embedCaptions({ sources, encoder: nan, out: scratch() })).rejects.toThrow(/row 0 \(key s0000\) holds NaN or Inf/);
    // An empty shard listed in the manifest.
    const j = JSON.parse(readFileSync(join(emb, 'embeddings.json'), 'utf8'));
    j.shards[0].rows = 0;
    expect(() => readEmbeddingShard(emb, j, j.shards[0])).toThrow(/emb-000000\.safetensors: 64 rows, embeddings\.json says 0/);
    expect(() => readEmbeddingsManifest(scratch())).toThrow(/no embeddings\.json .* Fix: run `mode embed/);
    expect(existsSync(join(emb, 'embeddings.json'))).toBe(true);
  });
});
