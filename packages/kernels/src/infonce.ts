import type { Gpu } from '@mode/gpu';

/**
 * InfoNCE with logits Z = s·X·Yᵀ, s = exp(logit_scale) (OpenCLIP's parametrisation).
 * - symmetric (CLIP): loss = ½[CE(Z, diag) + CE(Zᵀ, diag)], b = m;
 * - one-directional (DeCLIP's nearest-neighbour and gathered negatives): loss = mean_i CE(z_i, t_i)
 *   for b queries against m keys, t_i from `targets`.
 * Both never store the b×m logits: statistics and gradients recompute them tile by tile.
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

export type InfoNCEVariantName = 'portable' | 'sg';

interface Variant {
  lse: string;
  grad: string;
  /** Rows of x per workgroup. */
  rowsPerWorkgroup: number;
  /** Override constants of each kernel. */
  overrides?: (p: InfoNCEProblem) => { lse: Record<string, number>; grad: Record<string, number> };
  /** Why this adapter or problem cannot use the variant, or null. */
  unsupported: (gpu: Gpu, p: InfoNCEProblem) => string | null;
  /** Passes over the b×m logits (each 2·b·m·d FLOPs) of the loss, or of loss, dx and dy. */
  passes: (p: InfoNCEProblem, backward: boolean) => number;
  /** The same in words, for benchmark tables. */
  passesText: string;
}

// Statistics: one pass per direction; each gradient: the scores again, then G·Y.
const recomputePasses = (p: InfoNCEProblem, backward: boolean) => (p.symmetric ? 2 : 1) + (backward ? 4 : 0);
const recomputeText = 'forward 2 (row and column log-sum-exp: S each), forward+backward 6 (+ S and G·Y for dX, S and Gᵀ·X for dY)';

function subgroup8(gpu: Gpu): string | null {
  if (!gpu.device.features.has('subgroups')) return 'adapter lacks the subgroups feature';
  const sg = gpu.report.subgroupSize;
  return sg && sg.min === 8 && sg.max === 8 ? null : `needs subgroup size 8, adapter has ${sg ? `${sg.min}–${sg.max}` : 'unknown'}`;
}

