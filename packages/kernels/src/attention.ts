import type { Gpu, Kernel } from '@mode/gpu';
import { Autotuner, type Candidate } from './autotune.js';
import { autotuner } from './matmul.js';
import { pow2Class, tuneKey } from './tune-key.js';

/**
 * Multi-head scaled dot-product attention, flash style: per (batch·head) h,
 *   O_h = softmax(scale·Q_h·K_hᵀ + mask)·V_h
 * with the log-sum-exp of each row saved for the backward pass; the Lq×Lk scores are never stored.
 * Heads are batch-major: h = b·heads + hd. Each of Q, K, V, O, dO, dQ, dK, dV has its own
 * `AttentionLayout` (default: contiguous Q, O, dO, dQ [bh, lq, d] and K, V [bh, lk, d], with dK
 * and dV in one buffer dKV [2, bh, lk, d]); LSE [bh, lq] is contiguous; mask [bh / heads, lk] of
 * u32 (0 = padding key). Causal: query i sees keys j ≤ i.
 */
export interface AttentionProblem {
  /** batch × heads */
  bh: number;
  /** Heads per batch item: the key-padding mask row of h is h / heads. Default 1. */
  heads?: number;
  lq: number;
  /** Default lq. */
  lk?: number;
  d: number;
  causal?: boolean;
  /** Default 1/√d. */
  scale?: number;
  mask?: GPUBuffer;
  /** Where each tensor lives in its buffer; a tensor not named here is laid out contiguously (see `attentionLayouts`). */
  layout?: Partial<Record<AttentionTensor, AttentionLayout>>;
}

/**
 * Where one tensor's elements lie in its buffer, in floats: element (h, row, c), with
 * h = b·heads + hd, is at offset + b·sb + hd·sh + row·sr + c (the d values of a row are contiguous).
 */
export interface AttentionLayout {
  offset: number;
  /** Stride of the batch item b. */
  sb: number;
  /** Stride of the head hd within a batch item. */
  sh: number;
  /** Stride of a row (query or key). */
  sr: number;
}

/** The tensors of the forward and backward passes. dK and dV are written through one binding (`dKV`), so they share a buffer. */
export type AttentionTensor = 'q' | 'k' | 'v' | 'o' | 'dO' | 'dQ' | 'dK' | 'dV';

const TENSORS: AttentionTensor[] = ['q', 'k', 'v', 'o', 'dO', 'dQ', 'dK', 'dV'];

/** Each tensor's layout: the problem's, else contiguous ([bh, rows, d]; dV after dK in their shared buffer). */
export function attentionLayouts(p: AttentionProblem): Record<AttentionTensor, AttentionLayout> {
  const heads = p.heads ?? 1;
  const lk = p.lk ?? p.lq;
  const contiguous = (rows: number, offset = 0): AttentionLayout => ({ offset, sb: heads * rows * p.d, sh: rows * p.d, sr: p.d });
  const q = contiguous(p.lq);
  const kv = contiguous(lk);
  return { q, k: kv, v: kv, o: q, dO: q, dQ: q, dK: kv, dV: contiguous(lk, p.bh * lk * p.d), ...p.layout };
}

/**
 * The layouts of self-attention on a fused projection: Q, K and V are the column blocks
 * [0, W), [W, 2W), [2W, 3W) of qkv [batch, L, 3W] (W = heads·d, head hd at columns hd·d of its
 * block), O and dO are [batch, L, W] (heads merged), and dQ, dK, dV fill dqkv [batch, L, 3W] laid out as qkv.
 */
export function fusedQKVLayout(heads: number, L: number, d: number): Record<AttentionTensor, AttentionLayout> {
  const w = heads * d;
  const block = (i: number): AttentionLayout => ({ offset: i * w, sb: L * 3 * w, sh: d, sr: 3 * w });
  const merged: AttentionLayout = { offset: 0, sb: L * w, sh: d, sr: w };
  return { q: block(0), k: block(1), v: block(2), o: merged, dO: merged, dQ: block(0), dK: block(1), dV: block(2) };
}

