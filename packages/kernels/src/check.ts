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
  const fromEnv = typeof process === 'undefined' ? undefined : process.env.MODE_SEED;
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

/** Rounds float32 values to the nearest float16 and returns their bit patterns (Node 20 has no Float16Array). */
export function toF16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff)
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
    else if (exp >= 0x1f)
      out[i] = sign | 0x7c00; // overflow to inf
    else if (exp <= 0) {
      if (exp < -10)
        out[i] = sign; // underflow to zero
      else {
        mant |= 0x800000; // subnormal: shift in the implicit bit, round to nearest even
        const shift = 14 - exp;
        const half = 1 << (shift - 1);
        let m = mant >>> shift;
        const rest = mant & ((1 << shift) - 1);
        if (rest > half || (rest === half && m & 1)) m++;
        out[i] = sign | m;
      }
    } else {
      let h = sign | (exp << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
      out[i] = h;
    }
  }
  return out;
}

/** float16 bit patterns to numbers. */
export function fromF16Bits(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    out[i] = exp === 0 ? sign * mant * 2 ** -24 : exp === 0x1f ? (mant ? NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}
