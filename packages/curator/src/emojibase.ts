import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cacheDir } from './metadata.js';

/**
 * A small real caption pool shipped with npm: the emoji of `emojibase-data` (`en/data.json`),
 * each emoji and each skin-tone variant one pair, its caption the label and the tags
 * (`"grinning face, face, grin"`), its "image" the emoji itself.
 */

interface Emoji {
  label: string;
  hexcode: string;
  emoji: string;
  tags?: string[];
  skins?: Emoji[];
}

export interface PoolPair {
  key: string;
  caption: string;
  emoji: string;
}

export function emojibasePairs(): PoolPair[] {
  const data = createRequire(import.meta.url)('emojibase-data/en/data.json') as Emoji[];
  const out: PoolPair[] = [];
  const add = (e: Emoji, tags: string[] | undefined) => {
    const t = (tags ?? []).filter((x) => x !== e.label);
    out.push({ key: e.hexcode, caption: t.length ? `${e.label}, ${t.join(', ')}` : e.label, emoji: e.emoji });
  };
  for (const e of data) {
    add(e, e.tags);
    for (const s of e.skins ?? []) add(s, e.tags);
  }
  return out;
}

/** Writes the emojibase pool as JSONL (`{"key","caption","emoji"}` per line) and returns its path. */
export function writeEmojibasePool(path = join(cacheDir(), 'pool-emojibase.jsonl')): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    `${path}.tmp`,
    emojibasePairs()
      .map((p) => JSON.stringify(p))
      .join('\n') + '\n',
  );
  renameSync(`${path}.tmp`, path);
  return path;
}
