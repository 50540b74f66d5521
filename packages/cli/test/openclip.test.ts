import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import { encodePng, readTokenizer, ShardWriter } from '@mode/data';
import { CLIP, configFromOpenClip, loadClip, saveOpenClip } from '@mode/models';

// OpenCLIP's models through the command: `mode model import` a hub folder (and a bare
// safetensors with --config), `mode model export` it back, `--model` taking a hub folder as it is.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/mode.js');
const work = mkdtempSync(join(tmpdir(), 'mode-cli-openclip-'));
const env = { ...process.env, MODE_TUNE_CACHE: join(work, 'autotune.json') };
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 300_000, env });

const MODEL_CFG = {
  embed_dim: 16,
  quick_gelu: true,
  vision_cfg: { image_size: 32, layers: 1, width: 32, patch_size: 16, head_width: 16 },
  text_cfg: { context_length: 8, vocab_size: 49408, width: 16, heads: 2, layers: 1 },
};
const hub = join(work, 'hub');
const MERGES = join(root, '../shared/data/bpe_simple_vocab_16e6.txt.gz');

let engine: ag.Engine;
beforeAll(async () => {
  engine = await ag.init();
  const model = new CLIP(configFromOpenClip(MODEL_CFG, 'test'), { seed: 2 });
  await saveOpenClip(model, hub);
  model.dispose();
});
afterAll(async () => {
  await engine?.destroy();
  rmSync(work, { recursive: true, force: true });
});

describe('mode model import / export', () => {
  it('imports a hub folder and a bare safetensors with --config, exports it back; --model takes the folder', () => {
    const a = run(['model', 'import', hub, '--out', join(work, 'a.safetensors')]);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/ViT 1×32\/16 at 32 px, text 1×16, QuickGELU, tokenizer OpenAI's bpe_simple_vocab_16e6.txt.gz/);

    const bare = join(work, 'bare.safetensors');
    copyFileSync(join(hub, 'open_clip_model.safetensors'), bare);
    const noConfig = run(['model', 'import', bare, '--out', join(work, 'b.safetensors')]);
    expect(noConfig.status).not.toBe(0);
    expect(noConfig.stderr).toMatch(/no model config in the safetensors metadata .* Fix: for an OpenCLIP file, give its model_configs\/NAME.json \(--config\)/);
    const withConfig = run(['model', 'import', bare, '--config', join(hub, 'open_clip_config.json'), '--out', join(work, 'b.safetensors')]);
    expect(withConfig.status, withConfig.stderr).toBe(0);
    expect(readFileSync(join(work, 'b.safetensors'))).toEqual(readFileSync(join(work, 'a.safetensors')));

    const out = join(work, 'exported');
    const e = run(['model', 'export', join(work, 'a.safetensors'), '--format', 'openclip', '--out', out]);
    expect(e.status, e.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'open_clip_config.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(join(hub, 'open_clip_config.json'), 'utf8')));
    expect(existsSync(join(out, 'open_clip_model.safetensors'))).toBe(true);

    const s = run(['model', 'summary', '--model', out]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toMatch(/QuickGELU/);
  }, 300_000);
});

describe.skipIf(!existsSync(MERGES))(`mode encode (needs ${MERGES})`, () => {
  it("writes OpenAI's token ids and unit-norm features of texts and images, the same as the model computes them", async () => {
    const png = join(work, 'red.png');
    const px = Uint8Array.from({ length: 40 * 30 * 4 }, (_, i) => [200, 30, 40, 255][i % 4]!);
    writeFileSync(png, encodePng(px, 40, 30, 4));
    const texts = ['a photo of a dog', 'A &amp; B: café'];
    const noTok = run(['encode', '--model', hub, '--text', ...texts, '--out', join(work, 'e.json')]);
    expect(noTok.status).not.toBe(0);
    expect(noTok.stderr).toMatch(/records no tokenizer file \(it was trained with OpenAI's bpe_simple_vocab_16e6.txt.gz\)\. Fix: pass --tokenizer/);
    const r = run(['encode', '--model', hub, '--tokenizer', MERGES, '--text', ...texts, '--image', png, '--out', join(work, 'e.json')]);
    expect(r.status, r.stderr).toBe(0);
    const e = JSON.parse(readFileSync(join(work, 'e.json'), 'utf8')) as { tokens: number[][]; text: number[][]; image: number[][] };
    const tok = readTokenizer(MERGES);
    expect(e.tokens).toEqual(texts.map((t) => [tok.sot, ...tok.encode(t).slice(0, 6), tok.eot]));
    for (const f of [...e.text, ...e.image]) expect(Math.hypot(...f)).toBeCloseTo(1, 5);
    const model = loadClip(hub);
    const text = await ag.noGrad(() => ag.l2Normalize(model.encodeText(tok.tokenize(texts, 8)))).read();
    // Within float rounding: the command's process may pick other (autotuned) kernel variants.
    expect(Math.max(...e.text.flat().map((v, i) => Math.abs(v - text[i]!)))).toBeLessThan(1e-5);
    expect(e.image).toHaveLength(1);
    model.dispose();

    // At scale: shards in, clip-retrieval's .npy files out, read back by NumPy.
    const shards = join(work, 'pairs');
    const writer = new ShardWriter(shards, { samplesPerShard: 4 });
    for (let i = 0; i < 7; i++)
      await writer.write(`k${i}`, {
        png: encodePng(
          px.map((v, j) => (j % 4 === 3 ? 255 : (v + 37 * i) % 256)),
          40,
          30,
          4,
        ),
        txt: `photo ${i}`,
      });
    await writer.close();
    const out = join(work, 'emb');
    const big = run(['encode', '--model', hub, '--tokenizer', MERGES, '--data', shards, '--out', out]);
    expect(big.status, big.stderr).toBe(0);
    expect(readFileSync(join(out, 'keys.txt'), 'utf8').trim().split('\n')).toEqual(Array.from({ length: 7 }, (_, i) => `k${i}`));
    const check = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `import numpy as n, sys; a = n.load(sys.argv[1]); b = n.load(sys.argv[2]); print(a.shape, b.shape, a.dtype, round(float(abs(n.linalg.norm(a, axis=1) - 1).max()), 5))`,
        join(out, 'img_emb.npy'),
        join(out, 'text_emb.npy'),
      ],
      { encoding: 'utf8' },
    );
    expect(check.status, check.stderr).toBe(0); // python3-numpy: scripts/setup.sh installs it
    expect(check.stdout.trim()).toBe('(7, 16) (7, 16) float32 0.0');
  }, 300_000);
});
