/**
 * Shard indexes (`mode data index`): per plain `.tar` shard, each sample's key, byte range and
 * small text members (caption, metadata, label), written once into the cache. With an index the
 * loader decides which samples it admits and shuffles them without reading the shard, and reads
 * a sample by seeking to its bytes: a run resumed mid-epoch reads only what it still needs,
 * instead of re-reading every shard up to where it stopped. The order is the same with or
 * without an index, so a resume stays bit-identical either way.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { BadRecords, DataError, type BadRecord } from './errors.js';
import { tarHeader, tarMembers } from './patterns.js';
import { readShard, splitName, type RawSample } from './shards.js';

export const INDEX_FORMAT = 'mode-shard-index-1';

/** Members at most this big are kept in the index (captions, JSON metadata, labels); larger ones by size only. */
const TEXT_LIMIT = 16 * 1024;

export interface IndexedSample {
  key: string;
  /** Byte offset of the sample's first member header, and the end of its last member's data. */
  offset: number;
  end: number;
  /** Every member: its bytes base64 when small (text), else its size. */
  members: Record<string, string | number>;
}

export interface ShardIndex {
  format: typeof INDEX_FORMAT;
  shard: string;
  size: number;
  mtimeMs: number;
  samples: IndexedSample[];
  /** A shard cut short: the error reading it gave, after its last whole sample. */
  truncated?: BadRecord;
}

/** Where indexes live: `$MODE_INDEX_DIR`, else `~/.cache/mode/index`. */
export const defaultIndexDir = (): string => process.env.MODE_INDEX_DIR ?? join(homedir(), '.cache', 'mode', 'index');

const indexFile = (dir: string, shard: string) => join(dir, `${createHash('sha1').update(resolve(shard)).digest('hex')}.json`);

/**
 * Indexes one plain tar shard: its samples as `readShard` reads them, with the byte ranges from the
 * tar headers. A gzipped shard, or one whose names come from pax or GNU long-name headers, cannot
 * be seeked into: an error says so (such shards stream).
 */
export async function indexShard(shard: string): Promise<ShardIndex> {
  const st = statSync(shard);
  const head = Buffer.alloc(2);
  const fd = openSync(shard, 'r');
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b)
    throw new DataError(shard, undefined, 'gzipped: a .tar.gz cannot be seeked into, so it is not indexed (it streams)');
  // Sample byte ranges from the headers.
  const ranges: { key: string; offset: number; end: number }[] = [];
  for (const m of tarMembers(shard)) {
    const { key } = splitName(m.name);
    const last = ranges.at(-1);
    const end = m.offset + 512 + Math.ceil(m.size / 512) * 512;
    if (last && last.key === key) last.end = end;
    else ranges.push({ key, offset: m.offset, end });
  }
  const bad = new BadRecords();
  const samples: IndexedSample[] = [];
  let i = 0;
  for await (const raw of readShard(shard, { bad })) {
    const r = ranges[i++];
    if (!r || r.key !== raw.key)
      throw new DataError(shard, raw.key, 'its member names do not match its tar headers (pax or long names): not indexed (it streams)');
    const members: Record<string, string | number> = {};
    for (const [ext, bytes] of Object.entries(raw.files)) members[ext] = bytes.length <= TEXT_LIMIT ? Buffer.from(bytes).toString('base64') : bytes.length;
    samples.push({ ...r, members });
  }
  return {
    format: INDEX_FORMAT,
    shard: resolve(shard),
    size: st.size,
    mtimeMs: st.mtimeMs,
    samples,
    ...(bad.examples[0] ? { truncated: bad.examples[0] } : {}),
  };
}

/** Writes a shard's index into `dir` (atomically). */
export function writeIndex(index: ShardIndex, dir = defaultIndexDir()): string {
  mkdirSync(dir, { recursive: true });
  const path = indexFile(dir, index.shard);
  writeFileSync(`${path}.${process.pid}.tmp`, JSON.stringify(index));
  renameSync(`${path}.${process.pid}.tmp`, path);
  return path;
}

/** A shard's index if one was written and the shard has not changed since (size and mtime); else undefined. */
export function readIndex(shard: string, dir = defaultIndexDir()): ShardIndex | undefined {
  const path = indexFile(dir, shard);
  if (!existsSync(path)) return undefined;
  try {
    const index = JSON.parse(readFileSync(path, 'utf8')) as ShardIndex;
    const st = statSync(shard);
    return index.format === INDEX_FORMAT && index.size === st.size && index.mtimeMs === st.mtimeMs ? index : undefined;
  } catch {
    return undefined; // a corrupt index is as good as none: the shard streams
  }
}

/** What the index knows of a sample without reading the shard: its text members, its image members as empty placeholders. */
export function indexedSample(shard: string, s: IndexedSample): RawSample {
  const files: Record<string, Uint8Array> = {};
  for (const [ext, v] of Object.entries(s.members)) files[ext] = typeof v === 'string' ? Buffer.from(v, 'base64') : new Uint8Array(0);
  return { key: s.key, files, shard };
}

/** Reads one sample by seeking to its bytes; `onBytes` counts what was read. */
export function readIndexedSample(shard: string, s: IndexedSample, onBytes?: (n: number) => void): RawSample {
  const buf = Buffer.alloc(s.end - s.offset);
  const fd = openSync(shard, 'r');
  try {
    const n = readSync(fd, buf, 0, buf.length, s.offset);
    onBytes?.(n);
    if (n < buf.length) throw new DataError(shard, s.key, 'shorter than its index says: the shard changed. Fix: mode data index it again');
  } finally {
    closeSync(fd);
  }
  const files: Record<string, Uint8Array> = {};
  for (let at = 0; at + 512 <= buf.length;) {
    const { name, size } = tarHeader(buf.subarray(at, at + 512));
    const { key, ext } = splitName(name);
    if (key !== s.key)
      throw new DataError(shard, s.key, `found member ${key}.${ext} where the index says ${s.key}: the shard changed. Fix: mode data index it again`);
    files[ext] = buf.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return { key: s.key, files, shard };
}
