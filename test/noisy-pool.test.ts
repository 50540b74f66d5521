// The MetaCLIP study's raw pool (noisy-pool.ts): Zipf class counts, noise that no metadata entry
// matches, labelled captions that match their class word, and the same bytes for the same seed.
// It reads the prepared Fashion-MNIST and MNIST (the README's main command prepares them in CI).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Automaton, defaultMetadata } from '@mode/curator';
import { datasetShards, defaultDataDir, readShards, writeNoisyPool, zipfShares } from '@mode/data';

const dataDir = defaultDataDir();
const prepared = existsSync(join(dataDir, 'mnist', 'dataset.json')) && existsSync(join(dataDir, 'fashion-mnist', 'dataset.json'));
const tmp = mkdtempSync(join(tmpdir(), 'mode-pool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('zipfShares', () => {
  it('sums to 1, falls with rank, and holds head/tail at the ratio', () => {
    const s = zipfShares(20, 80);
    expect(s.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let r = 1; r < 20; r++) expect(s[r]!).toBeLessThan(s[r - 1]!);
    expect(s[0]! / s[19]!).toBeCloseTo(80, 9);
    expect(s[0]!).toBeGreaterThan(0.4);
    expect(s[19]!).toBeLessThan(0.006);
  });
});

describe.skipIf(!prepared)('the noisy long-tailed pool', () => {
  it('Zipf class counts, 30% noise no entry matches, class words that do, reproducible', async () => {
    const build = (out: string) => writeNoisyPool({ dataDir, out, labelled: 2000, beside: 500, seed: 3 });
    const a = await build(join(tmp, 'a'));
    const b = await build(join(tmp, 'b'));
    expect(a.classes.map((c) => c.count)).toEqual(zipfShares(20, 80).map((s) => Math.max(1, Math.round(2000 * s))));
    expect(new Set(a.classes.map((c) => `${c.set}/${c.label}`)).size).toBe(20);
    const labelled = a.classes.reduce((s, c) => s + c.count, 0);
    expect(a.noise / (labelled + a.noise + 500)).toBeCloseTo(0.3, 3);
    for (const [i, f] of a.info.splits.train!.shards.entries())
      expect(readFileSync(join(tmp, 'b', f)).equals(readFileSync(join(tmp, 'a', f))), `shard ${i} bytes`).toBe(true);
    expect(b.info.splits.train!.count).toBe(labelled + a.noise);

    const { entries } = defaultMetadata();
    const { automaton } = Automaton.build(entries);
    const counts = new Map<string, number>();
    let noise = 0;
    for await (const raw of readShards(datasetShards(join(tmp, 'a'), 'train'))) {
      const text = new TextDecoder().decode(raw.files.txt!);
      const { group } = JSON.parse(new TextDecoder().decode(raw.files.json!)) as { group: string };
      const matched = automaton.matchAll(text).map((e) => entries[e]!);
      if (group === 'noise') {
        noise++;
        expect(matched, text).toEqual([]);
      } else {
        counts.set(group, (counts.get(group) ?? 0) + 1);
        expect(matched, text).toContain(group.split('/')[1]);
      }
    }
    expect(noise).toBe(a.noise);
    for (const c of a.classes) expect(counts.get(`${c.set}/${c.word}`), c.word).toBe(c.count);
  });
});
