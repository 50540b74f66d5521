/**
 * MoDE §2 step 4: every pair → its nearest fine centre (plain argmin, as the reference's final
 * assignment) → that centre's expert, streaming over the embedding shards.
 *
 * Outputs (OUT/), each written atomically:
 * - per embedding shard `emb-00000i`, `assign-00000i.jsonl`: one line per pair, in the shard's
 *   order, `{"key","fine","expert","extra":[…]}`; `extra` lists the experts whose 2%
 *   out-of-cluster sample holds the pair (§2 step 5): pair p is in expert k's sample when
 *   k ≠ expert(p) and hash(seed, k, key) / 2³² < 0.02 (`hashString` of `${seed}\0${k}\0${key}`),
 *   so the sample is reproducible and needs no state;
 * - `assignment.json` (last: the stage is complete): counts per expert (own and extra) and the
 *   shard files.
 * A job array can split the shards (`part`); a part marks each file it wrote with `FILE.key`
 * (its clusters' checksum) for the final run to reuse, which removes the marks.
 * An expert's training set is the pairs with `expert = k` or `k ∈ extra`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashString } from '@mode/data';
import type { Gpu } from '@mode/gpu';
import type { Clusters } from './cluster.js';
import { ClusterInputError, readEmbeddingShard, readEmbeddingsManifest, type EmbeddingRow } from './embeddings.js';
import { nearestCentre } from './kmeans.js';

export const ASSIGNMENT_FORMAT = 'mode-assignment-1';
export const EXTRA_FRACTION = 0.02;

export interface AssignedPair {
  key: string;
  fine: number;
  expert: number;
  extra: number[];
}

export interface AssignmentManifest {
  format: typeof ASSIGNMENT_FORMAT;
  experts: number;
  fine: number;
  extraFraction: number;
  seed: number;
  count: number;
  /** Pairs whose nearest centre is in expert k. */
  own: number[];
  /** Pairs in expert k's out-of-cluster sample. */
  extra: number[];
  /** Pairs per fine cluster. */
  fineSizes: number[];
  shards: { name: string; rows: number }[];
}

/** The experts whose out-of-cluster sample holds a pair. */
export function extraExperts(key: string, expert: number, experts: number, seed: number, fraction = EXTRA_FRACTION): number[] {
  const out: number[] = [];
  for (let k = 0; k < experts; k++) if (k !== expert && hashString(`${seed}\u0000${k}\u0000${key}`) / 4294967296 < fraction) out.push(k);
  return out;
}

export interface AssignOptions {
  embeddings: string;
  clusters: Clusters;
  out: string;
  seed?: number;
  extraFraction?: number;
  onShard?: (done: number, total: number) => void;
  /**
   * Only the embedding shards i, i + n, … (part i of n, one task of a job array): their
   * assignment files and no manifest (null). The run without `part` afterwards reuses every
   * shard file a part wrote for the same clusters, seed and fraction.
   */
  part?: { index: number; count: number };
}

export interface AssignResult {
  manifest: AssignmentManifest;
  /** Per embedding shard: its rows and their assignment, for the report. */
  shards: { rows: EmbeddingRow[]; pairs: AssignedPair[] }[];
}

/** What a shard's assignment depends on, to reuse a part's file only for the same clusters. */
function assignmentKey(c: Clusters, seed: number, fraction: number): string {
  return createHash('sha256')
    .update(new Uint8Array(c.fine.buffer, c.fine.byteOffset, c.fine.byteLength))
    .update(new Uint8Array(c.fineToExpert.buffer, c.fineToExpert.byteOffset, c.fineToExpert.byteLength))
    .update(JSON.stringify({ seed, fraction, k: c.k, experts: c.experts }))
    .digest('hex')
    .slice(0, 24);
}

