/**
 * MoDE §2 step 6: weights of the experts for a task, from its class names alone (computed once
 * per task, not per image), in float64.
 *
 * - e_c: class c's name embedded by the clustering text encoder (templates averaged, normalised);
 * - d_c = min_j ‖e_c − f_j‖ (unsquared Euclidean, fine centres as fitted), a_c its argmin, and
 *   k(c) = the expert of fine centre a_c;
 * - s_mul = 5·log10(max(10, N − 200)); s_add = exp(0.5 − √N) if N < 10, else 0;
 * - w̃_k = Σ_{c: k(c) = k} exp((s_add − d_c)·s_mul), 0 for an expert with no class;
 * - w = softmax(w̃ / 8): an expert with no class still gets weight ∝ exp(0), as in the reference.
 */

export interface TaskWeights {
  /** Per class: distance to the nearest fine centre, that centre, its expert. */
  distance: Float64Array;
  nearest: Uint32Array;
  expertOf: Uint32Array;
  sMul: number;
  sAdd: number;
  /** w̃ per expert. */
  raw: Float64Array;
  /** softmax(w̃ / 8) per expert. */
  weights: Float64Array;
}

export function metadataWeights(
  classEmbeddings: ArrayLike<number>,
  d: number,
  fine: ArrayLike<number>,
  fineToExpert: ArrayLike<number>,
  experts: number,
): TaskWeights {
  const N = classEmbeddings.length / d;
  const K = fine.length / d;
  if (!Number.isInteger(N) || !Number.isInteger(K))
    throw new RangeError(`metadataWeights: ${classEmbeddings.length} and ${fine.length} values are not rows of ${d}`);
  if (fineToExpert.length !== K) throw new RangeError(`metadataWeights: ${fineToExpert.length} expert ids for ${K} fine centres`);
  if (N === 0) throw new RangeError('metadataWeights: a task needs at least one class');
  const distance = new Float64Array(N);
  const nearest = new Uint32Array(N);
  const expertOf = new Uint32Array(N);
  for (let c = 0; c < N; c++) {
    let best = Infinity;
    for (let j = 0; j < K; j++) {
      let s = 0;
      for (let q = 0; q < d; q++) s += (classEmbeddings[c * d + q]! - fine[j * d + q]!) ** 2;
      if (s < best) [best, nearest[c]] = [s, j];
    }
    distance[c] = Math.sqrt(best);
    expertOf[c] = fineToExpert[nearest[c]!]!;
  }
  const sMul = 5 * Math.log10(Math.max(10, N - 200));
  const sAdd = N < 10 ? Math.exp(0.5 - Math.sqrt(N)) : 0;
  const raw = new Float64Array(experts);
  for (let c = 0; c < N; c++) raw[expertOf[c]!]! += Math.exp((sAdd - distance[c]!) * sMul);
  const scaled = Array.from(raw, (x) => x / 8);
  const max = Math.max(...scaled);
  const e = scaled.map((x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return { distance, nearest, expertOf, sMul, sAdd, raw, weights: Float64Array.from(e, (x) => x / z) };
}

/** Σ_k w_k · logits_k (each [rows × classes], raw cosine logits). */
export function combineLogits(logits: readonly Float32Array[], weights: ArrayLike<number>): Float32Array {
  if (logits.length !== weights.length) throw new RangeError(`combineLogits: ${logits.length} experts' logits, ${weights.length} weights`);
  const out = new Float32Array(logits[0]!.length);
  logits.forEach((l, k) => {
    if (l.length !== out.length) throw new RangeError(`combineLogits: expert ${k}'s logits hold ${l.length} values, expert 0's ${out.length}`);
    const w = weights[k]!;
    for (let i = 0; i < out.length; i++) out[i]! += w * l[i]!;
  });
  return out;
}
