/**
 * A CLIP-style byte-level BPE tokenizer, trained on the caption corpus.
 *
 * Like CLIP's: text is cleaned (NFC, whitespace collapsed, lower-cased), split with CLIP's
 * pattern (contractions, letter runs, single digits, punctuation runs), byte-level BPE merges
 * within each piece, and sequences are `<|startoftext|> … <|endoftext|>` padded to a context
 * length (77), truncated with the end token kept last. Unlike CLIP's `</w>` suffix, a piece
 * carries its leading space (GPT-2's convention), so `decode(encode(t))` gives back the
 * cleaned text byte for byte.
 *
 * Ids: 0 pad, 1 start, 2 end, 3 mask (for MLM), 4–259 the 256 bytes, then one id per merge.
 */
import { IGNORE_INDEX } from './labels.js';
import type { Rng } from './rng.js';

export const SPECIAL = { pad: 0, sot: 1, eot: 2, mask: 3 } as const;
export const SPECIAL_TOKENS = ['<|pad|>', '<|startoftext|>', '<|endoftext|>', '<|mask|>'] as const;
const BYTE0 = 4;
const FIRST_MERGE = BYTE0 + 256;

/** CLIP's split, each piece with its leading space; digits one at a time. */
const PIECE = / ?'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+/gu;

export interface TokenizerJSON {
  format: 'mode-bpe-1';
  lowercase: boolean;
  /** Merge i makes id 260 + i from the pair [a, b]. */
  merges: [number, number][];
}

