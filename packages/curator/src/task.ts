import { createReadStream, createWriteStream, renameSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createGunzip, createGzip } from 'node:zlib';
import type { Readable, Writable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Header, type Pack } from 'tar-stream';
import type { Automaton } from './automaton.js';
import { keepPair, keepProbability } from './balance.js';
import type { Shard, Task } from './inputs.js';
import { hashString } from './random.js';

/**
 * One task (a shard or a byte range of one) in one pass: `count` matches every text and counts
 * entries; `sample` matches again, decides each pair and writes the kept ones. Runs the same in a
 * worker thread or in the main thread.
 */

export interface ReadOptions {
  /** JSONL / WebDataset .json field holding the caption; default: `caption`, else `text`. */
  textField?: string;
  /** TSV: 0-based column of the caption (resolved from the header by the caller when named). */
  tsvColumn?: number;
  /** TSV: the first line is a header (copied to the output). */
  tsvHeader?: boolean;
}

export interface SampleOptions {
  /** Per-entry probabilities p_e. */
  probs: Float64Array;
  seed: number;
  /** Write every matched pair with its probability instead of sampling. */
  online: boolean;
  /** Where to write this task's output (renamed from `${outPath}.tmp` when complete). */
  outPath: string;
}

export interface Malformed {
  /** 1-based line within the task's range (JSONL/TSV) or sample number (tar); the caller makes it file-relative. */
  line: number;
  message: string;
}

export interface TaskResult {
  taskId: string;
  texts: number;
  matched: number;
  /** Kept pairs (sample pass; the sum of probabilities in the online variant). */
  kept: number;
  /** Lines (or tar samples) that started in the task's range, blank and malformed included. */
  lines: number;
  malformedCount: number;
  /** The first `MAX_MALFORMED` malformed lines. */
  malformed: Malformed[];
  /** Per-entry counts: matches (count pass) or kept matches (sample pass). */
  counts: Float64Array;
}

export type ProgressFn = (texts: number, bytes: number) => void;

const MAX_MALFORMED = 1000;
const TEXT_EXTS = new Set(['txt', 'text', 'caption']);

/** Inserts `"metaclip_p": p` into a JSON object line. */
function withProbJson(line: string, p: number): string {
  const end = line.lastIndexOf('}');
  const inner = line.slice(0, end).trimEnd();
  return `${inner}${inner.endsWith('{') ? '' : ','}"metaclip_p":${p}}`;
}

function captionOf(obj: unknown, field: string | undefined): string | null {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return null;
  const o = obj as Record<string, unknown>;
  const v = field !== undefined ? o[field] : typeof o.caption === 'string' ? o.caption : o.text;
  return typeof v === 'string' ? v : null;
}

class Output {
  private readonly file: WriteStream;
  private readonly sink: Writable;
  constructor(
    readonly path: string,
    gzip: boolean,
  ) {
    this.file = createWriteStream(`${path}.tmp`);
    if (gzip) {
      const z = createGzip({ level: 4 });
      z.pipe(this.file);
      this.sink = z;
    } else this.sink = this.file;
  }
  private piped = false;
  /** Pipes `from` into the output; `close` then waits for it to end. */
  pipeFrom(from: { pipe(to: Writable): unknown }): void {
    this.piped = true;
    from.pipe(this.sink);
  }
  async write(chunk: Buffer | string): Promise<void> {
    if (!this.sink.write(chunk)) await once(this.sink, 'drain');
  }
  async close(): Promise<void> {
    const done = once(this.file, 'close');
    if (!this.piped) this.sink.end();
    await done;
    renameSync(`${this.path}.tmp`, this.path);
  }
}

