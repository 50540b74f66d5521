import {
  contiguousStrides,
  fill,
  logSoftmax as logSoftmaxKernel,
  matmul as matmulKernel,
  reduce as reduceKernel,
  softmax as softmaxKernel,
  softmaxBackward,
  strided,
  unary,
  type MatmulProblem,
  type ReduceOp,
  type StridedOp,
  type UnaryOp,
  type UnaryParams,
} from '@mode/kernels';
import { record, Tensor } from './tensor.js';

/**
 * The core ops. Each is its forward (kernels queued on the engine) followed by record(), whose
 * closure is its backward: the gradients of its inputs from the gradient of its output.
 * Backward closures run with grad disabled, inside a tidy() scope.
 */

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function live(...ts: Tensor[]): void {
  for (const t of ts) t.buffer; // throws a clear error for a disposed tensor
  const e = ts[0]!.engine;
  if (ts.some((t) => t.engine !== e)) throw new Error('ops: tensors live on different devices');
  for (const t of ts) if (t.dtype !== 'f32') throw new TypeError(`ops: ${t.describe()} is not f32`);
}

export function normAxis(axis: number, ndim: number, what = 'axis'): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(ndim, 1)) throw new RangeError(`${what} ${axis} is out of range for rank ${ndim}`);
  return a;
}

// ---- raw kernels on tensors (no graph) ------------------------------------------------------

interface View {
  t: Tensor;
  offset?: number;
  strides: number[];
}

/** out[view_out(i)] = op(a(i), b(i)) over `shape`; queued. */
export function stridedInto(op: StridedOp, shape: readonly number[], a: View, b: View | null, out: View): void {
  const [ab, bb, ob] = [a.t.buffer, (b ?? a).t.buffer, out.t.buffer];
  const p = {
    shape: shape.length ? [...shape] : [1],
    a: { offset: a.offset ?? 0, strides: shape.length ? a.strides : [0] },
    b: { offset: (b ?? a).offset ?? 0, strides: shape.length ? (b ?? a).strides : [0] },
    out: { offset: out.offset ?? 0, strides: shape.length ? out.strides : [0] },
  };
  const e = out.t.engine;
  e.enqueue(`strided ${op}`, () => strided(e.gpu, op, ab, bb, ob, p));
}

/** Numpy broadcasting of two shapes. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[i - n + a.length] ?? 1;
    const y = b[i - n + b.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new RangeError(`shapes [${a}] and [${b}] do not broadcast (axis ${i}: ${x} vs ${y})`);
    return Math.max(x, y);
  });
}

/** Strides reading a contiguous tensor of `shape` as if it had `out` (0 on broadcast axes). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const c = contiguousStrides([...shape]);
  return out.map((d, i) => {
    const k = i - out.length + shape.length;
    return k < 0 || shape[k] === 1 ? 0 : c[k]!;
  });
}

function binaryRaw(op: StridedOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  const out = Tensor.empty(a.engine, shape, 'f32', op);
  stridedInto(
    op,
    shape,
    { t: a, strides: broadcastStrides(a.shape, shape) },
    { t: b, strides: broadcastStrides(b.shape, shape) },
    { t: out, strides: contiguousStrides(shape) },
  );
  return out;
}

/** x broadcast to `shape`, materialised. */
function expandRaw(x: Tensor, shape: readonly number[]): Tensor {
  const out = Tensor.empty(x.engine, shape, 'f32', 'expand');
  stridedInto('copy', shape, { t: x, strides: broadcastStrides(x.shape, shape) }, null, { t: out, strides: contiguousStrides([...shape]) });
  return out;
}

export function unaryRaw(op: UnaryOp, x: Tensor, params: UnaryParams = {}, dy?: Tensor): Tensor {
  const out = Tensor.empty(x.engine, x.shape, 'f32', op);
  const [xb, db, ob, e] = [x.buffer, (dy ?? x).buffer, out.buffer, x.engine];
  e.enqueue(`unary ${op}`, () => unary(e.gpu, op, xb, ob, out.size, params, db));
  return out;
}