/** Floats a buffer must hold for `t` in its layout: one past its last element. */
export function attentionSpan(p: AttentionProblem, t: AttentionTensor): number {
  const l = attentionLayouts(p)[t];
  const heads = p.heads ?? 1;
  const rows = t === 'k' || t === 'v' || t === 'dK' || t === 'dV' ? (p.lk ?? p.lq) : p.lq;
  return l.offset + (p.bh / heads - 1) * l.sb + (heads - 1) * l.sh + (rows - 1) * l.sr + p.d;
}

export type AttentionVariantName = 'portable' | 'tiled' | 'sg';

interface Variant {
  forward: string;
  dq: string;
  dkv: string;
  /** Query rows (forward, dQ) or key rows (dK/dV) that one workgroup of this size covers along x. */
  rowsPerWorkgroup: (size: [number, number, number], pass: 'forward' | 'dq' | 'dkv') => number;
  /** Override constants beyond CAUSAL and HAS_MASK. */
  overrides?: (p: AttentionProblem) => Record<string, number>;
  unsupported: (gpu: Gpu, p: AttentionProblem) => string | null;
}

function subgroup8(gpu: Gpu): string | null {
  if (!gpu.device.features.has('subgroups')) return 'adapter lacks the subgroups feature';
  const sg = gpu.report.subgroupSize;
  return sg && sg.min === 8 && sg.max === 8 ? null : `needs subgroup size 8, adapter has ${sg ? `${sg.min}–${sg.max}` : 'unknown'}`;
}

export const ATTENTION_VARIANTS: Record<AttentionVariantName, Variant> = {
  portable: {
    forward: 'attention_fwd',
    dq: 'attention_bwd_dq',
    dkv: 'attention_bwd_dkv',
    rowsPerWorkgroup: ([x]) => x, // one row per invocation
    unsupported: (_gpu, p) => (p.d > 256 ? `head dim ${p.d} > 256` : null),
  },
  // For GPUs: K/V (or Q/dO) tiles staged in workgroup memory, shared by the workgroup's 64 rows.
  tiled: {
    forward: 'attention_fwd_tiled',
    dq: 'attention_bwd_dq_tiled',
    dkv: 'attention_bwd_dkv_tiled',
    rowsPerWorkgroup: ([x]) => x, // one row per invocation
    unsupported: (_gpu, p) => (p.d > 256 ? `head dim ${p.d} > 256` : null),
  },
  sg: {
    forward: 'attention_fwd_sg',
    dq: 'attention_bwd_dq_sg',
    dkv: 'attention_bwd_dkv_sg',
    // Per subgroup: 16 query rows, or 8 key rows in dK/dV (its two accumulators per row spill at 16); WG_Y subgroups.
    rowsPerWorkgroup: ([, y], pass) => (pass === 'dkv' ? 8 : 16) * y,
    overrides: (p) => ({ D: p.d }),
    // Rows are read and written as vec4s, so every offset and stride must be whole vec4s.
    unsupported: (gpu, p) => subgroup8(gpu) ?? (p.d === 32 || p.d === 64 ? null : `head dim ${p.d} is not 32 or 64`) ?? unalignedLayout(p),
  },
};

function unalignedLayout(p: AttentionProblem): string | null {
  const layouts = attentionLayouts(p);
  const bad = TENSORS.find((t) => Object.values(layouts[t]).some((x) => x % 4 !== 0));
  return bad ? `layout of ${bad} (${JSON.stringify(layouts[bad])}) is not in whole vec4s: offset and strides must be multiples of 4 floats` : null;
}

// The uniform field of each tensor's layout: vec4u (offset, sb, sh, sr).
const FIELD: Record<AttentionTensor, string> = {
  q: 'q_layout',
  k: 'k_layout',
  v: 'v_layout',
  o: 'o_layout',
  dO: 'd_o_layout',
  dQ: 'd_q_layout',
  dK: 'd_k_layout',
  dV: 'd_v_layout',
};

/** The Params of a kernel that addresses `tensors`. */
function uniforms(p: AttentionProblem, tensors: AttentionTensor[]) {
  const layouts = attentionLayouts(p);
  return {
    bh: p.bh,
    heads: p.heads ?? 1,
    lq: p.lq,
    lk: p.lk ?? p.lq,
    d: p.d,
    scale: p.scale ?? 1 / Math.sqrt(p.d),
    ...Object.fromEntries(tensors.map((t) => [FIELD[t], [layouts[t].offset, layouts[t].sb, layouts[t].sh, layouts[t].sr]])),
  };
}

