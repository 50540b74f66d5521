import type { BufferRange, Gpu, Kernel } from '@mode/gpu';
import { Autotuner, type Candidate } from './autotune.js';
import { reduce } from './reduce.js';
import { strided } from './strided.js';
import { geluErfGradReference, geluErfReference, quickGeluGradReference, quickGeluReference, unary } from './unary.js';
import { tuneKey } from './tune-key.js';

/**
 * C = α·op(A)·op(B) + β·C (+ bias per column, then GELU), batched.
 * op(A) is M×K (A stored M×K, or K×M when transA); op(B) is K×N (B stored K×N, or N×K when transB).
 */
export interface MatmulProblem {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  /** Number of matrices; batch i reads A at i·strideA, B at i·strideB, writes C at i·strideC. */
  batch?: number;
  /** Elements between batches; 0 broadcasts one matrix to every batch. Default: the matrix size. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  alpha?: number;
  /** β ≠ 0 reads C; with β = 0 C is write-only (its old contents, even NaN, are ignored). */
  beta?: number;
  /** N values added to every row. */
  bias?: GPUBuffer;
  gelu?: boolean;
  /**
   * Also writes Σ_k op(A)[i, k] for every row i of op(A) here (batch z at z·M + i; α, β, bias and
   * GELU do not apply): a linear layer's bias gradient beside its weight gradient. Variants that
   * fuse it (sg_at) sum the A values they load anyway; for the others a reduction follows.
   */
  rowSumsA?: GPUBuffer;
  /**
   * C = GELU(v) = v·g(v) of v = α·op(A)·op(B) + β·C + bias, with v written here (the same layout
   * as C): what GELU's backward needs. g is Φ (the exact GELU) or σ(1.702·) (`geluKind` 'quick').
   * sg_bt and sg_w fuse it; other variants write v here and a unary pass follows.
   */
  geluPre?: GPUBuffer;
  /**
   * C = v·GELU'(h) with h read from here (the same layout as C): the gradient through a GELU
   * (of `geluKind`) whose input the forward saved (geluPre). sg and sg_w fuse it; other variants
   * write v to a scratch buffer and a unary pass follows.
   */
  geluGradOf?: GPUBuffer;
  /** The GELU of geluPre / geluGradOf: 'erf' (exact, PyTorch's default; the default) or 'quick' (x·σ(1.702x), OpenAI's CLIPs). */
  geluKind?: 'erf' | 'quick';
  /** Element type of A, B, bias and C. f16 needs the adapter's shader-f16 feature. Default f32. */
  dtype?: 'f32' | 'f16';
}

export type MatmulVariantName = 'sg' | 'sg_bt' | 'sg_at' | 'sg_wn' | 'sg_wt' | 'blocked' | 'tiled' | 'naive' | 'blocked_f16';

interface Variant {
  kernel: string;
  /** Rows × columns of C computed by one invocation. */
  block: [number, number];
  needsSubgroup8: boolean;
  /** Layout this variant is written for; null: any (TRANS_A / TRANS_B overrides). */
  layout: 'AB' | 'ABt' | 'AtB' | null;
  dtype?: 'f16';
  /** Writes rowSumsA from its own loads (ROW_SUMS override, `rowsum` binding). */
  fusesRowSums?: boolean;
  /** Has the saved-input GELU epilogue writing `pre` (GELU_PRE), or the one reading it (GELU_GRAD); either kind (QUICK_GELU). */
  fusesGeluPre?: boolean;
  fusesGeluGrad?: boolean;
  /** Extra shape requirements (vec4 access), as a reason when unmet. */
  requires?: (p: Required<Pick<MatmulProblem, 'm' | 'n' | 'k'>>) => string | null;
  /**
   * B goes through 64 KiB uniform-buffer windows of its rows (stored N×K), one dispatch each
   * (matmul_sg_w); 'transposed': B is stored K×N and a transposed copy is made first. Unbatched.
   */
  windows?: 'direct' | 'transposed';
}

/** Floats in the 64 KiB uniform window matmul_sg_w declares (WebGPU's least maxUniformBufferBindingSize). */
const UBO_FLOATS = 16384;

