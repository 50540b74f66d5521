import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import { freshSeed, randomArray, relativeError, rng } from '@mode/kernels';
import {
  CLIP,
  classifierFromFeatures,
  EOT_ID,
  eotPositions,
  forwardFlops,
  loadClip,
  preset,
  summaryTable,
  type Activation,
  type ClipConfig,
} from '../src/index.js';

const seed = freshSeed();
console.log(`models tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let engine: ag.Engine;
const dir = mkdtempSync(join(tmpdir(), 'mode-models-'));
beforeAll(async () => {
  engine = await ag.init();
  ag.manualSeed(seed);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await engine?.destroy();
});

/** A one- or two-layer model small enough for a float64 PyTorch reference in a second. */
const cfg = (pool: 'mean' | 'cls', gelu: Activation = 'none'): ClipConfig => ({
  embedDim: 24,
  vision: { imageSize: 16, patchSize: 4, width: 32, layers: 2, heads: 2, mlpRatio: 2, pool },
  text: { contextLength: 12, vocabSize: 50, width: 32, layers: 2, heads: 4, mlpRatio: 2 },
  gelu,
});

/** B rows of tokens: start, random ids, end at a random position, padding. */
function randomTokens(B: number, L: number, vocab: number): Int32Array {
  const t = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    const len = 1 + Math.floor(random() * (L - 2));
    t[b * L] = 1;
    for (let j = 1; j <= len; j++) t[b * L + j] = 4 + Math.floor(random() * (vocab - 4));
    t[b * L + len + 1] = EOT_ID;
  }
  return t;
}

const torchOk = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const torchScript = fileURLToPath(new URL('../../../bench/src/peers/torch_clip.py', import.meta.url));

describe('CLIP (OpenCLIP layout)', () => {
  it('names its parameters as OpenCLIP does', () => {
    const m = new CLIP({ ...cfg('cls'), vision: { ...cfg('cls').vision, layers: 1 }, text: { ...cfg('cls').text, layers: 1 } }, { seed: 1 });
    const block = (p: string) =>
      ['ln_1.weight', 'ln_1.bias', 'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight', 'attn.out_proj.bias', 'ln_2.weight', 'ln_2.bias']
        .map((n) => p + n)
        .concat(['mlp.c_fc.weight', 'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias'].map((n) => p + n));
    const expected = [
      'logit_scale',
      'positional_embedding',
      'text_projection',
      'token_embedding.weight',
      'ln_final.weight',
      'ln_final.bias',
      ...block('transformer.resblocks.0.'),
      'visual.class_embedding',
      'visual.positional_embedding',
      'visual.proj',
      'visual.conv1.weight',
      'visual.ln_pre.weight',
      'visual.ln_pre.bias',
      'visual.ln_post.weight',
      'visual.ln_post.bias',
      ...block('visual.transformer.resblocks.0.'),
    ];
    const names = m.namedParameters().map(([n]) => n);
    expect([...names].sort()).toEqual([...expected].sort());
    expect(new Set(names).size).toBe(names.length);
    const shapes = Object.fromEntries(m.namedParameters().map(([n, t]) => [n, t.shape]));
    expect(shapes['visual.conv1.weight']).toEqual([32, 3, 4, 4]);
    expect(shapes['visual.positional_embedding']).toEqual([17, 32]);
    expect(shapes['transformer.resblocks.0.attn.in_proj_weight']).toEqual([96, 32]);
    expect(shapes['text_projection']).toEqual([32, 24]);
    expect(shapes['logit_scale']).toEqual([]);
    m.dispose();
  });

  it('initialises logit_scale to ln(1/0.07) and clamps it to [0, ln 100]', async () => {
    const m = new CLIP(cfg('mean'), { seed: 2 });
    expect(await m.logit_scale.item()).toBeCloseTo(Math.log(1 / 0.07), 6);
    m.logit_scale.set([7]);
    m.clampLogitScale();
    expect(await m.logit_scale.item()).toBeCloseTo(Math.log(100), 6);
    m.logit_scale.set([-1]);
    m.clampLogitScale();
    expect(await m.logit_scale.item()).toBe(0);
    m.dispose();
  });

  for (const [pool, gelu] of [
    ['mean', 'none'],
    ['cls', 'tanh'],
    ['cls', 'quick'],
  ] as const)
    it.skipIf(!torchOk)(`agrees with PyTorch float64: features, loss and every gradient (pool ${pool}, GELU ${gelu})`, async () => {
      const c = cfg(pool, gelu);
      const m = new CLIP(c, { seed: (random() * 2 ** 32) >>> 0 });
      const B = 5;
      const S = c.vision.imageSize;
      const images = randomArray(B * 3 * S * S, random, -2, 2);
      const tokens = randomTokens(B, c.text.contextLength, c.text.vocabSize);
      const modelPath = join(dir, `m-${pool}.safetensors`);
      const inputsPath = join(dir, `in-${pool}.safetensors`);
      const refPath = join(dir, `ref-${pool}.safetensors`);
      await m.save(modelPath);
      const x = ag.tensor(images, [B, 3, S, S]);
      await ag.saveSafetensors(inputsPath, { images: x, tokens: ag.tensor(Float32Array.from(tokens), [B, c.text.contextLength]) });
      execFileSync('/usr/bin/python3', [torchScript, modelPath, inputsPath, refPath], { stdio: 'inherit' });
      const ref = ag.fromSafetensors(refPath);

      const f = m.features(x, tokens);
      const [img, txt] = [await f.image.read(), await f.text.read()];
      const loss = ag.infoNCE(f.image, f.text, m.logit_scale);
      expect(relativeError(img, await ref['out.image']!.read())).toBeLessThan(1e-4);
      expect(relativeError(txt, await ref['out.text']!.read())).toBeLessThan(1e-4);
      expect(Math.abs((await loss.item()) - (await ref['out.loss']!.item()))).toBeLessThan(1e-4);
      loss.backward();
      const worst: [string, number][] = [];
      for (const [name, p] of m.namedParameters()) {
        const r = await ref[`grad.${name}`]!.read();
        const g = p.grad ? await p.grad.read() : new Float32Array(p.size);
        worst.push([name, relativeError(g, r)]);
      }
      worst.sort((a, b) => b[1] - a[1]);
      expect(worst[0]![1], `worst gradient: ${worst[0]![0]}`).toBeLessThan(2e-3);
      Object.values(ref).forEach((t) => t.dispose());
      [x, f.image, f.text].forEach((t) => t.dispose());
      m.dispose();
    });
  // OpenAI's ViT-B/32 as OpenCLIP builds it: 49,408 tokens pooled at 49407, QuickGELU, the class
  // token; one forward (its gradients would be a gigabyte of files).
  it.skipIf(!torchOk)(
    'agrees with PyTorch float64 at ViT-B/32 shapes with OpenAI’s vocabulary and QuickGELU: features and loss of one forward',
    async () => {
      const c: ClipConfig = { ...preset('b32', { vocabSize: 49408, eotId: 49407 }), gelu: 'quick' };
      const m = new CLIP(c, { seed: (random() * 2 ** 32) >>> 0 });
      const [B, S, L] = [2, c.vision.imageSize, c.text.contextLength];
      const images = randomArray(B * 3 * S * S, random, -2, 2);
      const tokens = new Int32Array(B * L);
      tokens.set([49406, 320, 1125, 539, 320, 1929, 49407], 0);
      tokens.set([49406, ...Array.from({ length: 40 }, () => 256 + Math.floor(random() * 49000)), 49407], L);
      const [modelPath, inputsPath, refPath] = ['b32.safetensors', 'b32-in.safetensors', 'b32-ref.safetensors'].map((f) => join(dir, f));
      await m.save(modelPath);
      const x = ag.tensor(images, [B, 3, S, S]);
      await ag.saveSafetensors(inputsPath, { images: x, tokens: ag.tensor(Float32Array.from(tokens), [B, L]) });
      execFileSync('/usr/bin/python3', [torchScript, modelPath, inputsPath, refPath, 'forward'], { stdio: 'inherit' });
      const ref = ag.fromSafetensors(refPath);
      const f = ag.noGrad(() => m.features(x, tokens));
      expect(relativeError(await f.image.read(), await ref['out.image']!.read())).toBeLessThan(1e-4);
      expect(relativeError(await f.text.read(), await ref['out.text']!.read())).toBeLessThan(1e-4);
      const loss = ag.noGrad(() => ag.infoNCE(f.image, f.text, m.logit_scale));
      expect(Math.abs((await loss.item()) - (await ref['out.loss']!.item()))).toBeLessThan(1e-4);
      rmSync(modelPath);
      m.dispose();
    },
    600_000,
  );

  it.skipIf(torchOk)('agrees with PyTorch float64 (skipped: python3-torch is not installed; bash scripts/setup.sh installs it)', () => {});

  it('saves and loads: the same features from the file, config from its metadata', async () => {
    const c = cfg('mean');
    const m = new CLIP(c, { seed: 5 });
    const path = join(dir, 'roundtrip.safetensors');
    await m.save(path);
    const back = loadClip(path);
    expect(back.config).toEqual(c);
    const tokens = randomTokens(3, c.text.contextLength, c.text.vocabSize);
    const a = await ag.noGrad(() => m.encodeText(tokens)).read();
    const b = await ag.noGrad(() => back.encodeText(tokens)).read();
    expect(Array.from(b)).toEqual(Array.from(a));
    m.dispose();
    back.dispose();
  });

  it("pools at the tokenizer's end-of-text id, the config's eotId (OpenAI's 49407; the project's 2 by default)", () => {
    const c = cfg('mean');
    const o = new CLIP({ ...c, text: { ...c.text, eotId: 49 } }, { seed: 7 });
    const tokens = randomTokens(3, c.text.contextLength, 49); // ids below 49: the end token is EOT_ID (2)
    const moved = tokens.map((t) => (t === EOT_ID ? 49 : t));
    expect(eotPositions(moved, c.text.contextLength, 49)).toEqual(eotPositions(tokens, c.text.contextLength));
    expect(() => o.encodeText(tokens)).toThrow(/row 0 has no end-of-text token \(id 49\)/);
    expect(() => o.encodeText(moved)).not.toThrow();
    expect(() => preset('tiny', { eotId: 49408 })).toThrow(/text.eotId 49408 is not an id of the \d+-token vocabulary/);
    o.dispose();
  });

  it('rejects bad input with the fix', () => {
    const m = new CLIP(cfg('mean'), { seed: 6 });
    expect(() => m.encodeText(new Int32Array(12).fill(5))).toThrow(/row 0 has no end-of-text token/);
    expect(() => m.encodeText(new Int32Array(7))).toThrow(/not rows of contextLength 12/);
    expect(() => m.encodeImage(ag.zeros([2, 3, 8, 8]))).toThrow(/must be \[B, 3, 16, 16\]/);
    expect(() => preset('huge')).toThrow(/unknown model preset "huge": use one of tiny, small, medium, b32/);
    expect(() => new CLIP({ ...cfg('mean'), vision: { ...cfg('mean').vision, patchSize: 5 } })).toThrow(/not a multiple of vision.patchSize/);
    m.dispose();
  });
});

describe('zero-shot classifier', () => {
  it('is the normalised mean of normalised template embeddings (float64 reference)', async () => {
    const [C, T, D] = [7, 3, 10];
    const e = randomArray(C * T * D, random, -1, 1);
    const w = classifierFromFeatures(ag.tensor(e, [C * T, D]), C, T);
    const ref = new Float64Array(C * D);
    for (let c = 0; c < C; c++) {
      for (let t = 0; t < T; t++) {
        const row = Array.from(e.subarray((c * T + t) * D, (c * T + t + 1) * D));
        const n = Math.hypot(...row);
        row.forEach((v, j) => (ref[c * D + j] += v / n / T));
      }
      const n = Math.hypot(...ref.subarray(c * D, (c + 1) * D));
      for (let j = 0; j < D; j++) ref[c * D + j]! /= n;
    }
    expect(relativeError(await w.read(), ref)).toBeLessThan(1e-5);
    w.dispose();
  });
});

describe('presets', () => {
  it('tiny, small, medium and b32 build; FLOPs per step are stated', () => {
    for (const name of ['tiny', 'small', 'medium'] as const) {
      const m = new CLIP(preset(name), { seed: 7 });
      expect(summaryTable(m, 64)).toMatch(/training step ≈ [\d.]+ GFLOP/);
      m.dispose();
    }
    // ViT-B/32: 224 px in 32-px patches, a class token (50 tokens), about 88M visual parameters.
    const f = forwardFlops(preset('b32'), 1);
    expect(f.vision / 1e9).toBeGreaterThan(8.0);
    expect(f.vision / 1e9).toBeLessThan(9.5);
  });
});
