import type { Gpu } from '@mode/gpu';
import { Autotuner, type Candidate } from './autotune.js';
import { autotuner } from './matmul.js';
import { tuneKey } from './tune-key.js';

/**
 * InfoNCE with logits Z = s·X·Yᵀ, s = exp(logit_scale) (OpenCLIP's parametrisation).
 * - symmetric (CLIP): loss = ½[CE(Z, diag) + CE(Zᵀ, diag)], b = m;
 * - one-directional (DeCLIP's nearest-neighbour and gathered negatives): loss = mean_i CE(z_i, t_i)
 *   for b queries against m keys, t_i from `targets`.
 * Both never store the b×m logits: statistics and gradients recompute them tile by tile. Variants
 * (INFONCE_VARIANTS): `portable` (any adapter, any d), `tiled` (the same passes with rows of y
 * staged in workgroup memory, for GPUs), `sg` (subgroups of 8, the same passes register-blocked)
 * and `sg_chunk` (subgroups of 8: the logits' columns in chunks, 4 passes over them for loss and
 * both gradients instead of 6). The autotuner picks one per adapter and shape class.
 */
export interface InfoNCEProblem {
  b: number;
  m: number;
  d: number;
  symmetric: boolean;
}

export interface InfoNCEInputs {
  /** b × d (images, or queries) */
  x: GPUBuffer;
  /** m × d (texts, or keys) */
  y: GPUBuffer;
  /** One float: logit_scale (the log of the scale). */
  logitScale: GPUBuffer;
  /** b u32 target indices into y (one-directional only; default 0…b−1). */
  targets?: GPUBuffer;
}

export interface InfoNCEOutputs {
  /** Two floats: [loss, ∂loss/∂logit_scale] (the second 0 unless dx or dy is asked for). */
  loss: GPUBuffer;
  /** ∂loss/∂x, b × d */
  dx?: GPUBuffer;
  /** ∂loss/∂y, m × d */
  dy?: GPUBuffer;
}

function validate(p: InfoNCEProblem): void {
  for (const [name, v] of Object.entries({ b: p.b, m: p.m, d: p.d })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`infoNCE: ${name} must be a positive integer, got ${v}`);
  }
  if (p.symmetric && p.b !== p.m) throw new Error(`infoNCE: the symmetric loss pairs row i of x with row i of y, so b (${p.b}) must equal m (${p.m})`);
}

export type InfoNCEVariantName = 'portable' | 'tiled' | 'sg' | 'sg_chunk';

interface Variant {
  /** How the passes are organised: see `recomputed` and `chunked` below. */
  scheme: 'recompute' | 'chunked';
  /** Kernels (kernels/<name>.wgsl), for tables and the selftest. */
  kernels: string[];
  /** Why this adapter or problem cannot use the variant, or null. */
  unsupported: (gpu: Gpu, p: InfoNCEProblem) => string | null;
  /** Passes over the b×m logits (each 2·b·m·d FLOPs) of the loss, or of loss, dx and dy. */
  passes: (p: InfoNCEProblem, backward: boolean) => number;
  /** The same in words, for benchmark tables. */
  passesText: string;
}

function subgroup8(gpu: Gpu): string | null {
  if (!gpu.device.features.has('subgroups')) return 'adapter lacks the subgroups feature';
  const sg = gpu.report.subgroupSize;
  return sg && sg.min === 8 && sg.max === 8 ? null : `needs subgroup size 8, adapter has ${sg ? `${sg.min}–${sg.max}` : 'unknown'}`;
}
const sgUnsupported = (gpu: Gpu, p: InfoNCEProblem) => subgroup8(gpu) ?? (p.d % 64 === 0 ? null : `d = ${p.d} is not a multiple of 64`);

