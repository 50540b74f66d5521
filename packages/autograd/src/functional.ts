import {
  attentionBackward,
  attentionForward,
  checkIndices,
  contiguousStrides,
  crossEntropy as crossEntropyKernel,
  crossEntropyBackward,
  dropout as dropoutKernel,
  embedding as embeddingKernel,
  embeddingBackward,
  embeddingPlan,
  fusedQKVLayout,
  IGNORE_TARGET,
  infoNCE as infoNCEKernel,
  kmeansAssign as kmeansAssignKernel,
  layerNormAffine,
  layerNormAffineBackward,
  normalize as normalizeKernel,
  normalizeBackward,
  type AttentionProblem,
  type NormalizeProblem,
} from '@mode/kernels';
import { IGNORE_INDEX } from '@mode/data/labels';
import { add, div, maximum, mul, normAxis, sqrt, stridedInto, sub, sum, mean } from './ops.js';
import { full, isGradEnabled, nextSeed, noGrad, record, Storage, tidy, Tensor } from './tensor.js';

/** Ops built on the fused kernels (normalisation, cross-entropy, embedding, dropout, attention, InfoNCE). */

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Copies `value` into `target`'s buffer in place (same shape), outside the graph: running statistics, EMA. */
export function assign(target: Tensor, value: Tensor): void {
  if (target.shape.join() !== value.shape.join()) throw new RangeError(`assign: [${value.shape}] into [${target.shape}]`);
  const s = contiguousStrides([...target.shape]);
  target.storage.bump('assign');
  stridedInto('copy', target.shape, { t: value, strides: s }, null, { t: target, strides: s });
}

/** u32 tensor of `values` (checked) or the given u32 tensor, plus the CPU copy when there is one. */
function indexTensor(values: ArrayLike<number> | Tensor, like: Tensor, what: string): { t: Tensor; cpu: Uint32Array | null; owned: boolean } {
  if (values instanceof Tensor) {
    if (values.dtype !== 'u32') throw new TypeError(`${what}: ${values.describe()} must be u32`);
    return { t: values, cpu: null, owned: false };
  }
  const cpu = Uint32Array.from(values as ArrayLike<number>);
  const t = new Tensor(new Storage(like.engine, like.engine.upload(cpu, what)), [cpu.length], 'u32', false, false);
  return { t, cpu, owned: true };
}

// ---- normalisation ---------------------------------------------------------------------------

/**
 * Normalises along the middle axis of x viewed as [outer, len, inner] (see kernels/normalize.wgsl);
 * returns y (in the graph) and the per-line mean and rstd (plain tensors, yours to dispose).
 */
export function normalizeLines(x: Tensor, p: NormalizeProblem): { y: Tensor; mean: Tensor; rstd: Tensor } {
  x.buffer;
  const lines = [p.outer * p.inner];
  const [y, m, r] = [Tensor.empty(x.engine, x.shape, 'f32', 'normalize'), Tensor.empty(x.engine, lines), Tensor.empty(x.engine, lines)];
  const [xb, yb, mb, rb, e] = [x.buffer, y.buffer, m.buffer, r.buffer, x.engine];
  e.enqueue(`normalize ${p.mode}`, () => normalizeKernel(e.gpu, xb, { y: yb, mean: mb, rstd: rb }, p));
  record(`normalize ${p.mode}`, y, [x], [y, m, r], (g, [sy, sm, sr]) => {
    const dx = Tensor.empty(x.engine, x.shape, 'f32', 'normalize bwd');
    const [a, b, c, d, o] = [sy!.buffer, g.buffer, sm!.buffer, sr!.buffer, dx.buffer];
    e.enqueue('normalize bwd', () => normalizeBackward(e.gpu, { y: a, dy: b, mean: c, rstd: d, dx: o }, p));
    return [dx];
  });
  return { y, mean: m, rstd: r };
}

/**
 * Layer norm over the last axis, then ·weight + bias (broadcast over rows). With both a weight and
 * a bias of shape [C] it is one fused dispatch forward (normalize.wgsl with AFFINE) and one
 * backward (normalize_bwd.wgsl with AFFINE: dx, dweight and dbias, each only where its input
 * requires grad); otherwise normalize, then mul and add.
 */
