/** Typed views of raw WebDataset samples: image-text pairs and labelled images. */
import { imageMember } from './decode.js';
import { DataError } from './errors.js';
import type { RawSample } from './shards.js';

/** An image-text pair as stored: the image file's bytes (any format `decodeImage` reads), caption, optional metadata. */
export interface PairRecord {
  key: string;
  /** Shard (or manifest) the record came from. */
  source: string;
  image: Uint8Array;
  text: string;
  json?: unknown;
}

/** A labelled image of a classification set. */
export interface ClassRecord {
  key: string;
  source: string;
  image: Uint8Array;
  label: number;
}

/** Offset of the first byte that breaks UTF-8 (overlongs, surrogates and > U+10FFFF included), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [n, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly; invalid bytes throw a `DataError` naming the file, the record and the byte offset. */
export function decodeUtf8(bytes: Uint8Array, file: string, record: string | number, member: string): string {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) throw new DataError(file, record, `${member} is not valid UTF-8 (byte ${bad}: 0x${bytes[bad]!.toString(16).padStart(2, '0')})`);
  return utf8.decode(bytes);
}

/** The members a sample has, for messages. */
const membersOf = (files: Record<string, Uint8Array>) => Object.keys(files).join(', ') || 'none';

/** The sample's image: its first member among `jpg jpeg png webp` (any case; then avif, tif, tiff, gif). */
function imageOf(raw: RawSample): Uint8Array {
  const m = imageMember(raw.files);
  if (!m) throw new DataError(raw.shard, raw.key, `missing image (no ${raw.key}.jpg, .jpeg, .png or .webp; members: ${membersOf(raw.files)})`);
  return m.bytes;
}

/**
 * A pair needs an image member and a caption: `.txt` (UTF-8, not blank), else the `caption` field of
 * `.json` (img2dataset writes both). `.json` is optional.
 */
export function toPair(raw: RawSample): PairRecord {
  const { key, files, shard } = raw;
  const image = imageOf(raw);
  let json: unknown;
  if (files.json) {
    try {
      json = JSON.parse(decodeUtf8(files.json, shard, key, `${key}.json`));
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(shard, key, `${key}.json is not valid JSON (${(e as Error).message})`);
    }
  }
  const fromJson = (json as { caption?: unknown } | undefined)?.caption;
  let text: string;
  if (files.txt) text = decodeUtf8(files.txt, shard, key, `${key}.txt`);
  else if (typeof fromJson === 'string') text = fromJson;
  else throw new DataError(shard, key, `missing caption (no ${key}.txt, and no "caption" in ${key}.json; members: ${membersOf(files)})`);
  if (!text.trim()) throw new DataError(shard, key, `missing caption (${files.txt ? `${key}.txt` : `the caption of ${key}.json`} is empty)`);
  const record: PairRecord = { key, source: shard, image, text };
  if (json !== undefined) record.json = json;
  return record;
}

/** A labelled image needs an image member and `.cls` (a non-negative integer as text). */
export function toClass(raw: RawSample, numClasses?: number): ClassRecord {
  const { key, files, shard } = raw;
  const image = imageOf(raw);
  if (!files.cls) throw new DataError(shard, key, `missing label (no ${key}.cls)`, { kind: 'invalid label' });
  const text = decodeUtf8(files.cls, shard, key, `${key}.cls`).trim();
  const label = Number(text);
  if (!/^\d+$/.test(text) || (numClasses !== undefined && label >= numClasses))
    throw new DataError(shard, key, `${key}.cls is "${text}", not a class index${numClasses === undefined ? '' : ` in 0..${numClasses - 1}`}`);
  return { key, source: shard, image, label };
}

/** Whether a sample is labelled (`.cls`) rather than captioned: what makes a set of shards a classification set. */
export const isLabelled = (raw: RawSample): boolean => !!raw.files.cls && !raw.files.txt;
