import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR, OPENCLIPART_DIR, loadSynonyms, loadTokenizer, openClassification, openPairs, prepare, readDatasetInfo } from '../src/index.js';
import { tmp } from './helpers.js';

const debian = existsSync(OPENCLIPART_DIR) && existsSync(FASHION_MNIST_DIR);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const cliBuilt = existsSync(join(root, 'packages/cli/dist/commands/data.js')) && existsSync(join(root, 'packages/data/dist/index.js'));

// The full prepare takes about two minutes: these run it on a few records per set.
describe('mode data prepare (a few records per set)', () => {
  it.skipIf(!debian)('builds every set, the tokenizer and the synonym table; a second run reuses them', async () => {
    const out = tmp('prepare');
    const started: string[] = [];
    const r = await prepare({ out, limit: 6, vocabSize: 400, onStart: (s) => started.push(s) });
    expect(Object.keys(r.sets).sort()).toEqual(['clipart', 'emoji', 'fashion-mnist', 'mnist', 'openmoji']);
    expect(r.sets.emoji!.info.splits.train!.count).toBe(6);
    expect(r.sets.mnist!.info.splits.test!.count).toBe(6);
    expect(r.sets['fashion-mnist']!.info.classes).toHaveLength(10);
    expect(r.bad.count).toBe(0);
    const tok = loadTokenizer(out);
    expect(tok.vocabSize).toBeLessThanOrEqual(400);
    expect(typeof loadSynonyms(out)).toBe('object');
    const batches = [];
    for await (const b of openPairs([join(out, 'emoji'), join(out, 'clipart')], { batchSize: 4, imageSize: 16, tokenizer: tok, workers: 0 })) batches.push(b);
    expect(batches.reduce((n, b) => n + b.size, 0)).toBe(r.sets.emoji!.info.splits.train!.count + r.sets.clipart!.info.splits.train!.count);
    const { loader, classes } = openClassification(join(out, 'openmoji'), 'test', { batchSize: 6, imageSize: 16, workers: 0 });
    for await (const b of loader) for (const l of b.labels!) expect(classes[l]).toBeTruthy();
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).sets.mnist.splits).toEqual({ train: 6, test: 6 });

    const again = await prepare({ out, limit: 6, vocabSize: 400 });
    expect(Object.values(again.sets).every((s) => s.reused)).toBe(true);
    expect(readDatasetInfo(join(out, 'emoji')).splits.train!.count).toBe(6);
  });

  it.skipIf(!cliBuilt || !debian)('the CLI prints counts, and verify reads every record back', () => {
    const out = tmp('cli');
    const mode = (...args: string[]) =>
      spawnSync(process.execPath, [join(root, 'packages/cli/bin/mode.js'), 'data', ...args], { encoding: 'utf8', timeout: 60_000 });
    const r = mode('prepare', '--out', out, '--limit', '4', '--only', 'emoji,mnist');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/emoji +pairs +train 4 /);
    expect(r.stdout).toMatch(/mnist +classification +train 4, test 4, 10 classes/);
    expect(r.stdout).toMatch(/tokenizer +BPE, \d+ ids, trained on 4 captions/);
    const v = mode('verify', '--out', out);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/emoji: 4 records ok/);
    expect(v.stdout).toMatch(/mnist: 8 records ok/);
    const bad = mode('prepare', '--out', out, '--only', 'nope');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^mode: Error: unknown set\(s\) nope/);
  });
});