/** Runs one task of one pass. `sample` absent: the count pass. */
export async function runTask(
  automaton: Automaton,
  shard: Shard,
  task: Task,
  read: ReadOptions,
  sample: SampleOptions | null,
  progress?: ProgressFn,
): Promise<TaskResult> {
  const result: TaskResult = {
    taskId: task.id,
    texts: 0,
    matched: 0,
    kept: 0,
    lines: 0,
    malformedCount: 0,
    malformed: [],
    counts: new Float64Array(automaton.entries),
  };
  const ids = new Int32Array(Math.max(16, automaton.entries));
  const out = sample ? new Output(sample.outPath, shard.gzip) : null;
  let lastTick = performance.now();
  let pendingTexts = 0;
  let pendingBytes = 0;
  const tick = (force = false) => {
    if (!progress) return;
    const now = performance.now();
    if (force || now - lastTick > 100) {
      progress(pendingTexts, pendingBytes);
      pendingTexts = pendingBytes = 0;
      lastTick = now;
    }
  };
  const bad = (line: number, message: string) => {
    result.malformedCount++;
    if (result.malformed.length < MAX_MALFORMED) result.malformed.push({ line, message });
  };

  /** Matches `text` (its number of matched entries is left in `ctx.n`); in the sample pass returns the pair's keep probability. */
  const ctx: Ctx = { n: 0, visit: () => 0, credit: () => {}, bad, consumed: () => {} };
  ctx.visit = (text: string): number => {
    const n = (ctx.n = automaton.match(text, ids));
    result.texts++;
    pendingTexts++;
    if (n > 0) result.matched++;
    if (!sample) {
      for (let i = 0; i < n; i++) result.counts[ids[i]!]!++;
      return 0;
    }
    return keepProbability(ids, n, sample.probs);
  };
  ctx.credit = (n: number, w: number) => {
    result.kept += w;
    for (let i = 0; i < n; i++) result.counts[ids[i]!]! += w;
  };

  const raw = createReadStream(shard.path, { start: shard.format === 'tar' || task.start === 0 ? 0 : task.start - 1, highWaterMark: 1 << 20 });
  // Progress in input bytes: compressed bytes as read for gzip and tar (whole-file tasks), else the
  // bytes of the lines of this task's range (a range task reads a little past its end).
  const countRaw = shard.gzip || shard.format === 'tar';
  if (countRaw)
    raw.on('data', (c) => {
      pendingBytes += c.length;
    });
  ctx.consumed = (n: number) => {
    if (!countRaw) pendingBytes += n;
  };
  const source: Readable = shard.gzip ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (e) => source.destroy(e));

  try {
    if (shard.format === 'tar') await readTar(shard, source, read, sample, ctx, out, result, tick);
    else await readLines(shard, task, source, read, sample, ctx, out, result, tick);
  } finally {
    raw.destroy();
  }
  if (out) await out.close();
  tick(true);
  return result;
}

interface Ctx {
  /** Matched entries of the last `visit`. */
  n: number;
  visit(text: string): number;
  credit(n: number, w: number): void;
  bad(line: number, message: string): void;
  /** Input bytes of the task processed (plain line formats). */
  consumed(n: number): void;
}

async function readLines(
  shard: Shard,
  task: Task,
  source: Readable,
  read: ReadOptions,
  sample: SampleOptions | null,
  ctx: Ctx,
  out: Output | null,
  result: TaskResult,
  tick: (force?: boolean) => void,
): Promise<void> {
  const jsonl = shard.format === 'jsonl';
  const column = read.tsvColumn ?? 0;
  // Reading from start-1: the byte before the range tells whether a line begins at `start`.
  let base = task.start === 0 ? 0 : task.start - 1;
  let skipPartial = task.start !== 0;
  let carry: Buffer[] = []; // the unfinished last line, possibly over many chunks
  let done = false;
  const kept: (Buffer | string)[] = [];
  const nl = Buffer.from('\n');

  const line = (buf: Buffer, s: number, e: number, lineStart: number) => {
    result.lines++;
    ctx.consumed(e - s + 1);
    const lineNo = result.lines;
    let end = e;
    if (end > s && buf[end - 1] === 13) end--; // CRLF
    if (task.start === 0 && lineNo === 1 && !jsonl && read.tsvHeader) {
      if (out) kept.push(sample?.online ? `${buf.toString('utf8', s, end)}\tmetaclip_p` : buf.subarray(s, e), nl);
      return;
    }
    let str = buf.toString('utf8', s, end);
    if (lineStart === 0 && str.charCodeAt(0) === 0xfeff) str = str.slice(1); // byte-order mark
    if (str.trim() === '') return;
    let text: string | null;
    if (jsonl) {
      let obj: unknown;
      try {
        obj = JSON.parse(str);
      } catch (err) {
        ctx.bad(lineNo, `invalid JSON: ${(err as Error).message}`);
        return;
      }
      text = captionOf(obj, read.textField);
      if (text === null) {
        ctx.bad(lineNo, read.textField ? `no string field "${read.textField}"` : 'no string field "caption" or "text"');
        return;
      }
    } else {
      const cols = str.split('\t');
      text = cols[column] ?? null;
      if (text === null) {
        ctx.bad(lineNo, `${cols.length} column(s), caption column is ${column + 1}`);
        return;
      }
    }
    const p = ctx.visit(text);
    if (!sample || p <= 0) return;
    const n = ctx.n;
    if (sample.online) {
      kept.push(jsonl ? withProbJson(str, p) : `${str}\t${p}`, nl);
      ctx.credit(n, p);
    } else if (keepPair(p, sample.seed, shard.hash, lineStart)) {
      kept.push(buf.subarray(s, e), nl);
      ctx.credit(n, 1);
    }
  };
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (done) break;
    if (carry.length > 0 && chunk.indexOf(10) < 0) {
      carry.push(chunk); // a long line: join its pieces once its end arrives
      continue;
    }
    let buf: Buffer = carry.length > 0 ? Buffer.concat([...carry, chunk]) : chunk;
    carry = [];
    let pos = 0;
    if (skipPartial) {
      const i = buf.indexOf(10);
      if (i < 0) {
        base += buf.length;
        continue;
      }
      pos = i + 1;
      skipPartial = false;
    }
    for (;;) {
      const i = buf.indexOf(10, pos);
      if (i < 0) break;
      const lineStart = base + pos;
      if (lineStart >= task.end) {
        done = true;
        break;
      }
      line(buf, pos, i, lineStart);
      pos = i + 1;
    }
    if (!done) {
      base += pos;
      if (pos < buf.length) carry = [Buffer.from(buf.subarray(pos))];
    }
    if (out && kept.length) {
      const chunkOut = kept.map((k) => (typeof k === 'string' ? Buffer.from(k) : k));
      kept.length = 0;
      await out.write(Buffer.concat(chunkOut));
    }
    tick();
    buf = Buffer.alloc(0);
  }
  if (!done && carry.length > 0 && base < task.end) {
    const last = Buffer.concat(carry);
    line(last, 0, last.length, base);
    if (out && kept.length) await out.write(Buffer.concat(kept.map((k) => (typeof k === 'string' ? Buffer.from(k) : k))));
  }
}

