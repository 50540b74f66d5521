import { describe, expect, it } from 'vitest';
import { Automaton, NaiveMatcher, padEntry, rng, spaceText } from '@mode/curator';

/** Matched entries (strings) of `text`, via the automaton; checked against the naive loop too. */
function matcher(entries: string[], multilingual = false) {
  const { automaton } = Automaton.build(entries, { multilingual });
  const naive = new NaiveMatcher(entries, multilingual);
  return (text: string): string[] => {
    const ids = automaton.matchAll(text);
    expect(ids).toEqual(naive.matchAll(text));
    return ids.map((i) => entries[i]!);
  };
}

describe('MetaCLIP matching rules (algorithms.md §1)', () => {
  it('spaces the text as the reference does', () => {
    expect(spaceText('a cat, sat.')).toBe(' a cat ,  sat .  ');
    expect(spaceText('x\ty\nz\r')).toBe(' x y z  ');
    expect(spaceText('`q`?!;:')).toBe('  ` q `  ?  !  ;  :  ');
    expect(padEntry('hot dog')).toBe(' hot dog ');
  });

  it('matches whole tokens only: "cat" is not in "cats", "cat\'s", "bobcat" or "concatenate"', () => {
    const m = matcher(['cat']);
    for (const t of ['cat', 'a cat', 'cat sits', 'the cat sits']) expect(m(t)).toEqual(['cat']);
    for (const t of ['cats', "cat's", 'bobcat', 'concatenate', 'cat-like', '(cat)', '"cat"', 'cat/dog']) expect(m(t)).toEqual([]);
  });

  it('wrapped marks , . ; : ? ! ` are token boundaries; other punctuation is not', () => {
    const m = matcher(['cat']);
    for (const t of ['cat,', 'cat.', 'cat;', 'cat:', 'cat?', 'cat!', '`cat`', 'dog,cat.bird', 'cat...']) expect(m(t)).toEqual(['cat']);
    for (const t of ['cat)', '[cat]', "'cat'", 'cat-', 'cat/', 'cat…', 'cat，']) expect(m(t)).toEqual([]);
  });

  it('tab, newline and carriage return become one space each; spaces are not collapsed', () => {
    const m = matcher(['hot dog']);
    expect(m('hot\tdog')).toEqual(['hot dog']);
    expect(m('hot\ndog')).toEqual(['hot dog']);
    expect(m('hot\r\ndog')).toEqual([]); // two spaces
    expect(m('hot  dog')).toEqual([]);
    expect(m('hot \tdog')).toEqual([]);
    expect(m('a hot dog stand')).toEqual(['hot dog']);
  });

  it('is case-sensitive', () => {
    const m = matcher(['cat', 'Paris']);
    expect(m('Cat')).toEqual([]);
    expect(m('CAT')).toEqual([]);
    expect(m('paris')).toEqual([]);
    expect(m('Paris cat')).toEqual(['cat', 'Paris']);
  });

  it('an entry with a wrapped mark inside never matches, even when the text has it verbatim', () => {
    const m = matcher(['e.g.', 'U.S.', 'st. louis', 'dr.', 'hello, world', 'what?', 'ok']);
    for (const t of ['e.g.', 'U.S.', 'st. louis', 'dr.', 'hello, world', 'what?', 'see e.g. the U.S. map']) expect(m(t).filter((e) => e !== 'ok')).toEqual([]);
    expect(m('ok.')).toEqual(['ok']);
  });

  it('counts each entry once per text; overlapping and nested entries all match', () => {
    const m = matcher(['cat', 'hot dog', 'dog', 'hot', 'new york', 'york', 'new york city']);
    expect(m('cat cat cat, cat.')).toEqual(['cat']);
    expect(m('a hot dog')).toEqual(['hot dog', 'dog', 'hot']);
    expect(m('new york city')).toEqual(['new york', 'york', 'new york city']);
  });

  it('duplicate metadata entries are each reported (as the reference loop does)', () => {
    const { automaton } = Automaton.build(['cat', 'dog', 'cat']);
    expect(automaton.matchAll('cat and dog')).toEqual([0, 1, 2]);
  });

  it('hyphens, apostrophes and digits stay inside tokens', () => {
    const m = matcher(['t-shirt', "o'clock", '3', '42', 'covid-19']);
    expect(m("a t-shirt at 3 o'clock")).toEqual(['t-shirt', "o'clock", '3']);
    expect(m('42.5')).toEqual(['42']); // "." is wrapped: "42 . 5"
    expect(m('covid-19, 2020')).toEqual(['covid-19']);
    expect(m('4242')).toEqual([]);
  });

  it('Unicode: accents, emoji (surrogate pairs), CJK without the multilingual variant', () => {
    const m = matcher(['café', '🐱', '猫', 'naïve', 'e\u0301']);
    expect(m('un café noir')).toEqual(['café']);
    expect(m('cafe')).toEqual([]);
    expect(m('a 🐱 here')).toEqual(['🐱']);
    expect(m('a🐱 here')).toEqual([]);
    expect(m('一只猫在睡觉')).toEqual([]); // no spaces around 猫
    expect(m('一只 猫 在睡觉')).toEqual(['猫']);
    expect(m('naïve e\u0301')).toEqual(['naïve', 'e\u0301']);
    expect(m('\u00e9')).toEqual([]); // precomposed é is another string: no normalisation
  });

  it('multilingual variant: no padding beside CJK, Thai, Lao, Burmese, Khmer, Tibetan', () => {
    const entries = ['猫', '東京 tower', 'แมว', 'ຄົນ', 'ကြောင်', 'ឆ្មា', 'བོད', 'cat', '고양이', '𠀀'];
    expect(padEntry('猫', true)).toBe('猫');
    expect(padEntry('東京 tower', true)).toBe('東京 tower ');
    expect(padEntry('고양이', true)).toBe(' 고양이 '); // Korean is written with spaces
    const m = matcher(entries, true);
    expect(m('一只猫在睡觉')).toEqual(['猫']);
    expect(m('新東京 tower!')).toEqual(['東京 tower']);
    expect(m('新東京 towers')).toEqual([]);
    expect(m('แมวดำ ຄົນດີ ကြောင်နက် ឆ្មាខ្មៅ བོད་ཡིག')).toEqual(['แมว', 'ຄົນ', 'ကြောင်', 'ឆ្មា', 'བོད']);
    expect(m('cats 고양이들')).toEqual([]);
    expect(m('x𠀀y')).toEqual(['𠀀']);
  });

  it('very long texts: 1 MB with matches at the start, middle and end', () => {
    const entries = ['alpha', 'omega', 'mid point', 'z'];
    const { automaton } = Automaton.build(entries);
    const filler = 'lorem ipsum dolor, sit amet. '.repeat(36000);
    const text = `alpha ${filler}mid point ${filler}omega`;
    expect(text.length).toBeGreaterThan(2e6);
    expect(automaton.matchAll(text)).toEqual([0, 1, 2]);
    expect(automaton.matchAll('z'.repeat(1e6))).toEqual([]);
    expect(automaton.matchAll(`${'z '.repeat(5e5)}`)).toEqual([3]);
    expect(automaton.matchAll(filler)).toEqual(new NaiveMatcher(entries).matchAll(filler));
  });

  it('empty text and empty metadata', () => {
    expect(Automaton.build(['cat']).automaton.matchAll('')).toEqual([]);
    expect(Automaton.build([]).automaton.matchAll('cat')).toEqual([]);
    expect(matcher(['a'])('a')).toEqual(['a']);
  });

  it('serialises: a loaded automaton (any buffer offset) matches as the built one', () => {
    const entries = ['cat', 'hot dog', 'dog', '猫', '🐱 face'];
    const { automaton } = Automaton.build(entries, { shared: false });
    const bytes = automaton.serialize();
    const padded = Buffer.alloc(bytes.length + 3);
    Buffer.from(bytes).copy(padded, 3);
    const loaded = Automaton.fromBuffer(padded.subarray(3));
    for (const t of ['a hot dog', 'cat, 🐱 face.', '猫']) expect(loaded.matchAll(t)).toEqual(automaton.matchAll(t));
    expect(loaded.nodes).toBe(automaton.nodes);
    expect(() => Automaton.fromBuffer(new Uint8Array(64))).toThrow(/bad magic/);
  });
});