/**
 * Reduces `axes` (sorted, distinct) of x, keeping them as length-1 axes. Each run of adjacent
 * axes is one [outer, len, inner] reduction; `mean` scales each by 1/len.
 */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], mean = false): Tensor {
  let cur = x;
  let shape = [...x.shape];
  for (let i = 0; i < axes.length;) {
    let j = i + 1;
    while (j < axes.length && axes[j] === axes[j - 1]! + 1) j++;
    const [lo, hi] = [axes[i]!, axes[j - 1]! + 1];
    const p = { outer: numel(shape.slice(0, lo)), len: numel(shape.slice(lo, hi)), inner: numel(shape.slice(hi)) };
    shape = shape.map((d, k) => (k >= lo && k < hi ? 1 : d));
    const out = Tensor.empty(x.engine, shape, 'f32', `reduce ${op}`);
    const [cb, ob, e] = [cur.buffer, out.buffer, x.engine];
    e.enqueue(`reduce ${op}`, () => reduceKernel(e.gpu, op, cb, ob, { ...p, alpha: mean ? 1 / p.len : 1 }));
    if (cur !== x) cur.dispose();
    cur = out;
    i = j;
  }
  return cur === x ? x.view(x.shape) : cur;
}

/** Sums g down to `shape` (the reverse of broadcasting): the gradient of a broadcast input. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (same(g.shape, shape)) return g.view(shape);
  const lead = g.ndim - shape.length;
  const axes = g.shape.map((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? i : -1)).filter((i) => i >= 0);
  const r = reduceRaw('sum', g, axes);
  const out = r.view(shape);
  r.dispose();
  return out;
}

// ---- elementwise with broadcasting ----------------------------------------------------------

/** alpha·x + beta. */
export function affine(x: Tensor, alpha: number, beta = 0): Tensor {
  live(x);
  return record('affine', unaryRaw('affine', x, { alpha, beta }), [x], [], (g) => [unaryRaw('affine', g, { alpha, beta: 0 })]);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, b);
  live(a, b);
  return record('add', binaryRaw('add', a, b), [a, b], [], (g) => [a.requiresGrad ? sumTo(g, a.shape) : null, b.requiresGrad ? sumTo(g, b.shape) : null]);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  live(a, b);
  return record('sub', binaryRaw('sub', a, b), [a, b], [], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? unaryRaw('affine', sumTo(g, b.shape), { alpha: -1 }) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, b, 0);
  live(a, b);
  return record('mul', binaryRaw('mul', a, b), [a, b], [a, b], (g, [sa, sb]) => [
    a.requiresGrad ? sumTo(binaryRaw('mul', g, sb!), a.shape) : null,
    b.requiresGrad ? sumTo(binaryRaw('mul', g, sa!), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === 'number') return affine(a, 1 / b, 0);
  live(a, b);
  const out = binaryRaw('div', a, b);
  // d(a/b)/da = 1/b; d(a/b)/db = −(a/b)/b
  return record('div', out, [a, b], [b, out], (g, [sb, so]) => [
    a.requiresGrad ? sumTo(binaryRaw('div', g, sb!), a.shape) : null,
    b.requiresGrad ? unaryRaw('affine', sumTo(binaryRaw('div', binaryRaw('mul', g, so!), sb!), b.shape), { alpha: -1 }) : null,
  ]);
}

export const neg = (x: Tensor) => affine(x, -1, 0);

/** Elementwise max/min (no gradient: for masks and clipping factors). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  live(a, b);
  return binaryRaw('max', a, b);
}
export function minimum(a: Tensor, b: Tensor): Tensor {
  live(a, b);
  return binaryRaw('min', a, b);
}

// ---- unary ------------------------------------------------------------------------------------

/** A unary op whose backward reads its output (y) or its input (x). */
function unaryOp(op: UnaryOp, bwd: UnaryOp, saves: 'x' | 'y', x: Tensor, params: UnaryParams = {}): Tensor {
  live(x);
  const out = unaryRaw(op, x, params);
  return record(op, out, [x], [saves === 'y' ? out : x], (g, [s]) => [unaryRaw(bwd, s!, params, g)]);
}

export const exp = (x: Tensor) => unaryOp('exp', 'exp_bwd', 'y', x);
export const log = (x: Tensor) => unaryOp('log', 'log_bwd', 'x', x);
export const sqrt = (x: Tensor) => unaryOp('sqrt', 'sqrt_bwd', 'y', x);
export const relu = (x: Tensor) => unaryOp('relu', 'relu_bwd', 'y', x);
export interface GeluOptions {
  /** 'tanh' (default): the tanh approximation, as the matmul epilogue; 'none': exact x·Φ(x), PyTorch's default and OpenCLIP's. */
  approximate?: 'tanh' | 'none';
}
/** GELU, as torch.nn.functional.gelu: the tanh approximation by default (kept for existing callers), `approximate: 'none'` for the exact (erf) form. */
export function gelu(x: Tensor, o: GeluOptions = {}): Tensor {
  const a = o.approximate ?? 'tanh';
  if (a !== 'tanh' && a !== 'none') throw new RangeError(`gelu: approximate must be 'tanh' or 'none', got ${JSON.stringify(a)}`);
  return a === 'tanh' ? unaryOp('gelu', 'gelu_bwd', 'x', x) : unaryOp('gelu_erf', 'gelu_erf_bwd', 'x', x);
}
/** OpenAI's QuickGELU, x·σ(1.702x): the activation of OpenAI's trained CLIPs (OpenCLIP's `quick_gelu`). */
export const quickGelu = (x: Tensor) => unaryOp('quick_gelu', 'quick_gelu_bwd', 'x', x);
export const tanh = (x: Tensor) => unaryOp('tanh', 'tanh_bwd', 'y', x);
export const sigmoid = (x: Tensor) => unaryOp('sigmoid', 'sigmoid_bwd', 'y', x);
/** Clamped to [lo, hi]; the gradient passes where x is inside. */
export const clamp = (x: Tensor, lo: number, hi: number) => unaryOp('clamp', 'clamp_bwd', 'x', x, { alpha: lo, beta: hi });

// ---- reductions -------------------------------------------------------------------------------

function axesOf(x: Tensor, axes: number | number[] | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => normAxis(a, x.ndim)))].sort((a, b) => a - b);
}