export function layerNorm(x: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  const C = x.shape[x.ndim - 1]!;
  const vector = (t?: Tensor): t is Tensor => !!t && t.dtype === 'f32' && t.ndim === 1 && t.shape[0] === C;
  if (x.dtype === 'f32' && vector(weight) && vector(bias)) return layerNormFused(x, weight, bias, eps);
  return tidy(() => {
    let y = normalizeLines(x, { outer: x.size / C, len: C, inner: 1, mode: 'standardize', eps }).y;
    if (weight) y = mul(y, weight);
    if (bias) y = add(y, bias);
    return y;
  });
}

/** layerNorm with weight and bias [C] fused into the kernels; saves x, the weight, mean and rstd. */
function layerNormFused(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const e = x.engine;
  const p = { rows: x.size / x.shape[x.ndim - 1]!, dim: x.shape[x.ndim - 1]!, eps };
  return tidy(() => {
    const [y, m, r] = [Tensor.empty(e, x.shape, 'f32', 'layer norm'), Tensor.empty(e, [p.rows]), Tensor.empty(e, [p.rows])];
    const [xb, wb, bb, yb, mb, rb] = [x.buffer, weight.buffer, bias.buffer, y.buffer, m.buffer, r.buffer];
    e.enqueue('layer norm', () => layerNormAffine(e.gpu, { x: xb, weight: wb, bias: bb }, { y: yb, mean: mb, rstd: rb }, p));
    return record('layer norm', y, [x, weight, bias], [x, weight, m, r], (g, [sx, sw, sm, sr]) => {
      const out = (t: Tensor, label: string) => (t.requiresGrad ? Tensor.empty(e, t.shape, 'f32', label) : null);
      const [dx, dw, db] = [out(x, 'layer norm dx'), out(weight, 'layer norm dweight'), out(bias, 'layer norm dbias')];
      const bufs = { x: sx!.buffer, dy: g.buffer, mean: sm!.buffer, rstd: sr!.buffer, weight: sw!.buffer };
      const grads = { dx: dx?.buffer, dweight: dw?.buffer, dbias: db?.buffer };
      e.enqueue('layer norm bwd', () => layerNormAffineBackward(e.gpu, { ...bufs, ...grads }, p));
      return [dx, dw, db];
    });
  });
}

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  runningMean?: Tensor;
  runningVar?: Tensor;
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch norm over the batch axis of x [N, C] (BatchNorm1d). Training normalises with the batch's
 * statistics and updates the running ones in place (unbiased variance, as PyTorch); eval uses
 * the running ones.
 */
export function batchNorm(x: Tensor, o: BatchNormOptions): Tensor {
  if (x.ndim !== 2) throw new RangeError(`batchNorm: expects [N, C], got [${x.shape}]`);
  const [N, C] = [x.shape[0]!, x.shape[1]!];
  const eps = o.eps ?? 1e-5;
  return tidy(() => {
    let y: Tensor;
    if (o.training) {
      if (N < 2) throw new RangeError(`batchNorm: training needs more than one sample per feature, got N = ${N}`);
      const st = normalizeLines(x, { outer: 1, len: N, inner: C, mode: 'standardize', eps });
      y = st.y;
      if (o.runningMean && o.runningVar) {
        const m = o.momentum ?? 0.1;
        noGrad(() => {
          // var = 1/rstd² − eps (biased), × N/(N−1) for the running estimate
          const biased = sub(div(full(st.rstd.shape, 1, { engine: x.engine }), mul(st.rstd, st.rstd)), eps);
          assign(o.runningMean!, add(mul(o.runningMean!, 1 - m), mul(st.mean, m)));
          assign(o.runningVar!, add(mul(o.runningVar!, 1 - m), mul(biased, (m * N) / (N - 1))));
        });
      }
    } else {
      if (!o.runningMean || !o.runningVar) throw new Error('batchNorm: eval mode needs runningMean and runningVar');
      y = div(sub(x, o.runningMean), sqrt(add(o.runningVar, eps)));
    }
    if (o.weight) y = mul(y, o.weight);
    if (o.bias) y = add(y, o.bias);
    return y;
  });
}

