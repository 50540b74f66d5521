/**
 * What `--data` names, turned into shards: a data set folder (`dataset.json`, what `mode data
 * prepare` writes), a folder of `.tar` shards (img2dataset's output), a CLIP_benchmark folder
 * (`test/0.tar`… with `nshards.txt`, `classnames.txt`, `zeroshot_classification_templates.txt`),
 * a brace pattern (`shards/{00000..00099}.tar`, `{a,b}`), a glob (`*`, `?`, `[…]`), or several of
 * them joined with `::` as OpenCLIP's `--train-data` takes them. The kind (pairs or
 * classification) of shards without a manifest is read from the members of their first sample.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { constants, gunzipSync } from 'node:zlib';
import { datasetShards, readDatasetInfo } from './dataset.js';
import { splitName, type RawSample } from './shards.js';

const userError = (m: string) => Object.assign(new Error(m), { userFacing: true });

/** `a{1..3}b` → a1b a2b a3b (zero padding kept: `{000..010}`), `{x,y}` → x y; nested and repeated braces. */
export function expandBraces(p: string): string[] {
  const open = p.indexOf('{');
  if (open < 0) return [p];
  let depth = 0;
  let close = -1;
  for (let i = open; i < p.length; i++) {
    if (p[i] === '{') depth++;
    else if (p[i] === '}' && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) throw userError(`--data ${p}: "{" without its "}"`);
  const [head, body, tail] = [p.slice(0, open), p.slice(open + 1, close), p.slice(close + 1)];
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  let parts: string[];
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    const width = range[1]!.length === range[2]!.length && /^0\d/.test(range[1]!) ? range[1]!.length : 0;
    const step = a <= b ? 1 : -1;
    parts = [];
    for (let i = a; step > 0 ? i <= b : i >= b; i += step) parts.push(String(i).padStart(width, '0'));
  } else {
    // Split at top-level commas.
    parts = [];
    let d = 0;
    let from = 0;
    for (let i = 0; i <= body.length; i++) {
      if (i === body.length || (body[i] === ',' && d === 0)) {
        parts.push(body.slice(from, i));
        from = i + 1;
      } else if (body[i] === '{') d++;
      else if (body[i] === '}') d--;
    }
  }
  return parts.flatMap((x) => expandBraces(head + x + tail));
}

const globChars = /[*?[]/;
const globToRegExp = (seg: string) =>
  new RegExp(
    `^${seg
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`, // `[…]` passes through as a class
  );

/** The existing paths a glob names (`*`, `?`, `[…]` in any segment), sorted; a path without wildcards as it is. */
export function expandGlob(p: string): string[] {
  if (!globChars.test(p)) return [p];
  const segs = p.split('/');
  let bases = [p.startsWith('/') ? '/' : '.'];
  segs.forEach((seg, i) => {
    if (seg === '' && i === 0) return;
    const next: string[] = [];
    for (const b of bases) {
      if (!globChars.test(seg)) {
        next.push(b === '.' && i === 0 ? seg : join(b, seg));
        continue;
      }
      const re = globToRegExp(seg);
      let names: string[] = [];
      try {
        names = readdirSync(b);
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n) && !n.startsWith('.')) next.push(join(b, n));
    }
    bases = next;
  });
  return bases.filter((x) => existsSync(x));
}

const isShard = (f: string) => /\.tar(\.gz)?$/i.test(f);

/** The shards a folder holds (`*.tar`, `*.tar.gz`), sorted by name. */
const shardsIn = (dir: string) =>
  readdirSync(dir)
    .filter(isShard)
    .sort()
    .map((f) => join(dir, f));

/** The `::`-joined parts of OpenCLIP's `--train-data`. */
export const splitSpecs = (specs: readonly string[]): string[] => specs.flatMap((s) => s.split('::')).filter((s) => s !== '');

/** Shards named by a folder of shards, a brace pattern or a glob; an error names the pattern when nothing matches. */
export function shardsOf(pattern: string): string[] {
  if (existsSync(pattern) && statSync(pattern).isDirectory()) {
    const found = shardsIn(pattern);
    if (!found.length)
      throw userError(
        `--data ${pattern}: a folder without .tar shards and without dataset.json. Fix: point at img2dataset's output folder, or a pattern like ${join(pattern, '{00000..00009}.tar')}`,
      );
    return found;
  }
  const paths = expandBraces(pattern).flatMap(expandGlob);
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length)
    throw userError(
      `--data ${pattern}: ${missing.length} of its ${paths.length} shard${paths.length === 1 ? '' : 's'} do${missing.length === 1 ? 'es' : ''} not exist (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})`,
    );
  const shards = paths.filter(isShard);
  if (!shards.length) throw userError(`--data ${pattern}: matches no .tar or .tar.gz file`);
  return shards;
}

