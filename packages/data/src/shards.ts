/**
 * WebDataset tar shards: each sample is the files `KEY.EXT` that sit next to each other in the
 * tar (`KEY.png`, `KEY.txt`, `KEY.json` for pairs; `KEY.png`, `KEY.cls` for classification),
 * the format OpenCLIP and MetaCLIP train from. Shards may be gzipped (`.tar.gz`).
 */
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { BadRecords, DataError, messageOf, report } from './errors.js';

/** One WebDataset sample: its key and its files by extension (`png`, `txt`, `json`, `cls`, ...). */
export interface RawSample {
  key: string;
  files: Record<string, Uint8Array>;
  /** The shard it came from, to name it in errors. */
  shard: string;
}

/** Splits a tar member name into WebDataset key and extension: the key ends at the first dot of the base name. */
export function splitName(name: string): { key: string; ext: string } {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? { key: name, ext: '' } : { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

/** Keys may not contain dots (the first dot starts the extension); anything but [A-Za-z0-9_-] becomes `_`. */
export const safeKey = (s: string): string => s.replace(/[^A-Za-z0-9_-]+/g, '_');

export interface ShardWriterOptions {
  /** File names are `${prefix}-000000.tar`. */
  prefix?: string;
  /** Samples per shard. */
  samplesPerShard?: number;
  /** gzip each shard (`.tar.gz`): worth it for tiny images, where tar's 512-byte headers dominate. */
  gzip?: boolean;
}

const EPOCH = new Date(0);

/**
 * Writes samples into numbered shards. Each shard is built in memory and written under a
 * temporary name, then renamed, so a shard on disk is always complete. Headers carry no
 * time or owner, so the same samples give the same bytes.
 */
export class ShardWriter {
  readonly shards: string[] = [];
  count = 0;
  bytes = 0;
  private pack: tar.Pack | undefined;
  private chunks: Buffer[] = [];
  private inShard = 0;
  private keys = new Set<string>();
  private readonly prefix: string;
  private readonly perShard: number;
  private readonly gzip: boolean;

  constructor(
    readonly dir: string,
    options: ShardWriterOptions = {},
  ) {
    this.prefix = options.prefix ?? 'shard';
    this.perShard = options.samplesPerShard ?? 1000;
    this.gzip = options.gzip ?? false;
    mkdirSync(dir, { recursive: true });
  }

  /** Adds one sample; strings are written as UTF-8, objects (for `json`) as JSON. */
  async write(key: string, files: Record<string, Uint8Array | string | object>): Promise<void> {
    if (!key || key.includes('.') || key.includes('/')) throw new Error(`ShardWriter: key "${key}" must be non-empty, without dots or slashes`);
    if (this.keys.has(key)) throw new Error(`ShardWriter: duplicate key "${key}"`);
    this.keys.add(key);
    if (!this.pack) this.open();
    for (const [ext, value] of Object.entries(files)) {
      const body =
        value instanceof Uint8Array
          ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
          : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
      this.pack!.entry({ name: `${key}.${ext}`, size: body.length, mtime: EPOCH, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }, body);
    }
    this.count++;
    if (++this.inShard >= this.perShard) await this.flush();
  }

  /** Writes the last shard; resolves to the shard paths. */
  async close(): Promise<string[]> {
    await this.flush();
    return this.shards;
  }

  private open(): void {
    this.pack = tar.pack();
    this.chunks = [];
    this.pack.on('data', (c: unknown) => this.chunks.push(c as Buffer));
  }

  private async flush(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    this.inShard = 0;
    const ended = new Promise<void>((resolve, reject) => {
      pack.on('end', resolve);
      pack.on('error', reject);
    });
    pack.finalize();
    await ended;
    let body: Buffer = Buffer.concat(this.chunks);
    this.chunks = [];
    if (this.gzip) body = gzipSync(body, { level: 6 });
    const path = join(this.dir, `${this.prefix}-${String(this.shards.length).padStart(6, '0')}.tar${this.gzip ? '.gz' : ''}`);
    writeFileSync(`${path}.tmp`, body);
    renameSync(`${path}.tmp`, path);
    this.shards.push(path);
    this.bytes += body.length;
  }
}

/** The shards in a folder (`*.tar`, `*.tar.gz`), sorted by name. */
export function listShards(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /\.tar(\.gz)?$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** A plain tar ends with two zero blocks; a file cut at a member boundary lacks them. */
function endsWithZeroBlocks(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 1024 || size % 512) return false;
    const tail = Buffer.alloc(1024);
    readSync(fd, tail, 0, 1024, size - 1024);
    return tail.every((b) => b === 0);
  } finally {
    closeSync(fd);
  }
}

export interface ReadOptions {
  /** `--skip-bad`: count bad records here instead of throwing. A truncated shard yields the samples before the cut. */
  bad?: BadRecords;
  /** Told the size of each chunk read from disk (the loader's bytesRead). */
  onBytes?: (n: number) => void;
}

/**
 * Reads one shard's samples in order: consecutive members with the same key form a sample.
 * A truncated or unreadable tar throws a `DataError` naming the shard and the last key read.
 */
export async function* readShard(path: string, options: ReadOptions = {}): AsyncGenerator<RawSample> {
  let gz: boolean;
  try {
    gz = isGzip(path);
  } catch (e) {
    report(new DataError(path, undefined, `cannot open shard (${messageOf(e)})`), options.bad);
    return;
  }
  const extract = tar.extract();
  const input = createReadStream(path);
  if (options.onBytes) input.on('data', (c) => options.onBytes!(c.length));
  const source = gz ? input.pipe(createGunzip()) : input;
  let streamError: unknown;
  source.on('error', (e: unknown) => {
    streamError = e;
    extract.destroy(e as Error);
  });
  input.on('error', (e: unknown) => {
    streamError = e;
    extract.destroy(e as Error);
  });
  source.pipe(extract);

  // Also when the consumer stops early: close the file.
  try {
    let current: RawSample | undefined;
    let lastKey: string | undefined;
    try {
      for await (const entry of extract) {
        const parts: Buffer[] = [];
        for await (const c of entry as AsyncIterable<Buffer>) parts.push(c);
        if (entry.header.type !== 'file') continue;
        const { key, ext } = splitName(entry.header.name);
        if (current && current.key !== key) {
          yield current;
          current = undefined;
        }
        current ??= { key, files: {}, shard: path };
        current.files[ext] = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        lastKey = key;
      }
    } catch (e) {
      // The sample being read when the data ran out is incomplete: it is dropped.
      const reason = messageOf(streamError ?? e);
      const truncated = /unexpected end|end of file|premature|incorrect header check|invalid/i.test(reason);
      report(
        new DataError(
          path,
          lastKey === undefined ? 'first member' : `${lastKey}`,
          truncated ? `truncated or corrupt tar (${reason}); the shard ends inside or after this record` : `unreadable tar (${reason})`,
        ),
        options.bad,
      );
      return;
    }
    if (!gz && !endsWithZeroBlocks(path)) {
      report(
        new DataError(path, lastKey ?? 'first member', 'truncated tar: no end-of-archive blocks after this record (the file was cut at a member boundary)'),
        options.bad,
      );
      // Every member read was whole, but the last sample may be missing files: drop it.
      return;
    }
    if (current) yield current;
  } finally {
    input.destroy();
    extract.destroy();
  }
}

/** Reads several shards one after another. */
export async function* readShards(paths: readonly string[], options: ReadOptions = {}): AsyncGenerator<RawSample> {
  for (const p of paths) yield* readShard(p, options);
}