export async function assignPairs(gpu: Gpu, o: AssignOptions & { part: { index: number; count: number } }): Promise<null>;
export async function assignPairs(gpu: Gpu, o: AssignOptions): Promise<AssignResult | null>;
export async function assignPairs(gpu: Gpu, o: AssignOptions): Promise<AssignResult | null> {
  const m = readEmbeddingsManifest(o.embeddings);
  const c = o.clusters;
  if (m.dim !== c.d)
    throw new ClusterInputError(
      `${o.embeddings}: embeddings of dimension ${m.dim}, but the clusters were fitted on ${c.d}. Fix: embed with the encoder the clusters were fitted on.`,
    );
  const seed = o.seed ?? 0;
  const fraction = o.extraFraction ?? EXTRA_FRACTION;
  const own = new Array<number>(c.experts).fill(0);
  const extra = new Array<number>(c.experts).fill(0);
  const fineSizes = new Array<number>(c.k).fill(0);
  const shards: AssignResult['shards'] = [];
  const key = assignmentKey(c, seed, fraction);
  for (const [i, info] of m.shards.entries()) {
    if (o.part && i % o.part.count !== o.part.index) continue;
    const file = join(o.out, `${info.name.replace(/^emb-/, 'assign-')}.jsonl`);
    const done = `${file}.key`; // written after the file by a part: its clusters
    const s = readEmbeddingShard(o.embeddings, m, info);
    let pairs: AssignedPair[];
    const reuse = !o.part && existsSync(done) && existsSync(file) && readFileSync(done, 'utf8') === key;
    if (reuse)
      pairs = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AssignedPair);
    else {
      const a = await nearestCentre(gpu, s.values, m.dim, c.fine);
      pairs = s.rows.map((r, j): AssignedPair => {
        const fine = a.index[j]!;
        const expert = c.fineToExpert[fine]!;
        return { key: r.key, fine, expert, extra: extraExperts(r.key, expert, c.experts, seed, fraction) };
      });
      writeFileSync(`${file}.${process.pid}.tmp`, pairs.map((p) => JSON.stringify(p)).join('\n') + '\n');
      renameSync(`${file}.${process.pid}.tmp`, file);
      if (o.part) writeFileSync(done, key);
    }
    if (o.part) continue;
    rmSync(done, { force: true });
    if (pairs.length !== s.rows.length)
      throw new ClusterInputError(`${file}: ${pairs.length} pairs for ${s.rows.length} embeddings. Fix: delete it and run mode assign again.`);
    for (const p of pairs) {
      own[p.expert]!++;
      fineSizes[p.fine]!++;
      for (const k of p.extra) extra[k]!++;
    }
    shards.push({ rows: s.rows, pairs });
    o.onShard?.(i + 1, m.shards.length);
  }
  if (o.part) return null;
  const manifest: AssignmentManifest = {
    format: ASSIGNMENT_FORMAT,
    experts: c.experts,
    fine: c.k,
    extraFraction: fraction,
    seed,
    count: m.count,
    own,
    extra,
    fineSizes,
    shards: m.shards.map((s) => ({ name: s.name.replace(/^emb-/, 'assign-'), rows: s.rows })),
  };
  const path = join(o.out, 'assignment.json');
  writeFileSync(`${path}.${process.pid}.tmp`, JSON.stringify(manifest, null, 1) + '\n');
  renameSync(`${path}.${process.pid}.tmp`, path);
  return { manifest, shards };
}

/**
 * The keys of expert k's training set (its own pairs and its out-of-cluster sample) from an
 * assignment folder: what `mode train --expert k` trains on.
 */
export function expertKeys(dir: string, expert: number): Set<string> {
  const path = join(dir, 'assignment.json');
  if (!existsSync(path)) throw new ClusterInputError(`${dir}: no assignment.json. Fix: run \`mode cluster\` (or \`mode assign\`) with --out ${dir}.`);
  const m = JSON.parse(readFileSync(path, 'utf8')) as AssignmentManifest;
  if (m.format !== ASSIGNMENT_FORMAT) throw new ClusterInputError(`${path}: format "${m.format}" is not ${ASSIGNMENT_FORMAT}.`);
  if (!(expert >= 0 && expert < m.experts))
    throw new ClusterInputError(`${path}: expert ${expert} does not exist (there are ${m.experts}: 0–${m.experts - 1}).`);
  const keys = new Set<string>();
  for (const s of m.shards)
    for (const line of readFileSync(join(dir, `${s.name}.jsonl`), 'utf8').split('\n')) {
      if (!line) continue;
      const p = JSON.parse(line) as AssignedPair;
      if (p.expert === expert || p.extra.includes(expert)) keys.add(p.key);
    }
  return keys;
}
