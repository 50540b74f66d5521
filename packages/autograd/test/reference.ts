/** CPU float64 references of the autograd's ops on row-major arrays, for the gradient checks. */
import { contiguousStrides } from '@mode/kernels';

export interface Arr {
  d: Float64Array;
  s: number[];
}

export const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
export const arr = (d: ArrayLike<number>, s: number[]): Arr => ({ d: Float64Array.from(d), s });

export function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => Math.max(a[i - n + a.length] ?? 1, b[i - n + b.length] ?? 1));
}

/** Value of `x` at the multi-index `idx` of a (possibly larger) broadcast shape. */
function at(x: Arr, idx: number[]): number {
  const st = contiguousStrides(x.s);
  let off = 0;
  for (let k = 0; k < x.s.length; k++) {
    const i = idx[idx.length - x.s.length + k]!;
    off += (x.s[k] === 1 ? 0 : i) * st[k]!;
  }
  return x.d[off]!;
}

function indexOf(i: number, s: number[]): number[] {
  const idx = new Array<number>(s.length);
  for (let k = s.length - 1; k >= 0; k--) {
    idx[k] = i % s[k]!;
    i = Math.floor(i / s[k]!);
  }
  return idx;
}

export function binary(f: (x: number, y: number) => number, a: Arr, b: Arr): Arr {
  const s = broadcast(a.s, b.s);
  return { s, d: Float64Array.from({ length: numel(s) }, (_, i) => f(at(a, indexOf(i, s)), at(b, indexOf(i, s)))) };
}

export const map = (f: (x: number) => number, a: Arr): Arr => ({ s: a.s, d: a.d.map(f) });

export function reduceAxes(f: 'sum' | 'mean' | 'max', x: Arr, axes: number[], keep = false): Arr {
  const ks = x.s.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Float64Array(numel(ks)).fill(f === 'max' ? -Infinity : 0);
  const kst = contiguousStrides(ks);
  for (let i = 0; i < x.d.length; i++) {
    const idx = indexOf(i, x.s);
    const o = idx.reduce((s, v, k) => s + (axes.includes(k) ? 0 : v) * kst[k]!, 0);
    out[o] = f === 'max' ? Math.max(out[o]!, x.d[i]!) : out[o]! + x.d[i]!;
  }
  const count = numel(axes.map((a) => x.s[a]!));
  if (f === 'mean') for (let i = 0; i < out.length; i++) out[i]! /= count;
  return { d: out, s: keep ? ks : x.s.filter((_, i) => !axes.includes(i)) };
}

export function permute(x: Arr, dims: number[]): Arr {
  const s = dims.map((a) => x.s[a]!);
  const st = contiguousStrides(x.s);
  return { s, d: Float64Array.from({ length: x.d.length }, (_, i) => x.d[indexOf(i, s).reduce((o, v, k) => o + v * st[dims[k]!]!, 0)]!) };
}

export function slice(x: Arr, axis: number, start: number, end: number): Arr {
  const s = x.s.map((d, i) => (i === axis ? end - start : d));
  const st = contiguousStrides(x.s);
  return { s, d: Float64Array.from({ length: numel(s) }, (_, i) => x.d[indexOf(i, s).reduce((o, v, k) => o + (k === axis ? v + start : v) * st[k]!, 0)]!) };
}

export function concat(xs: Arr[], axis: number): Arr {
  const s = xs[0]!.s.map((d, i) => (i === axis ? xs.reduce((a, x) => a + x.s[axis]!, 0) : d));
  const d = new Float64Array(numel(s));
  for (let i = 0; i < d.length; i++) {
    const idx = indexOf(i, s);
    let k = 0;
    let pos = idx[axis]!;
    while (pos >= xs[k]!.s[axis]!) pos -= xs[k++]!.s[axis]!;
    d[i] = at(
      xs[k]!,
      idx.map((v, j) => (j === axis ? pos : v)),
    );
  }
  return { s, d };
}

/** Rows of x's last axis, normalised (layer norm without affine). */
export function layerNorm(x: Arr, eps: number): Arr {
  const n = x.s[x.s.length - 1]!;
  const d = new Float64Array(x.d.length);
  for (let r = 0; r < x.d.length / n; r++) {
    const row = x.d.subarray(r * n, (r + 1) * n);
    const m = row.reduce((a, b) => a + b, 0) / n;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / n;
    for (let j = 0; j < n; j++) d[r * n + j] = (row[j]! - m) / Math.sqrt(v + eps);
  }
  return { s: x.s, d };
}

/** Central differences of L(xs) = Σ w·f(xs) in float64, for input `which`. */
export function numericGrad(f: (xs: Arr[]) => Arr, xs: Arr[], w: Float64Array, which: number, h = 1e-5): Float64Array {
  const g = new Float64Array(xs[which]!.d.length);
  const L = () => f(xs).d.reduce((s, v, i) => s + v * w[i]!, 0);
  for (let i = 0; i < g.length; i++) {
    const x0 = xs[which]!.d[i]!;
    xs[which]!.d[i] = x0 + h;
    const up = L();
    xs[which]!.d[i] = x0 - h;
    const down = L();
    xs[which]!.d[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