const windowFits = (k: number) => (UBO_FLOATS / k >= 32 ? null : `K = ${k} leaves under 32 rows of B in a 64 KiB uniform window (K ≤ 512)`);

const vec4 = (what: string, x: number) => (x % 4 === 0 ? null : `${what} = ${x} is not a multiple of 4 (vec4 loads)`);

/** The matmul variants, from the plain baseline to the register-blocked subgroup kernels. */
export const MATMUL_VARIANTS: Record<MatmulVariantName, Variant> = {
  sg: { kernel: 'matmul_sg', block: [32, 4], needsSubgroup8: true, layout: 'AB', fusesGeluGrad: true, requires: (p) => vec4('K', p.k) ?? vec4('N', p.n) },
  sg_bt: { kernel: 'matmul_sg_bt', block: [32, 4], needsSubgroup8: true, layout: 'ABt', fusesGeluPre: true, requires: (p) => vec4('K', p.k) ?? vec4('N', p.n) },
  sg_at: { kernel: 'matmul_sg_at', block: [32, 4], needsSubgroup8: true, layout: 'AtB', fusesRowSums: true, requires: (p) => vec4('M', p.m) ?? vec4('N', p.n) },
  // Rows × columns of Cᵀ: each invocation holds 32 columns of C for its 4 rows.
  sg_wn: {
    kernel: 'matmul_sg_w',
    block: [4, 32],
    needsSubgroup8: true,
    layout: 'ABt',
    fusesGeluPre: true,
    fusesGeluGrad: true,
    windows: 'direct',
    requires: (p) => vec4('K', p.k) ?? vec4('N', p.n) ?? windowFits(p.k),
  },
  sg_wt: {
    kernel: 'matmul_sg_w',
    block: [4, 32],
    needsSubgroup8: true,
    layout: 'AB',
    fusesGeluPre: true,
    fusesGeluGrad: true,
    windows: 'transposed',
    requires: (p) => vec4('K', p.k) ?? vec4('N', p.n) ?? windowFits(p.k),
  },
  blocked: { kernel: 'matmul_blocked', block: [4, 4], needsSubgroup8: false, layout: null },
  tiled: { kernel: 'matmul_tiled', block: [4, 4], needsSubgroup8: false, layout: null },
  naive: { kernel: 'matmul_naive', block: [1, 1], needsSubgroup8: false, layout: null },
  blocked_f16: { kernel: 'matmul_blocked_f16', block: [4, 4], needsSubgroup8: false, layout: null, dtype: 'f16' },
};

/**
 * A matmul's compulsory traffic, each operand once: A (once when broadcast), B, C written (and read
 * for β ≠ 0), the bias, the saved GELU input: what a roofline places it by (its arithmetic intensity).
 */
function matmulBytes(p: MatmulProblem, batch: number): number {
  const { m, n, k } = p;
  const c = m * n * batch * ((p.beta ?? 0) !== 0 ? 2 : 1) + (p.geluPre || p.geluGradOf ? m * n * batch : 0);
  return (p.dtype === 'f16' ? 2 : 4) * ((p.strideA === 0 ? 1 : batch) * m * k + (p.strideB === 0 ? 1 : batch) * k * n + c + (p.bias ? n : 0));
}

const geluName = (p: MatmulProblem) => (p.geluKind === 'quick' ? 'quick gelu' : 'gelu');
const layoutOf = (p: MatmulProblem) => (p.transA ? 'At' : 'A') + (p.transB ? 'Bt' : 'B');

