import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  EDA_OPS,
  IGNORE_INDEX,
  OPENCLIPART_DIR,
  Rng,
  SPECIAL,
  Tokenizer,
  buildSynonymTable,
  eda,
  emojiEntries,
  loadFrequencies,
  loadWordNet,
  maskTokens,
  openmojiItems,
  randomDeletion,
  randomSwap,
  scanClipart,
  synonymReplacement,
} from '../src/index.js';

const hasClipart = existsSync(OPENCLIPART_DIR);

/** Every caption the default data sets have (clip art only where the Debian package is installed). */
function allCaptions(): string[] {
  const caps = emojiEntries().map((e) => e.caption);
  if (hasClipart) caps.push(...scanClipart().entries.map((e) => e.caption));
  caps.push(...openmojiItems().items.map((i) => i.annotation));
  return caps;
}

describe('BPE tokenizer', () => {
  const captions = allCaptions();
  const tok = Tokenizer.train(captions, { vocabSize: 4096 });

  it('trains to the requested vocabulary size on the caption corpus', () => {
    expect(captions.length).toBeGreaterThan(hasClipart ? 9000 : 5000);
    expect(tok.vocabSize).toBe(4096);
    expect(tok.tokenString(SPECIAL.sot)).toBe('<|startoftext|>');
    expect(tok.tokenString(SPECIAL.mask)).toBe('<|mask|>');
  });

  it('round trip: decode(encode(caption)) is the cleaned caption, for every caption', () => {
    let tokens = 0;
    const failures: string[] = [];
    for (const c of captions) {
      const ids = tok.encode(c);
      tokens += ids.length;
      if (tok.decode(ids) !== tok.normalize(c)) failures.push(c);
      if (ids.some((i) => i < 4 || i >= tok.vocabSize)) failures.push(`ids out of range: ${c}`);
    }
    expect(failures).toEqual([]);
    expect(tokens / captions.length).toBeLessThan(25); // merges compress: well under one token per character
  });

  it('round trip through JSON, and any text (unseen scripts, emoji) via byte fallback', () => {
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    for (const t of ['grinning face: big grin', '日本語のテキスト 🦊✓ ünïcödé', "it's  a\tCAT's   hat!!", '0123456789']) {
      expect(back.encode(t)).toEqual(tok.encode(t));
      expect(back.decode(back.encode(t))).toBe(tok.normalize(t));
    }
    expect(tok.normalize("  It's\n A  CAT ")).toBe("it's a cat");
  });

  it('training is deterministic', () => {
    const a = Tokenizer.train(captions.slice(0, 500), { vocabSize: 800 });
    const b = Tokenizer.train(captions.slice(0, 500), { vocabSize: 800 });
    expect(a.toJSON()).toEqual(b.toJSON());
  });

  it('tokenize: start, tokens, end, padding; long captions cut with the end token kept', () => {
    const ids = tok.tokenize(['waving hand', 'a '.repeat(200)], 16);
    expect(ids).toHaveLength(32);
    const row0 = [...ids.subarray(0, 16)];
    const body = tok.encode('waving hand');
    expect(row0).toEqual([SPECIAL.sot, ...body, SPECIAL.eot, ...Array(16 - 2 - body.length).fill(SPECIAL.pad)]);
    const row1 = [...ids.subarray(16)];
    expect(row1[0]).toBe(SPECIAL.sot);
    expect(row1[15]).toBe(SPECIAL.eot);
    expect(row1).not.toContain(SPECIAL.pad);
  });

  it('MLM masking: 15% of real tokens, 80/10/10, specials untouched, labels where masked', () => {
    const ids = tok.tokenize(captions.slice(0, 2000), 32);
    const { input, labels } = maskTokens(ids, tok.vocabSize, new Rng(1));
    let real = 0;
    let chosen = 0;
    let masked = 0;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 4) {
        expect(input[i]).toBe(ids[i]);
        expect(labels[i]).toBe(IGNORE_INDEX);
        continue;
      }
      real++;
      if (labels[i] === IGNORE_INDEX) {
        expect(input[i]).toBe(ids[i]);
        continue;
      }
      chosen++;
      expect(labels[i]).toBe(ids[i]);
      if (input[i] === SPECIAL.mask) masked++;
    }
    expect(chosen / real).toBeGreaterThan(0.13);
    expect(chosen / real).toBeLessThan(0.17);
    expect(masked / chosen).toBeGreaterThan(0.75);
    expect(masked / chosen).toBeLessThan(0.85);
  });

  it('id: the same merges and casing give the same 16 hex digits; other merges another', () => {
    const a = Tokenizer.train(['a cat on a mat', 'a dog on a log'], { vocabSize: 270 });
    const b = Tokenizer.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect(b.id).toBe(a.id);
    expect(Tokenizer.train(['a cat on a mat', 'a dog on a log'], { vocabSize: 262 }).id).not.toBe(a.id);
    expect(new Tokenizer(a.merges, false).id).not.toBe(a.id);
  });
});

describe('EDA', () => {
  const synonyms = { hand: ['paw', 'mitt'], waving: ['wave'], big: ['large'] };
  const text = 'waving hand: light skin tone. bye, hello, hand, wave, big.';

  it('is deterministic under a seed; each operation changes the caption as specified', () => {
    for (const op of EDA_OPS) {
      const a = eda(text, new Rng([9, op.length]), { synonyms, op });
      expect(eda(text, new Rng([9, op.length]), { synonyms, op })).toBe(a);
    }
    const outs = new Set(Array.from({ length: 50 }, (_, i) => eda(text, new Rng(i), { synonyms })));
    expect(outs.size).toBeGreaterThan(10);
    const words = text.split(' ');
    // Swap keeps the words, reordered.
    const sw = randomSwap(words, new Rng(1), 0.1);
    expect([...sw].sort()).toEqual([...words].sort());
    expect(sw).not.toEqual(words);
    // Synonym replacement keeps punctuation and replaces max(1, 0.1·n) words from the table.
    const sr = synonymReplacement(words, new Rng(2), synonyms, 0.1);
    expect(sr.filter((w, i) => w !== words[i])).toHaveLength(1);
    expect(sr.join(' ')).toMatch(/paw|mitt|wave|large/);
    // Deletion removes about p of the words and never all.
    let kept = 0;
    for (let s = 0; s < 400; s++) kept += randomDeletion(words, new Rng(s), 0.1).length;
    expect(kept / (400 * words.length)).toBeCloseTo(0.9, 1);
    expect(randomDeletion(['one', 'two'], new Rng(0), 1)).toHaveLength(1);
  });

  it('WordNet synonyms, filtered by SUBTLEX frequency, for the caption vocabulary', () => {
    const wn = loadWordNet();
    expect(wn.synonyms('dog', 1)).toContain('domestic dog');
    expect(wn.synonyms('happy', 3)).toContain('glad');
    expect(wn.synonyms('dog', 1)).toContain('chase'); // the verb "to dog"
    const table = buildSynonymTable(['big', 'car', 'the', 'xyzzy', 'dog'], wn, loadFrequencies());
    expect(table.big).toEqual(['large']);
    expect(table.car).toContain('auto');
    expect(table.the).toBeUndefined(); // a stop word
    expect(table.xyzzy).toBeUndefined();
    expect(table.dog).toEqual(['domestic dog']); // the dominant part of speech only; "canis familiaris" is too rare
  });
});
