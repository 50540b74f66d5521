/**
 * Caption embeddings on disk, so millions of captions never sit in memory at once.
 *
 * A folder holds `embeddings.json` (the manifest, written last: a folder without it is
 * incomplete) and, per shard `i`, two files written atomically (temporary name, then rename):
 * - `emb-00000i.safetensors`: tensor `embeddings` [rows, dim], F16 or F32, L2-normalised rows;
 * - `emb-00000i.jsonl`: one line per row, in the same order: `{"key","caption","group"}`
 *   (`group`: the ground truth the data carries, e.g. the emoji group, the clip-art category, the
 *   class name; null when there is none).
 * A shard's `source` names what it was embedded from (a data shard, a `.npy` file).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsFile, toFloat32, writeSafetensorsFile } from '@mode/autograd';
import { fromF16Bits, toF16Bits } from '@mode/kernels';

export const EMBEDDINGS_FORMAT = 'mode-embeddings-1';

export interface EmbeddingRow {
  key: string;
  caption: string;
  group: string | null;
}

export interface EmbeddingShardInfo {
  /** Base name: `${name}.safetensors` and `${name}.jsonl` in the folder. */
  name: string;
  rows: number;
  source: string;
}

export interface EmbeddingsManifest {
  format: typeof EMBEDDINGS_FORMAT;
  dim: number;
  dtype: 'f16' | 'f32';
  /** What embedded the captions (e.g. the model file), for the record. */
  encoder: string;
  count: number;
  shards: EmbeddingShardInfo[];
}

/** An error about a user's file: the message names the file and the fix. */
export class ClusterInputError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'ClusterInputError';
  }
}

export const shardName = (i: number) => `emb-${String(i).padStart(6, '0')}`;

function atomicWrite(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Checks rows of `dim` values for NaN/Inf and zero norm, naming the first bad row. */
export function checkVectors(values: Float32Array, dim: number, where: string, keys?: readonly string[]): void {
  if (values.length % dim !== 0) throw new ClusterInputError(`${where}: ${values.length} values are not rows of ${dim}`);
  for (let r = 0; r < values.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += values[r * dim + j]! ** 2;
    const name = keys ? `row ${r} (key ${keys[r]})` : `row ${r}`;
    if (!Number.isFinite(s)) throw new ClusterInputError(`${where}: ${name} holds NaN or Inf. Fix: re-embed it, or drop the pair from the data.`);
    if (s === 0) throw new ClusterInputError(`${where}: ${name} is all zeros (cannot be L2-normalised). Fix: re-embed it, or drop the pair.`);
  }
}

/** L2-normalises rows in place. */
export function normalizeRows(values: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < values.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += values[r * dim + j]! ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) values[r * dim + j]! *= inv;
  }
  return values;
}

/** Writes shards and then the manifest. Shards already complete on disk (from a killed run) can be kept with `has`/`keep`. */
export class EmbeddingsWriter {
  private readonly shards: EmbeddingShardInfo[] = [];

