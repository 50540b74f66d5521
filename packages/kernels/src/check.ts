/** Tools every kernel check uses: a seeded generator, NaN poisoning, relative error. */

/** mulberry32: small, fast, and the same sequence on every machine for a given seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh seed (printed by callers so a failure can be replayed with MODE_SEED=…). */
export function freshSeed(): number {
  const fromEnv = process.env.MODE_SEED;
  return fromEnv ? Number(fromEnv) : (Math.random() * 2 ** 32) >>> 0;
}

/** Uniform values in [lo, hi). */
export function randomArray(n: number, random: () => number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * random();
  return out;
}

export function nanArray(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

/**
 * ‖out − ref‖₂ / ‖ref‖₂ in float64 over the finite reference values; NaN anywhere in `out` (an
 * unwritten element) gives Infinity, and so does an infinite reference value that `out` misses.
 */
export function relativeError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`relativeError: lengths differ (${out.length} vs ${ref.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i]!;
    const r = ref[i]!;
    if (Number.isNaN(o)) return Infinity;
    if (!Number.isFinite(r)) {
      if (o !== r) return Infinity;
      continue;
    }
    num += (o - r) ** 2;
    den += r ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