/** The variants, fastest first on CPU-like adapters (the autotuner times them in this order). */
export const INFONCE_VARIANTS: Record<InfoNCEVariantName, Variant> = {
  sg_chunk: {
    scheme: 'chunked',
    kernels: ['infonce_stats_sg', 'infonce_colstats', 'infonce_grad_chunk_sg', 'infonce_dy_sg'],
    unsupported: sgUnsupported,
    passes: (_p, backward) => (backward ? 4 : 1),
    passesText: 'forward 1 (S once: row statistics online, column statistics per 16-row block), forward+backward 4 (+ S, G·Y, Gᵀ·X from the stored G chunk)',
  },
  sg: {
    scheme: 'recompute',
    kernels: ['infonce_lse_sg', 'infonce_grad_sg'],
    unsupported: sgUnsupported,
    passes: (p, backward) => (p.symmetric ? 2 : 1) + (backward ? 4 : 0),
    passesText: 'forward 2 (row and column log-sum-exp: S each), forward+backward 6 (+ S and G·Y for dX, S and Gᵀ·X for dY)',
  },
  tiled: {
    scheme: 'recompute',
    kernels: ['infonce_lse_tiled', 'infonce_grad_tiled'],
    // A tile must hold at least one row of y (infonce_grad_tiled's 3968 floats).
    unsupported: (_gpu, p) => (p.d > 3968 ? `d = ${p.d} is over 3968 (one row of y per workgroup-memory tile)` : null),
    passes: (p, backward) => (p.symmetric ? 2 : 1) + (backward ? 4 : 0),
    passesText: 'as sg',
  },
  portable: {
    scheme: 'recompute',
    kernels: ['infonce_lse', 'infonce_grad'],
    unsupported: () => null,
    passes: (p, backward) => (p.symmetric ? 2 : 1) + (backward ? 4 : 0),
    passesText: 'as sg',
  },
};

/** Why `variant` cannot run `p` on this adapter, or null. */
export function infoNCEUnsupported(gpu: Gpu, variant: InfoNCEVariantName, p: InfoNCEProblem): string | null {
  return INFONCE_VARIANTS[variant].unsupported(gpu, p);
}

/** FLOPs a variant does for the loss (backward: and dx, dy): 2·b·m·d per pass over the logits. */
export function infoNCEFlops(p: InfoNCEProblem, backward: boolean, variant: InfoNCEVariantName): number {
  return INFONCE_VARIANTS[variant].passes(p, backward) * 2 * p.b * p.m * p.d;
}

const candidateChecksum = (gpu: Gpu) =>
  Autotuner.kernelsChecksum(
    gpu,
    'infonce',
    Object.values(INFONCE_VARIANTS).flatMap((v) => v.kernels),
  );

/**
 * The fastest variant for this problem's shape class on this adapter (measured once, then cached).
 * Timed on loss and both gradients on scratch buffers of at most 1024 × 1024 × d: past that
 * every variant's time grows as b·m, so the order does not change.
 */
export async function chooseInfoNCE(gpu: Gpu, p: InfoNCEProblem, tuner = autotuner): Promise<InfoNCEVariantName> {
  validate(p);
  const q: InfoNCEProblem = { ...p, b: Math.min(p.b, 1024), m: p.symmetric ? Math.min(p.b, 1024) : Math.min(p.m, 1024) };
  const key = tuneKey('infonce', { b: q.b, m: q.m, d: q.d }, p.symmetric ? 'symmetric' : 'one-way');
  const adapter = Autotuner.adapterId(gpu);
  const cached = tuner.lookup(adapter, 'infonce', candidateChecksum(gpu), key) as InfoNCEVariantName | null;
  if (cached && cached in INFONCE_VARIANTS && !infoNCEUnsupported(gpu, cached, p)) return cached;
  const inp = { x: gpu.buffer(4 * q.b * q.d), y: gpu.buffer(4 * q.m * q.d), logitScale: gpu.buffer(4) };
  const out = { loss: gpu.buffer(8), dx: gpu.buffer(4 * q.b * q.d), dy: gpu.buffer(4 * q.m * q.d) };
  // Inputs of zeros (logit scale 1): every variant then does its full work on finite numbers.
  for (const b of Object.values(inp)) gpu.write(b, new Float32Array(b.size / 4));
  const candidates: Candidate[] = (Object.keys(INFONCE_VARIANTS) as InfoNCEVariantName[]).map((name) => ({
    name,
    unsupported: infoNCEUnsupported(gpu, name, p),
    time: async () => {
      const t0 = performance.now();
      await infoNCE(gpu, inp, q, out, name);
      await gpu.sync();
      return (performance.now() - t0) / 1e3;
    },
  }));
  try {
    return (await tuner.pick(adapter, 'infonce', candidateChecksum(gpu), key, candidates)) as InfoNCEVariantName;
  } finally {
    [...Object.values(inp), ...Object.values(out)].forEach((b) => gpu.release(b));
  }
}