export interface TrainOptions {
  /** Total ids, specials and the 256 bytes included (so at least 260). */
  vocabSize?: number;
  lowercase?: boolean;
  /** Stop merging when the best pair occurs fewer times than this. */
  minFrequency?: number;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Max-heap of (count, pair key) with lazy deletion; ties go to the smaller key, so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private better(i: number, j: number): boolean {
    return this.counts[i]! > this.counts[j]! || (this.counts[i] === this.counts[j] && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (this.counts.length) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.better(l, m)) m = l;
        if (r < this.counts.length && this.better(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const SHIFT = 2 ** 20;
const pairKey = (a: number, b: number) => a * SHIFT + b;

export class Tokenizer {
  readonly kind = 'mode';
  readonly pad = SPECIAL.pad;
  readonly sot = SPECIAL.sot;
  readonly eot = SPECIAL.eot;
  readonly mask = SPECIAL.mask;
  readonly vocabSize: number;
  private readonly ranks = new Map<number, number>();
  /** Bytes of each id (specials: empty). */
  private readonly bytes: Uint8Array[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(
    readonly merges: readonly (readonly [number, number])[],
    readonly lowercase = true,
  ) {
    for (let i = 0; i < BYTE0; i++) this.bytes.push(new Uint8Array(0));
    for (let b = 0; b < 256; b++) this.bytes.push(Uint8Array.of(b));
    merges.forEach(([a, b], i) => {
      const id = FIRST_MERGE + i;
      if (a >= id || b >= id || a < BYTE0 || b < BYTE0) throw new Error(`tokenizer: merge ${i} [${a}, ${b}] refers to an id that does not exist yet`);
      this.ranks.set(pairKey(a, b), i);
      const x = this.bytes[a]!;
      const y = this.bytes[b]!;
      const xy = new Uint8Array(x.length + y.length);
      xy.set(x);
      xy.set(y, x.length);
      this.bytes.push(xy);
    });
    this.vocabSize = FIRST_MERGE + merges.length;
  }

  /** Trains merges on `corpus` until `vocabSize` ids exist or no pair occurs `minFrequency` times. */
  static train(corpus: Iterable<string>, options: TrainOptions = {}): Tokenizer {
    const vocabSize = options.vocabSize ?? 4096;
    const lowercase = options.lowercase ?? true;
    const minFrequency = options.minFrequency ?? 2;
    if (vocabSize < FIRST_MERGE) throw new Error(`tokenizer: vocabSize ${vocabSize} < ${FIRST_MERGE} (4 specials + 256 bytes)`);
    const base = new Tokenizer([], lowercase);
    const freq = new Map<string, number>();
    for (const text of corpus) for (const piece of base.pieces(base.normalize(text))) freq.set(piece, (freq.get(piece) ?? 0) + 1);
    const words: number[][] = [];
    const counts: number[] = [];
    for (const [piece, n] of freq) {
      words.push(Array.from(utf8.encode(piece), (b) => b + BYTE0));
      counts.push(n);
    }
    const pairCount = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    const add = (w: number, sign: 1 | -1) => {
      const ids = words[w]!;
      for (let i = 0; i + 1 < ids.length; i++) {
        const k = pairKey(ids[i]!, ids[i + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * counts[w]!);
        if (sign > 0) {
          let s = where.get(k);
          if (!s) where.set(k, (s = new Set()));
          s.add(w);
        }
      }
    };
    for (let w = 0; w < words.length; w++) add(w, 1);
    const heap = new PairHeap();
    for (const [k, c] of pairCount) heap.push(c, k);
    const merges: [number, number][] = [];
    while (FIRST_MERGE + merges.length < vocabSize && heap.size) {
      const [c, k] = heap.pop();
      if (pairCount.get(k) !== c) continue; // stale entry
      if (c < minFrequency) break;
      const a = Math.floor(k / SHIFT);
      const b = k % SHIFT;
      const id = FIRST_MERGE + merges.length;
      merges.push([a, b]);
      const touched = new Set<number>();
      for (const w of where.get(k) ?? []) {
        const ids = words[w]!;
        add(w, -1);
        const out: number[] = [];
        for (let i = 0; i < ids.length; i++) {
          if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
            out.push(id);
            i++;
          } else out.push(ids[i]!);
        }
        words[w] = out;
        add(w, 1);
        for (let i = 0; i + 1 < out.length; i++) touched.add(pairKey(out[i]!, out[i + 1]!));
        for (let i = 0; i + 1 < ids.length; i++) touched.add(pairKey(ids[i]!, ids[i + 1]!));
      }
      where.delete(k);
      pairCount.delete(k);
      for (const t of touched) {
        const n = pairCount.get(t);
        if (n === undefined) continue;
        if (n <= 0) {
          pairCount.delete(t);
          where.delete(t);
        } else heap.push(n, t);
      }
    }
    return new Tokenizer(merges, lowercase);
  }

  static fromJSON(json: TokenizerJSON): Tokenizer {
    if (json.format !== 'mode-bpe-1') throw new Error(`tokenizer: unknown format "${String(json.format)}"`);
    return new Tokenizer(json.merges, json.lowercase);
  }

  toJSON(): TokenizerJSON {
    return { format: 'mode-bpe-1', lowercase: this.lowercase, merges: this.merges.map(([a, b]) => [a, b]) };
  }

  /**
   * What identifies the vocabulary: a 64-bit checksum of its merges and casing, as 16 hex digits.
   * A model records it and refuses a tokenizer with another (ids would mean other strings).
   */
  get id(): string {
    return checksum(JSON.stringify(this.toJSON()));
  }

  /** CLIP's cleaning: NFC, whitespace runs to one space, trimmed, lower-cased (when the tokenizer is). */
  normalize(text: string): string {
    const t = text.normalize('NFC').replace(/\s+/gu, ' ').trim();
    return this.lowercase ? t.toLowerCase() : t;
  }

  private pieces(normalized: string): string[] {
    return normalized.match(PIECE) ?? [];
  }

  private encodePiece(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    let ids = Array.from(utf8.encode(piece), (b) => b + BYTE0);
    while (ids.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.ranks.get(pairKey(ids[i]!, ids[i + 1]!));
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const a = ids[best]!;
      const b = ids[best + 1]!;
      const id = FIRST_MERGE + bestRank;
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(ids[i]!);
      }
      ids = out;
    }
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }

  /** Token ids of the cleaned text, without start/end tokens. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const piece of this.pieces(this.normalize(text))) out.push(...this.encodePiece(piece));
    return out;
  }

  /** Text of the ids; special tokens are dropped. Invalid UTF-8 (a sequence cut mid-character) decodes to U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.bytes[ids[i]!];
      if (!b) throw new Error(`tokenizer: id ${ids[i]} out of range (vocabulary ${this.vocabSize})`);
      parts.push(b);
      n += b.length;
    }
    const all = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return utf8Decoder.decode(all);
  }

  /** The token's text, specials by name (for inspecting vocabularies). */
  tokenString(id: number): string {
    return id < BYTE0 ? SPECIAL_TOKENS[id]! : utf8Decoder.decode(this.bytes[id]);
  }

  /**
   * `[texts.length, contextLength]` ids: start, tokens, end, then pad (0). A caption longer than
   * the context is cut and still ends with the end token, as in OpenCLIP.
   */
  tokenize(texts: readonly string[], contextLength = 77): Int32Array {
    const out = new Int32Array(texts.length * contextLength);
    texts.forEach((t, row) => {
      const ids = this.encode(t);
      const body = ids.slice(0, contextLength - 2);
      const base = row * contextLength;
      out[base] = this.sot;
      out.set(body, base + 1);
      out[base + 1 + body.length] = this.eot;
    });
    return out;
  }
}

/** 64 bits of FNV-1a (two seeds) over `text`, as 16 hex digits: what identifies a vocabulary. */
export function checksum(text: string): string {
  const h = (seed: number) => {
    let x = seed;
    for (let i = 0; i < text.length; i++) x = Math.imul(x ^ text.charCodeAt(i), 0x01000193);
    return (x >>> 0).toString(16).padStart(8, '0');
  };
  return `${h(0x811c9dc5)}${h(0x2545f491)}`;
}

/**
 * BERT's masking for MLM (DeCLIP's text self-supervision): each real token is chosen with
 * probability `p`; a chosen token becomes the mask token 80% of the time, a random non-special
 * token 10%, and stays 10%. `labels` holds the original id where chosen and IGNORE_INDEX (−100,
 * what the autograd's crossEntropy skips) elsewhere.
 */
export function maskTokens(tokens: Int32Array, vocabSize: number, rng: Rng, p = 0.15): { input: Int32Array; labels: Int32Array } {
  const input = tokens.slice();
  const labels = new Int32Array(tokens.length).fill(IGNORE_INDEX);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t < BYTE0 || !rng.chance(p)) continue;
    labels[i] = t;
    const r = rng.next();
    if (r < 0.8) input[i] = SPECIAL.mask;
    else if (r < 0.9) input[i] = BYTE0 + rng.int(vocabSize - BYTE0);
  }
  return { input, labels };
}