function validate(p: AttentionProblem): void {
  for (const [name, x] of Object.entries({ bh: p.bh, lq: p.lq, lk: p.lk ?? p.lq, d: p.d, heads: p.heads ?? 1 })) {
    if (!Number.isInteger(x) || x < 1) throw new Error(`attention: ${name} must be a positive integer, got ${x}`);
  }
  if (p.bh % (p.heads ?? 1) !== 0) throw new Error(`attention: bh = ${p.bh} is not a multiple of heads = ${p.heads}`);
  for (const [t, l] of Object.entries(p.layout ?? {})) {
    if (!TENSORS.includes(t as AttentionTensor)) throw new Error(`attention: layout of unknown tensor ${t}; tensors: ${TENSORS.join(', ')}`);
    for (const [k, x] of Object.entries(l)) {
      if (!Number.isInteger(x) || x < 0) throw new Error(`attention: layout of ${t}: ${k} must be a non-negative integer, got ${x}`);
    }
  }
}

/** Throws unless each buffer holds its tensors in their layouts (a layout past the end would read or drop values silently). */
function checkSpans(p: AttentionProblem, buffers: [AttentionTensor, GPUBuffer][]): void {
  for (const [t, b] of buffers) {
    const need = attentionSpan(p, t);
    if (b.size < 4 * need) throw new Error(`attention: ${t} in its layout needs ${need} floats; buffer "${b.label}" holds ${b.size / 4}`);
  }
}

/** The variant's table entry, after checking the problem and that the adapter can run it. */
function checkedVariant(gpu: Gpu, p: AttentionProblem, variant: AttentionVariantName): Variant {
  validate(p);
  const vt = ATTENTION_VARIANTS[variant];
  const why = vt.unsupported(gpu, p);
  if (why) throw new Error(`attention variant ${variant}: ${why}`);
  return vt;
}

// The mask binding is always bound (reflection lists it); without HAS_MASK it is never read.
const noMask = new WeakMap<Gpu, GPUBuffer>();
const maskOf = (gpu: Gpu, p: AttentionProblem) => p.mask ?? noMask.get(gpu) ?? (noMask.set(gpu, gpu.buffer(16, 'attention no-mask')), noMask.get(gpu)!);

const pipeline = (gpu: Gpu, name: string, p: AttentionProblem, extra: Record<string, number> = {}): Promise<Kernel> =>
  gpu.kernel(name, { CAUSAL: !!p.causal, HAS_MASK: !!p.mask, ...extra });

/** FLOPs of one forward pass: 2·d for each score and 2·d for each weighted value, over the visible pairs. */
export function attentionFlops(p: AttentionProblem): number {
  const lk = p.lk ?? p.lq;
  const pairs = p.causal ? (Math.min(p.lq, lk) * (Math.min(p.lq, lk) + 1)) / 2 + Math.max(0, p.lq - lk) * lk : p.lq * lk;
  return 4 * p.d * pairs * p.bh;
}

const candidateChecksum = (gpu: Gpu) =>
  Autotuner.kernelsChecksum(
    gpu,
    'attention',
    Object.values(ATTENTION_VARIANTS).flatMap((v) => [v.forward, v.dq, v.dkv]),
  );

/**
 * Heads the autotuner times a problem with: enough that every variant fills the adapter's threads
 * (about 2²⁶ forward FLOPs; at least 8), at most the problem's own (as a power of two). With a
 * fixed 8 heads of 16 rows, lavapipe saw a handful of workgroups, where the portable kernel beat
 * the subgroup one, which is 4× faster at a real batch (256 heads).
 */
export function attentionTuneHeads(p: AttentionProblem): number {
  const lk = Math.min(p.lk ?? p.lq, 1024);
  const perHead = 4 * Math.min(p.lq, 1024) * lk * p.d;
  return Math.min(pow2Class(p.bh), Math.max(8, pow2Class(Math.ceil(2 ** 26 / perHead))));
}

/**
 * The fastest variant for this problem's shape class on this adapter (measured once, then cached).
 * Timed on a forward and a backward pass (the choice serves both, and training runs both), on
 * scratch buffers of attentionTuneHeads heads × at most 1024 × 1024.
 */
