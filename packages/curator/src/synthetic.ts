import { rng } from './random.js';

/**
 * Deterministic synthetic metadata and captions, for tests and the benchmark: a Zipf-like
 * vocabulary of made-up words, entries that are words and word pairs, and captions drawn from the
 * same vocabulary with punctuation, so that the matcher sees realistic hit rates.
 */

const SYLLABLES =
  'ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu za ze zi zo zu'.split(
    ' ',
  );

/** `n` distinct made-up lower-case words (2–4 syllables), in a fixed order. */
export function syntheticWords(n: number, seed = 1): string[] {
  const r = rng(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < n) {
    const k = 2 + Math.floor(r() * 3);
    let w = '';
    for (let i = 0; i < k; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    if (r() < 0.1) w += 's';
    if (!seen.has(w)) {
      seen.add(w);
      out.push(w);
    }
  }
  return out;
}

/** `n` metadata entries: the first `words` vocabulary words, then word pairs up to `n`. */
export function syntheticEntries(n: number, vocab: readonly string[], seed = 2): string[] {
  const r = rng(seed);
  const words = Math.min(vocab.length, Math.ceil(n * 0.4));
  const out = vocab.slice(0, words);
  const seen = new Set(out);
  while (out.length < n) {
    const a = vocab[zipf(r, words)]!;
    const b = vocab[zipf(r, words)]!;
    const e = `${a} ${b}`;
    if (!seen.has(e)) {
      seen.add(e);
      out.push(e);
    }
  }
  return out;
}

/** An index in [0, n) with probability roughly ∝ 1/(i+1). */
function zipf(r: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(Math.exp(r() * Math.log(n + 1)) - 1));
}

const PUNCT = [',', '.', '!', '?', ';', ':', ' -', "'s", ''];

/** Caption generator: 4–14 words from `vocab` (Zipf), some capitalised or punctuated. */
export function syntheticCaptions(vocab: readonly string[], seed = 3): () => string {
  const r = rng(seed);
  return () => {
    const k = 4 + Math.floor(r() * 11);
    let s = '';
    for (let i = 0; i < k; i++) {
      let w = vocab[zipf(r, vocab.length)]!;
      const x = r();
      if (x < 0.05) w = w[0]!.toUpperCase() + w.slice(1);
      else if (x < 0.2) w += PUNCT[Math.floor(r() * PUNCT.length)];
      s += i === 0 ? w : ` ${w}`;
    }
    return s;
  };
}
