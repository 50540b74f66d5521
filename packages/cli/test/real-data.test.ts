import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeClassTree, writeClipBenchmark, writeImg2datasetShards, type WrittenShards } from '../../data/test/img2dataset.js';
import { makeDataDir } from '../../trainer/test/fixture.js';

// The user's own data through the command: img2dataset shards (JPEG, WebP, CMYK, EXIF-rotated,
// an empty caption, a truncated JPEG) train a tiny model from a brace pattern; the model is
// evaluated on a CLIP_benchmark folder and an ImageNet-style class-folder tree.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/mode.js');
const work = mkdtempSync(join(tmpdir(), 'mode-cli-real-data-'));
const env = { ...process.env, MODE_TUNE_CACHE: join(work, 'autotune.json') };
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 300_000, env });

let dataDir: string;
let shards: WrittenShards;
const pattern = () => join(work, 'shards', '{00000..00002}.tar');
// 3 shards × 12 samples: the empty caption is dropped when read (35 left: 5 batches of 7, one
// epoch in 5 steps), the truncated JPEG when its batch is decoded (that batch has 6 pairs).
const train = (out: string, extra: string[] = []) =>
  run([
    'train',
    '--preset',
    'tiny',
    '--steps',
    '5',
    '--batch',
    '7',
    '--data-dir',
    dataDir,
    '--data',
    pattern(),
    '--workers',
    '1',
    '--no-progress',
    '--out',
    out,
    ...extra,
  ]);

beforeAll(async () => {
  dataDir = await makeDataDir(32);
  shards = await writeImg2datasetShards(join(work, 'shards'), { shards: 3, perShard: 12, size: 40, awkward: true });
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

describe('your own data from the command line', () => {
  let model: string;
  let tokenizer: string;

  it('without --skip-bad, mode train stops at the first bad sample, naming its shard and key and the fix', () => {
    const r = train(join(work, 'strict'));
    expect(r.status, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toContain(`${shards.shards[0]}: record ${shards.awkward['empty caption']}: missing caption`);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('with --skip-bad it trains from the brace pattern with a tokenizer of its captions, counting what it skipped by kind', () => {
    tokenizer = join(work, 'tokenizer.json');
    const k = run(['data', 'tokenizer', '--data', pattern(), '--out', tokenizer, '--vocab-size', '300', '--skip-bad']);
    expect(k.status, k.stderr).toBe(0);
    expect(k.stdout).toMatch(/tokenizer\.json: 300 ids from 35 captions in [\d.]+ s \(id [0-9a-f]{16}\)/);
    const out = join(work, 'lenient');
    const r = train(out, ['--skip-bad', '--tokenizer', tokenizer]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 bad records skipped \(1 corrupt image, 1 missing caption\)/);
    expect(r.stdout).toContain(shards.awkward['truncated jpeg']);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { skipped: Record<string, number>; pairs: number });
    expect(metrics).toHaveLength(5);
    expect(metrics.at(-1)!.skipped).toEqual({ 'corrupt image': 1, 'missing caption': 1 });
    expect(metrics.reduce((a, m) => a + m.pairs, 0)).toBe(34);
    model = join(out, 'final.safetensors');
    expect(existsSync(model)).toBe(true);
  });

  it('mode eval reads a CLIP_benchmark folder and a class-folder tree; a template file without {c} fails naming its line', async () => {
    const bench = join(work, 'wds_toy');
    const labels = await writeClipBenchmark(bench, { shards: 2, perShard: 6, classes: ['apple', 'banana', 'cherry'] });
    const tree = join(work, 'imagenet-toy');
    await writeClassTree(tree, { classes: ['n01440764', 'n01443537'], per: 4 });
    const names = join(work, 'names.txt');
    writeFileSync(names, 'tench\ngoldfish\n');
    const refused = run(['eval', '--model', model, '--data-dir', dataDir, '--task', bench]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(
      new RegExp(
        `the model was trained with tokenizer [0-9a-f]{16} \\(${tokenizer}\\), not [0-9a-f]{16} \\(${join(dataDir, 'tokenizer.json')}\\)\\. Fix: pass --tokenizer`,
      ),
    );
    const r = run(['eval', '--model', model, '--tokenizer', tokenizer, '--data-dir', dataDir, '--task', bench, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const [b] = JSON.parse(r.stdout) as { task: string; count: number; classes: number; templates: number; top1: number }[];
    expect(b).toMatchObject({ task: 'wds_toy', count: labels.length, classes: 3, templates: 2 });
    const t = run(['eval', '--model', model, '--tokenizer', tokenizer, '--data-dir', dataDir, '--task', tree, '--classnames', names, '--json']);
    expect(t.status, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject([{ task: 'imagenet-toy', count: 8, classes: 2, templates: 1 }]);
    const bad = join(work, 'templates.txt');
    writeFileSync(bad, 'a photo of a {c}.\nitap of a cat.\n');
    const f = run(['eval', '--model', model, '--data-dir', dataDir, '--task', bench, '--templates', bad]);
    expect(f.status).not.toBe(0);
    expect(f.stderr).toContain(`${bad}:2: template "itap of a cat." has no {c} or {}`);
  });

  it('mode data index indexes the shards once; a second run finds them current', () => {
    const dir = join(work, 'index');
    const first = run(['data', 'index', pattern(), '--index-dir', dir]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^indexed 3 shards \(36 samples\) in [\d.]+ s; 0 already current; 0 not indexable/m);
    expect(run(['data', 'index', pattern(), '--index-dir', dir]).stdout).toMatch(/indexed 0 shards \(0 samples\) .*; 3 already current/);
  });

  it('mode curate takes the shards by brace pattern and keeps their JPEGs in the curated set', async () => {
    const out = join(work, 'curated');
    const r = run(['curate', '--pool', pattern(), '--t', 'inf', '--out', out, '--no-progress']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pool\s+3 shard\(s\)/m);
    const { resolveShardSet, readShards, imageMember } = await import('@mode/data');
    const set = resolveShardSet(join(out, 'curated'));
    expect(set.kind).toBe('pairs');
    for await (const raw of readShards(set.shards)) expect(imageMember(raw.files)?.ext).toMatch(/^(jpg|JPG|webp)$/);
  });

  it('mode eval --task retrieval --data scores the pairs given', () => {
    const r = run([
      'eval',
      '--model',
      model,
      '--tokenizer',
      tokenizer,
      '--data-dir',
      dataDir,
      '--task',
      'retrieval',
      '--data',
      join(work, 'shards', '0000[12].tar'),
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject([{ task: 'retrieval', count: 24 }]);
  });
});