function reduction(kind: 'sum' | 'mean' | 'max', x: Tensor, axes: number | number[] | undefined, keepDims: boolean): Tensor {
  live(x);
  const ax = axesOf(x, axes);
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const r = reduceRaw(kind === 'max' ? 'max' : 'sum', x, ax, kind === 'mean');
  const out = r.view(keepDims ? kept : x.shape.filter((_, i) => !ax.includes(i)));
  const count = numel(ax.map((a) => x.shape[a]!));
  const result = record(kind, out, [x], kind === 'max' ? [x, r] : [], (g, [sx, sr]) => {
    const gk = g.view(kept);
    if (kind === 'sum') return [expandRaw(gk, x.shape)];
    if (kind === 'mean') return [unaryRaw('affine', expandRaw(gk, x.shape), { alpha: 1 / count })];
    // max: the gradient goes to every element equal to the maximum (ties each get all of it)
    return [binaryRaw('mul', binaryRaw('eq', sx!, sr!), gk)];
  });
  r.dispose();
  return result;
}

/** Sum over `axes` (default: all, giving a scalar of shape []). */
export const sum = (x: Tensor, axes?: number | number[], keepDims = false) => reduction('sum', x, axes, keepDims);
export const mean = (x: Tensor, axes?: number | number[], keepDims = false) => reduction('mean', x, axes, keepDims);
export const max = (x: Tensor, axes?: number | number[], keepDims = false) => reduction('max', x, axes, keepDims);

// ---- shape ------------------------------------------------------------------------------------

