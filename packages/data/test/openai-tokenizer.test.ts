/**
 * OpenAI CLIP's tokenizer against OpenCLIP's own ids (../shared/data: the merges file OpenAI and
 * OpenCLIP ship, and 303 captions with the ids OpenCLIP's SimpleTokenizer gave them), and the
 * ways it is read, sent to workers and told apart from the project's.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { OpenAiTokenizer, readTokenizer, Tokenizer, tokenizerFromJSON } from '../src/index.js';
import { tmp } from './helpers.js';

const SHARED = join(import.meta.dirname, '../../../../shared/data');
const MERGES = join(SHARED, 'bpe_simple_vocab_16e6.txt.gz');
const IDS = join(SHARED, 'openclip_tokens.json');
const why = `needs ${MERGES} and ${IDS} (test data from elsewhere: ../shared/data)`;

describe.skipIf(!existsSync(MERGES) || !existsSync(IDS))(`OpenAI's CLIP tokenizer (${why})`, () => {
  const tok = readTokenizer(MERGES) as OpenAiTokenizer;
  const ref = JSON.parse(readFileSync(IDS, 'utf8')) as { captions: string[]; tokens: number[][] };

  it("gives OpenCLIP's ids for every caption (punctuation, digits, accents, emoji, CJK, entities, whitespace runs, one past 77 tokens, empty)", () => {
    expect(tok.kind).toBe('openai');
    expect([tok.vocabSize, tok.sot, tok.eot, tok.pad]).toEqual([49408, 49406, 49407, 0]);
    expect(ref.captions.length).toBeGreaterThan(300);
    const ids = tok.tokenize(ref.captions, 77);
    const wrong = ref.captions.flatMap((c, i) => {
      const ours = Array.from(ids.subarray(i * 77, (i + 1) * 77));
      return JSON.stringify(ours) === JSON.stringify(ref.tokens[i]) ? [] : [{ caption: c, ours, openclip: ref.tokens[i] }];
    });
    expect(wrong).toEqual([]);
    // The ones that test the edges are there: a caption cut at 77 ending with the end token, an empty one.
    const rows = ref.tokens.map((t) => t.filter((x) => x !== 0).length);
    expect(rows).toContain(77);
    expect(rows).toContain(2);
    expect(ref.tokens.every((t) => t[76] === 0 || t[76] === 49407)).toBe(true);
  });

  it('reads the merges gzipped or not; sends itself to workers as JSON; its id is stable and not the project tokenizer', () => {
    const dir = tmp('openai-tok');
    const plain = join(dir, 'bpe_simple_vocab_16e6.txt');
    writeFileSync(plain, gunzipSync(readFileSync(MERGES)));
    const again = readTokenizer(plain);
    const fromJson = tokenizerFromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
    const caption = 'A photo of a café &amp; 2 dogs 🐕';
    for (const t of [again, fromJson]) {
      expect(t.id).toBe(tok.id);
      expect(Array.from(t.tokenize([caption]))).toEqual(Array.from(tok.tokenize([caption])));
    }
    const project = Tokenizer.train(['a photo of a dog', 'a photo of a cat'], { vocabSize: 270 });
    expect(project.id).not.toBe(tok.id);
    expect(tokenizerFromJSON(project.toJSON()).id).toBe(project.id);
    expect(tok.decode(tok.encode(caption))).toBe('a photo of a café & 2 dogs 🐕');
  });

  it('a file that is neither tokenizer is an error naming it and the fix', () => {
    const dir = tmp('openai-tok-bad');
    const bad = join(dir, 'vocab.txt');
    writeFileSync(bad, 'not a merges file\n');
    expect(() => readTokenizer(bad)).toThrow(new RegExp(`${bad}: not a tokenizer .*first line has no "#version".*bpe_simple_vocab_16e6`));
    writeFileSync(bad, '#version: 0.2\ni n\n');
    expect(() => readTokenizer(bad)).toThrow(/1 merges, OpenCLIP reads 48894/);
  });
});
