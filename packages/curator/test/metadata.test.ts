import { describe, expect, it } from 'vitest';
import {
  buildMetadata,
  countCorpus,
  frequentUnigrams,
  isExcluded,
  numberEntries,
  pmi,
  pmiBigrams,
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