/** Same data, another shape (one dimension may be −1). No copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  live(x);
  const known = numel(shape.filter((d) => d !== -1));
  const s = shape.map((d) => (d === -1 ? x.size / known : d));
  if (numel(s) !== x.size || s.some((d) => !Number.isInteger(d))) throw new RangeError(`reshape: [${x.shape}] (${x.size} elements) cannot become [${shape}]`);
  return record('reshape', x.view(s), [x], [], (g) => [g.view(x.shape)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  live(x);
  const d = dims.map((a) => normAxis(a, x.ndim));
  if (d.length !== x.ndim || new Set(d).size !== d.length) throw new RangeError(`permute: [${dims}] is not a permutation of ${x.ndim} axes`);
  const shape = d.map((a) => x.shape[a]!);
  const xs = contiguousStrides([...x.shape]);
  const out = Tensor.empty(x.engine, shape, 'f32', 'permute');
  stridedInto('copy', shape, { t: x, strides: d.map((a) => xs[a]!) }, null, { t: out, strides: contiguousStrides(shape) });
  const inverse = d.map((_, i) => d.indexOf(i));
  return record('permute', out, [x], [], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const [i, j] = [normAxis(a, x.ndim), normAxis(b, x.ndim)];
  [dims[i], dims[j]] = [dims[j]!, dims[i]!];
  return permute(x, dims);
}

/** Elements start…end−1 along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  live(x);
  const ax = normAxis(axis, x.ndim);
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= x.shape[ax]!))
    throw new RangeError(`slice: ${start}…${end} is not a non-empty range within axis ${axis} of length ${x.shape[ax]}`);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const xs = contiguousStrides([...x.shape]);
  const out = Tensor.empty(x.engine, shape, 'f32', 'slice');
  stridedInto('copy', shape, { t: x, offset: start * xs[ax]!, strides: xs }, null, { t: out, strides: contiguousStrides(shape) });
  return record('slice', out, [x], [], (g) => {
    const full = Tensor.empty(g.engine, x.shape, 'f32', 'slice bwd');
    const fb = full.buffer;
    g.engine.enqueue('slice bwd zero', () => fill(g.engine.gpu, fb, full.size, 0));
    stridedInto('copy', shape, { t: g, strides: contiguousStrides(shape) }, null, { t: full, offset: start * xs[ax]!, strides: xs });
    return [full];
  });
}

/** Joins tensors along `axis` (all other axes equal). */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: no tensors');
  live(...xs);
  const ax = normAxis(axis, xs[0]!.ndim);
  for (const t of xs)
    if (t.ndim !== xs[0]!.ndim || t.shape.some((d, i) => i !== ax && d !== xs[0]!.shape[i]))
      throw new RangeError(`concat: shapes ${xs.map((t) => `[${t.shape}]`).join(', ')} differ outside axis ${axis}`);
  const shape = xs[0]!.shape.map((d, i) => (i === ax ? xs.reduce((s, t) => s + t.shape[ax]!, 0) : d));
  const os = contiguousStrides(shape);
  const out = Tensor.empty(xs[0]!.engine, shape, 'f32', 'concat');
  const starts: number[] = [];
  let at = 0;
  for (const t of xs) {
    starts.push(at);
    stridedInto('copy', t.shape, { t, strides: contiguousStrides([...t.shape]) }, null, { t: out, offset: at * os[ax]!, strides: os });
    at += t.shape[ax]!;
  }
  return record('concat', out, xs, [], (g) => xs.map((t, i) => (t.requiresGrad ? slice(g, ax, starts[i]!, starts[i]! + t.shape[ax]!) : null)));
}

/** x broadcast to `shape` (materialised). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  live(x);
  if (!same(broadcastShape(x.shape, shape), shape)) throw new RangeError(`expand: [${x.shape}] does not broadcast to [${shape}]`);
  return record('expand', expandRaw(x, shape), [x], [], (g) => [sumTo(g, x.shape)]);
}

// ---- matmul -----------------------------------------------------------------------------------

function mmInto(c: Tensor, a: Tensor, b: Tensor, p: MatmulProblem, bias?: Tensor): void {
  const [ab, bb, cb, biasb, e] = [a.buffer, b.buffer, c.buffer, bias?.buffer, c.engine];
  e.enqueue(`matmul ${p.m}×${p.n}×${p.k}`, () => matmulKernel(e.gpu, ab, bb, cb, { ...p, ...(biasb ? { bias: biasb } : {}) }));
}

/**
 * a·b with the autotuned matmul: a [..., M, K] · b [K, N] (leading axes of a are rows), or
 * batched a [..., M, K] · b [..., K, N] with equal leading axes. The backward uses the kernel's
 * transposed layouts (dA = g·Bᵀ, dB = Aᵀ·g) instead of materialising transposes.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  live(a, b);
  if (a.ndim < 2 || b.ndim < 2) throw new RangeError(`matmul: needs matrices, got [${a.shape}] and [${b.shape}]`);
  const K = a.shape[a.ndim - 1]!;
  const N = b.shape[b.ndim - 1]!;
  if (b.shape[b.ndim - 2] !== K) throw new RangeError(`matmul: [${a.shape}] · [${b.shape}]: inner dimensions ${K} and ${b.shape[b.ndim - 2]} differ`);
  const batched = b.ndim > 2;
  if (batched && (a.ndim !== b.ndim || !same(a.shape.slice(0, -2), b.shape.slice(0, -2))))
    throw new RangeError(`matmul: batched [${a.shape}] · [${b.shape}] needs equal leading axes`);
  const batch = batched ? numel(b.shape.slice(0, -2)) : 1;
  const M = batched ? a.shape[a.ndim - 2]! : a.size / K;
  const shape = [...a.shape.slice(0, -1), N];
  const out = Tensor.empty(a.engine, shape, 'f32', 'matmul');
  mmInto(out, a, b, { m: M, n: N, k: K, batch });
  return record('matmul', out, [a, b], [a, b], (g, [sa, sb]) => {
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) mmInto((da = Tensor.empty(a.engine, a.shape, 'f32', 'dA')), g, sb!, { m: M, n: K, k: N, transB: true, batch });
    if (b.requiresGrad) mmInto((db = Tensor.empty(a.engine, b.shape, 'f32', 'dB')), sa!, g, { m: K, n: N, k: M, transA: true, batch });
    return [da, db];
  });
}

/**
 * dW = gᵀ·x for a weight w [out, in] over `rows` rows and, when b trains, db = Σ_rows g: the row
 * sums of that same Aᵀ·B (rowSumsA), or a reduction when w is frozen.
 */
