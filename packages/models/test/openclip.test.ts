/**
 * OpenCLIP's hub folders in and out: a folder as OpenCLIP writes one (its config keys, BF16
 * weights, OpenAI's attn_mask buffer) loads; import → export → import is bit-exact; what OpenCLIP
 * configures that these networks cannot do is refused by name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import { freshSeed, relativeError } from '@mode/kernels';
import { CLIP, configFromOpenClip, loadClip, OPENAI_TOKENIZER, OPENCLIP_CONFIG, OPENCLIP_WEIGHTS, saveOpenClip, type ClipConfig } from '../src/index.js';

let engine: ag.Engine;
let dir: string;
beforeAll(async () => {
  engine = await ag.init();
  dir = mkdtempSync(join(tmpdir(), 'mode-openclip-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await engine?.destroy();
});

/** OpenCLIP's model_configs/ViT-B-32-quickgelu.json, shrunk: what its keys say, at test size. */
const MODEL_CFG = {
  embed_dim: 24,
  quick_gelu: true,
  vision_cfg: { image_size: 32, layers: 2, width: 32, patch_size: 8, head_width: 16 },
  text_cfg: { context_length: 12, vocab_size: 49408, width: 32, heads: 2, layers: 1 },
};
const PREPROCESS = { size: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], interpolation: 'bicubic', resize_mode: 'shortest' };

/** f32 → bf16 bits, rounding to nearest even (what torch's .bfloat16() does). */
function bf16(values: Float32Array): Uint8Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) out[i] = (u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

/** A hub folder as OpenCLIP's push_to_hub writes it, from `model`'s weights in BF16, plus OpenAI's attn_mask. */
async function hubFolder(model: CLIP, name: string): Promise<string> {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, OPENCLIP_CONFIG), JSON.stringify({ model_cfg: MODEL_CFG, preprocess_cfg: PREPROCESS }));
  const tensors: Record<string, ag.SafeTensor> = {};
  for (const [n, t] of Object.entries(model.stateDict())) tensors[n] = { dtype: 'BF16', shape: [...t.shape], data: bf16(await t.read()) };
  const L = 12;
  const mask = Float32Array.from({ length: L * L }, (_, i) => (i % L > Math.floor(i / L) ? -Infinity : 0));
  tensors.attn_mask = { dtype: 'F32', shape: [L, L], data: new Uint8Array(mask.buffer) };
  ag.writeSafetensorsFile(join(d, OPENCLIP_WEIGHTS), { tensors, metadata: { format: 'pt' } });
  return d;
}

const weights = async (m: CLIP) =>
  Object.fromEntries(await Promise.all(Object.entries(m.stateDict()).map(async ([n, t]) => [n, Array.from(await t.read())] as const)));