/** Why `variant` cannot run `p` on this adapter, or null. */
export function matmulUnsupported(gpu: Gpu, name: MatmulVariantName, p: MatmulProblem): string | null {
  const v = MATMUL_VARIANTS[name];
  const dtype = p.dtype ?? 'f32';
  if ((v.dtype ?? 'f32') !== dtype) return `written for ${v.dtype ?? 'f32'}, not ${dtype}`;
  if (dtype === 'f16' && !gpu.device.features.has('shader-f16')) return 'adapter lacks the shader-f16 feature';
  if (v.layout && v.layout !== layoutOf(p)) return `written for ${v.layout}, not ${layoutOf(p)}`;
  if (v.windows && (p.batch ?? 1) > 1) return 'unbatched (B in uniform-buffer windows)';
  if (v.needsSubgroup8) {
    if (!gpu.device.features.has('subgroups')) return 'adapter lacks the subgroups feature';
    const sg = gpu.report.subgroupSize;
    if (!sg || sg.min !== 8 || sg.max !== 8) return `needs subgroup size 8, adapter has ${sg ? `${sg.min}–${sg.max}` : 'unknown'}`;
  }
  return v.requires?.({ m: p.m, n: p.n, k: p.k }) ?? null;
}

/** Pipelines by variant; the overrides say which layout and epilogue. */
async function pipeline(gpu: Gpu, name: MatmulVariantName, p: MatmulProblem): Promise<Kernel> {
  const v = MATMUL_VARIANTS[name];
  const overrides: Record<string, boolean> = { HAS_BIAS: !!p.bias, GELU: !!p.gelu };
  if (v.fusesRowSums) overrides.ROW_SUMS = !!p.rowSumsA;
  if (v.fusesGeluPre) overrides.GELU_PRE = !!p.geluPre;
  if (v.fusesGeluGrad) overrides.GELU_GRAD = !!p.geluGradOf;
  if (v.fusesGeluPre || v.fusesGeluGrad) overrides.QUICK_GELU = !!(p.geluPre || p.geluGradOf) && p.geluKind === 'quick';
  if (v.layout === null) Object.assign(overrides, { TRANS_A: !!p.transA, TRANS_B: !!p.transB });
  return gpu.kernel(v.kernel, overrides);
}

// A bias binding must always be bound (reflection lists it); kernels without HAS_BIAS never read it.
// The unused rowsum binding is writable, so it cannot share the (read-only) bias placeholder.
// Both are made together, on a Gpu's first matmul, and last as long as it.
const placeholders = new WeakMap<Gpu, { bias: GPUBuffer; rowsum: GPUBuffer }>();
const placeholder = (gpu: Gpu) =>
  placeholders.get(gpu) ??
  (placeholders.set(gpu, { bias: gpu.buffer(16, 'matmul no-bias'), rowsum: gpu.buffer(16, 'matmul no-rowsum') }), placeholders.get(gpu)!); // 16 bytes serve f32 and f16

