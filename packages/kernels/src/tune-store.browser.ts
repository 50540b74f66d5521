/**
 * tune-store.ts for a browser page: the autotuner's choices in localStorage (per origin), and a
 * checksum without node:crypto (two 32-bit FNV-1a lanes: a cache key, not a security measure).
 */
import type { TuneStore } from './tune-store.js';
export type { TuneStore } from './tune-store.js';

const KEY = 'mode-autotune';

export const tuneCachePath = (): string => `localStorage["${KEY}"]`;

export function tuneStore(where = tuneCachePath()): TuneStore {
  const storage = (globalThis as { localStorage?: { getItem(k: string): string | null; setItem(k: string, v: string): void } }).localStorage;
  let memory: string | null = null; // where localStorage is off (private windows, file://)
  return {
    where,
    read: () => {
      try {
        return storage ? storage.getItem(KEY) : memory;
      } catch {
        return memory;
      }
    },
    write: (text) => {
      memory = text;
      try {
        storage?.setItem(KEY, text);
      } catch {
        /* full or disabled: this page's choices stay in memory */
      }
    },
  };
}

export function checksumOf(parts: readonly string[]): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (const p of parts)
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
    }
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, '0');
  return hex(a) + hex(b);
}
