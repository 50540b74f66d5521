import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/** Ops of kernels/strided.wgsl; `copy` ignores b, `eq` gives 1 where a = b and 0 elsewhere. */
export const STRIDED_OPS = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, copy: 6, eq: 7 } as const;
export type StridedOp = keyof typeof STRIDED_OPS;

/** An operand's place in its buffer: offset and per-axis strides, in elements (stride 0 broadcasts). */
export interface StridedView {
  offset?: number;
  strides: number[];
}

export interface StridedProblem {
  /** The iteration shape (any rank; merged to at most 4 axes). */
  shape: number[];
  a: StridedView;
  /** Ignored by `copy` (default: a's view). */
  b?: StridedView;
  out: StridedView;
}

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Merges adjacent axes that every operand walks contiguously (stride[i] = stride[i+1]·shape[i+1])
 * and drops axes of length 1, so that most problems fit the kernel's four axes.
 */
export function coalesce(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const dims: { n: number; s: number[] }[] = [];
  shape.forEach((n, i) => {
    if (n !== 1) dims.push({ n, s: strides.map((st) => st[i]!) });
  });
  const merged: { n: number; s: number[] }[] = [];
  for (const d of dims) {
    const last = merged[merged.length - 1];
    if (last && last.s.every((st, k) => st === d.s[k]! * d.n)) {
      last.n *= d.n;
      last.s = d.s;
    } else merged.push({ n: d.n, s: [...d.s] });
  }
  return { shape: merged.map((d) => d.n), strides: strides.map((_, k) => merged.map((d) => d.s[k]!)) };
}

/** Records out[view_out(i)] = op(a[view_a(i)], b[view_b(i)]) for every index i of `shape`. */
export async function strided(gpu: Gpu, op: StridedOp, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, p: StridedProblem): Promise<void> {
  const rank = p.shape.length;
  const bView = p.b ?? p.a;
  for (const [name, v] of [
    ['a', p.a],
    ['b', bView],
    ['out', p.out],
  ] as const) {
    if (v.strides.length !== rank) throw new Error(`strided ${op}: ${name} has ${v.strides.length} strides for a rank-${rank} shape`);
  }
  const n = p.shape.reduce((x, y) => x * y, 1);
  if (!Number.isInteger(n) || n < 1 || p.shape.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`strided ${op}: bad shape [${p.shape}]`);
  const c = coalesce(p.shape, [p.a.strides, bView.strides, p.out.strides]);
  if (c.shape.length > 4) {
    // The kernel takes 4 axes: one dispatch per index of the leading extra axis.
    const views = [p.a, bView, p.out];
    const rest = (i: number, k: number): StridedView => ({ offset: (views[i]!.offset ?? 0) + k * c.strides[i]![0]!, strides: c.strides[i]!.slice(1) });
    for (let k = 0; k < c.shape[0]!; k++) await strided(gpu, op, a, b, out, { shape: c.shape.slice(1), a: rest(0, k), b: rest(1, k), out: rest(2, k) });
    return;
  }
  const pad = (xs: number[], fill: number) => [...new Array<number>(4 - xs.length).fill(fill), ...xs];
  // Runs of 8 or 4 along the last axis when they tile it (see kernels/strided.wgsl).
  const last = c.shape[c.shape.length - 1]!;
  const run = last % 8 === 0 ? 8 : last % 4 === 0 ? 4 : 1;
  const kernel = await gpu.kernel('strided', { OP: STRIDED_OPS[op], RUN: run, RANK: Math.max(1, c.shape.length) });
  gpu.dispatch(kernel, {
    bindings: { a, b, out },
    uniforms: {
      shape: pad(c.shape, 1),
      stride_a: pad(c.strides[0]!, 0),
      stride_b: pad(c.strides[1]!, 0),
      stride_out: pad(c.strides[2]!, 0),
      offset: [p.a.offset ?? 0, bView.offset ?? 0, p.out.offset ?? 0, n],
    },
    workgroups: grid(n / run, 256),
    work: { flops: op === 'copy' ? 0 : n, bytes: (op === 'copy' ? 8 : 12) * n },
    label: `strided ${op} [${p.shape}]`,
  });
}

/** CPU float64 reference; writes into `out` (a copy of the output buffer's contents) and returns it. */
export function stridedReference(op: StridedOp, a: ArrayLike<number>, b: ArrayLike<number>, out: Float64Array, p: StridedProblem): Float64Array {
  const f: Record<StridedOp, (x: number, y: number) => number> = {
    add: (x, y) => x + y,
    sub: (x, y) => x - y,
    mul: (x, y) => x * y,
    div: (x, y) => x / y,
    max: Math.max,
    min: Math.min,
    copy: (x) => x,
    eq: (x, y) => (x === y ? 1 : 0),
  };
  const bView = p.b ?? p.a;
  const n = p.shape.reduce((x, y) => x * y, 1);
  const idx = new Array<number>(p.shape.length).fill(0);
  const at = (v: StridedView) => (v.offset ?? 0) + idx.reduce((s, x, k) => s + x * v.strides[k]!, 0);
  for (let i = 0; i < n; i++) {
    let r = i;
    for (let k = p.shape.length - 1; k >= 0; k--) {
      idx[k] = r % p.shape[k]!;
      r = Math.floor(r / p.shape[k]!);
    }
    out[at(p.out)] = f[op](a[at(p.a)]!, op === 'copy' ? 0 : b[at(bView)]!);
  }
  return out;
}
