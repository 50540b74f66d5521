import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildMetadata,
  countCorpus,
  frequentUnigrams,
  isExcluded,
  jsonErrorAt,
  numberEntries,
  pmi,
  pmiBigrams,
  readMetadata,
  rng,
  subtlexEntries,
  titleEntries,
  wordnetEntries,
} from '@mode/curator';

describe('metadata builder', () => {
  it('numbers 0–99', () => {
    const n = numberEntries();
    expect(n).toHaveLength(100);
    expect(n[0]).toBe('0');
    expect(n[99]).toBe('99');
  });

  it('WordNet synset names before the first ".", "_" → space, lower-cased, markers removed', () => {
    const w = wordnetEntries();
    expect(w.length).toBe(82192 + 13789 + 18185 + 3625); // one per synset (WordNet 3.1)
    const set = new Set(w);
    for (const e of ['dog', 'cat', 'ice cream', 'sea lion', 'new york', 'able', 'used to']) expect(set.has(e)).toBe(true);
    expect(w.some((e) => e.includes('_') || e.includes('.') || /\((a|p|ip)\)$/.test(e))).toBe(false);
    expect(w.some((e) => e !== e.toLowerCase())).toBe(false);
  });

  it('frequent unigrams from the SUBTLEX word list by count', () => {
    const hi = subtlexEntries(1000);
    const lo = subtlexEntries(100);
    expect(hi.length).toBeLessThan(lo.length);
    expect(hi.slice(0, 3)).toEqual(['you', 'I', 'the']);
  });

  it('corpus unigrams by threshold and bigrams by PMI (ratio), both words in the unigram table', () => {
    const corpus = [...Array(50).fill('new york is big, new york is old'), ...Array(50).fill('the cat is big. the dog is old')];
    const c = countCorpus(corpus);
    expect(c.unigrams.get('new')).toBe(100);
    expect(c.unigrams.get(',')).toBe(50);
    expect(c.bigrams.has('big ,')).toBe(false); // no pairs across a wrapped mark
    expect(c.bigrams.get('big new')).toBeUndefined();
    const uni = frequentUnigrams(c, 100);
    expect(uni.sort()).toEqual(['big', 'is', 'new', 'old', 'the', 'york']);
    // PMI("new york") = c(ab)·N / (c(a)·c(b)) = 100·N / (100·100)
    expect(pmi(c, 'new york', 100)).toBeCloseTo((100 * c.tokens) / (100 * 100), 10);
    const bi = pmiBigrams(c, new Set(uni), 6);
    expect(bi).toContain('new york');
    expect(bi).not.toContain('is big'); // c(is)=200, c(big)=100: PMI = 50·N/20000 < 6
    expect(pmiBigrams(c, new Set(['new']), 1)).toEqual([]); // york not in the unigram table
  });

  it('titles with an optional view count; exclusions', () => {
    expect(titleEntries('Eiffel Tower\t1000\nObscure Page\t3\nNo Count Given\n\n')).toEqual(['Eiffel Tower', 'No Count Given']);
    for (const e of ['', ' ', '\t', ',', '.', '!', '?', '`', '-', '…', '¿']) expect(isExcluded(e)).toBe(true);
    for (const e of ['a', '0', 'e.g.', '..', '$', '🐱']) expect(isExcluded(e)).toBe(false);
  });

  it('builds in §1 order, de-duplicated, exclusions dropped', () => {
    const b = buildMetadata({
      corpus: ['red panda, red panda. !', 'red panda'],
      unigramMinCount: 2,
      bigramPmi: 1,
      titles: 'Red Panda Day\n,\n',
      wordnet: false,
    });
    expect(b.entries.slice(0, 100)).toEqual(numberEntries());
    expect(b.entries.slice(100)).toEqual(['panda', 'red', 'red panda', 'Red Panda Day']); // by count, ties alphabetical
    expect(b.sources).toEqual({ numbers: 100, wordnet: 0, unigrams: 2, bigrams: 1, titles: 1 });
    expect(b.excluded).toBe(1); // the titles line ","
    const full = buildMetadata();
    expect(full.entries.length).toBeGreaterThan(90_000);
    expect(new Set(full.entries).size).toBe(full.entries.length);
    expect(full.entries.indexOf('sea lion')).toBeLessThan(full.entries.indexOf('you'));
  });
});