/** Records one matmul with the given variant (checked for support first). */
export async function matmulWith(gpu: Gpu, name: MatmulVariantName, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, p: MatmulProblem): Promise<void> {
  const why = matmulUnsupported(gpu, name, p);
  if (why) throw new Error(`matmul variant ${name} cannot run ${p.m}×${p.n}×${p.k} ${layoutOf(p)}: ${why}`);
  const { m, n, k } = p;
  if (!(m > 0 && n > 0 && k > 0 && Number.isInteger(m) && Number.isInteger(n) && Number.isInteger(k)))
    throw new Error(`matmul: M, N, K must be positive integers, got ${m}, ${n}, ${k}`);
  const kernel = await pipeline(gpu, name, p);
  const v = MATMUL_VARIANTS[name];
  const [wx, wy] = kernel.workgroupSize;
  const batch = p.batch ?? 1;
  const contiguous = (what: string, stride: number | undefined, size: number) => {
    if (batch > 1 && (stride ?? size) !== size) throw new Error(`matmul ${what} with variant ${name}: batches must be contiguous (stride ${stride} ≠ ${size})`);
  };
  if (p.rowSumsA && !v.fusesRowSums) contiguous('rowSumsA', p.strideA, m * k);
  if ([p.gelu, p.geluPre, p.geluGradOf].filter(Boolean).length > 1) throw new Error('matmul: gelu, geluPre and geluGradOf exclude one another');
  if ((p.geluPre || p.geluGradOf) && (p.dtype ?? 'f32') !== 'f32') throw new Error('matmul: the saved-input GELU epilogues (geluPre, geluGradOf) are f32 only');
  // Without the fused epilogue the product goes to a buffer of its own, and a unary pass makes C from it.
  const unfusedGelu = (p.geluPre && !v.fusesGeluPre) || (p.geluGradOf && !v.fusesGeluGrad);
  if (unfusedGelu) contiguous('exact-GELU epilogue', p.strideC, m * n);
  const elements = batch * m * n;
  const target = !unfusedGelu ? c : p.geluPre ? p.geluPre : gpu.buffer(4 * elements, 'matmul before GELU grad');
  if (unfusedGelu && (p.beta ?? 0) !== 0) gpu.copyBuffer(c, 0, target, 0, 4 * elements); // β·C reads C's old values
  const ph = placeholder(gpu);
  const extra: Record<string, GPUBuffer> = {};
  if (v.fusesRowSums) extra.rowsum = p.rowSumsA ?? ph.rowsum;
  if (v.fusesGeluPre) extra.pre = p.geluPre ?? ph.rowsum; // writable, never written without GELU_PRE
  if (v.fusesGeluGrad) extra.pre = p.geluGradOf ?? extra.pre ?? ph.bias; // sg_w fuses both: keep the writable one
  if (v.windows) {
    await dispatchWindows(gpu, name, kernel, { a, b, c, bias: p.bias ?? ph.bias, pre: extra.pre! }, p);
    if (p.rowSumsA) await reduce(gpu, 'sum', a, p.rowSumsA, { outer: m, len: k, inner: 1 });
    return;
  }
  gpu.dispatch(kernel, {
    bindings: { a, b, c: target, bias: p.bias ?? ph.bias, ...extra },
    uniforms: {
      m,
      n,
      k,
      stride_a: p.strideA ?? m * k,
      stride_b: p.strideB ?? k * n,
      stride_c: p.strideC ?? m * n,
      alpha: p.alpha ?? 1,
      beta: p.beta ?? 0,
    },
    workgroups: [Math.ceil(n / (v.block[1] * wx)), Math.ceil(m / (v.block[0] * wy)), batch],
    work: { flops: 2 * m * n * k * batch, bytes: matmulBytes(p, batch) },
    label: `matmul ${name} ${layoutOf(p)} ${batch > 1 ? `${batch}×` : ''}${m}×${n}×${k}${p.dtype === 'f16' ? ' f16' : ''}${p.rowSumsA && v.fusesRowSums ? ' +rowsums' : ''}${p.geluPre && v.fusesGeluPre ? ` +${geluName(p)}` : ''}${p.geluGradOf && v.fusesGeluGrad ? ` +${geluName(p)} grad` : ''}`,
  });
  const quick = p.geluKind === 'quick';
  if (unfusedGelu && p.geluPre) await unary(gpu, quick ? 'quick_gelu' : 'gelu_erf', p.geluPre, c, elements);
  if (unfusedGelu && p.geluGradOf) {
    await unary(gpu, quick ? 'quick_gelu_bwd' : 'gelu_erf_bwd', p.geluGradOf, c, elements, {}, target);
    gpu.release(target);
  }
  // Row i of op(A) is row i of A, or column i of A stored K×M.
  if (p.rowSumsA && !v.fusesRowSums)
    await reduce(gpu, 'sum', a, p.rowSumsA, p.transA ? { outer: batch, len: k, inner: m } : { outer: batch * m, len: k, inner: 1 });
}

/**
 * matmul_sg_w's dispatches, one per 64 KiB window of B's rows (see the kernel's header): each
 * writes its own columns of C, epilogue included. B stored K×N ('transposed') is first copied
 * to N×K. A window running past B's buffer (the binding is always 64 KiB) is copied into a
 * scratch buffer first, as is one from a buffer without UNIFORM usage.
 */
