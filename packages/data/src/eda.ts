/**
 * EDA caption augmentation (Wei & Zou 2019) as DeCLIP uses it: one of synonym replacement,
 * random swap or random deletion, chosen uniformly, with α = p = 0.1. Words are whitespace
 * tokens; punctuation around a word stays where it is when the word is replaced.
 */
import type { Rng } from './rng.js';
import type { SynonymTable } from './wordnet.js';

export type EdaOp = 'synonym' | 'swap' | 'delete';
export const EDA_OPS: readonly EdaOp[] = ['synonym', 'swap', 'delete'];

export interface EdaOptions {
  synonyms: SynonymTable;
  /** Fraction of words changed (synonym, swap) or each word's deletion probability. */
  p?: number;
  /** Which operation; default one chosen uniformly per call. */
  op?: EdaOp;
}

const split = (w: string) => /^(\P{L}*)(\p{L}[\p{L}'-]*\p{L}|\p{L})?(.*)$/su.exec(w)!;

/** Replaces n = max(1, ⌊p·words⌋) distinct words that have synonyms. */
export function synonymReplacement(words: string[], rng: Rng, synonyms: SynonymTable, p: number): string[] {
  const out = words.slice();
  const n = Math.max(1, Math.floor(p * words.length));
  const candidates = rng.shuffle(words.map((_, i) => i).filter((i) => synonyms[(split(words[i]!)[2] ?? '').toLowerCase()]));
  for (const i of candidates.slice(0, n)) {
    const [, pre, core, post] = split(words[i]!);
    out[i] = `${pre}${rng.pick(synonyms[core!.toLowerCase()]!)}${post}`;
  }
  return out;
}

/** Swaps two random words, n = max(1, ⌊p·words⌋) times. */
export function randomSwap(words: string[], rng: Rng, p: number): string[] {
  const out = words.slice();
  if (out.length < 2) return out;
  const n = Math.max(1, Math.floor(p * words.length));
  for (let k = 0; k < n; k++) {
    const i = rng.int(out.length);
    let j = rng.int(out.length - 1);
    if (j >= i) j++;
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Deletes each word with probability p; keeps one random word if all would go. */
export function randomDeletion(words: string[], rng: Rng, p: number): string[] {
  if (words.length <= 1) return words.slice();
  const out = words.filter(() => !rng.chance(p));
  return out.length ? out : [rng.pick(words)];
}

/** One EDA edit of `text`. */
export function eda(text: string, rng: Rng, options: EdaOptions): string {
  const p = options.p ?? 0.1;
  const words = text.split(/\s+/).filter(Boolean);
  const op = options.op ?? rng.pick(EDA_OPS);
  const out =
    op === 'synonym' ? synonymReplacement(words, rng, options.synonyms, p) : op === 'swap' ? randomSwap(words, rng, p) : randomDeletion(words, rng, p);
  return out.join(' ');
}