function weightGrads(g: Tensor, x: Tensor, w: Tensor, b: Tensor | undefined, rows: number): [Tensor | null, Tensor | null] {
  const [O, I] = [w.shape[0]!, w.shape[1]!];
  if (!w.requiresGrad) return [null, b?.requiresGrad ? sumTo(g.view([rows, O]), [O]) : null];
  const db = b?.requiresGrad ? Tensor.empty(g.engine, [O], 'f32', 'db') : null;
  const dw = Tensor.empty(g.engine, w.shape, 'f32', 'dW');
  mmInto(dw, g, x, { m: O, n: I, k: rows, transA: true, ...(db ? { rowSumsA: db.buffer } : {}) });
  return [dw, db];
}

/** out = residual (copied), then the matmul adds into it (β = 1): a residual stream's add in the epilogue. */
function residualInto(out: Tensor, residual: Tensor | undefined, op: string): number {
  if (!residual) return 0;
  live(residual);
  if (!same(residual.shape, out.shape)) throw new RangeError(`${op}: residual [${residual.shape}] should be the output's shape [${out.shape}]`);
  const [rb, ob, bytes, e] = [residual.buffer, out.buffer, 4 * out.size, out.engine];
  e.enqueue(`${op} residual`, () => e.gpu.copyBuffer(rb, 0, ob, 0, bytes));
  return 1;
}

/**
 * x·Wᵀ + b, PyTorch's nn.Linear layout: x [..., in], w [out, in], b [out]; the bias is the
 * matmul's epilogue, and so is `residual` (same shape as the output) when given: residual + x·Wᵀ + b.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor, residual?: Tensor): Tensor {
  live(x, w, ...(b ? [b] : []));
  const [O, I] = [w.shape[0]!, w.shape[1]!];
  if (w.ndim !== 2 || x.shape[x.ndim - 1] !== I) throw new RangeError(`linear: input [${x.shape}] does not match weight [${w.shape}] (expects [..., ${I}])`);
  if (b && (b.ndim !== 1 || b.shape[0] !== O)) throw new RangeError(`linear: bias [${b.shape}] should be [${O}]`);
  const rows = x.size / I;
  const out = Tensor.empty(x.engine, [...x.shape.slice(0, -1), O], 'f32', 'linear');
  const beta = residualInto(out, residual, 'linear');
  mmInto(out, x, w, { m: rows, n: O, k: I, transB: true, beta }, b);
  const inputs = [x, w, ...(b ? [b] : []), ...(residual ? [residual] : [])];
  return record('linear', out, inputs, [x, w], (g, [sx, sw]) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) mmInto((dx = Tensor.empty(x.engine, x.shape, 'f32', 'dx')), g, sw!, { m: rows, n: I, k: O });
    const [dw, db] = weightGrads(g, sx!, w, b, rows);
    const grads = [dx, dw];
    if (b) grads.push(db);
    if (residual) grads.push(residual.requiresGrad ? g.view(residual.shape) : null);
    return grads;
  });
}

/**
 * A transformer MLP, c_proj(GELU(c_fc(x))) as OpenCLIP's block, with the exact GELU (nn.GELU) or
 * `gelu` 'quick' (QuickGELU, x·σ(1.702x), OpenAI's trained CLIPs):
 * x [..., in], w1 [hidden, in], b1 [hidden], w2 [out, hidden], b2 [out]. One op so that GELU
 * lives in the matmul epilogues: the forward's x·W1ᵀ + b1 writes GELU of itself and keeps the
 * value before it (h); the backward's dy·W2 comes out multiplied by GELU'(h), so neither the
 * activation nor its gradient is a pass of its own. (Variants without those epilogues run the
 * unary passes inside matmul().) `residual` (the output's shape) is added in c_proj's epilogue.
 */