  constructor(
    readonly dir: string,
    readonly dim: number,
    readonly dtype: 'f16' | 'f32',
    readonly encoder: string,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** The shard `i` already written (both files, matching rows and dtype), or null. */
  existing(i: number, source: string): EmbeddingShardInfo | null {
    const name = shardName(i);
    const st = join(this.dir, `${name}.safetensors`);
    const jl = join(this.dir, `${name}.jsonl`);
    if (!existsSync(st) || !existsSync(jl)) return null;
    try {
      const f = readSafetensorsFile(st);
      const t = f.tensors.embeddings;
      const lines = readFileSync(jl, 'utf8').split('\n').filter(Boolean).length;
      if (!t || t.shape[1] !== this.dim || t.shape[0] !== lines || t.dtype !== (this.dtype === 'f16' ? 'F16' : 'F32')) return null;
      if (f.metadata.source !== source || f.metadata.encoder !== this.encoder) return null;
      return { name, rows: lines, source };
    } catch {
      return null;
    }
  }

  keep(info: EmbeddingShardInfo): void {
    this.shards.push(info);
  }

  /** Writes shard `i`: the rows checked (no NaN, no zero vector) and L2-normalised, with their keys, captions and groups. */
  write(i: number, source: string, values: Float32Array, rows: readonly EmbeddingRow[]): EmbeddingShardInfo {
    if (values.length !== rows.length * this.dim) throw new Error(`embeddings shard ${i}: ${values.length} values for ${rows.length} rows of ${this.dim}`);
    checkVectors(
      values,
      this.dim,
      `embeddings of ${source}`,
      rows.map((r) => r.key),
    );
    normalizeRows(values, this.dim);
    const name = shardName(i);
    const data = this.dtype === 'f16' ? new Uint8Array(toF16Bits(values).buffer) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    // The rows first, the tensor last: `existing` needs both, so a kill between them redoes the shard.
    atomicWrite(join(this.dir, `${name}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
    writeSafetensorsFile(join(this.dir, `${name}.safetensors`), {
      tensors: { embeddings: { dtype: this.dtype === 'f16' ? 'F16' : 'F32', shape: [rows.length, this.dim], data } },
      metadata: { source, encoder: this.encoder },
    });
    const info = { name, rows: rows.length, source };
    this.shards.push(info);
    return info;
  }

  /** Writes the manifest: the set is complete. */
  finish(): EmbeddingsManifest {
    const manifest: EmbeddingsManifest = {
      format: EMBEDDINGS_FORMAT,
      dim: this.dim,
      dtype: this.dtype,
      encoder: this.encoder,
      count: this.shards.reduce((s, x) => s + x.rows, 0),
      shards: this.shards,
    };
    atomicWrite(join(this.dir, 'embeddings.json'), JSON.stringify(manifest, null, 1) + '\n');
    return manifest;
  }
}

/** The manifest of an embeddings folder, checked; the error says how to make one. */
export function readEmbeddingsManifest(dir: string): EmbeddingsManifest {
  const path = join(dir, 'embeddings.json');
  if (!existsSync(path))
    throw new ClusterInputError(
      `${dir}: no embeddings.json (not an embeddings folder, or \`mode embed\` did not finish). Fix: run \`mode embed --out ${dir}\`.`,
    );
  let m: EmbeddingsManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as EmbeddingsManifest;
  } catch (e) {
    throw new ClusterInputError(`${path}: invalid JSON (${(e as Error).message}). Fix: re-run \`mode embed\`.`);
  }
  if (m.format !== EMBEDDINGS_FORMAT) throw new ClusterInputError(`${path}: format "${m.format}" is not ${EMBEDDINGS_FORMAT}. Fix: re-run \`mode embed\`.`);
  return m;
}

export interface EmbeddingShard {
  info: EmbeddingShardInfo;
  file: string;
  values: Float32Array;
  rows: EmbeddingRow[];
}

/** One shard's vectors (as f32) and rows, checked against the manifest: dimension, row count, NaN. */
export function readEmbeddingShard(dir: string, m: EmbeddingsManifest, info: EmbeddingShardInfo): EmbeddingShard {
  const file = join(dir, `${info.name}.safetensors`);
  const f = readSafetensorsFile(file);
  const t = f.tensors.embeddings;
  if (!t) throw new ClusterInputError(`${file}: no tensor "embeddings". Fix: re-run \`mode embed\`.`);
  if (t.shape.length !== 2 || t.shape[1] !== m.dim)
    throw new ClusterInputError(
      `${file}: embeddings [${t.shape}] are not rows of dimension ${m.dim} (embeddings.json). Fix: embed every shard with the same encoder.`,
    );
  if (t.shape[0] !== info.rows) throw new ClusterInputError(`${file}: ${t.shape[0]} rows, embeddings.json says ${info.rows}. Fix: re-run \`mode embed\`.`);
  if (info.rows === 0) throw new ClusterInputError(`${file}: an empty shard (0 rows). Fix: drop it from embeddings.json, or re-run \`mode embed\`.`);
  const values = t.dtype === 'F16' ? fromF16Bits(new Uint16Array(t.data.slice().buffer)) : toFloat32(t, 'embeddings');
  const lines = readFileSync(join(dir, `${info.name}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean);
  if (lines.length !== info.rows)
    throw new ClusterInputError(`${join(dir, `${info.name}.jsonl`)}: ${lines.length} rows for ${info.rows} vectors. Fix: re-run \`mode embed\`.`);
  const rows = lines.map((l) => JSON.parse(l) as EmbeddingRow);
  checkVectors(
    values,
    m.dim,
    file,
    rows.map((r) => r.key),
  );
  return { info, file, values, rows };
}

/**
 * A 2-D `.npy` file (little-endian f4, f8 or f2, C order) as an embeddings folder's single shard,
 * for vectors from any encoder; rows are keyed by their index, or by `keys` (one per line).
 */
export function importNpy(npyPath: string, outDir: string, keysPath?: string): EmbeddingsManifest {
  const bytes = readFileSync(npyPath);
  const bad = (why: string) => new ClusterInputError(`${npyPath}: ${why}. Fix: save a 2-D float array with numpy.save (rows = captions).`);
  if (bytes.length < 10 || bytes.toString('latin1', 1, 6) !== 'NUMPY') throw bad('not a .npy file');
  const major = bytes[6]!;
  const hlen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/
    .exec(header)?.[1]
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw bad('Fortran order');
  if (!shape || shape.length !== 2) throw bad(`shape (${shape ?? '?'}) is not 2-D`);
  const [n, dim] = shape as [number, number];
  const body = bytes.subarray(start + hlen);
  const size = { '<f4': 4, '<f8': 8, '<f2': 2 }[descr ?? ''];
  if (!size) throw bad(`dtype ${descr} is not <f4, <f8 or <f2`);
  if (body.length !== n * dim * size) throw bad(`${body.length} data bytes for ${n}×${dim} of ${descr}`);
  const copy = body.buffer.slice(body.byteOffset, body.byteOffset + body.length);
  const values = size === 4 ? new Float32Array(copy) : size === 8 ? Float32Array.from(new Float64Array(copy)) : fromF16Bits(new Uint16Array(copy));
  const keys = keysPath ? readFileSync(keysPath, 'utf8').split('\n').filter(Boolean) : Array.from({ length: n }, (_, i) => String(i));
  if (keys.length !== n) throw new ClusterInputError(`${keysPath}: ${keys.length} keys for ${n} rows of ${npyPath}. Fix: one key per line, in row order.`);
  checkVectors(values, dim, npyPath, keys);
  const w = new EmbeddingsWriter(outDir, dim, 'f32', `npy:${npyPath}`);
  w.write(
    0,
    npyPath,
    values,
    keys.map((key) => ({ key, caption: '', group: null })),
  );
  return w.finish();
}
