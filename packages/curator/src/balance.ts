import { pairUniform } from './random.js';

/**
 * Balancing (algorithms.md §1): `p_e = t / max(count_e, t)`; a pair is kept with probability
 * `1 − ∏_{e ∈ matches} (1 − p_e)`; unmatched pairs are dropped; `t = ∞` keeps every matched pair.
 */

/** Per-entry sampling probabilities from the pool's entry counts. `t = Infinity` gives 1 everywhere. */
export function entryProbabilities(counts: ArrayLike<number>, t: number): Float64Array {
  if (!(t > 0)) throw new RangeError(`t must be positive (got ${t})`);
  const p = new Float64Array(counts.length);
  for (let e = 0; e < counts.length; e++) p[e] = t === Infinity ? 1 : t / Math.max(counts[e]!, t);
  return p;
}

/** The probability of keeping a pair whose matched entry ids are `ids[0..n)`: `1 − ∏(1 − p_e)`; 0 with no match. */
export function keepProbability(ids: ArrayLike<number>, n: number, p: Float64Array): number {
  let q = 1;
  for (let i = 0; i < n; i++) {
    const pe = p[ids[i]!]!;
    if (pe >= 1) return 1;
    q *= 1 - pe;
  }
  return n === 0 ? 0 : 1 - q;
}

/**
 * The keep decision for one pair: one uniform draw `u` from (seed, shard, position), kept when
 * `u < keepProbability`. One draw against `1 − ∏(1 − p_e)` is distributed exactly as the
 * reference's independent Bernoulli(p_e) per matched entry, kept if any succeeds.
 */
export function keepPair(prob: number, seed: number, shardHash: number, position: number): boolean {
  return prob >= 1 || (prob > 0 && pairUniform(seed, shardHash, position) < prob);
}

/**
 * The online variant's draw at load time: a loader that stored `prob` per pair (`metaclip_p`)
 * keeps the pair for epoch `epoch` when this returns true; a fresh balanced subset each epoch.
 */
export function keepAtLoad(prob: number, seed: number, epoch: number, shardHash: number, position: number): boolean {
  return keepPair(prob, (seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0, shardHash, position);
}
