/**
 * Where the autotuner keeps its choices, in Node: a JSON file ($MODE_TUNE_CACHE, else
 * ~/.cache/mode/autotune.json), written atomically. A browser bundle swaps this file for
 * tune-store.browser.ts (localStorage) through the package's "browser" field.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface TuneStore {
  /** The file (or storage key) the choices live in, as messages name it. */
  readonly where: string;
  /** The cache's text, or null when there is none yet. */
  read(): string | null;
  write(text: string): void;
}

export const tuneCachePath = (): string => process.env.MODE_TUNE_CACHE ?? join(homedir(), '.cache', 'mode', 'autotune.json');

export function tuneStore(path = tuneCachePath()): TuneStore {
  return {
    where: path,
    read() {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return null; // no cache yet
      }
    },
    write(text) {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, path);
    },
  };
}

/** A short checksum of some texts (sha256, 16 hex digits). */
export function checksumOf(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}
