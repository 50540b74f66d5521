import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir } from '../../trainer/test/fixture.js';

// `mode train` (a seed model) → `mode embed` → `mode cluster` → `mode assign`, as processes.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/mode.js');
const dir = mkdtempSync(join(tmpdir(), 'mode-cli-cluster-'));
const env = { ...process.env, MODE_TUNE_CACHE: join(dir, 'autotune.json') };
let dataDir: string;
let data: string[];
beforeAll(async () => {
  dataDir = await makeDataDir(128);
  data = ['--data-dir', dataDir, '--data', join(dataDir, 'shapes'), `${join(dataDir, 'colours')}@0.5`];
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const mode = (...args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('mode embed / cluster / assign', () => {
  it('embeds captions with a seed model, clusters them into experts, assigns every pair, and reports', () => {
    const seed = join(dir, 'seed');
    expect(mode('train', '--preset', 'tiny', '--steps', '4', '--batch', '16', '--out', seed, '--workers', '0', ...data).code).toBe(0);
    const emb = join(dir, 'emb');
    const e = mode('embed', '--model', join(seed, 'final.safetensors'), '--out', emb, ...data);
    expect(e.code, e.err).toBe(0);
    expect(e.out).toMatch(/embedded \d+ captions \(dimension 64, f16\) in \d+ shards/);
    const clusters = join(dir, 'clusters');
    const c = mode('cluster', '--embeddings', emb, '--fine', '12', '--experts', '3', '--out', clusters);
    expect(c.code, c.err).toBe(0);
    expect(c.out).toMatch(/fine chunk 0 iteration 1: inertia [\d.]+/);
    expect(c.out).toMatch(/expert 2: \d+ pairs \+ \d+ out-of-cluster/);
    for (const f of ['fine.safetensors', 'coarse.safetensors', 'clusters.json', 'assignment.json', 'assign-000000.jsonl', 'report.md', 'report.json'])
      expect(existsSync(join(clusters, f)), f).toBe(true);
    const manifest = JSON.parse(readFileSync(join(clusters, 'assignment.json'), 'utf8'));
    // `mode assign` alone, into another folder, gives the same assignment.
    const again = join(dir, 'again');
    const a = mode('assign', '--embeddings', emb, '--clusters', clusters, '--out', again);
    expect(a.code, a.err).toBe(0);
    expect(readFileSync(join(again, 'assign-000000.jsonl'), 'utf8')).toBe(readFileSync(join(clusters, 'assign-000000.jsonl'), 'utf8'));
    expect(JSON.parse(readFileSync(join(again, 'assignment.json'), 'utf8'))).toEqual(manifest);
  });

  it('bad flags and inputs are one clear line, no stack', () => {
    const none = mode('cluster', '--embeddings', join(dir, 'nowhere'));
    expect(none.code).not.toBe(0);
    expect(none.err).toMatch(/nowhere: no embeddings\.json .* Fix: run `mode embed --out .*nowhere`/);
    expect(none.err).not.toMatch(/\n\s+at /);
    const big = mode('cluster', '--embeddings', join(dir, 'emb'), '--fine', '100000', '--out', join(dir, 'x'));
    expect(big.err).toMatch(/--fine 100000 clusters is more than its \d+ captions/);
    expect(mode('embed', '--out', join(dir, 'y')).err).toMatch(/give --model FILE \(a CLIP model\) or --vectors FILE\.npy/);
    expect(mode('assign', '--clusters', join(dir, 'nowhere')).err).toMatch(/no clusters\.json/);
  });
});