describe('metadata files', () => {
  const file = (text: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'metadata-')), 'meta.json');
    writeFileSync(path, text);
    return path;
  };
  const message = (path: string) => {
    try {
      readMetadata(path);
    } catch (e) {
      expect((e as { userFacing?: boolean }).userFacing).toBe(true);
      return (e as Error).message;
    }
    throw new Error(`readMetadata(${path}) did not throw`);
  };

  it('reads a JSON list of strings (a byte-order mark is allowed)', () => {
    expect(readMetadata(file('\ufeff[\n"cat",\n"big dog"\n]\n'))).toEqual(['cat', 'big dog']);
  });

  it('malformed JSON: the error names the file, line and column, and what was expected there', () => {
    const path = file('[\n  "cat",\n  "dog" "sky"\n]\n');
    expect(message(path)).toBe(`${path}:3:9: invalid JSON: unexpected '"' (expected ',' or ']'); metadata must be a JSON list of strings`);
    const trailing = file('["cat",\n "dog",\n]');
    expect(message(trailing)).toBe(`${trailing}:3:1: invalid JSON: unexpected ']' (expected a value); metadata must be a JSON list of strings`);
    const cut = file('["cat", "do');
    expect(message(cut)).toMatch(new RegExp(`^${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:9: invalid JSON: unterminated string`));
    expect(message(file(''))).toMatch(/:1:1: invalid JSON: unexpected end of file \(expected a value\)/);
  });

  it('a list of something else, or a missing file, is named too', () => {
    const obj = file('{"cat": 1}');
    expect(message(obj)).toBe(`${obj}: metadata must be a JSON list of strings, not an object`);
    const num = file('["cat", 7]');
    expect(message(num)).toBe(`${num}: metadata must be a JSON list of strings; entry 1 is a number`);
    expect(message('/nonexistent/meta.json')).toMatch(/^\/nonexistent\/meta\.json: cannot read the metadata file: ENOENT/);
  });

  it('jsonErrorAt agrees with JSON.parse on valid and mutated JSON, with the offset of the first error', () => {
    expect(jsonErrorAt('{"a": [1, -2.5e3, true, null, "x\\u00e9\\n"]}')).toBeNull();
    expect(jsonErrorAt('[1, 2')).toMatchObject({ offset: 5, line: 1, column: 6, reason: "unexpected end of file (expected ',' or ']')" });
    expect(jsonErrorAt('[01]')).toMatchObject({ offset: 2 });
    expect(jsonErrorAt('["a\tb"]')).toMatchObject({ offset: 3 }); // raw tab inside a string
    const r = rng(5);
    const alphabet = ['[', ']', '{', '}', ',', ':', '"', '\\', '-', '0', '1', '.', 'e', 't', 'n', ' ', '\n', 'x'];
    const base = JSON.stringify({ cats: ['a', 'b c', 1.5, -2, true, null, { d: [] }], e: 'é\\"' }, null, 1);
    for (let k = 0; k < 3000; k++) {
      let t = base;
      for (let m = 1 + Math.floor(r() * 3); m > 0; m--) {
        const at = Math.floor(r() * (t.length + 1));
        const op = Math.floor(r() * 3);
        const ch = alphabet[Math.floor(r() * alphabet.length)]!;
        t = op === 0 ? t.slice(0, at) + ch + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + ch + t.slice(at + 1);
      }
      let valid = true;
      try {
        JSON.parse(t);
      } catch {
        valid = false;
      }
      const e = jsonErrorAt(t);
      expect(e === null, t).toBe(valid);
      // Where V8 names a position, it is at or after ours (V8 reports a bad literal such as `tx` at
      // its second letter, an unterminated string at the end of the file).
      if (e) {
        try {
          JSON.parse(t);
        } catch (err) {
          const pos = /at position (\d+)/.exec((err as Error).message);
          if (pos) expect(e.offset, t).toBeLessThanOrEqual(Number(pos[1]));
        }
      }
    }
  });
});