/** x / max(‖x‖, eps) along `axis` (F.normalize). */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  const ax = normAxis(axis, x.ndim);
  return tidy(() => normalizeLines(x, { outer: numel(x.shape.slice(0, ax)), len: x.shape[ax]!, inner: numel(x.shape.slice(ax + 1)), mode: 'l2', eps }).y);
}

// ---- losses -----------------------------------------------------------------------------------

/**
 * Mean cross-entropy of logits [..., C] against class indices, one per row: a CPU array (checked;
 * rows equal to `ignoreIndex`, default IGNORE_INDEX = −100, the value @mode/data's MLM labels
 * use, are ignored), or a u32 tensor, whose values ≥ C are the ignored rows (IGNORE_INDEX stored
 * as u32 is one). Ignored rows add nothing and are not counted in the mean. Log-softmax and the
 * pick are one fused kernel; it also writes each row's validity, so that for tensor targets the
 * count is summed on the GPU (no read-back).
 */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number> | Tensor, opts: { ignoreIndex?: number } = {}): Tensor {
  logits.buffer;
  const n = logits.shape[logits.ndim - 1]!;
  const rows = logits.size / n;
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  let valid: number | null = null; // the count of counted rows, where the CPU knows it
  let tv: ArrayLike<number> | Tensor = targets;
  if (!(targets instanceof Tensor)) {
    if (targets.length !== rows) throw new RangeError(`crossEntropy: ${targets.length} targets for ${rows} rows of logits [${logits.shape}]`);
    let count = 0;
    tv = Array.from({ length: rows }, (_, i) => {
      const t = targets[i]!;
      if (t === ignore) return IGNORE_TARGET;
      if (!Number.isInteger(t) || t < 0 || t >= n)
        throw new RangeError(`crossEntropy: target ${t} at row ${i} is not a class in 0…${n - 1} (nor ignoreIndex ${ignore})`);
      count++;
      return t;
    });
    valid = count;
  } else {
    if (targets.size !== rows) throw new RangeError(`crossEntropy: ${targets.size} targets for ${rows} rows`);
    // The kernel ignores values ≥ C: a class given as ignoreIndex would silently count.
    if (Number.isInteger(ignore) && ignore >= 0 && ignore < n)
      throw new RangeError(
        `crossEntropy: u32 tensor targets ignore the values ≥ ${n}; ignoreIndex ${ignore} is a class (remap it, or pass the targets as an array)`,
      );
  }
  const { t, owned } = indexTensor(tv, logits, 'crossEntropy targets');
  const out = tidy(() => {
    const e = logits.engine;
    const loss = Tensor.empty(e, [rows], 'f32', 'ce loss');
    const lse = Tensor.empty(e, [rows], 'f32', 'ce lse');
    const isValid = Tensor.empty(e, [rows], 'f32', 'ce valid');
    const [xb, tb, lb, sb, vb] = [logits.buffer, t.buffer, loss.buffer, lse.buffer, isValid.buffer];
    const p = { rows, n };
    e.enqueue('cross_entropy', () => crossEntropyKernel(e.gpu, { x: xb, targets: tb, loss: lb, lse: sb, valid: vb }, p));
    record('cross_entropy', loss, [logits], [logits, lse, t], (g, [sx, sl, st]) => {
      const dx = Tensor.empty(e, logits.shape, 'f32', 'ce bwd');
      const [a, b, c, d, o] = [sx!.buffer, st!.buffer, sl!.buffer, g.buffer, dx.buffer];
      e.enqueue('cross_entropy bwd', () => crossEntropyBackward(e.gpu, { x: a, targets: b, lse: c, dloss: d, dx: o }, p));
      return [dx];
    });
    // An all-ignored batch gives 0, not NaN.
    if (valid !== null) return mul(sum(loss), 1 / Math.max(valid, 1));
    return div(sum(loss), maximum(sum(isValid), full([], 1, { engine: e })));
  });
  if (owned) t.dispose();
  return out;
}

/** Mean squared error. */
export const mseLoss = (pred: Tensor, target: Tensor) =>
  tidy(() => {
    const d = sub(pred, target);
    return mean(mul(d, d));
  });

// ---- embedding, dropout -------------------------------------------------------------------------