/** A tar member's header: its name, the byte offset of its header, its size. */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

/** A 512-byte ustar header: the member's name (prefix joined), its size, whether it is a regular file. */
export function tarHeader(h: Buffer): { name: string; size: number; file: boolean } {
  const field = (from: number, to: number) => h.toString('utf8', from, to).replace(/\0.*$/s, '');
  const prefix = field(345, 500);
  const type = h[156]!;
  return { name: prefix ? `${prefix}/${field(0, 100)}` : field(0, 100), size: parseInt(field(124, 136).trim() || '0', 8), file: type === 0x30 || type === 0 };
}

/**
 * The file members of a shard from their headers alone, without reading their contents (a
 * gzipped shard is inflated: its first MiB when `prefix`, else whole). Stops at the end blocks or
 * where the file ends.
 */
export function* tarMembers(shard: string, o: { prefix?: boolean } = {}): Generator<TarMember> {
  const fd = openSync(shard, 'r');
  try {
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    let read: (at: number, n: number) => Buffer;
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const whole = readFileSync(fd);
      const plain = gunzipSync(o.prefix ? whole.subarray(0, 1 << 20) : whole, { finishFlush: constants.Z_SYNC_FLUSH });
      read = (at, len) => plain.subarray(at, at + len);
    } else
      read = (at, len) => {
        const b = Buffer.alloc(len);
        return b.subarray(0, readSync(fd, b, 0, len, at));
      };
    for (let at = 0; ;) {
      const h = read(at, 512);
      if (h.length < 512 || h.every((b) => b === 0)) return;
      const { name, size, file } = tarHeader(h);
      if (file) yield { name, offset: at, size };
      at += 512 + Math.ceil(size / 512) * 512;
    }
  } finally {
    closeSync(fd);
  }
}

/** The members (extensions) of a shard's first sample: `txt`/`json` make pairs, `cls` classification. */
export function firstSampleMembers(shard: string): string[] {
  const members: string[] = [];
  let key: string | undefined;
  for (const m of tarMembers(shard, { prefix: true })) {
    const s = splitName(m.name);
    if (key !== undefined && s.key !== key) break;
    key = s.key;
    members.push(s.ext);
  }
  return members;
}

/** Samples in a shard (runs of members with one key), counted from the tar headers. */
export function countSamples(shard: string): number {
  let n = 0;
  let key: string | undefined;
  for (const m of tarMembers(shard)) {
    const k = splitName(m.name).key;
    if (k !== key) n++;
    key = k;
  }
  return n;
}

/** Reads a prompt-template file: one per line, `{c}` (CLIP_benchmark) or `{}` for the class name; a line without either is an error. */
export function readTemplates(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const out: string[] = [];
  lines.forEach((line, i) => {
    const t = line.trim();
    if (!t) return;
    if (!t.includes('{c}') && !t.includes('{}'))
      throw userError(
        `${file}:${i + 1}: template "${t}" has no {c} or {} for the class name (every prompt would be the same: a chance-level run). Fix: add {c} where the class name goes`,
      );
    out.push(t.replace(/\{c\}/g, '{}'));
  });
  if (!out.length) throw userError(`${file}: no templates in it`);
  return out;
}

/** Reads a class-names file: one name per line, blank lines ignored. */
export function readClassNames(file: string): string[] {
  const names = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw userError(`${file}: no class names in it`);
  return names;
}

/** A set of shards with what is known about them. */
export interface ShardSet {
  /** As the user named it. */
  name: string;
  kind: 'pairs' | 'classification';
  shards: string[];
  /** Classification: class names by label, and prompt templates with `{}` for the name. */
  classes?: string[];
  templates?: string[];
}

/** A CLIP_benchmark folder's split: `DIR/SPLIT/nshards.txt` with `0.tar`… beside it. */
function benchmarkShards(dir: string, split: string): string[] | undefined {
  const d = join(dir, split);
  if (!existsSync(d) || !statSync(d).isDirectory()) return undefined;
  const nfile = join(d, 'nshards.txt');
  if (!existsSync(nfile)) return shardsIn(d).length ? shardsIn(d) : undefined;
  const n = Number(readFileSync(nfile, 'utf8').trim());
  if (!Number.isInteger(n) || n < 1) throw userError(`${nfile}: "${readFileSync(nfile, 'utf8').trim()}" is not a shard count`);
  const shards = Array.from({ length: n }, (_, i) => join(d, `${i}.tar`));
  const missing = shards.filter((s) => !existsSync(s));
  if (missing.length) throw userError(`${nfile} says ${n} shards, but ${missing.length} are missing (${missing.slice(0, 3).join(', ')})`);
  return shards;
}