async function dispatchWindows(
  gpu: Gpu,
  name: MatmulVariantName,
  kernel: Kernel,
  buffers: { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer; bias: GPUBuffer; pre: GPUBuffer },
  p: MatmulProblem,
): Promise<void> {
  const { m, n, k } = p;
  let b = buffers.b;
  const transposed = MATMUL_VARIANTS[name].windows === 'transposed';
  if (transposed) {
    b = gpu.buffer(4 * n * k, 'matmul Bᵀ');
    await strided(gpu, 'copy', buffers.b, buffers.b, b, { shape: [n, k], a: { strides: [1, n] }, out: { strides: [k, 1] } });
  }
  // 64 rows a workgroup where a window holds at least 64 rows of K (see WIDE in the kernel).
  const span = UBO_FLOATS / k >= 64 ? 64 : 32;
  const rowsPer = Math.floor(UBO_FLOATS / k / span) * span;
  const wide = span === 64 ? await gpu.kernel(MATMUL_VARIANTS[name].kernel, { ...kernel.overrides, WIDE: true }) : kernel;
  const count = Math.ceil(n / rowsPer);
  const label = `matmul ${name} ${layoutOf(p)} ${m}×${n}×${k}${p.geluPre ? ` +${geluName(p)}` : ''}${p.geluGradOf ? ` +${geluName(p)} grad` : ''}`;
  for (let i = 0; i < count; i++) {
    const first = i * rowsPer;
    const rows = Math.min(rowsPer, n - first);
    const offset = 4 * first * k;
    let window: GPUBuffer | BufferRange = { buffer: b, offset, size: 4 * UBO_FLOATS };
    let scratch: GPUBuffer | null = null;
    if (offset + 4 * UBO_FLOATS > b.size || !(b.usage & 0x40)) {
      scratch = gpu.buffer(4 * UBO_FLOATS, 'matmul window');
      gpu.copyBuffer(b, offset, scratch, 0, 4 * rows * k);
      window = scratch;
    }
    gpu.dispatch(wide, {
      bindings: { a: buffers.a, w: window, c: buffers.c, bias: buffers.bias, pre: buffers.pre },
      uniforms: { m, n, k, first, rows, alpha: p.alpha ?? 1, beta: p.beta ?? 0 },
      workgroups: [Math.ceil(m / 32), Math.ceil(rows / span), 1],
      work: { flops: 2 * m * rows * k, bytes: matmulBytes({ ...p, n: rows }, 1) },
      label: count > 1 ? `${label} window ${i + 1}/${count}` : label,
    });
    if (scratch) gpu.release(scratch);
  }
  if (transposed) gpu.release(b);
}

/** Checksum of the matmul candidate set as this Gpu loads it: a changed kernel invalidates the cache. */
const candidateChecksum = (gpu: Gpu) =>
  Autotuner.kernelsChecksum(
    gpu,
    'matmul',
    Object.values(MATMUL_VARIANTS).map((v) => v.kernel),
  );

export const autotuner = new Autotuner();

/** The fastest variant for this problem's shape class on this adapter (measured once, then cached). */
export async function chooseMatmul(gpu: Gpu, p: MatmulProblem, tuner = autotuner): Promise<MatmulVariantName> {
  // Which dimensions are multiples of 4 decides which variants apply: part of the key.
  const aligned = [p.m, p.n, p.k].map((x) => (x % 4 === 0 ? '4' : '1')).join('');
  const key = tuneKey(
    'matmul',
    { m: p.m, n: p.n, k: p.k, b: p.batch ?? 1 },
    `${layoutOf(p)}/${aligned}${p.bias ? '+bias' : ''}${p.gelu ? '+gelu' : ''}${p.geluPre ? '+geluErf' : ''}${p.geluGradOf ? '+geluErfGrad' : ''}`,
    p.dtype ?? 'f32',
  );
  const adapter = Autotuner.adapterId(gpu);
  const cached = tuner.lookup(adapter, 'matmul', candidateChecksum(gpu), key) as MatmulVariantName | null;
  if (cached && cached in MATMUL_VARIANTS && !matmulUnsupported(gpu, cached, p)) return cached;
  // Measured on scratch buffers of the class's own shape, so the user's data is never touched.
  const scratch = {
    a: gpu.buffer(4 * p.m * p.k * (p.batch ?? 1)),
    b: gpu.buffer(4 * p.k * p.n * (p.batch ?? 1)),
    c: gpu.buffer(4 * p.m * p.n * (p.batch ?? 1)),
  };
  const cBytes = 4 * p.m * p.n * (p.batch ?? 1);
  const q: MatmulProblem = {
    ...p,
    bias: p.bias ? gpu.buffer(4 * p.n) : undefined,
    beta: 0,
    rowSumsA: undefined,
    // The epilogues are timed too (fused, or with their unary pass), on scratch.
    geluPre: p.geluPre ? gpu.buffer(cBytes) : undefined,
    geluGradOf: p.geluGradOf ? gpu.buffer(cBytes) : undefined,
  };
  const candidates: Candidate[] = (Object.keys(MATMUL_VARIANTS) as MatmulVariantName[])
    .filter((name) => name !== 'naive')
    .map((name) => ({
      name,
      unsupported: matmulUnsupported(gpu, name, p),
      time: async () => {
        const t0 = performance.now();
        await matmulWith(gpu, name, scratch.a, scratch.b, scratch.c, q);
        await gpu.sync();
        return (performance.now() - t0) / 1e3;
      },
    }));
  try {
    return (await tuner.pick(adapter, 'matmul', candidateChecksum(gpu), key, candidates)) as MatmulVariantName;
  } finally {
    [scratch.a, scratch.b, scratch.c, q.bias, q.geluPre, q.geluGradOf].forEach((x) => x && gpu.release(x));
  }
}

