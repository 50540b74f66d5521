import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import { loadTokenizer } from '@mode/data';
import { freshSeed, rng } from '@mode/kernels';
import { CLIP, preset } from '@mode/models';
import { classEmbeddings, combineLogits, ensembleZeroShot, metadataWeights, taskWeights, topK, zeroShotTask } from '@mode/ensembler';
import { makeDataDir } from '../../trainer/test/fixture.js';

describe('metadata weights (MoDE §2 step 6)', () => {
  it('matches the rule worked by hand: 2 classes, 3 experts, one without a class', () => {
    // d = 2. Class 0 sits 0.6 from fine centre 1 (expert 2); class 1 sits 0.3 from fine centre 0 (expert 0).
    const classes = [1, 0, 0, 1];
    const fine = [0, 0.7, 1.6, 0, -5, -5];
    const w = metadataWeights(classes, 2, fine, [0, 2, 1], 3);
    expect([...w.nearest]).toEqual([1, 0]);
    expect([...w.expertOf]).toEqual([2, 0]);
    expect(w.distance[0]).toBeCloseTo(0.6, 12);
    expect(w.distance[1]).toBeCloseTo(0.3, 12);
    const sMul = 5; // 5·log10(max(10, 2 − 200))
    const sAdd = Math.exp(0.5 - Math.SQRT2); // N < 10
    expect(w.sMul).toBe(sMul);
    expect(w.sAdd).toBeCloseTo(sAdd, 14);
    const raw = [Math.exp((sAdd - 0.3) * sMul), 0, Math.exp((sAdd - 0.6) * sMul)];
    raw.forEach((r, k) => expect(w.raw[k]).toBeCloseTo(r, 12));
    const e = raw.map((r) => Math.exp(r / 8));
    const z = e.reduce((a, b) => a + b);
    e.forEach((x, k) => expect(w.weights[k]).toBeCloseTo(x / z, 12));
    // w̃ / 8 keeps the softmax near uniform: here 1.23 between the nearest expert and the one without a class.
    expect(Math.max(...w.weights) / Math.min(...w.weights)).toBeCloseTo(Math.exp(raw[0]! / 8), 12);
  });

  it('agrees with a float64 reference on random embeddings, N ≥ 10 and N > 200', () => {
    const r = rng(freshSeed());
    for (const [N, K, n, d] of [
      [12, 40, 4, 16],
      [250, 64, 8, 8],
    ] as const) {
      const e = Array.from({ length: N * d }, () => r() - 0.5);
      const f = Array.from({ length: K * d }, () => r() - 0.5);
      const map = Array.from({ length: K }, (_, j) => j % n);
      const w = metadataWeights(e, d, f, map, n);
      const raw = new Array<number>(n).fill(0);
      const sMul = 5 * Math.log10(Math.max(10, N - 200));
      for (let c = 0; c < N; c++) {
        const ds = Array.from({ length: K }, (_, j) => Math.hypot(...Array.from({ length: d }, (_, q) => e[c * d + q]! - f[j * d + q]!)));
        const j = ds.indexOf(Math.min(...ds));
        raw[map[j]!]! += Math.exp(-ds[j]! * sMul); // s_add = 0 for N ≥ 10
      }
      const z = raw.reduce((a, x) => a + Math.exp(x / 8), 0);
      raw.forEach((x, k) => {
        expect(w.raw[k]).toBeCloseTo(x, 10);
        expect(w.weights[k]).toBeCloseTo(Math.exp(x / 8) / z, 12);
      });
    }
  });

  it('combines raw logits by weight', () => {
    const out = combineLogits([Float32Array.from([1, 2]), Float32Array.from([3, -1])], [0.25, 0.75]);
    expect([...out]).toEqual([2.5, -0.25]);
    expect(() => combineLogits([new Float32Array(2)], [0.5, 0.5])).toThrow(/1 experts' logits, 2 weights/);
  });
});

describe('ensembleZeroShot', () => {
  let engine: ag.Engine;
  let data: string;
  beforeAll(async () => {
    engine = await ag.init();
    data = await makeDataDir(64);
  });
  afterAll(async () => {
    await engine?.destroy();
    rmSync(data, { recursive: true, force: true });
  });

  it('scores the ensemble, the uniform average, each expert and the baselines; one expert is its own ensemble', async () => {
    const tok = loadTokenizer(data);
    const cfg = preset('tiny', { vocabSize: tok.vocabSize });
    const experts = [new CLIP(cfg, { seed: 1 }), new CLIP(cfg, { seed: 2 })];
    const seed = new CLIP(cfg, { seed: 3 });
    const r0 = rng(4);
    const fine = Float32Array.from({ length: 6 * 64 }, () => r0() - 0.5);
    const clusters = { fine, fineToExpert: Uint32Array.from([0, 1, 0, 1, 0, 1]), experts: 2 };
    const o = { encoder: seed, clusters, tokenizer: tok, dir: join(data, 'colours'), split: 'test', baselines: { seed } };
    const r = await ensembleZeroShot({ ...o, experts });
    expect(r.count).toBe(48);
    expect(r.classes).toBe(4);
    expect(r.weights.reduce((a, b) => a + b)).toBeCloseTo(1, 12);
    const w = await taskWeights(seed, tok, ['red', 'green', 'blue', 'yellow'], ['a {} block.', 'something {}.'], clusters);
    expect(r.weights).toEqual([...w.weights]);
    expect(r.experts).toHaveLength(2);
    expect(r.experts[r.bestExpert]!.top1).toBe(Math.max(...r.experts.map((a) => a.top1)));
    // The seed as its only expert: the ensemble, the uniform average and the expert are one model.
    const single = await ensembleZeroShot({ ...o, experts: [seed], clusters: { ...clusters, fineToExpert: new Uint32Array(6), experts: 1 } });
    expect(single.ensemble).toEqual(single.experts[0]);
    expect(single.uniform).toEqual(single.experts[0]);
    expect(single.baselines.seed).toEqual(single.experts[0]);
    [...experts, seed].forEach((m) => m.dispose());
  });

  it('zeroShotTask (mode classify, the browser page): per-expert cosine logits equal a float64 recompute, ensembled by the task weights', async () => {
    const tok = loadTokenizer(data);
    const cfg = preset('tiny', { vocabSize: tok.vocabSize });
    const experts = [new CLIP(cfg, { seed: 5 }), new CLIP(cfg, { seed: 6 })];
    const encoder = new CLIP(cfg, { seed: 7 });
    const r0 = rng(freshSeed());
    const clusters = { fine: Float32Array.from({ length: 5 * 64 }, () => r0() - 0.5), fineToExpert: Uint32Array.from([1, 0, 1, 1, 0]), experts: 2 };
    const classes = ['red', 'green', 'blue'];
    const templates = ['a {} block.'];
    const task = await zeroShotTask({ experts, encoder, clusters, tokenizer: tok, classes: [' red', 'green ', '', 'blue'], templates });
    expect(task.classes).toEqual(classes); // trimmed, empty names dropped
    expect([...task.weights.weights]).toEqual([...(await taskWeights(encoder, tok, classes, templates, clusters)).weights]);
    const S = cfg.vision.imageSize;
    const n = 3;
    const images = Float32Array.from({ length: n * 3 * S * S }, () => 2 * r0() - 1);
    const r = await task.classify(images, n);
    for (const [k, m] of experts.entries()) {
      const W = await classEmbeddings(m, tok, classes, templates);
      const x = ag.tensor(images, [n, 3, S, S]);
      const f = ag.noGrad(() => m.encodeImage(x));
      const feats = await f.read();
      [x, f].forEach((t) => t.dispose());
      const D = cfg.embedDim;
      for (let i = 0; i < n; i++) {
        const norm = Math.hypot(...feats.subarray(i * D, (i + 1) * D));
        for (let c = 0; c < classes.length; c++) {
          let dot = 0;
          for (let q = 0; q < D; q++) dot += (feats[i * D + q]! / norm) * W[c * D + q]!;
          expect(Math.abs(r.experts[k]![i * classes.length + c]! - dot)).toBeLessThan(1e-5);
        }
      }
    }
    expect([...r.ensemble]).toEqual([...combineLogits(r.experts, task.weights.weights)]);
    expect([...r.uniform]).toEqual([...combineLogits(r.experts, [0.5, 0.5])]);
    const top = topK(r.ensemble, 1, classes.length, 2);
    expect(top).toHaveLength(2);
    expect(top[0]!.logit).toBeGreaterThanOrEqual(top[1]!.logit);
    await expect(task.classify(images.subarray(1), n)).rejects.toThrow(/not 3 images of 3 × 32 × 32/);
    await expect(zeroShotTask({ experts, encoder, clusters, tokenizer: tok, classes: [' ', ''], templates })).rejects.toThrow(/no class names/);
    task.dispose();
    [...experts, encoder].forEach((m) => m.dispose());
  });
});

describe('linear probe', () => {
  it('separates Gaussian blobs, and does no better than chance on shuffled labels', async () => {
    const { linearProbe, concatFeatures } = await import('@mode/ensembler');
    const r = rng(freshSeed());
    const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const [C, d] = [5, 20];
    const means = Array.from({ length: C }, () => Array.from({ length: d }, () => 3 * gauss()));
    const make = (n: number) => {
      const y = Uint32Array.from({ length: n }, (_, i) => i % C);
      const x = Float32Array.from({ length: n * d }, (_, k) => means[y[Math.floor(k / d)]!]![k % d]! + gauss());
      return { x, y };
    };
    const [tr, te] = [make(400), make(300)];
    expect(linearProbe(tr.x, tr.y, te.x, te.y, d, C)).toBeGreaterThan(0.95);
    const shuffled = Uint32Array.from(tr.y, () => Math.floor(r() * C));
    expect(linearProbe(tr.x, shuffled, te.x, te.y, d, C)).toBeLessThan(0.4);
    const cat = concatFeatures([Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 6])], 2);
    expect(cat.dim).toBe(3);
    expect([...cat.features]).toEqual([1, 2, 5, 3, 4, 6]);
  });
});
