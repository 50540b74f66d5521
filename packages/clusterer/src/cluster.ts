/**
 * MoDE §2 steps 2–4 as one stage: fine k-means over the caption embeddings, coarse k-means of the
 * fine centres into the experts, then every pair's fine cluster and expert (`assign.ts`) and the
 * report (`report.ts`).
 *
 * Outputs (OUT/):
 * - `fine.safetensors`: `centres` [K, D] F32, as fitted (not normalised); metadata `history`
 *   (inertia per iteration, JSON) and `options`.
 * - `coarse.safetensors`: `centres` [n, D] F32 and `fine_to_expert` [K] U32 (each fine centre's
 *   nearest coarse centre: the reference's plain argmin mapping); metadata `history`.
 * - `clusters.json`: what was fitted on what, written last (the stage is complete when it exists).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsFile, toFloat32, writeSafetensorsFile } from '@mode/autograd';
import type { Gpu } from '@mode/gpu';
import { readEmbeddingShard, readEmbeddingsManifest, ClusterInputError, type EmbeddingsManifest } from './embeddings.js';
import { fitKmeans, nearestCentre, type FitOptions, type IterationReport } from './kmeans.js';

export interface ClusterOptions {
  embeddings: string;
  out: string;
  /** Fine clusters (the paper: 1024). */
  fine: number;
  /** Coarse clusters = experts (2, 4, 8). */
  experts: number;
  /** Balanced fine and coarse fits (the reference's). Default true. */
  balanced?: boolean;
  init?: FitOptions['init'];
  seed?: number;
  maxIter?: number;
  tol?: number;
  /** Points per online chunk. Default: as many as fit 1 GiB of f32. */
  chunkRows?: number;
  onIteration?: (level: 'fine' | 'coarse', it: IterationReport) => void;
}

export interface Clusters {
  fine: Float32Array;
  coarse: Float32Array;
  fineToExpert: Uint32Array;
  k: number;
  experts: number;
  d: number;
  history: { fine: IterationReport[]; coarse: IterationReport[] };
  peakBytes: number;
}

export const CLUSTERS_FORMAT = 'mode-clusters-1';

/**
 * Several clusterings as one, the experts of each numbered after the ones before (MoDE's new
 * expert for new data: its own fine centres, fitted on its data, beside the run's).
 */
export function mergeClusters(parts: readonly Clusters[], names: readonly string[] = []): Clusters {
  const d = parts[0]!.d;
  parts.forEach((c, i) => {
    if (c.d !== d)
      throw new ClusterInputError(
        `${names[i] ?? `clusters ${i}`}: centres of dimension ${c.d}, the first clusters' are ${d}. Fix: embed both with the same encoder.`,
      );
  });
  let offset = 0;
  const fineToExpert = parts.flatMap((c) => {
    const mapped = [...c.fineToExpert].map((e) => e + offset);
    offset += c.experts;
    return mapped;
  });
  const cat = (xs: Float32Array[]) => {
    const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of xs) (out.set(x, o), (o += x.length));
    return out;
  };
  return {
    fine: cat(parts.map((c) => c.fine)),
    coarse: cat(parts.map((c) => c.coarse)),
    fineToExpert: Uint32Array.from(fineToExpert),
    k: parts.reduce((a, c) => a + c.k, 0),
    experts: offset,
    d,
    history: parts[0]!.history,
    peakBytes: Math.max(...parts.map((c) => c.peakBytes)),
  };
}

/** The embedding shards' vectors in chunks of about `rows` points (whole shards). */
async function* embeddingChunks(dir: string, m: EmbeddingsManifest, rows: number): AsyncGenerator<Float32Array> {
  let parts: Float32Array[] = [];
  let have = 0;
  const take = () => {
    const out = new Float32Array(have * m.dim);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    parts = [];
    have = 0;
    return out;
  };
  for (const info of m.shards) {
    const s = readEmbeddingShard(dir, m, info);
    parts.push(s.values);
    have += info.rows;
    if (have >= rows) yield take();
  }
  if (have) yield take();
}