/**
 * Rows of table [V, D] picked by indices (a CPU array, checked, or a u32 tensor); the result has
 * shape [...indicesShape, D]. The backward is a deterministic scatter-add (sorted on the CPU).
 */
export function embedding(table: Tensor, indices: ArrayLike<number> | Tensor, shape?: readonly number[]): Tensor {
  table.buffer;
  if (table.ndim !== 2) throw new RangeError(`embedding: table must be [V, D], got [${table.shape}]`);
  const [V, D] = [table.shape[0]!, table.shape[1]!];
  if (!(indices instanceof Tensor)) checkIndices(indices, V, 'embedding');
  const { t, cpu, owned } = indexTensor(indices, table, 'embedding indices');
  const n = t.size;
  const idxShape = shape ?? (indices instanceof Tensor ? indices.shape : [n]);
  if (numel(idxShape) !== n) throw new RangeError(`embedding: shape [${idxShape}] does not hold ${n} indices`);
  const out = Tensor.empty(table.engine, [...idxShape, D], 'f32', 'embedding');
  const [tb, ib, ob, e] = [table.buffer, t.buffer, out.buffer, table.engine];
  const p = { n, d: D, vocab: V };
  e.enqueue('embedding', () => embeddingKernel(e.gpu, tb, ib, ob, p));
  record('embedding', out, [table], [t], (g, [st]) => {
    const dt = Tensor.empty(e, table.shape, 'f32', 'embedding bwd');
    const [gb, sib, db] = [g.buffer, st!.buffer, dt.buffer];
    e.enqueue('embedding bwd', async () => {
      const plan = embeddingPlan(cpu ?? (await e.gpu.read(sib, Uint32Array, n)));
      const [order, starts, rows] = [e.gpu.upload(plan.order), e.gpu.upload(plan.starts), e.gpu.upload(plan.rows)];
      await embeddingBackward(e.gpu, { dy: gb, order, starts, rows, dTable: db }, { ...p, unique: plan.rows.length });
      [order, starts, rows].forEach((b) => e.gpu.release(b));
    });
    return [dt];
  });
  if (owned) t.dispose();
  return out;
}

/** Dropout with probability p (identity when not training or p = 0); the mask is recomputed from the seed in backward. */
export function dropout(x: Tensor, p: number, opts: { training?: boolean; seed?: number } = {}): Tensor {
  x.buffer;
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (opts.training === false || p === 0) return x;
  const seed = opts.seed ?? nextSeed();
  const run = (input: Tensor) => {
    const y = Tensor.empty(input.engine, input.shape, 'f32', 'dropout');
    const [ib, yb, e] = [input.buffer, y.buffer, input.engine];
    e.enqueue('dropout', () => dropoutKernel(e.gpu, ib, yb, { n: input.size, p, seed }));
    return y;
  };
  return record('dropout', run(x), [x], [], (g) => [run(g)]);
}

// ---- attention, InfoNCE, k-means ----------------------------------------------------------------

export interface AttentionOptions {
  causal?: boolean;
  /** Heads per batch item (the key-padding mask row of head h is h / heads). */
  heads?: number;
  /** Key-padding mask [batch, lk] as u32 (0 = padding). */
  mask?: Tensor;
  /** Default 1/√d. */
  scale?: number;
}