describe('OpenCLIP hub folders', () => {
  it('load as they are (BF16, attn_mask skipped, QuickGELU, class token, pooled at 49407, preprocessing); export → import is bit-exact', async () => {
    const config = configFromOpenClip(MODEL_CFG, 'test');
    expect(config).toEqual({
      embedDim: 24,
      vision: { imageSize: 32, patchSize: 8, width: 32, layers: 2, heads: 2, mlpRatio: 4, pool: 'cls' },
      text: { contextLength: 12, vocabSize: 49408, width: 32, heads: 2, layers: 1, mlpRatio: 4, eotId: 49407 },
      gelu: 'quick',
    } satisfies ClipConfig);
    const source = new CLIP(config, { seed: 3 });
    const hub = await hubFolder(source, 'hub');
    const a = loadClip(hub);
    expect(a.config).toEqual(config);
    expect(a.tokenizer).toEqual(OPENAI_TOKENIZER);
    expect(a.preprocess).toEqual({ size: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], interpolation: 'bicubic', resizeMode: 'shortest' });
    // Every weight is the BF16 value of the source's.
    const [wa, ws] = [await weights(a), await weights(source)];
    for (const [n, v] of Object.entries(ws)) {
      const expected = new Float32Array(new Uint32Array(Array.from(new Uint16Array(bf16(Float32Array.from(v)).buffer), (h) => h << 16)).buffer);
      expect(wa[n], n).toEqual(Array.from(expected));
    }
    // Out and back in: the same bits, the same features.
    await saveOpenClip(a, join(dir, 'exported'));
    const exported = JSON.parse(readFileSync(join(dir, 'exported', OPENCLIP_CONFIG), 'utf8')) as { model_cfg: unknown; preprocess_cfg: unknown };
    expect(configFromOpenClip(exported.model_cfg, 'exported')).toEqual(config);
    expect(exported.preprocess_cfg).toEqual(PREPROCESS);
    const b = loadClip(join(dir, 'exported'));
    expect(await weights(b)).toEqual(wa);
    const tokens = new Int32Array(24);
    tokens.set([49406, 320, 1125, 539, 320, 1929, 49407], 0);
    tokens.set([49406, 1929, 49407], 12);
    const fa = await ag.noGrad(() => a.encodeText(tokens)).read();
    const fb = await ag.noGrad(() => b.encodeText(tokens)).read();
    expect(Array.from(fb)).toEqual(Array.from(fa));
    // Saved as a project model, the preprocessing and tokenizer travel in the file.
    await b.save(join(dir, 'model.safetensors'));
    const c = loadClip(join(dir, 'model.safetensors'));
    expect([c.preprocess, c.tokenizer, c.config]).toEqual([b.preprocess, b.tokenizer, b.config]);
    for (const m of [source, a, b, c]) m.dispose();
  });

  // The other side: a folder Python writes from OpenCLIP's own definitions (F16 as half-precision
  // checkpoints are, a scalar logit_scale, the attn_mask buffer), not from the exporter above.
  const torchOk = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!torchOk)('a hub folder written by Python from OpenCLIP’s definitions loads, and gives PyTorch float64’s features and loss', async () => {
    const seed = freshSeed();
    const cfgPath = join(dir, 'ViT-tiny-quickgelu.json');
    const cfg = { ...MODEL_CFG, vision_cfg: { ...MODEL_CFG.vision_cfg, mlp_ratio: 2 } };
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const hub = join(dir, 'python-hub');
    const script = fileURLToPath(new URL('../../../bench/src/peers/openclip_hub.py', import.meta.url));
    execFileSync('/usr/bin/python3', [script, cfgPath, hub, String(seed)], { stdio: 'inherit' });
    const model = loadClip(hub);
    expect(model.config.vision.mlpRatio).toBe(2);
    expect(model.preprocess?.mean).toEqual([0.48145466, 0.4578275, 0.40821073]);
    const inputs = ag.fromSafetensors(join(hub, 'inputs.safetensors'));
    const ref = ag.fromSafetensors(join(hub, 'ref.safetensors'));
    const tokens = Int32Array.from(await inputs.tokens!.read());
    const f = ag.noGrad(() => model.features(inputs.images!, tokens));
    const why = `seed ${seed} (replay with MODE_SEED=${seed})`;
    expect(relativeError(await f.image.read(), await ref['out.image']!.read()), why).toBeLessThan(1e-4);
    expect(relativeError(await f.text.read(), await ref['out.text']!.read()), why).toBeLessThan(1e-4);
    const loss = ag.noGrad(() => ag.infoNCE(f.image, f.text, model.logit_scale));
    expect(Math.abs((await loss.item()) - (await ref['out.loss']!.item())), why).toBeLessThan(1e-4);
    for (const t of [...Object.values(inputs), ...Object.values(ref), f.image, f.text, loss]) t.dispose();
    model.dispose();
  });

  it('refuses by name what these networks cannot do, and models OpenCLIP cannot express', async () => {
    const bad = (patch: Record<string, unknown>, where: 'vision_cfg' | 'text_cfg' | null) =>
      where ? { ...MODEL_CFG, [where]: { ...MODEL_CFG[where], ...patch } } : { ...MODEL_CFG, ...patch };
    expect(() => configFromOpenClip(bad({ timm_model_name: 'convnext_base' }, 'vision_cfg'), 'cfg.json')).toThrow(
      /cfg.json: model_cfg.vision_cfg.timm_model_name = "convnext_base" \(a timm image tower\) is not supported/,
    );
    expect(() => configFromOpenClip(bad({ attentional_pool: true }, 'vision_cfg'), 'cfg.json')).toThrow(
      /vision_cfg.attentional_pool = true \(an attention pooler\)/,
    );
    expect(() => configFromOpenClip(bad({ hf_model_name: 'roberta-base' }, 'text_cfg'), 'cfg.json')).toThrow(/text_cfg.hf_model_name = "roberta-base"/);
    expect(() => configFromOpenClip(bad({ layers: [3, 4, 6, 3] }, 'vision_cfg'), 'cfg.json')).toThrow(/vision_cfg.layers = \[3,4,6,3\] is not supported/);
    expect(() => configFromOpenClip(bad({ frobnicate: 1 }, null), 'cfg.json')).toThrow(/model_cfg.frobnicate is not supported/);
    expect(() => configFromOpenClip(bad({ init_logit_bias: -10 }, null), 'cfg.json')).toThrow(/init_logit_bias = -10 \(SigLIP's sigmoid loss bias\)/);
    const mean = new CLIP({ ...configFromOpenClip(MODEL_CFG, 'x'), vision: { ...configFromOpenClip(MODEL_CFG, 'x').vision, pool: 'mean' } }, { seed: 1 });
    await expect(saveOpenClip(mean, join(dir, 'no'))).rejects.toThrow(/averages patch tokens without a class token .* which OpenCLIP's CLIP cannot express/);
    mean.dispose();
  });
});
