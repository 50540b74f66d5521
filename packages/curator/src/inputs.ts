import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { hashString } from './random.js';

/** The pool's shard formats. */
export type Format = 'jsonl' | 'tsv' | 'tar';

/** One input file of the pool. */
export interface Shard {
  path: string;
  /** Output file name under `curated/` (the input's base name; prefixed by its index if two inputs share one). */
  name: string;
  format: Format;
  gzip: boolean;
  size: number;
  mtimeMs: number;
  /** `hashString(base name)`: the shard's part of every pair's sampling key. */
  hash: number;
}

export const userError = (message: string): Error => Object.assign(new Error(message), { userFacing: true });

/** `*`, `?` and `**` (any depth) to a RegExp over a path's components joined by `/`. */
function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string, out: string[]): void {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) walk(p, out);
    else if (d.isFile()) out.push(p);
  }
}

/** Files named by `patterns`: paths, directories (every pool file under them) or globs (`*`, `?`, `**`), sorted, de-duplicated. */
export function expandPool(patterns: readonly string[]): string[] {
  const files = new Set<string>();
  for (const pattern of patterns) {
    if (!/[*?]/.test(pattern)) {
      const p = resolve(pattern);
      if (!existsSync(p)) throw userError(`pool: ${pattern} does not exist`);
      if (statSync(p).isDirectory()) {
        const all: string[] = [];
        walk(p, all);
        for (const f of all) if (detectFormat(f)) files.add(f);
      } else files.add(p);
      continue;
    }
    const abs = resolve(pattern).split(sep).join('/');
    const fixed = abs.slice(0, abs.search(/[*?]/));
    const root = fixed.endsWith('/') ? fixed.slice(0, -1) || '/' : dirname(fixed);
    const re = globRegExp(abs);
    const all: string[] = [];
    if (existsSync(root)) walk(root, all);
    const hits = all.filter((f) => re.test(f.split(sep).join('/')));
    if (hits.length === 0) throw userError(`pool: no file matches ${pattern}`);
    for (const f of hits) files.add(f);
  }
  return [...files].sort();
}

/** Format from the file name (`.jsonl`/`.ndjson`/`.json`, `.tsv`, `.tar`/`.tgz`, each optionally `.gz`). */
export function detectFormat(path: string): { format: Format; gzipName: boolean } | null {
  let name = basename(path).toLowerCase();
  let gzipName = false;
  if (name.endsWith('.tgz')) return { format: 'tar', gzipName: true };
  if (name.endsWith('.gz')) {
    gzipName = true;
    name = name.slice(0, -3);
  }
  if (/\.(jsonl|ndjson|json)$/.test(name)) return { format: 'jsonl', gzipName };
  if (/\.tsv$/.test(name)) return { format: 'tsv', gzipName };
  if (/\.tar$/.test(name)) return { format: 'tar', gzipName };
  return null;
}

/** True when the file starts with gzip's magic bytes (so `.gz` names are not required). */
function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Describes each pool file; `format` overrides detection by name. */
export function describeShards(files: readonly string[], format?: Format): Shard[] {
  const names = files.map((f) => basename(f));
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return files.map((path, i) => {
    const detected = detectFormat(path);
    const fmt = format ?? detected?.format;
    if (!fmt) throw userError(`pool: cannot tell the format of ${path} from its name (.jsonl, .tsv, .tar, optionally .gz): pass --format`);
    const st = statSync(path);
    const name = counts.get(names[i]!)! > 1 ? `${String(i).padStart(5, '0')}-${names[i]}` : names[i]!;
    return { path, name, format: fmt, gzip: isGzip(path), size: st.size, mtimeMs: st.mtimeMs, hash: hashString(names[i]!) };
  });
}

/** A unit of work: a byte range of one shard (whole shard for gzip and tar). */
export interface Task {
  id: string;
  shard: number;
  /** Lines starting in [start, end) belong to this task. */
  start: number;
  end: number;
  /** Index of this task among its shard's tasks. */
  part: number;
}

/** Splits plain JSONL/TSV shards larger than `chunkBytes` into byte ranges; one task per other shard. */
export function planTasks(shards: readonly Shard[], chunkBytes: number): Task[] {
  const tasks: Task[] = [];
  shards.forEach((s, i) => {
    const splittable = !s.gzip && s.format !== 'tar' && s.size > chunkBytes;
    const parts = splittable ? Math.ceil(s.size / chunkBytes) : 1;
    for (let p = 0; p < parts; p++) {
      const start = splittable ? p * chunkBytes : 0;
      const end = splittable ? Math.min(s.size, (p + 1) * chunkBytes) : Number.MAX_SAFE_INTEGER;
      tasks.push({ id: `${String(i).padStart(5, '0')}-${String(p).padStart(4, '0')}`, shard: i, start, end, part: p });
    }
  });
  return tasks;
}