const aranges = new WeakMap<Gpu, Map<number, GPUBuffer>>();
/** 0…n−1 as u32, cached per device and length. */
function arange(gpu: Gpu, n: number): GPUBuffer {
  let byLength = aranges.get(gpu);
  if (!byLength) aranges.set(gpu, (byLength = new Map()));
  let buf = byLength.get(n);
  if (!buf)
    byLength.set(
      n,
      (buf = gpu.upload(
        Uint32Array.from({ length: n }, (_, i) => i),
        `arange ${n}`,
      )),
    );
  return buf;
}

/** What the statistics and gradient passes share. */
interface Pass {
  gpu: Gpu;
  inp: InfoNCEInputs;
  p: InfoNCEProblem;
  out: InfoNCEOutputs;
  variant: InfoNCEVariantName;
  /** Targets of the rows of x, and of the rows of y (its diagonal; symmetric only). */
  tx: GPUBuffer;
  ty: GPUBuffer;
  /** Weights of the row and the column cross-entropies. */
  wx: number;
  wy: number;
  lseX: GPUBuffer;
  ztX: GPUBuffer;
  lseY: GPUBuffer;
  ztY: GPUBuffer;
  /** Columns per chunk (chunked scheme). */
  chunk: number;
}

/** The rows' shares of ∂loss/∂scale (and how many), for infonce_reduce; release() when recorded. */
interface Shares {
  dscale: GPUBuffer | null;
  rows: number;
  release(): void;
}

/**
 * Records the loss (and, when dx/dy are given, the gradients) of one InfoNCE problem, with the
 * given variant or else the autotuned one. `options.chunkColumns` sets the chunked scheme's chunk width (tests use it to cross chunk edges).
 */
export async function infoNCE(
  gpu: Gpu,
  inp: InfoNCEInputs,
  p: InfoNCEProblem,
  out: InfoNCEOutputs,
  variant?: InfoNCEVariantName,
  options: { chunkColumns?: number } = {},
): Promise<void> {
  validate(p);
  variant ??= await chooseInfoNCE(gpu, p);
  const vt = INFONCE_VARIANTS[variant];
  const why = vt.unsupported(gpu, p);
  if (why) throw new Error(`infoNCE variant ${variant}: ${why}`);
  const chunk = options.chunkColumns ?? chunkColumns(p);
  if (!Number.isInteger(chunk) || chunk < 32 || chunk % 32 !== 0) throw new Error(`infoNCE: chunkColumns must be a positive multiple of 32, got ${chunk}`);
  const { b, m } = p;
  const [wx, wy] = p.symmetric ? [0.5 / b, 0.5 / m] : [1 / b, 0];
  const lseX = gpu.buffer(4 * b, 'infonce lse x');
  const ztX = gpu.buffer(4 * b, 'infonce zt x');
  const lseY = p.symmetric ? gpu.buffer(4 * m, 'infonce lse y') : lseX;
  // The chunked scheme takes column j's target logit z_jj from the diagonal, found by the rows.
  const ztY = p.symmetric && vt.scheme === 'recompute' ? gpu.buffer(4 * m, 'infonce zt y') : ztX;
  const pass: Pass = {
    gpu,
    inp,
    p,
    out,
    variant,
    tx: p.symmetric || !inp.targets ? arange(gpu, b) : inp.targets,
    ty: arange(gpu, m),
    wx,
    wy,
    lseX,
    ztX,
    lseY,
    ztY,
    chunk,
  };
  const shares = vt.scheme === 'chunked' ? await chunked(pass) : await recomputed(pass);

  const reduce = await gpu.kernel('infonce_reduce');
  gpu.dispatch(reduce, {
    bindings: { lse_x: lseX, zt_x: ztX, lse_y: lseY, zt_y: ztY, dscale_rows: shares.dscale ?? lseX, logit_scale: inp.logitScale, out: out.loss },
    uniforms: { nx: b, ny: m, nd: shares.rows, wx, wy: p.symmetric ? wy : 0 },
    workgroups: 1,
    label: 'infonce reduce',
  });
  // Safe before the dispatches run: whatever reuses them is recorded (and so runs) after them.
  shares.release();
  for (const buf of new Set([lseX, ztX, lseY, ztY])) gpu.release(buf);
}