describe('automaton against the naive substring loop', () => {
  // A small alphabet makes matches, overlaps, failure chains and marks frequent.
  const ALPHABET = ['a', 'b', 'c', 'ab', ' ', ' ', ',', '.', '!', '\t', '\n', '\r', 'A', '猫', '🐱', 'é', '-', "'"];
  const randomString = (r: () => number, min: number, max: number) => {
    const n = min + Math.floor(r() * (max - min + 1));
    let s = '';
    for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
    return s;
  };

  for (const multilingual of [false, true]) {
    it(`agrees on 10,000 random texts${multilingual ? ' (multilingual padding)' : ''}`, () => {
      const seed = Number(process.env.MODE_SEED ?? 20240601);
      const r = rng(seed + (multilingual ? 1 : 0));
      const entries = Array.from({ length: 400 }, () => randomString(r, 1, 5));
      const { automaton } = Automaton.build(entries, { multilingual });
      const naive = new NaiveMatcher(entries, multilingual);
      let total = 0;
      for (let i = 0; i < 10_000; i++) {
        const text = randomString(r, 0, 40);
        const got = automaton.matchAll(text);
        const want = naive.matchAll(text);
        if (got.join() !== want.join()) throw new Error(`seed ${seed}: text ${JSON.stringify(text)}: automaton ${got} vs naive ${want}`);
        total += want.length;
      }
      expect(total).toBeGreaterThan(10_000); // the texts do exercise the matcher
    });
  }

  it('agrees on word-like texts with 20k entries (synthetic metadata)', async () => {
    const { syntheticWords, syntheticEntries, syntheticCaptions } = await import('@mode/curator');
    const vocab = syntheticWords(12_000);
    const entries = syntheticEntries(20_000, vocab);
    const { automaton } = Automaton.build(entries);
    const naive = new NaiveMatcher(entries);
    const gen = syntheticCaptions(vocab);
    for (let i = 0; i < 300; i++) {
      const t = gen();
      expect(automaton.matchAll(t)).toEqual(naive.matchAll(t));
    }
  });
});