async function readTar(
  shard: Shard,
  source: Readable,
  read: ReadOptions,
  sample: SampleOptions | null,
  ctx: Ctx,
  out: Output | null,
  result: TaskResult,
  tick: (force?: boolean) => void,
): Promise<void> {
  const extract = tarExtract();
  extract.on('error', () => {}); // surfaces through the iterator below; trailing writes after the end-of-archive are harmless
  source.on('error', (e) => extract.destroy(e));
  source.pipe(extract);
  const pack = out ? tarPack() : null;
  if (pack && out) out.pipeFrom(pack);

  interface Member {
    header: Header;
    data: Buffer | null;
    ext: string;
  }
  let key: string | null = null;
  let members: Member[] = [];

  const flush = async () => {
    if (key === null) return;
    result.lines++;
    const sampleNo = result.lines;
    let text: string | null = null;
    const txt = members.find((m) => TEXT_EXTS.has(m.ext) && m.data);
    if (txt) text = txt.data!.toString('utf8');
    else {
      const js = members.find((m) => m.ext === 'json' && m.data);
      if (js) {
        try {
          text = captionOf(JSON.parse(js.data!.toString('utf8')), read.textField);
        } catch {
          text = null;
        }
      }
    }
    if (text === null) {
      ctx.bad(sampleNo, `sample "${key}" has no caption (.txt, .text, .caption, or .json with a caption field)`);
    } else {
      const p = ctx.visit(text);
      const n = ctx.n;
      if (sample && pack && p > 0) {
        const keep = sample.online || keepPair(p, sample.seed, shard.hash, hashString(key));
        if (keep) {
          for (const m of members) await entry(pack, m.header, m.data ?? Buffer.alloc(0));
          if (sample.online) {
            const data = Buffer.from(String(p));
            await entry(pack, { name: `${key}.metaclip_p.txt`, size: data.length, mode: 0o644, mtime: members[0]!.header.mtime ?? new Date(0) }, data);
          }
          ctx.credit(n, sample.online ? p : 1);
        }
      }
    }
    members = [];
    key = null;
    tick();
  };

  try {
    for await (const e of extract) {
      const h = e.header;
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        e.resume();
        continue;
      }
      const slash = h.name.lastIndexOf('/');
      const dot = h.name.indexOf('.', slash + 1);
      const k = dot < 0 ? h.name : h.name.slice(0, dot);
      const ext = dot < 0 ? '' : h.name.slice(dot + 1).toLowerCase();
      if (k !== key) {
        await flush();
        key = k;
      }
      const needData = sample !== null || TEXT_EXTS.has(ext) || ext === 'json';
      let data: Buffer | null = null;
      if (needData) {
        const chunks: Buffer[] = [];
        for await (const c of e as AsyncIterable<Buffer>) chunks.push(c);
        data = Buffer.concat(chunks);
      } else e.resume();
      members.push({ header: h, data, ext });
    }
    await flush();
  } catch (err) {
    ctx.bad(result.lines + 1, `tar: ${(err as Error).message}`);
  }
  source.unpipe(extract);
  if (pack) pack.finalize();
}

function entry(pack: Pack, header: Partial<Header> & { name: string }, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ ...header, size: data.length }, data, (err) => (err ? reject(err) : resolve()));
  });
}