/** The variants, in order of preference: the default is the first one the adapter and problem support. */
export const INFONCE_VARIANTS: Record<InfoNCEVariantName, Variant> = {
  sg: {
    lse: 'infonce_lse_sg',
    grad: 'infonce_grad_sg',
    rowsPerWorkgroup: 64, // 16 rows per subgroup × WG_Y = 4
    unsupported: (gpu, p) => subgroup8(gpu) ?? (p.d % 64 === 0 ? null : `d = ${p.d} is not a multiple of 64`),
    passes: recomputePasses,
    passesText: recomputeText,
  },
  portable: {
    lse: 'infonce_lse',
    grad: 'infonce_grad',
    rowsPerWorkgroup: 64,
    unsupported: () => null,
    passes: recomputePasses,
    passesText: recomputeText,
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

/** The default variant: the first supported one in INFONCE_VARIANTS' order (portable always is). */
export function chooseInfoNCE(gpu: Gpu, p: InfoNCEProblem): InfoNCEVariantName {
  return (Object.keys(INFONCE_VARIANTS) as InfoNCEVariantName[]).find((v) => !infoNCEUnsupported(gpu, v, p))!;
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

/** Records the loss (and, when dx/dy are given, the gradients) of one InfoNCE problem. */
export async function infoNCE(
  gpu: Gpu,
  inp: InfoNCEInputs,
  p: InfoNCEProblem,
  out: InfoNCEOutputs,
  variant: InfoNCEVariantName = chooseInfoNCE(gpu, p),
): Promise<void> {
  validate(p);
  const vt = INFONCE_VARIANTS[variant];
  const why = vt.unsupported(gpu, p);
  if (why) throw new Error(`infoNCE variant ${variant}: ${why}`);
  const overrides = vt.overrides?.(p) ?? { lse: {}, grad: {} };
  const { b, m, d } = p;
  const tx = p.symmetric || !inp.targets ? arange(gpu, b) : inp.targets;
  const ty = arange(gpu, m);
  const [wx, wy] = p.symmetric ? [0.5 / b, 0.5 / m] : [1 / b, 0];
  const lseX = gpu.buffer(4 * b, 'infonce lse x');
  const ztX = gpu.buffer(4 * b, 'infonce zt x');
  const lseY = p.symmetric ? gpu.buffer(4 * m, 'infonce lse y') : lseX;
  const ztY = p.symmetric ? gpu.buffer(4 * m, 'infonce zt y') : ztX;
  const lse = await gpu.kernel(vt.lse, overrides.lse);
  const flopsZ = 2 * b * m * d;
  const stats = (x: GPUBuffer, y: GPUBuffer, nx: number, ny: number, targets: GPUBuffer, l: GPUBuffer, zt: GPUBuffer) =>
    gpu.dispatch(lse, {
      bindings: { x, y, targets, lse: l, target_logit: zt, logit_scale: inp.logitScale },
      uniforms: { nx, ny, d },
      workgroups: Math.ceil(nx / vt.rowsPerWorkgroup),
      work: { flops: flopsZ },
      label: `infonce lse ${variant} ${nx}×${ny}×${d}`,
    });
  stats(inp.x, inp.y, b, m, tx, lseX, ztX);
  if (p.symmetric) stats(inp.y, inp.x, m, b, ty, lseY, ztY);

  // Each gradient pass also writes its rows' shares of ∂loss/∂scale (either pass gives the total).
  const grad = await gpu.kernel(vt.grad, overrides.grad);
  const gradient = (
    x: GPUBuffer,
    y: GPUBuffer,
    nx: number,
    ny: number,
    lx: GPUBuffer,
    tgx: GPUBuffer,
    ly: GPUBuffer,
    tgy: GPUBuffer,
    wx_: number,
    wy_: number,
    dx: GPUBuffer,
  ) => {
    const dscale = gpu.buffer(4 * nx, 'infonce dscale rows');
    gpu.dispatch(grad, {
      bindings: { x, y, lse_x: lx, targets_x: tgx, lse_y: ly, targets_y: tgy, dx, dscale_rows: dscale, logit_scale: inp.logitScale },
      uniforms: { nx, ny, d, wx: wx_, wy: wy_ },
      workgroups: Math.ceil(nx / vt.rowsPerWorkgroup),
      work: { flops: 2 * flopsZ },
      label: `infonce grad ${variant} ${nx}×${ny}×${d}`,
    });
    return { dscale, rows: nx };
  };
  // For the rows of y, their own cross-entropy (symmetric case) is the "x side" and the queries' the "y side".
  const fromX = out.dx ? gradient(inp.x, inp.y, b, m, lseX, tx, lseY, ty, wx, wy, out.dx) : null;
  const fromY = out.dy ? gradient(inp.y, inp.x, m, b, lseY, ty, lseX, tx, wy, wx, out.dy) : null;
  const shares = fromX ?? fromY ?? { dscale: lseX, rows: 0 };

  const reduce = await gpu.kernel('infonce_reduce');
  gpu.dispatch(reduce, {
    bindings: { lse_x: lseX, zt_x: ztX, lse_y: lseY, zt_y: ztY, dscale_rows: shares.dscale, logit_scale: inp.logitScale, out: out.loss },
    uniforms: { nx: b, ny: m, nd: shares.rows, wx, wy: p.symmetric ? wy : 0 },
    workgroups: 1,
    label: 'infonce reduce',
  });
  for (const g of [fromX, fromY]) if (g) gpu.release(g.dscale);
  for (const buf of new Set([lseX, ztX, lseY, ztY])) gpu.release(buf);
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
