/**
 * OpenAI CLIP's tokenizer, as OpenCLIP's `SimpleTokenizer` runs it, from the merges file both ship
 * (`bpe_simple_vocab_16e6.txt.gz`, read by `readTokenizer`): byte-level BPE whose word-final
 * symbol carries `</w>`, 49,408 ids (the 256 bytes, the same with `</w>`, 48,894 merges, then
 * `<start_of_text>` 49406 and `<end_of_text>` 49407), padding 0.
 *
 * Cleaning is OpenCLIP's `clean='lower'`: HTML entities unescaped twice (the `entities` library
 * implements HTML5's rules as Python's `html.unescape` does), trimmed, whitespace runs to one
 * space, lower-cased. OpenCLIP runs ftfy's `fix_text` first; it repairs mojibake and is a no-op on
 * clean text, and here NFC normalisation takes its place (the only part of it that changes clean
 * text). Whitespace is what Python's `str.isspace` calls so; the split pattern's `\s` is Unicode's
 * White_Space, as in the `regex` module OpenCLIP uses.
 */
import { decodeHTML } from 'entities';
import { checksum } from './tokenizer.js';

/** The merges file's format for `toJSON`: the merge lines as the file has them. */
export interface OpenAiTokenizerJSON {
  format: 'openai-clip-bpe';
  merges: string[];
}

/** Merges OpenCLIP reads from the file: lines 1 to 48,894 (line 0 is a version header). */
export const OPENAI_MERGES = 49152 - 256 - 2;

/** GPT-2's byte → character map (printable Latin-1 bytes stand for themselves), and the order the vocabulary lists the bytes in: printable ones first. */
function byteTable(): { char: string[]; order: number[] } {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const bytes = Array.from({ length: 256 }, (_, b) => b);
  const order = [...bytes.filter(printable), ...bytes.filter((b) => !printable(b))];
  const char = new Array<string>(256);
  let n = 0;
  for (const b of order) char[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return { char, order };
}

/** Python's `str.isspace` (what `re`'s `\s` matches in OpenCLIP's whitespace_clean and `str.strip`). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Unicode's White_Space (the `regex` module's `\s` in the split pattern). */
const WHITE_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUNS = new RegExp(`[${PY_SPACE}]+`, 'gu');
const TRIM = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');
const SPLIT = new RegExp(`<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITE_SPACE}\\p{L}\\p{N}]+`, 'giu');

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class OpenAiTokenizer {
  readonly kind = 'openai';
  readonly pad = 0;
  readonly sot: number;
  readonly eot: number;
  readonly vocabSize: number;
  private readonly byteChar: string[];
  private readonly encoder = new Map<string, number>();
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  /** From the merge lines (without the version header), OpenCLIP's first 48,894. */
  constructor(readonly merges: readonly string[]) {
    const { char, order } = byteTable();
    this.byteChar = char;
    const base = order.map((b) => char[b]!);
    const vocab = [...base, ...base.map((c) => `${c}</w>`)];
    merges.forEach((line, i) => {
      const pair = line.split(' ');
      if (pair.length !== 2 || !pair[0] || !pair[1]) throw new Error(`tokenizer: merge line ${i + 2} "${line}" is not two symbols`);
      this.ranks.set(line, i);
      vocab.push(pair[0] + pair[1]);
    });
    vocab.push('<start_of_text>', '<end_of_text>');
    vocab.forEach((t, id) => {
      this.encoder.set(t, id);
      this.decoder.push(t);
    });
    this.vocabSize = vocab.length;
    [this.sot, this.eot] = [this.vocabSize - 2, this.vocabSize - 1];
  }

  /** The merges file's text (version line first, as OpenAI's and OpenCLIP's copies have it). */
  static fromMergesFile(text: string, where = 'merges file'): OpenAiTokenizer {
    const lines = text.replace(/\n+$/, '').split('\n');
    // OpenAI's copy begins '"bpe_simple_vocab_16e6.txt#version: 0.2'; OpenCLIP skips that line whatever it holds.
    if (!lines[0]?.includes('#version')) throw new Error(`${where}: not a CLIP BPE merges file (its first line has no "#version")`);
    const merges = lines.slice(1, OPENAI_MERGES + 1);
    if (merges.length < OPENAI_MERGES) throw new Error(`${where}: ${merges.length} merges, OpenCLIP reads ${OPENAI_MERGES}`);
    return new OpenAiTokenizer(merges);
  }

  static fromJSON(json: OpenAiTokenizerJSON): OpenAiTokenizer {
    return new OpenAiTokenizer(json.merges);
  }

  toJSON(): OpenAiTokenizerJSON {
    return { format: 'openai-clip-bpe', merges: this.merges.slice() };
  }

  private checksum: string | undefined;

  /** The vocabulary's checksum (as the project tokenizer's `id`): a model records it and refuses another. */
  get id(): string {
    return (this.checksum ??= checksum(JSON.stringify(this.toJSON())));
  }

  /** OpenCLIP's `clean='lower'` with NFC in ftfy's place (see the module comment). */
  normalize(text: string): string {
    const unescaped = decodeHTML(decodeHTML(text.normalize('NFC')));
    return unescaped.replace(TRIM, '').replace(SPACE_RUNS, ' ').replace(TRIM, '').toLowerCase();
  }

  /** BPE of one piece (its bytes as characters), the symbols' ids. */
  private bpe(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    if (piece === '<start_of_text>' || piece === '<end_of_text>') return [this.encoder.get(piece)!]; // written in the caption
    const chars = [...piece];
    let word = chars.map((c, i) => (i === chars.length - 1 ? `${c}</w>` : c));
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const [a, b] = [word[best]!, word[best + 1]!];
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(word[i]!);
      }
      word = merged;
    }
    const ids = word.map((t) => this.encoder.get(t)!);
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }

  /** Token ids of the cleaned text, without start/end tokens. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const piece of this.normalize(text).match(SPLIT) ?? []) {
      out.push(...this.bpe(Array.from(utf8.encode(piece), (b) => this.byteChar[b]!).join('')));
    }
    return out;
  }

  /** Text of the ids: `</w>` becomes a space (the last one trimmed), special tokens are dropped. */
  decode(ids: ArrayLike<number>): string {
    const reverse = new Map(this.byteChar.map((c, b) => [c, b]));
    let text = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === this.pad || id === this.sot || id === this.eot) continue;
      const t = this.decoder[id];
      if (t === undefined) throw new Error(`tokenizer: id ${id} out of range (vocabulary ${this.vocabSize})`);
      text += t;
    }
    const bytes = Uint8Array.from([...text.replaceAll('</w>', ' ')].map((c) => (c === ' ' ? 0x20 : (reverse.get(c) ?? 0x3f))));
    return utf8Decoder.decode(bytes).trim();
  }

  /**
   * `[texts.length, contextLength]` ids: start, tokens, end, then 0; too long, cut to the context
   * with the end token last (OpenCLIP's truncation).
   */
  tokenize(texts: readonly string[], contextLength = 77): Int32Array {
    const out = new Int32Array(texts.length * contextLength);
    texts.forEach((t, row) => {
      const body = this.encode(t).slice(0, contextLength - 2);
      const base = row * contextLength;
      out[base] = this.sot;
      out.set(body, base + 1);
      out[base + 1 + body.length] = this.eot;
    });
    return out;
  }
}