export async function chooseAttention(gpu: Gpu, p: AttentionProblem, tuner = autotuner): Promise<AttentionVariantName> {
  validate(p);
  const q: AttentionProblem = { bh: attentionTuneHeads(p), lq: Math.min(p.lq, 1024), lk: Math.min(p.lk ?? p.lq, 1024), d: p.d, causal: p.causal };
  const key = tuneKey('attention', { bh: q.bh, lq: q.lq, lk: q.lk!, d: q.d }, p.causal ? 'causal' : '');
  const adapter = Autotuner.adapterId(gpu);
  const cached = tuner.lookup(adapter, 'attention', candidateChecksum(gpu), key) as AttentionVariantName | null;
  if (cached && cached in ATTENTION_VARIANTS && !ATTENTION_VARIANTS[cached].unsupported(gpu, p)) return cached;
  const rows = q.bh * q.lq * q.d;
  const keys = q.bh * q.lk! * q.d;
  const scratch = {
    q: gpu.buffer(4 * rows),
    k: gpu.buffer(4 * keys),
    v: gpu.buffer(4 * keys),
    o: gpu.buffer(4 * rows),
    lse: gpu.buffer(4 * q.bh * q.lq),
    dO: gpu.buffer(4 * rows),
    dQ: gpu.buffer(4 * rows),
    dKV: gpu.buffer(8 * keys),
  };
  // Inputs of zeros: every variant then does its full work on finite numbers.
  for (const b of Object.values(scratch)) gpu.write(b, new Float32Array(b.size / 4));
  // Fastest-first, so that the autotuner stops timing the slow ones early.
  const candidates: Candidate[] = (['sg', 'tiled', 'portable'] as const).map((name) => ({
    name,
    unsupported: ATTENTION_VARIANTS[name].unsupported(gpu, p),
    time: async () => {
      const t0 = performance.now();
      await attentionForward(gpu, scratch.q, scratch.k, scratch.v, scratch.o, scratch.lse, q, name);
      await attentionBackward(gpu, scratch, q, name);
      await gpu.sync();
      return (performance.now() - t0) / 1e3;
    },
  }));
  try {
    return (await tuner.pick(adapter, 'attention', candidateChecksum(gpu), key, candidates)) as AttentionVariantName;
  } finally {
    Object.values(scratch).forEach((b) => gpu.release(b));
  }
}

/** Records the forward pass: writes O (only its elements: the rest of o's buffer is untouched) and LSE. Without a variant, the autotuned one. */
export async function attentionForward(
  gpu: Gpu,
  q: GPUBuffer,
  k: GPUBuffer,
  v: GPUBuffer,
  o: GPUBuffer,
  lse: GPUBuffer,
  p: AttentionProblem,
  variant?: AttentionVariantName,
): Promise<void> {
  variant ??= await chooseAttention(gpu, p);
  const vt = checkedVariant(gpu, p, variant);
  checkSpans(p, [
    ['q', q],
    ['k', k],
    ['v', v],
    ['o', o],
  ]);
  const kernel = await pipeline(gpu, vt.forward, p, vt.overrides?.(p));
  gpu.dispatch(kernel, {
    bindings: { q, k, v, mask: maskOf(gpu, p), o, lse },
    uniforms: uniforms(p, ['q', 'k', 'v', 'o']),
    workgroups: [Math.ceil(p.lq / vt.rowsPerWorkgroup(kernel.workgroupSize, 'forward')), p.bh],
    // Bytes: the compulsory traffic, each tensor once (Q and O of lq rows, K and V of lk, LSE).
    work: { flops: attentionFlops(p), bytes: 4 * p.bh * (2 * p.lq * p.d + 2 * (p.lk ?? p.lq) * p.d + p.lq) },
    label: `attention fwd ${variant} ${p.bh}×${p.lq}×${p.lk ?? p.lq}×${p.d}${p.causal ? ' causal' : ''}`,
  });
}

/**
 * Records the backward pass: writes dQ into `dQ` and dK, dV into `dKV` (one binding, so the two
 * share a buffer; `dQ` may be that buffer too, as in the fused layout), from dO and the forward's
 * O and LSE (any variant's: they share one contract). Only the elements of dQ, dK and dV are
 * written: the rest of their buffers is untouched. Without a variant, the autotuned one.
 */