export async function fitClusters(gpu: Gpu, o: ClusterOptions): Promise<Clusters> {
  const m = readEmbeddingsManifest(o.embeddings);
  if (!(o.experts >= 1) || !(o.fine >= o.experts))
    throw new ClusterInputError(`mode cluster: --experts ${o.experts} must be between 1 and --fine ${o.fine}. Fix: use fewer experts than fine clusters.`);
  if (o.fine > m.count)
    throw new ClusterInputError(`${o.embeddings}: --fine ${o.fine} clusters is more than its ${m.count} captions. Fix: use --fine ${m.count} or fewer.`);
  const balanced = o.balanced ?? true;
  const common = { balanced, init: o.init ?? 'kmeans++', seed: o.seed ?? 0, maxIter: o.maxIter ?? 50, tol: o.tol ?? 1e-3 } as const;
  const rows = o.chunkRows ?? Math.max(o.fine, Math.floor(2 ** 30 / (4 * m.dim)));
  const fine = await fitKmeans(gpu, embeddingChunks(o.embeddings, m, rows), m.dim, { ...common, k: o.fine, onIteration: (it) => o.onIteration?.('fine', it) });
  const coarse = await fitKmeans(gpu, [fine.centres], m.dim, { ...common, k: o.experts, onIteration: (it) => o.onIteration?.('coarse', it) });
  const map = await nearestCentre(gpu, fine.centres, m.dim, coarse.centres);
  return {
    fine: fine.centres,
    coarse: coarse.centres,
    fineToExpert: map.index,
    k: o.fine,
    experts: o.experts,
    d: m.dim,
    history: { fine: fine.history, coarse: coarse.history },
    peakBytes: Math.max(fine.peakBytes, coarse.peakBytes),
  };
}

const f32 = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function writeClusters(out: string, c: Clusters, about: Record<string, unknown>): void {
  writeSafetensorsFile(join(out, 'fine.safetensors'), {
    tensors: { centres: { dtype: 'F32', shape: [c.k, c.d], data: f32(c.fine) } },
    metadata: { history: JSON.stringify(c.history.fine), options: JSON.stringify(about) },
  });
  writeSafetensorsFile(join(out, 'coarse.safetensors'), {
    tensors: {
      centres: { dtype: 'F32', shape: [c.experts, c.d], data: f32(c.coarse) },
      fine_to_expert: { dtype: 'U32', shape: [c.k], data: new Uint8Array(c.fineToExpert.buffer.slice(0)) },
    },
    metadata: { history: JSON.stringify(c.history.coarse) },
  });
  const tmp = join(out, `clusters.json.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify({ format: CLUSTERS_FORMAT, fine: c.k, experts: c.experts, dim: c.d, peakBytes: c.peakBytes, ...about }, null, 1) + '\n');
  renameSync(tmp, join(out, 'clusters.json'));
}

/** Clusters written by `writeClusters`, checked; the error names the file and the fix. */
export function readClusters(dir: string): Clusters {
  const marker = join(dir, 'clusters.json');
  if (!existsSync(marker))
    throw new ClusterInputError(`${dir}: no clusters.json (\`mode cluster\` has not finished there). Fix: run \`mode cluster --out ${dir}\`.`);
  const info = JSON.parse(readFileSync(marker, 'utf8')) as { format: string; fine: number; experts: number; dim: number; peakBytes: number };
  if (info.format !== CLUSTERS_FORMAT)
    throw new ClusterInputError(`${marker}: format "${info.format}" is not ${CLUSTERS_FORMAT}. Fix: re-run \`mode cluster\`.`);
  const fine = readSafetensorsFile(join(dir, 'fine.safetensors'));
  const coarse = readSafetensorsFile(join(dir, 'coarse.safetensors'));
  const need = (t: unknown, what: string) => {
    if (!t) throw new ClusterInputError(`${dir}: ${what} is missing. Fix: re-run \`mode cluster\`.`);
    return t as NonNullable<typeof fine.tensors.x>;
  };
  const map = need(coarse.tensors.fine_to_expert, 'coarse.safetensors:fine_to_expert');
  return {
    fine: toFloat32(need(fine.tensors.centres, 'fine.safetensors:centres')),
    coarse: toFloat32(need(coarse.tensors.centres, 'coarse.safetensors:centres')),
    fineToExpert: new Uint32Array(map.data.slice().buffer),
    k: info.fine,
    experts: info.experts,
    d: info.dim,
    history: { fine: JSON.parse(fine.metadata.history ?? '[]'), coarse: JSON.parse(coarse.metadata.history ?? '[]') },
    peakBytes: info.peakBytes,
  };
}