/**
 * softmax(scale·Q·Kᵀ + mask)·V per head with the flash kernels: q [..., lq, d], k and v
 * [..., lk, d] (leading axes are batch × heads). Saves O and the log-sum-exp, not the scores.
 * The backward kernel writes dK and dV into one buffer (WebGPU binds a written buffer once), which
 * two copies split into the two gradients; `attentionQKV` on a fused projection needs none.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
  for (const t of [q, k, v]) t.buffer;
  const d = q.shape[q.ndim - 1]!;
  const lq = q.shape[q.ndim - 2]!;
  const lk = k.shape[k.ndim - 2]!;
  const bh = q.size / (lq * d);
  if (k.shape.join() !== v.shape.join() || k.size !== bh * lk * d || k.shape[k.ndim - 1] !== d)
    throw new RangeError(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not fit [..., L, d]`);
  const e = q.engine;
  const p: AttentionProblem = { bh, lq, lk, d, causal: !!o.causal, heads: o.heads ?? 1, ...(o.scale !== undefined ? { scale: o.scale } : {}) };
  const out = Tensor.empty(e, q.shape, 'f32', 'attention');
  const lse = Tensor.empty(e, [bh * lq], 'f32', 'attention lse');
  const [qb, kb, vb, ob, lb, mb] = [q.buffer, k.buffer, v.buffer, out.buffer, lse.buffer, o.mask?.buffer];
  e.enqueue('attention', () => attentionForward(e.gpu, qb, kb, vb, ob, lb, { ...p, ...(mb ? { mask: mb } : {}) }));
  const saved = [q, k, v, out, lse, ...(o.mask ? [o.mask] : [])];
  record('attention', out, [q, k, v], saved, (g, [sq, sk, sv, so, sl, sm]) => {
    const dq = Tensor.empty(e, q.shape, 'f32', 'attention dq');
    const dkv = Tensor.empty(e, [2, k.size], 'f32', 'attention dkv'); // dK then dV: the kernels' default layout
    const bufs = { q: sq!.buffer, k: sk!.buffer, v: sv!.buffer, o: so!.buffer, lse: sl!.buffer, dO: g.buffer, dQ: dq.buffer, dKV: dkv.buffer };
    const mask = sm?.buffer;
    e.enqueue('attention bwd', () => attentionBackward(e.gpu, bufs, { ...p, ...(mask ? { mask } : {}) }));
    const [dk, dv] = [0, 1].map((i) => {
      const t = Tensor.empty(e, k.shape, 'f32', i ? 'attention dv' : 'attention dk');
      stridedInto('copy', [k.size], { t: dkv, offset: i * k.size, strides: [1] }, null, { t, strides: [1] });
      return t;
    });
    dkv.dispose();
    return [dq, dk!, dv!];
  });
  lse.dispose();
  return out;
}

/**
 * Self-attention on a fused projection with the flash kernels: qkv [B, L, 3W] holds q | k | v
 * (W = heads·d; head hd at columns hd·d of each block, as nn.MultiheadAttention's in_proj lays
 * them out), and the result is [B, L, W] with the heads merged, as out_proj takes it. The kernels
 * read Q, K and V where they lie and write O merged; the backward writes the gradient of qkv
 * [B, L, 3W] directly (dQ from one kernel, dK and dV from the other, into one buffer): no
 * permutes, slices or copies. The key-padding mask is [B, L] (u32, 0 = padding).
 */
export function attentionQKV(qkv: Tensor, heads: number, o: Omit<AttentionOptions, 'heads'> = {}): Tensor {
  qkv.buffer;
  const [B, L, W3] = qkv.shape as [number, number, number];
  if (qkv.ndim !== 3 || !Number.isInteger(heads) || heads < 1 || W3 % (3 * heads) !== 0)
    throw new RangeError(`attentionQKV: qkv [${qkv.shape}] is not [B, L, 3·heads·d] for ${heads} heads`);
  if (o.mask && o.mask.size !== B * L) throw new RangeError(`attentionQKV: mask [${o.mask.shape}] is not [B, L] = [${B}, ${L}]`);
  const d = W3 / (3 * heads);
  const e = qkv.engine;
  const p: AttentionProblem = {
    bh: B * heads,
    heads,
    lq: L,
    d,
    causal: !!o.causal,
    layout: fusedQKVLayout(heads, L, d),
    ...(o.scale !== undefined ? { scale: o.scale } : {}),
  };
  const out = Tensor.empty(e, [B, L, heads * d], 'f32', 'attention');
  const lse = Tensor.empty(e, [B * heads * L], 'f32', 'attention lse');
  const [xb, ob, lb, mb] = [qkv.buffer, out.buffer, lse.buffer, o.mask?.buffer];
  e.enqueue('attention', () => attentionForward(e.gpu, xb, xb, xb, ob, lb, { ...p, ...(mb ? { mask: mb } : {}) }));
  record('attention', out, [qkv], [qkv, out, lse, ...(o.mask ? [o.mask] : [])], (g, [sx, so, sl, sm]) => {
    const dqkv = Tensor.empty(e, qkv.shape, 'f32', 'attention dqkv');
    const [x, dx] = [sx!.buffer, dqkv.buffer];
    const bufs = { q: x, k: x, v: x, o: so!.buffer, lse: sl!.buffer, dO: g.buffer, dQ: dx, dKV: dx };
    const mask = sm?.buffer;
    e.enqueue('attention bwd', () => attentionBackward(e.gpu, bufs, { ...p, ...(mask ? { mask } : {}) }));
    return [dqkv];
  });
  lse.dispose();
  return out;
}

