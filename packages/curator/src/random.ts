/** Small deterministic hashing and random numbers: sampling must be reproducible from a seed. */

/** A 32-bit finaliser (murmur3 fmix32). */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over the UTF-16 code units of `s`, finalised: a 32-bit hash of a name. */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/**
 * A uniform number in [0, 1) determined by (seed, a, b) alone: the draw for one pair, where `a`
 * names its shard (`hashString` of the shard's name) and `b` its position there (a byte offset or
 * a hashed sample key, any integer below 2^53). It does not depend on the order in which pairs are
 * visited, so the result is the same with 1 worker or 64, and when a run is resumed.
 */
export function pairUniform(seed: number, a: number, b: number): number {
  const bLo = b >>> 0;
  const bHi = Math.floor(b / 4294967296) >>> 0;
  let h = mix32((seed >>> 0) ^ 0x9e3779b9);
  h = mix32(h ^ (a >>> 0));
  h = mix32((h + Math.imul(bLo, 0xcc9e2d51)) >>> 0);
  const hi = mix32(h ^ bHi ^ 0x68e31da4);
  const lo = mix32(hi ^ 0x1b873593 ^ bLo);
  return ((hi >>> 5) * 67108864 + (lo >>> 6)) / 9007199254740992;
}

/** mulberry32: a fast seeded generator for synthetic data and tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
