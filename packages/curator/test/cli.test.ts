import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { curate, rng } from '@mode/curator';

// Runs the built CLI (`npx tsc -b`, which scripts/setup.sh does): worker threads need the compiled
// worker entry, so this is where the multi-worker path is tested.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const mode = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'packages/cli/bin/mode.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('mode curate (built CLI, worker threads)', () => {
  it('2 workers over byte-range tasks give the same curated set as the in-process run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'curate-cli-'));
    const words = ['cat', 'dog', 'sky', 'tree', 'red', 'blue', 'the', 'a', 'on', 'big'];
    const r = rng(11);
    const lines = Array.from({ length: 4000 }, (_, i) =>
      JSON.stringify({ key: i, caption: Array.from({ length: 3 + Math.floor(r() * 5) }, () => words[Math.floor(r() * words.length)]).join(' ') }),
    );
    lines.splice(100, 0, '{oops');
    writeFileSync(join(dir, 'pool.jsonl'), lines.join('\n') + '\n');
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(['cat', 'dog', 'sky', 'tree', 'red', 'big cat']));
    const res = mode([
      'curate',
      '--pool',
      join(dir, 'pool.jsonl'),
      '--metadata',
      join(dir, 'meta.json'),
      '--t',
      '300',
      '--seed',
      '3',
      '--workers',
      '2',
      '--chunk-mb',
      '0.02',
      '--out',
      join(dir, 'out'),
    ]);
    expect(res.stderr).not.toMatch(/Error/);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/kept +\d+ \(\d+\.\d% of matched\) at t = 300/);
    expect(res.stdout).toMatch(/2 thread\(s\)/);
    expect(res.stdout).toContain(`${join(dir, 'pool.jsonl')}:101: invalid JSON`);
    expect(res.stdout).toContain('count per entry');
    const inProcess = await curate({ pool: [join(dir, 'pool.jsonl')], metadata: join(dir, 'meta.json'), t: 300, seed: 3, workers: 0, out: join(dir, 'ref') });
    expect(readFileSync(join(dir, 'out/curated/pool.jsonl'))).toEqual(readFileSync(join(dir, 'ref/curated/pool.jsonl')));
    const stats = JSON.parse(readFileSync(join(dir, 'out/stats.json'), 'utf8'));
    expect(stats.kept).toBe(inProcess.stats.kept);
    expect(stats.timing.threads).toBe(2);
  });

  it('curates the built-in emojibase pool with the default metadata in seconds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'curate-cli-'));
    const t0 = performance.now();
    const res = mode(['curate', '--pool', 'emojibase', '--t', '100', '--out', dir]);
    expect(res.status).toBe(0);
    expect((performance.now() - t0) / 1000).toBeLessThan(30);
    expect(res.stdout).toMatch(/pool +1 shard\(s\), \d{4} texts/);
    expect(res.stdout).toMatch(/metadata +\d{5,} entries/);
    expect(res.stdout).toContain('count per entry');
    expect(readFileSync(join(dir, 'longtail.svg'), 'utf8')).toContain('<svg');
  });

  it('mode curate metadata writes a JSON list', () => {
    const dir = mkdtempSync(join(tmpdir(), 'curate-cli-'));
    writeFileSync(join(dir, 'corpus.txt'), 'red panda\nred panda\nblue whale\n');
    const res = mode([
      'curate',
      'metadata',
      join(dir, 'm.json'),
      '--corpus',
      join(dir, 'corpus.txt'),
      '--unigram-min',
      '2',
      '--bigram-pmi',
      '2',
      '--no-wordnet',
    ]);
    expect(res.status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')).slice(100)).toEqual(['panda', 'red', 'red panda']);
  });
});