/**
 * The statistics of each direction in its own pass over the scores (row and column
 * log-sum-exp), then each gradient in its own pass that recomputes the scores and G: dX = s·G·Y
 * from the rows of x, dY = s·Gᵀ·X from the rows of y (the same kernel with x and y swapped).
 * Scratch memory O(b + m).
 */
async function recomputed(c: Pass): Promise<Shares> {
  const { gpu, inp, p, out, variant } = c;
  const [lseName, gradName] = INFONCE_VARIANTS[variant].kernels as [string, string];
  const { b, m, d } = p;
  const flopsZ = 2 * b * m * d;
  const lse = await gpu.kernel(lseName);
  const stats = (x: GPUBuffer, y: GPUBuffer, nx: number, ny: number, targets: GPUBuffer, l: GPUBuffer, zt: GPUBuffer) =>
    gpu.dispatch(lse, {
      bindings: { x, y, targets, lse: l, target_logit: zt, logit_scale: inp.logitScale },
      uniforms: { nx, ny, d },
      workgroups: Math.ceil(nx / 64), // 64 rows per workgroup (sg: 16 rows per subgroup × 4)
      work: { flops: flopsZ },
      label: `infonce lse ${variant} ${nx}×${ny}×${d}`,
    });
  stats(inp.x, inp.y, b, m, c.tx, c.lseX, c.ztX);
  if (p.symmetric) stats(inp.y, inp.x, m, b, c.ty, c.lseY, c.ztY);

  // Each gradient pass also writes its rows' shares of ∂loss/∂scale (either pass gives the total).
  const grad = await gpu.kernel(gradName);
  const gradient = (
    x: GPUBuffer,
    y: GPUBuffer,
    nx: number,
    ny: number,
    lx: GPUBuffer,
    tgx: GPUBuffer,
    ly: GPUBuffer,
    tgy: GPUBuffer,
    wx: number,
    wy: number,
    dx: GPUBuffer,
  ) => {
    const dscale = gpu.buffer(4 * nx, 'infonce dscale rows');
    gpu.dispatch(grad, {
      bindings: { x, y, lse_x: lx, targets_x: tgx, lse_y: ly, targets_y: tgy, dx, dscale_rows: dscale, logit_scale: inp.logitScale },
      uniforms: { nx, ny, d, wx, wy },
      workgroups: Math.ceil(nx / 64),
      work: { flops: 2 * flopsZ },
      label: `infonce grad ${variant} ${nx}×${ny}×${d}`,
    });
    return { dscale, rows: nx };
  };
  // For the rows of y, their own cross-entropy (symmetric case) is the "x side" and the queries' the "y side".
  const fromX = out.dx ? gradient(inp.x, inp.y, b, m, c.lseX, c.tx, c.lseY, c.ty, c.wx, c.wy, out.dx) : null;
  const fromY = out.dy ? gradient(inp.y, inp.x, m, b, c.lseY, c.ty, c.lseX, c.tx, c.wy, c.wx, out.dy) : null;
  const shares = fromX ?? fromY;
  return {
    dscale: shares?.dscale ?? null,
    rows: shares?.rows ?? 0,
    release: () => [fromX, fromY].forEach((g) => g && gpu.release(g.dscale)),
  };
}