export async function attentionBackward(
  gpu: Gpu,
  t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer; lse: GPUBuffer; dO: GPUBuffer; dQ: GPUBuffer; dKV: GPUBuffer },
  p: AttentionProblem,
  variant?: AttentionVariantName,
): Promise<void> {
  variant ??= await chooseAttention(gpu, p);
  const vt = checkedVariant(gpu, p, variant);
  checkSpans(p, [
    ['q', t.q],
    ['k', t.k],
    ['v', t.v],
    ['o', t.o],
    ['dO', t.dO],
    ['dQ', t.dQ],
    ['dK', t.dKV],
    ['dV', t.dKV],
  ]);
  const lk = p.lk ?? p.lq;
  const delta = gpu.buffer(4 * p.bh * p.lq, 'attention delta');
  const mask = maskOf(gpu, p);
  const flops = attentionFlops(p);
  const dq = await pipeline(gpu, vt.dq, p, vt.overrides?.(p));
  gpu.dispatch(dq, {
    bindings: { q: t.q, k: t.k, v: t.v, mask, o: t.o, lse: t.lse, d_o: t.dO, d_q: t.dQ, delta },
    uniforms: uniforms(p, ['q', 'k', 'v', 'o', 'dO', 'dQ']),
    workgroups: [Math.ceil(p.lq / vt.rowsPerWorkgroup(dq.workgroupSize, 'dq')), p.bh],
    // s, dP and dQ: 3 products of 2·d per pair; Q, O, dO, dQ (lq rows), K, V (lk), LSE and delta once.
    work: { flops: (flops * 3) / 2, bytes: 4 * p.bh * (4 * p.lq * p.d + 2 * lk * p.d + 2 * p.lq) },
    label: `attention dQ ${variant}`,
  });
  const dkv = await pipeline(gpu, vt.dkv, p, vt.overrides?.(p));
  gpu.dispatch(dkv, {
    bindings: { q: t.q, k: t.k, v: t.v, mask, delta, lse: t.lse, d_o: t.dO, d_kv: t.dKV },
    uniforms: uniforms(p, ['q', 'k', 'v', 'dO', 'dK', 'dV']),
    workgroups: [Math.ceil(lk / vt.rowsPerWorkgroup(dkv.workgroupSize, 'dkv')), p.bh],
    // s, dP, dV and dK: 4 products of 2·d per pair; Q, dO (lq rows), K, V, dK, dV (lk), LSE and delta once.
    work: { flops: flops * 2, bytes: 4 * p.bh * (2 * p.lq * p.d + 4 * lk * p.d + 2 * p.lq) },
    label: `attention dK dV ${variant}`,
  });
  // Safe before the dispatches run: whatever reuses it is recorded (and so runs) after them.
  gpu.release(delta);
}

/** Visible keys of query i. */
function visible(p: AttentionProblem, maskValues: ArrayLike<number> | undefined, h: number, i: number, j: number): boolean {
  if (p.causal && j > i) return false;
  return !maskValues || maskValues[Math.floor(h / (p.heads ?? 1)) * (p.lk ?? p.lq) + j] !== 0;
}

type ReferenceProblem = AttentionProblem & { maskValues?: ArrayLike<number> };

/** Index of element (h, row, 0) in layout l. */
const rowAt = (l: AttentionLayout, heads: number, h: number, row: number) => l.offset + Math.floor(h / heads) * l.sb + (h % heads) * l.sh + row * l.sr;

/** A buffer's worth of NaN: what the references leave where they write nothing. */
const unwritten = (n: number) => new Float64Array(n).fill(NaN);

/**
 * CPU float64 reference of the forward pass (materialises each row's probabilities, [bh, lq, lk]).
 * Reads Q, K, V in their layouts and writes O in its layout into `out.o` (default: a fresh array
 * of O's span, NaN wherever O has no element).
 */