/**
 * InfoNCE with logits exp(logitScale)·x·yᵀ (OpenCLIP's parametrisation), x [b, d], y [m, d],
 * logitScale one element: symmetric CLIP loss (b = m), or one-directional against `targets`.
 * The fused kernel computes the gradients with the loss; the backward only scales them.
 */
export function infoNCE(x: Tensor, y: Tensor, logitScale: Tensor, opts: { symmetric?: boolean; targets?: ArrayLike<number> | Tensor } = {}): Tensor {
  for (const t of [x, y, logitScale]) t.buffer;
  if (x.ndim !== 2 || y.ndim !== 2 || x.shape[1] !== y.shape[1] || logitScale.size !== 1)
    throw new RangeError(`infoNCE: x [${x.shape}] and y [${y.shape}] must be [b, d] and [m, d], logitScale one element (got [${logitScale.shape}])`);
  const p = { b: x.shape[0]!, m: y.shape[0]!, d: x.shape[1]!, symmetric: opts.symmetric ?? true };
  const e = x.engine;
  const tg = opts.targets === undefined ? null : indexTensor(opts.targets, x, 'infoNCE targets');
  // Under noGrad (evaluation) nothing is recorded, so the gradients (2/3 of the work) are not computed.
  const grads = isGradEnabled() && [x, y, logitScale].some((t) => t.requiresGrad);
  const pair = Tensor.empty(e, [2], 'f32', 'infonce loss'); // [loss, d loss / d logitScale]
  const dx = grads ? Tensor.empty(e, x.shape, 'f32', 'infonce dx') : null;
  const dy = grads ? Tensor.empty(e, y.shape, 'f32', 'infonce dy') : null;
  const b = { x: x.buffer, y: y.buffer, logitScale: logitScale.buffer, ...(tg ? { targets: tg.t.buffer } : {}) };
  const outs = { loss: pair.buffer, ...(dx ? { dx: dx.buffer, dy: dy!.buffer } : {}) };
  e.enqueue('infoNCE', () => infoNCEKernel(e.gpu, b, p, outs));
  // The loss is the pair's first element: a scalar on the same storage.
  pair.storage.ref();
  const loss = new Tensor(pair.storage, []);
  const out = record('infonce', loss, [x, y, logitScale], dx ? [dx, dy!, pair] : [], (g, [sdx, sdy, sp]) => {
    const ds = Tensor.empty(e, logitScale.shape, 'f32', 'infonce dscale');
    stridedInto('copy', [1], { t: sp!, offset: 1, strides: [1] }, null, { t: ds, strides: [1] });
    return [mul(sdx!, g), mul(sdy!, g), mul(ds, g)];
  });
  [pair, dx, dy].forEach((t) => t?.dispose());
  if (tg?.owned) tg.t.dispose();
  return out;
}

/** Nearest of k centres [k, d] for each point [n, d]: index (u32) and squared distance. No gradient. */
export function kmeansAssign(points: Tensor, centres: Tensor): { index: Tensor; distance: Tensor } {
  for (const t of [points, centres]) t.buffer;
  if (points.ndim !== 2 || centres.ndim !== 2 || points.shape[1] !== centres.shape[1])
    throw new RangeError(`kmeansAssign: points [${points.shape}] and centres [${centres.shape}] must be [n, d] and [k, d]`);
  const e = points.engine;
  const n = points.shape[0]!;
  const index = Tensor.empty(e, [n], 'u32', 'kmeans index');
  const distance = Tensor.empty(e, [n], 'f32', 'kmeans distance');
  const [pb, cb, ib, db] = [points.buffer, centres.buffer, index.buffer, distance.buffer];
  e.enqueue('kmeansAssign', () => kmeansAssignKernel(e.gpu, pb, cb, { index: ib, distance: db }, { n, k: centres.shape[0]!, d: points.shape[1]! }));
  return { index, distance };
}