/**
 * Columns of Z in chunks of `chunkColumns` (a multiple of 32), in order. Forward: one pass over
 * the scores, the rows' log-sum-exp online across chunks and each column's from per-16-row-block
 * statistics (infonce_stats_sg, then infonce_colstats per chunk). Backward: per chunk, one pass
 * recomputes the scores, forms G, adds its share of dX = s·G·Y and stores s·G (b × chunk), from
 * which infonce_dy_sg forms that chunk's rows of dY = s·Gᵀ·X without recomputing anything.
 * Scratch memory: G and the block statistics, b × chunk floats each at most (chunkColumns).
 */
async function chunked(c: Pass): Promise<Shares> {
  const { gpu, inp, p, out, variant } = c;
  const { b, m, d } = p;
  const C = c.chunk;
  const chunks = Array.from({ length: Math.ceil(m / C) }, (_, k) => ({ c0: k * C, cn: Math.min(C, m - k * C), first: k === 0 ? 1 : 0 }));
  const nblk = Math.ceil(b / 16);
  const [statsK, colK, gradK, dyK] = await Promise.all([
    gpu.kernel('infonce_stats_sg', { COL_STATS: p.symmetric }),
    gpu.kernel('infonce_colstats'),
    gpu.kernel('infonce_grad_chunk_sg'),
    gpu.kernel('infonce_dy_sg'),
  ]);
  const rowL = gpu.buffer(4 * b, 'infonce row sums');
  // Column statistics only where there are column cross-entropies (symmetric).
  const partM = gpu.buffer(p.symmetric ? 4 * nblk * C : 16, 'infonce block max');
  const partL = gpu.buffer(p.symmetric ? 4 * nblk * C : 16, 'infonce block sums');
  for (const { c0, cn, first } of chunks) {
    gpu.dispatch(statsK, {
      bindings: {
        x: inp.x,
        y: inp.y,
        logit_scale: inp.logitScale,
        targets: c.tx,
        lse: c.lseX,
        row_l: rowL,
        target_logit: c.ztX,
        part_m: partM,
        part_l: partL,
      },
      uniforms: { nx: b, ny: m, d, c0, cn, stride: C, first, last: c0 + cn >= m ? 1 : 0 },
      workgroups: Math.ceil(b / 64),
      work: { flops: 2 * b * cn * d },
      label: `infonce stats ${variant} ${b}×[${c0}, ${c0 + cn})×${d}`,
    });
    if (p.symmetric)
      gpu.dispatch(colK, {
        bindings: { part_m: partM, part_l: partL, lse_y: c.lseY },
        uniforms: { nblk, c0, cn, stride: C },
        workgroups: Math.ceil(cn / 64),
        label: `infonce column lse [${c0}, ${c0 + cn})`,
      });
  }
  const scratch = [rowL, partM, partL];
  const release = () => scratch.forEach((buf) => gpu.release(buf));
  if (!out.dx && !out.dy) return { dscale: null, rows: 0, release };

  const dx = out.dx ?? gpu.buffer(4 * b * d, 'infonce dx (unused)');
  const g = gpu.buffer(4 * b * C, 'infonce G chunk');
  const dscale = gpu.buffer(4 * b, 'infonce dscale rows');
  scratch.push(g, dscale, ...(out.dx ? [] : [dx]));
  for (const { c0, cn, first } of chunks) {
    gpu.dispatch(gradK, {
      bindings: {
        x: inp.x,
        y: inp.y,
        logit_scale: inp.logitScale,
        lse_x: c.lseX,
        targets_x: c.tx,
        lse_y: c.lseY,
        targets_y: c.ty,
        dx,
        dscale_rows: dscale,
        g_out: g,
      },
      uniforms: { nx: b, ny: m, d, wx: c.wx, wy: c.wy, c0, cn, stride: C, first },
      workgroups: Math.ceil(b / 64),
      work: { flops: 4 * b * cn * d },
      label: `infonce grad ${variant} ${b}×[${c0}, ${c0 + cn})×${d}`,
    });
    if (out.dy)
      gpu.dispatch(dyK, {
        bindings: { x: inp.x, g, dy: out.dy },
        uniforms: { nx: b, d, c0, cn, stride: C },
        workgroups: Math.ceil(cn / 64),
        work: { flops: 2 * b * cn * d },
        label: `infonce dy ${variant} [${c0}, ${c0 + cn})×${b}×${d}`,
      });
  }
  return { dscale, rows: b, release };
}