export function attentionReference(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, p: ReferenceProblem, out: { o?: Float64Array } = {}) {
  const { bh, lq, d } = p;
  const lk = p.lk ?? lq;
  const heads = p.heads ?? 1;
  const scale = p.scale ?? 1 / Math.sqrt(d);
  const L = attentionLayouts(p);
  const o = out.o ?? unwritten(attentionSpan(p, 'o'));
  const lse = new Float64Array(bh * lq);
  const probs = new Float64Array(bh * lq * lk);
  for (let h = 0; h < bh; h++) {
    for (let i = 0; i < lq; i++) {
      const qi = rowAt(L.q, heads, h, i);
      const s = new Float64Array(lk).fill(-Infinity);
      for (let j = 0; j < lk; j++) {
        if (!visible(p, p.maskValues, h, i, j)) continue;
        const kj = rowAt(L.k, heads, h, j);
        let x = 0;
        for (let c = 0; c < d; c++) x += q[qi + c]! * k[kj + c]!;
        s[j] = x * scale;
      }
      const acc = new Float64Array(d);
      const m = Math.max(...s);
      if (m === -Infinity) lse[h * lq + i] = -Infinity;
      else {
        let l = 0;
        for (let j = 0; j < lk; j++) l += Math.exp(s[j]! - m);
        lse[h * lq + i] = m + Math.log(l);
        for (let j = 0; j < lk; j++) {
          const w = Math.exp(s[j]! - lse[h * lq + i]!);
          probs[(h * lq + i) * lk + j] = w;
          const vj = rowAt(L.v, heads, h, j);
          for (let c = 0; c < d; c++) acc[c]! += w * v[vj + c]!;
        }
      }
      o.set(acc, rowAt(L.o, heads, h, i));
    }
  }
  return { o, lse, probs };
}

/**
 * CPU float64 reference of the backward pass, by the textbook formulas on the materialised
 * probabilities. Reads Q, K, V, dO in their layouts; writes dQ into `out.dQ` and dK, dV into
 * `out.dKV` in their layouts (defaults: fresh arrays of their spans, NaN wherever nothing is
 * written; pass one array as both for the fused layout, where all three share dqkv).
 */
export function attentionBackwardReference(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dO: ArrayLike<number>,
  p: ReferenceProblem,
  out: { dQ?: Float64Array; dKV?: Float64Array } = {},
) {
  const { bh, lq, d } = p;
  const lk = p.lk ?? lq;
  const heads = p.heads ?? 1;
  const scale = p.scale ?? 1 / Math.sqrt(d);
  const L = attentionLayouts(p);
  const { probs } = attentionReference(q, k, v, p);
  // Accumulated contiguously ([bh, rows, d]), then placed in the layouts.
  const dq = new Float64Array(bh * lq * d);
  const dk = new Float64Array(bh * lk * d);
  const dv = new Float64Array(bh * lk * d);
  for (let h = 0; h < bh; h++) {
    for (let i = 0; i < lq; i++) {
      const [qi, gi] = [rowAt(L.q, heads, h, i), rowAt(L.dO, heads, h, i)];
      const row = (h * lq + i) * lk;
      const dp = new Float64Array(lk);
      let rowDot = 0;
      for (let j = 0; j < lk; j++) {
        const vj = rowAt(L.v, heads, h, j);
        for (let c = 0; c < d; c++) dp[j]! += dO[gi + c]! * v[vj + c]!;
        rowDot += probs[row + j]! * dp[j]!;
      }
      for (let j = 0; j < lk; j++) {
        const pij = probs[row + j]!;
        if (pij === 0) continue;
        const ds = pij * (dp[j]! - rowDot) * scale;
        const kj = rowAt(L.k, heads, h, j);
        for (let c = 0; c < d; c++) {
          dq[(h * lq + i) * d + c]! += ds * k[kj + c]!;
          dk[(h * lk + j) * d + c]! += ds * q[qi + c]!;
          dv[(h * lk + j) * d + c]! += pij * dO[gi + c]!;
        }
      }
    }
  }
  const dQ = out.dQ ?? unwritten(attentionSpan(p, 'dQ'));
  const dKV = out.dKV ?? unwritten(Math.max(attentionSpan(p, 'dK'), attentionSpan(p, 'dV')));
  for (let h = 0; h < bh; h++) {
    for (let i = 0; i < lq; i++) dQ.set(dq.subarray((h * lq + i) * d, (h * lq + i + 1) * d), rowAt(L.dQ, heads, h, i));
    for (let j = 0; j < lk; j++) {
      dKV.set(dk.subarray((h * lk + j) * d, (h * lk + j + 1) * d), rowAt(L.dK, heads, h, j));
      dKV.set(dv.subarray((h * lk + j) * d, (h * lk + j + 1) * d), rowAt(L.dV, heads, h, j));
    }
  }
  return { dQ, dKV };
}
