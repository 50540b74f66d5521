import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';
import { fill } from './unary.js';

/** n indices into a [vocab, d] table. */
export interface EmbeddingProblem {
  n: number;
  d: number;
  vocab: number;
}

/** Throws naming the first index outside 0…vocab−1. */
export function checkIndices(indices: ArrayLike<number>, vocab: number, what = 'embedding'): void {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new RangeError(`${what}: index ${v} at position ${i} is outside the table's rows 0…${vocab - 1}`);
  }
}

/** Records out[t, :] = table[idx[t], :] (idx: n u32). */
export async function embedding(gpu: Gpu, table: GPUBuffer, idx: GPUBuffer, out: GPUBuffer, p: EmbeddingProblem): Promise<void> {
  const kernel = await gpu.kernel('embedding');
  gpu.dispatch(kernel, {
    bindings: { table, idx, out },
    uniforms: { n: p.n, d: p.d, vocab: p.vocab },
    workgroups: grid(p.n * p.d, 256),
    work: { bytes: 8 * p.n * p.d },
    label: `embedding ${p.n}×${p.d}`,
  });
}

/**
 * The positions of each table row, sorted (CSR): `rows` the distinct rows in ascending order,
 * `starts[u]…starts[u+1]` their positions' span in `order` (positions ascending within a row).
 */
export function embeddingPlan(indices: ArrayLike<number>): { rows: Uint32Array; starts: Uint32Array; order: Uint32Array } {
  const order = Uint32Array.from({ length: indices.length }, (_, i) => i).sort((a, b) => indices[a]! - indices[b]! || a - b);
  const rows: number[] = [];
  const starts: number[] = [];
  order.forEach((pos, k) => {
    if (k === 0 || indices[pos]! !== indices[order[k - 1]!]!) {
      rows.push(indices[pos]!);
      starts.push(k);
    }
  });
  starts.push(order.length);
  return { rows: Uint32Array.from(rows), starts: Uint32Array.from(starts), order };
}

/**
 * Records d_table = Σ over positions of dy rows, deterministically (no atomics): zero-fills
 * d_table, then sums each distinct row's positions in ascending order. `plan` from embeddingPlan,
 * its arrays uploaded as u32 buffers.
 */
export async function embeddingBackward(
  gpu: Gpu,
  t: { dy: GPUBuffer; order: GPUBuffer; starts: GPUBuffer; rows: GPUBuffer; dTable: GPUBuffer },
  p: EmbeddingProblem & { unique: number },
): Promise<void> {
  await fill(gpu, t.dTable, p.vocab * p.d, 0);
  const kernel = await gpu.kernel('embedding_bwd');
  gpu.dispatch(kernel, {
    bindings: { dy: t.dy, order: t.order, starts: t.starts, rows: t.rows, d_table: t.dTable },
    uniforms: { unique: p.unique, d: p.d },
    workgroups: grid(p.unique * p.d, 256),
    work: { bytes: 8 * p.n * p.d },
    label: `embedding bwd ${p.n}×${p.d}`,
  });
}

/** CPU float64 references of the gather and the scatter-add. */
export function embeddingReference(table: ArrayLike<number>, indices: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(indices.length * d);
  for (let t = 0; t < indices.length; t++) for (let c = 0; c < d; c++) out[t * d + c] = table[indices[t]! * d + c]!;
  return out;
}

export function embeddingBackwardReference(dy: ArrayLike<number>, indices: ArrayLike<number>, p: { vocab: number; d: number }): Float64Array {
  const out = new Float64Array(p.vocab * p.d);
  for (let t = 0; t < indices.length; t++) for (let c = 0; c < p.d; c++) out[indices[t]! * p.d + c]! += dy[t * p.d + c]!;
  return out;
}