/** C = α·op(A)·op(B) + β·C (+ bias, GELU) with the autotuned variant for this shape class. */
export async function matmul(gpu: Gpu, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, p: MatmulProblem): Promise<void> {
  await matmulWith(gpu, await chooseMatmul(gpu, p), a, b, c, p);
}

const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)));

/** The CPU float64 reference of the full operation; `c0` is C before (read when β ≠ 0). */
export function matmulReference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  p: MatmulProblem & { biasValues?: ArrayLike<number>; c0?: ArrayLike<number> },
): Float64Array {
  return matmulReferenceWithRowSums(a, b, p).c;
}

/**
 * The reference's C, the row sums of op(A) (rowSumsA), per batch, and with `savedGelu` the values
 * before GELU (geluPre); `geluGradOfValues` stands for geluGradOf's contents. Both use the GELU
 * of `geluKind` (exact by default).
 */
export function matmulReferenceWithRowSums(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  p: MatmulProblem & { biasValues?: ArrayLike<number>; c0?: ArrayLike<number>; savedGelu?: boolean; geluGradOfValues?: ArrayLike<number> },
): { c: Float64Array; rowSums: Float64Array; pre: Float64Array } {
  const { m, n, k } = p;
  const batch = p.batch ?? 1;
  const [sa, sb, sc] = [p.strideA ?? m * k, p.strideB ?? k * n, p.strideC ?? m * n];
  const alpha = p.alpha ?? 1;
  const beta = p.beta ?? 0;
  const quick = p.geluKind === 'quick';
  const out = new Float64Array(sc * (batch - 1) + m * n);
  const rowSums = new Float64Array(batch * m);
  const pre = new Float64Array(out.length);
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < m; i++) {
      for (let q = 0; q < k; q++) rowSums[z * m + i] += p.transA ? a[z * sa + q * m + i]! : a[z * sa + i * k + q]!;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const x = p.transA ? a[z * sa + q * m + i]! : a[z * sa + i * k + q]!;
          const y = p.transB ? b[z * sb + j * k + q]! : b[z * sb + q * n + j]!;
          s += x * y;
        }
        const at = z * sc + i * n + j;
        let v = alpha * s + (beta !== 0 ? beta * p.c0![at]! : 0) + (p.biasValues ? p.biasValues[j]! : 0);
        if (p.gelu) v = geluRef(v);
        pre[at] = v;
        if (p.savedGelu) v = quick ? quickGeluReference(v) : geluErfReference(v);
        if (p.geluGradOfValues) v *= quick ? quickGeluGradReference(p.geluGradOfValues[at]!) : geluErfGradReference(p.geluGradOfValues[at]!);
        out[at] = v;
      }
    }
  }
  return { c: out, rowSums, pre };
}