/** `classnames.txt` and `zeroshot_classification_templates.txt` in the shards' folder or the one above it. */
export function labelFiles(shardDir: string): { classes?: string[]; templates?: string[] } {
  const found: { classes?: string[]; templates?: string[] } = {};
  for (const d of [shardDir, dirname(shardDir)]) {
    const c = join(d, 'classnames.txt');
    const t = join(d, 'zeroshot_classification_templates.txt');
    if (!found.classes && existsSync(c)) found.classes = readClassNames(c);
    if (!found.templates && existsSync(t)) found.templates = readTemplates(t);
  }
  return found;
}

/**
 * Resolves one `--data` source (no `::`): a data set folder (its `split`, default every split of
 * a pairs set and `train` of a classification set), a CLIP_benchmark folder (its `split`, default
 * `test`), or shards by folder, brace pattern or glob.
 */
export function resolveShardSet(spec: string, split?: string): ShardSet {
  if (existsSync(join(spec, 'dataset.json'))) {
    const info = readDatasetInfo(spec);
    const cls = info.kind === 'classification';
    return {
      name: spec,
      kind: info.kind,
      shards: datasetShards(spec, split ?? (cls ? (info.splits.train ? 'train' : Object.keys(info.splits)[0]) : undefined)),
      ...(info.classes ? { classes: info.classes } : {}),
      ...(cls ? { templates: info.templates ?? ['a photo of a {}.'] } : {}),
    };
  }
  const bench = existsSync(spec) && statSync(spec).isDirectory() && !shardsIn(spec).length ? benchmarkShards(spec, split ?? 'test') : undefined;
  if (existsSync(spec) && statSync(spec).isDirectory() && !shardsIn(spec).length && !bench)
    throw userError(
      `--data ${spec}: neither a data set (no dataset.json), a CLIP_benchmark folder (no ${split ?? 'test'}/nshards.txt) nor a folder of .tar shards. Fix: point at a folder that holds one of them`,
    );
  const shards = bench ?? shardsOf(spec);
  const members = firstSampleMembers(shards[0]!);
  const kind = members.includes('cls') && !members.includes('txt') ? 'classification' : 'pairs';
  const labels = kind === 'classification' ? labelFiles(bench ? spec : dirname(shards[0]!)) : {};
  return { name: bench ? basename(spec) : spec, kind, shards, ...labels };
}

/** Image files by extension (any case), as a class-folder tree holds them. */
const isImageFile = (f: string) => /\.(jpe?g|png|webp|avif|tiff?|gif)$/i.test(f);

/** An ImageNet-style tree: one folder per class (sorted names are the labels, as torchvision's ImageFolder), images inside. */
export interface ClassFolderTree {
  root: string;
  /** Folder names, sorted: label i is folder i. */
  folders: string[];
  files: { path: string; label: number }[];
}

/**
 * `DIR/CLASS/*.JPEG` (or `DIR/val/CLASS/*.JPEG`) as a classification set; undefined when `dir`
 * is not such a tree (no sub-folder holds images, or it holds shards).
 */
export function classFolderTree(dir: string): ClassFolderTree | undefined {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && isShard(e.name))) return undefined;
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  const files = folders.flatMap((f, label) =>
    readdirSync(join(dir, f))
      .filter(isImageFile)
      .sort()
      .map((name) => ({ path: join(dir, f, name), label })),
  );
  if (files.length) return { root: dir, folders, files };
  for (const sub of ['val', 'test']) if (folders.includes(sub)) return classFolderTree(join(dir, sub));
  return undefined;
}

/** A class-folder tree's images as samples (`KEY.EXT` + `cls`), read one file at a time; the file is the "shard" errors name. */
export async function* folderSamples(tree: ClassFolderTree): AsyncGenerator<RawSample> {
  for (const f of tree.files) {
    const name = basename(f.path);
    const dot = name.lastIndexOf('.');
    const files: Record<string, Uint8Array> = { [name.slice(dot + 1)]: readFileSync(f.path), cls: Buffer.from(String(f.label)) };
    yield { key: `${tree.folders[f.label]}/${name.slice(0, dot)}`, files, shard: f.path };
  }
}