export function mlp(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, residual?: Tensor, gelu: 'erf' | 'quick' = 'erf'): Tensor {
  live(x, w1, b1, w2, b2);
  const [H, I] = [w1.shape[0]!, w1.shape[1]!];
  const O = w2.shape[0]!;
  if (w1.ndim !== 2 || x.shape[x.ndim - 1] !== I)
    throw new RangeError(`mlp: input [${x.shape}] does not match c_fc weight [${w1.shape}] (expects [..., ${I}])`);
  if (w2.ndim !== 2 || w2.shape[1] !== H) throw new RangeError(`mlp: c_proj weight [${w2.shape}] should be [out, ${H}]`);
  if (b1.ndim !== 1 || b1.shape[0] !== H) throw new RangeError(`mlp: c_fc bias [${b1.shape}] should be [${H}]`);
  if (b2.ndim !== 1 || b2.shape[0] !== O) throw new RangeError(`mlp: c_proj bias [${b2.shape}] should be [${O}]`);
  const rows = x.size / I;
  const lead = x.shape.slice(0, -1);
  const h = Tensor.empty(x.engine, [...lead, H], 'f32', 'mlp pre-GELU');
  const g = Tensor.empty(x.engine, [...lead, H], 'f32', 'mlp GELU');
  mmInto(g, x, w1, { m: rows, n: H, k: I, transB: true, geluPre: h.buffer, geluKind: gelu }, b1);
  const out = Tensor.empty(x.engine, [...lead, O], 'f32', 'mlp');
  const beta = residualInto(out, residual, 'mlp');
  mmInto(out, g, w2, { m: rows, n: O, k: H, transB: true, beta }, b2);
  const inputs = [x, w1, b1, w2, b2, ...(residual ? [residual] : [])];
  const result = record('mlp', out, inputs, [x, w1, w2, h, g], (dy, [sx, sw1, sw2, sh, sg]) => {
    const grads: (Tensor | null)[] = [null, null, null, null, null];
    if (residual) grads.push(residual.requiresGrad ? dy.view(residual.shape) : null);
    [grads[3], grads[4]] = weightGrads(dy, sg!, w2, b2, rows);
    if (x.requiresGrad || w1.requiresGrad || b1.requiresGrad) {
      // dh = (dy·W2) ⊙ GELU'(h) in one matmul.
      const dh = Tensor.empty(x.engine, [...lead, H], 'f32', 'mlp dh');
      mmInto(dh, dy, sw2!, { m: rows, n: H, k: O, geluGradOf: sh!.buffer, geluKind: gelu });
      if (x.requiresGrad) mmInto((grads[0] = Tensor.empty(x.engine, x.shape, 'f32', 'dx')), dh, sw1!, { m: rows, n: I, k: H });
      [grads[1], grads[2]] = weightGrads(dh, sx!, w1, b1, rows);
      dh.dispose();
    }
    return grads;
  });
  // The node holds its own handles on h and g (or, without a graph, nothing needs them after the queued matmuls).
  h.dispose();
  g.dispose();
  return result;
}

// ---- softmax ----------------------------------------------------------------------------------

function rowsOf(x: Tensor) {
  const n = x.shape[x.ndim - 1] ?? 1;
  return { rows: x.size / n, n };
}

function softmaxBwd(y: Tensor, g: Tensor, log: boolean): Tensor {
  const dx = Tensor.empty(y.engine, y.shape, 'f32', 'softmax bwd');
  const [yb, gb, db, e] = [y.buffer, g.buffer, dx.buffer, y.engine];
  e.enqueue('softmax bwd', () => softmaxBackward(e.gpu, { y: yb, dy: gb, dx: db }, { ...rowsOf(y), log }));
  return dx;
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  live(x);
  const out = Tensor.empty(x.engine, x.shape, 'f32', 'softmax');
  const [xb, ob, e] = [x.buffer, out.buffer, x.engine];
  e.enqueue('softmax', () => softmaxKernel(e.gpu, xb, ob, rowsOf(x)));
  return record('softmax', out, [x], [out], (g, [y]) => [softmaxBwd(y!, g, false)]);
}

/** Log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  live(x);
  const out = Tensor.empty(x.engine, x.shape, 'f32', 'log_softmax');
  const [xb, ob, e] = [x.buffer, out.buffer, x.engine];
  e.enqueue('log_softmax', () => logSoftmaxKernel(e.gpu, xb, ob, rowsOf(x)));
  return record('log_softmax', out, [x], [out], (g, [y]) => [softmaxBwd(y!, g, true)]);
}