/**
 * Columns per chunk of the chunked scheme: a multiple of 32, as many as keep G (b × chunk floats)
 * within max(2·b·d, 2^20) floats, so scratch memory stays O(b·d) (d = 512, b = 8192: 1024).
 */
export function chunkColumns(p: InfoNCEProblem): number {
  const fit = Math.floor(Math.max(2 * p.b * p.d, 2 ** 20) / p.b / 32) * 32;
  return Math.max(32, Math.min(fit, Math.ceil(p.m / 32) * 32));
}

/** CPU float64 reference: loss, gradients and ∂loss/∂logit_scale, from the materialised logits. */
export function infoNCEReference(x: ArrayLike<number>, y: ArrayLike<number>, logitScale: number, p: InfoNCEProblem, targets?: ArrayLike<number>) {
  const { b, m, d } = p;
  const s = Math.exp(logitScale);
  const z = new Float64Array(b * m);
  for (let i = 0; i < b; i++)
    for (let j = 0; j < m; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += x[i * d + c]! * y[j * d + c]!;
      z[i * m + j] = s * dot;
    }
  const t = (i: number) => (p.symmetric || !targets ? i : targets[i]!);
  const g = new Float64Array(b * m); // ∂loss/∂z
  let loss = 0;
  const [wr, wc] = p.symmetric ? [0.5 / b, 0.5 / m] : [1 / b, 0];
  for (let i = 0; i < b; i++) {
    const row = z.subarray(i * m, (i + 1) * m);
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
    loss += wr * (lse - row[t(i)]!);
    for (let j = 0; j < m; j++) g[i * m + j]! += wr * (Math.exp(row[j]! - lse) - (j === t(i) ? 1 : 0));
  }
  if (wc) {
    for (let j = 0; j < m; j++) {
      let mx = -Infinity;
      for (let i = 0; i < b; i++) mx = Math.max(mx, z[i * m + j]!);
      let sum = 0;
      for (let i = 0; i < b; i++) sum += Math.exp(z[i * m + j]! - mx);
      const lse = mx + Math.log(sum);
      loss += wc * (lse - z[j * m + j]!);
      for (let i = 0; i < b; i++) g[i * m + j]! += wc * (Math.exp(z[i * m + j]! - lse) - (i === j ? 1 : 0));
    }
  }
  const dx = new Float64Array(b * d);
  const dy = new Float64Array(m * d);
  let dLogitScale = 0;
  for (let i = 0; i < b; i++)
    for (let j = 0; j < m; j++) {
      const gij = g[i * m + j]!;
      dLogitScale += gij * z[i * m + j]!; // ∂z/∂logit_scale = z
      for (let c = 0; c < d; c++) {
        dx[i * d + c]! += s * gij * y[j * d + c]!;
        dy[j * d + c]! += s * gij * x[i * d + c]!;
      }
    }
  return { loss, dx, dy, dLogitScale };
}
