import type { BufferRange, Gpu, Kernel } from '@mode/gpu';
import { Autotuner, type Candidate } from './autotune.js';
import { autotuner } from './matmul.js';
import { pow2Class, tuneKey } from './tune-key.js';

/**
 * k-means on the GPU: assignment of n points (n×d, row-major f32) to the nearest of k centres
 * (k×d) in squared Euclidean distance, and the update (per-cluster sums, counts, new centres).
 *
 * Assignment writes, per point, the nearest centre's index (u32) and its squared distance (f32,
 * computed as ‖x‖² − 2x·c + ‖c‖² and clamped at 0); the n×k distances are never stored. ‖c‖² is
 * precomputed by a tiny kernel (`kmeans_norms`) that this wrapper dispatches before each
 * assignment; ‖x‖² is added inside the assignment kernels, once per point. Ties: the lowest
 * centre index wins (among distances equal in float32).
 *
 * Adapters cap one storage binding (lavapipe: 128 MiB) but not a buffer (4 GiB): points larger
 * than a binding are bound in ranges of `kmeansChunkRows` rows, one dispatch each, inside these
 * wrappers. A caller may still pass its points in several buffers: call once per buffer with
 * `first` = its first point (assignment writes index/distance at first…first+n−1; the update reads
 * assignments there and adds to the previous calls' sums with `accumulate`).
 */
export interface KmeansProblem {
  /** Points in this call. */
  n: number;
  k: number;
  d: number;
  /** Position of this chunk's first point in the index/distance (or assignment) arrays. Default 0. */
  first?: number;
}

export interface KmeansAssignOut {
  /** n (or first + n) u32. */
  index: GPUBuffer;
  /** n (or first + n) f32. */
  distance: GPUBuffer;
}

export type KmeansAssignVariantName = 'sg' | 'tiled' | 'blocked' | 'naive';

interface AssignVariant {
  kernel: string;
  /** Points one workgroup covers, from the pipeline's workgroup size. */
  pointsPerWorkgroup: (wg: [number, number, number]) => number;
  needsSubgroup8: boolean;
  /** Whether the kernel reads ‖c‖² (binding `cnorm`). */
  usesNorms: boolean;
  /** Reads the points from a texture the wrapper stages them in (stagedPoints), not from the buffer. */
  staged?: boolean;
}

/** The assignment variants: the register-blocked subgroup kernel for CPU-like adapters, workgroup-memory tiles for GPUs, a fallback without subgroups, and the naive baseline. */
export const KMEANS_ASSIGN_VARIANTS: Record<KmeansAssignVariantName, AssignVariant> = {
  sg: {
    kernel: 'kmeans_assign_sg',
    pointsPerWorkgroup: (wg) => 32 * wg[1],
    needsSubgroup8: true,
    usesNorms: true,
    staged: true,
  },
  tiled: { kernel: 'kmeans_assign_tiled', pointsPerWorkgroup: () => 64, needsSubgroup8: false, usesNorms: true },
  blocked: { kernel: 'kmeans_assign_blocked', pointsPerWorkgroup: (wg) => 4 * wg[0], needsSubgroup8: false, usesNorms: true },
  naive: { kernel: 'kmeans_assign_naive', pointsPerWorkgroup: (wg) => wg[0], needsSubgroup8: false, usesNorms: false },
};

function subgroup8(gpu: Gpu): string | null {
  if (!gpu.device.features.has('subgroups')) return 'adapter lacks the subgroups feature';
  const sg = gpu.report.subgroupSize;
  return sg && sg.min === 8 && sg.max === 8 ? null : `needs subgroup size 8, adapter has ${sg ? `${sg.min}–${sg.max}` : 'unknown'}`;
}

/** Why `name` cannot run `p` on this adapter, or null. */
export function kmeansAssignUnsupported(gpu: Gpu, name: KmeansAssignVariantName, p: KmeansProblem): string | null {
  const v = KMEANS_ASSIGN_VARIANTS[name];
  return (v.needsSubgroup8 ? subgroup8(gpu) : null) ?? (v.staged ? stageUnsupported(gpu, p.d) : null);
}

const maxBinding = (gpu: Gpu) => gpu.report.limits.maxStorageBufferBindingSize ?? 134217728;
const maxWorkgroups = (gpu: Gpu) => gpu.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;

/**
 * Points of dimension d per bound range: as many as one binding holds (the adapter's
 * maxStorageBufferBindingSize), in whole multiples of 64 so that each range starts on a 256-byte
 * boundary (minStorageBufferOffsetAlignment).
 */
export function kmeansChunkRows(gpu: Gpu, d: number): number {
  const align = gpu.report.limits.minStorageBufferOffsetAlignment ?? 256;
  const unit = align / gcd(align, 4 * d); // rows whose bytes are a multiple of the alignment
  return Math.max(unit, Math.floor(maxBinding(gpu) / (4 * d) / unit) * unit);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** The points as bindings of at most kmeansChunkRows rows each (the whole buffer when it fits one). */
function pointRanges(gpu: Gpu, points: GPUBuffer, p: KmeansProblem): { points: GPUBuffer | BufferRange; at: number; n: number }[] {
  if (points.size <= maxBinding(gpu)) return [{ points, at: 0, n: p.n }];
  const rows = kmeansChunkRows(gpu, p.d);
  const out = [];
  for (let at = 0; at < p.n; at += rows) {
    const n = Math.min(rows, p.n - at);
    out.push({ points: { buffer: points, offset: 4 * at * p.d, size: 4 * n * p.d }, at, n });
  }
  return out;
}

function validate(gpu: Gpu, what: string, p: KmeansProblem): void {
  for (const [name, x] of Object.entries({ n: p.n, k: p.k, d: p.d })) {
    if (!Number.isInteger(x) || x < 1) throw new Error(`${what}: ${name} must be a positive integer, got ${x}`);
  }
  const first = p.first ?? 0;
  if (!Number.isInteger(first) || first < 0) throw new Error(`${what}: first must be a non-negative integer, got ${first}`);
  const limit = maxBinding(gpu);
  if (4 * p.k * p.d > limit) throw new Error(`${what}: k = ${p.k} centres × d = ${p.d} exceed the ${limit}-byte storage binding limit`);
  if (4 * (first + p.n) > limit) throw new Error(`${what}: first + n = ${first + p.n} outputs exceed the ${limit}-byte storage binding limit`);
}

const dims = (p: KmeansProblem) => `n=${p.n} k=${p.k} d=${p.d}`;

/** Out-of-range reads would be clamped silently by the driver: check each buffer holds what the problem says. */
function checkSizes(what: string, buffers: [string, GPUBuffer, number][]): void {
  for (const [name, buffer, bytes] of buffers) {
    if (buffer.size < bytes) throw new Error(`${what}: ${name} needs ${bytes} bytes, buffer "${buffer.label}" has ${buffer.size}`);
  }
}

/** Bytes of the texture the subgroup kernels read points from: 32 MiB, one per Gpu and layout, kept for reuse (not in the buffer pool's statistics). */
const STAGE_BYTES = 32 * 2 ** 20;
const stageTextures = new WeakMap<Gpu, Map<string, GPUTexture>>();

/**
 * How points of dimension d sit in the stage texture (rgba32float, a texel per vec4): perRow
 * points to a texture row, a multiple of the kernels' 32 points per subgroup so that a
 * subgroup's points share one row; height rows. Null when 32 points do not fit one row.
 */
function stageLayout(gpu: Gpu, d: number): { perRow: number; height: number } | null {
  const width = gpu.report.limits.maxTextureDimension2D ?? 8192;
  const perRow = 32 * Math.floor(width / (32 * (d / 4)));
  if (perRow < 32) return null;
  return { perRow, height: Math.max(1, Math.min(width, Math.floor(STAGE_BYTES / (4 * d * perRow)))) };
}

function stageUnsupported(gpu: Gpu, d: number): string | null {
  if (d % 4 !== 0) return `d = ${d} is not a multiple of 4 (vec4 texels)`;
  const width = gpu.report.limits.maxTextureDimension2D ?? 8192;
  return stageLayout(gpu, d)
    ? null
    : `d = ${d}: 32 points of d/4 texels exceed the adapter's texture width (maxTextureDimension2D ${width}); d ≤ ${(width / 32) * 4} is supported`;
}

/**
 * Records, for each chunk of the points that fits the stage texture, a copy of its rows into
 * the texture and then `dispatch(texture, at, rows, perRow)` for the kernel that reads them
 * (at: the chunk's first point). The texture is reused chunk after chunk: WebGPU runs the copies
 * and dispatches in the order recorded.
 */
function stagedPoints(
  gpu: Gpu,
  what: string,
  points: GPUBuffer,
  p: KmeansProblem,
  dispatch: (texture: GPUTexture, at: number, rows: number, perRow: number) => void,
): void {
  if (!(points.usage & 0x04))
    throw new Error(`${what}: points buffer "${points.label}" needs COPY_SRC usage (gpu.buffer() gives it); it has 0x${points.usage.toString(16)}`);
  const layout = stageLayout(gpu, p.d)!;
  const d4 = p.d / 4;
  const key = `${layout.perRow * d4}×${layout.height}`;
  const textures = stageTextures.get(gpu) ?? new Map<string, GPUTexture>();
  stageTextures.set(gpu, textures);
  let texture = textures.get(key);
  if (!texture) {
    texture = gpu.device.createTexture({
      label: `kmeans points staged ${key}`,
      size: [layout.perRow * d4, layout.height],
      format: 'rgba32float',
      usage: 0x04 | 0x02, // TEXTURE_BINDING | COPY_DST
    });
    textures.set(key, texture);
  }
  const rowBytes = 4 * p.d;
  const bytesPerRow = layout.perRow * rowBytes; // a multiple of 256: perRow is of 32 and d of 4
  for (let at = 0; at < p.n; at += layout.perRow * layout.height) {
    const rows = Math.min(layout.perRow * layout.height, p.n - at);
    const full = Math.floor(rows / layout.perRow);
    const rest = rows - full * layout.perRow;
    if (full) gpu.copyBufferToTexture({ buffer: points, offset: at * rowBytes, bytesPerRow, rowsPerImage: full }, { texture }, [layout.perRow * d4, full]);
    if (rest)
      gpu.copyBufferToTexture({ buffer: points, offset: (at + full * layout.perRow) * rowBytes, bytesPerRow }, { texture, origin: [0, full] }, [rest * d4, 1]);
    dispatch(texture, at, rows, layout.perRow);
  }
}

/** Records ‖row‖² of a rows×d matrix into `norms` (the ‖c‖² term). */
export async function kmeansNorms(gpu: Gpu, x: GPUBuffer, norms: GPUBuffer, rows: number, d: number): Promise<void> {
  gpu.dispatch(await gpu.kernel('kmeans_norms'), {
    bindings: { x, norms },
    uniforms: { rows, d },
    workgroups: Math.ceil(rows / 64),
    work: { flops: 2 * rows * d, bytes: 4 * rows * (d + 1) },
    label: `kmeans norms ${rows}×${d}`,
  });
}

/** Records one assignment with the given variant (checked for support first). */
export async function kmeansAssignWith(
  gpu: Gpu,
  name: KmeansAssignVariantName,
  points: GPUBuffer,
  centres: GPUBuffer,
  out: KmeansAssignOut,
  p: KmeansProblem,
): Promise<void> {
  validate(gpu, 'kmeansAssign', p);
  const first = p.first ?? 0;
  checkSizes('kmeansAssign', [
    ['points (n×d f32)', points, 4 * p.n * p.d],
    ['centres (k×d f32)', centres, 4 * p.k * p.d],
    ['index (first + n u32)', out.index, 4 * (first + p.n)],
    ['distance (first + n f32)', out.distance, 4 * (first + p.n)],
  ]);
  const why = kmeansAssignUnsupported(gpu, name, p);
  if (why) throw new Error(`kmeans assign variant ${name} cannot run ${dims(p)}: ${why}`);
  const v = KMEANS_ASSIGN_VARIANTS[name];
  const kernel: Kernel = await gpu.kernel(v.kernel);
  const bindings: Record<string, GPUBuffer | BufferRange> = { centres, index: out.index, dist: out.distance };
  let cnorm: GPUBuffer | null = null;
  if (v.usesNorms) {
    cnorm = gpu.buffer(4 * p.k, 'kmeans centre norms');
    await kmeansNorms(gpu, centres, cnorm, p.k, p.d);
    bindings.cnorm = cnorm;
  }
  const per = v.pointsPerWorkgroup(kernel.workgroupSize);
  if (v.staged) {
    stagedPoints(gpu, 'kmeansAssign', points, p, (texture, at, rows, perRow) =>
      gpu.dispatch(kernel, {
        bindings: { ...bindings, points: texture },
        uniforms: { n: rows, k: p.k, d: p.d, first: first + at, per_row: perRow },
        workgroups: Math.ceil(rows / per),
        work: { flops: 2 * rows * p.k * p.d },
        label: `kmeans assign ${name} ${dims({ ...p, n: rows })}`,
      }),
    );
  } else {
    // One dispatch covers at most maxComputeWorkgroupsPerDimension workgroups: split along the points.
    const rowsPerDispatch = per * maxWorkgroups(gpu);
    for (const range of pointRanges(gpu, points, p)) {
      for (let row0 = 0; row0 < range.n; row0 += rowsPerDispatch) {
        const rows = Math.min(rowsPerDispatch, range.n - row0);
        gpu.dispatch(kernel, {
          bindings: { ...bindings, points: range.points },
          uniforms: { n: range.n, k: p.k, d: p.d, first: first + range.at, row0 },
          workgroups: Math.ceil(rows / per),
          work: { flops: 2 * rows * p.k * p.d },
          label: `kmeans assign ${name} ${dims({ ...p, n: rows })}`,
        });
      }
    }
  }
  // Safe before the dispatches run: whatever reuses it is recorded (and so runs) after them.
  if (cnorm) gpu.release(cnorm);
}

const candidateChecksum = (gpu: Gpu) =>
  Autotuner.kernelsChecksum(gpu, 'kmeans_assign', [...Object.values(KMEANS_ASSIGN_VARIANTS).map((v) => v.kernel), 'kmeans_norms']);

/**
 * Points the autotuner measures on: time per point does not depend on n once every thread has
 * work, so large n is measured on a sample of about 2³⁰ FLOPs (at least 2048 points), which
 * keeps tuning to a second or so even for the slow variants.
 */
export function kmeansTuneRows(p: KmeansProblem): number {
  const budget = pow2Class(Math.max(2048, 2 ** 29 / (pow2Class(p.k) * pow2Class(p.d))));
  return Math.min(p.n, budget);
}

/** The fastest assignment variant for this problem's shape class on this adapter (measured once, then cached). */
export async function chooseKmeans(gpu: Gpu, p: KmeansProblem, tuner = autotuner): Promise<KmeansAssignVariantName> {
  const n = kmeansTuneRows(p);
  const key = tuneKey('kmeans_assign', { n, k: p.k, d: p.d }, p.d % 4 === 0 ? 'd4' : 'd1');
  const adapter = Autotuner.adapterId(gpu);
  const cached = tuner.lookup(adapter, 'kmeans_assign', candidateChecksum(gpu), key) as KmeansAssignVariantName | null;
  if (cached && cached in KMEANS_ASSIGN_VARIANTS && !kmeansAssignUnsupported(gpu, cached, p)) return cached;
  // Measured on scratch buffers (contents irrelevant to the time), so the user's data is never touched.
  const q: KmeansProblem = { n, k: p.k, d: p.d };
  const scratch = { points: gpu.buffer(4 * n * p.d), centres: gpu.buffer(4 * p.k * p.d), index: gpu.buffer(4 * n), distance: gpu.buffer(4 * n) };
  const candidates: Candidate[] = (Object.keys(KMEANS_ASSIGN_VARIANTS) as KmeansAssignVariantName[])
    .filter((name) => name !== 'naive')
    .map((name) => ({
      name,
      unsupported: kmeansAssignUnsupported(gpu, name, p),
      time: async () => {
        const t0 = performance.now();
        await kmeansAssignWith(gpu, name, scratch.points, scratch.centres, scratch, q);
        await gpu.sync();
        return (performance.now() - t0) / 1e3;
      },
    }));
  try {
    return (await tuner.pick(adapter, 'kmeans_assign', candidateChecksum(gpu), key, candidates)) as KmeansAssignVariantName;
  } finally {
    Object.values(scratch).forEach((b) => gpu.release(b));
  }
}

/** Records the assignment with the autotuned variant for this shape class. */
export async function kmeansAssign(gpu: Gpu, points: GPUBuffer, centres: GPUBuffer, out: KmeansAssignOut, p: KmeansProblem, tuner = autotuner): Promise<void> {
  await kmeansAssignWith(gpu, await chooseKmeans(gpu, p, tuner), points, centres, out, p);
}

/** Candidates per point of kmeansTopK (kernels/kmeans_topk_sg.wgsl's T). */
export const KMEANS_TOPK = 8;
/** A ‖c‖² at or above this masks the centre in kmeansTopK (a full cluster of the balanced assignment). */
export const KMEANS_MASKED_NORM = 1e38;
/** Index kmeansTopK writes in the slots a point has no centre for (fewer than T unmasked); its distance is 3.4e38. */
export const KMEANS_NO_CENTRE = 0xffffffff;

/** Why kmeansTopK cannot run this problem on this adapter (its only kernel is the subgroup one), or null. */
export function kmeansTopKUnsupported(gpu: Gpu, p: KmeansProblem): string | null {
  return subgroup8(gpu) ?? stageUnsupported(gpu, p.d);
}

/**
 * Records, per point, its KMEANS_TOPK nearest centres among those whose `cnorm` (k f32, ‖c‖², e.g.
 * from kmeansNorms) is below KMEANS_MASKED_NORM, nearest first (ties: lower index first), into
 * out.index / out.distance (n·T u32 / f32, row-major). The n×k distances are never stored.
 */
export async function kmeansTopK(gpu: Gpu, points: GPUBuffer, centres: GPUBuffer, cnorm: GPUBuffer, out: KmeansAssignOut, p: KmeansProblem): Promise<void> {
  validate(gpu, 'kmeansTopK', p);
  if (p.first) throw new Error("kmeansTopK: first is not supported; call with each chunk's own output buffers");
  const T = KMEANS_TOPK;
  if (4 * p.n * T > maxBinding(gpu)) throw new Error(`kmeansTopK: ${p.n}·${T} candidates exceed one storage binding; pass fewer points per call`);
  checkSizes('kmeansTopK', [
    ['points (n×d f32)', points, 4 * p.n * p.d],
    ['centres (k×d f32)', centres, 4 * p.k * p.d],
    ['cnorm (k f32)', cnorm, 4 * p.k],
    ['index (n·T u32)', out.index, 4 * p.n * T],
    ['distance (n·T f32)', out.distance, 4 * p.n * T],
  ]);
  const why = kmeansTopKUnsupported(gpu, p);
  if (why) throw new Error(`kmeansTopK cannot run ${dims(p)}: ${why}`);
  const kernel = await gpu.kernel('kmeans_topk_sg');
  const per = 32 * kernel.workgroupSize[1];
  stagedPoints(gpu, 'kmeansTopK', points, p, (texture, at, rows, perRow) =>
    gpu.dispatch(kernel, {
      bindings: { points: texture, centres, cnorm, index: out.index, dist: out.distance },
      uniforms: { n: rows, k: p.k, d: p.d, first: at, per_row: perRow },
      workgroups: Math.ceil(rows / per),
      work: { flops: 2 * rows * p.k * p.d },
      label: `kmeans top${T} sg ${dims({ ...p, n: rows })}`,
    }),
  );
}

/**
 * CPU float64 reference of kmeansTopK: per point the T nearest unmasked centres by
 * Σ(x − c)², ascending, the lower index first among equal distances; NO_CENTRE / Infinity past
 * the unmasked ones.
 */
export function kmeansTopKReference(
  points: ArrayLike<number>,
  centres: ArrayLike<number>,
  masked: (j: number) => boolean,
  p: { n: number; k: number; d: number },
) {
  const T = KMEANS_TOPK;
  const index = new Uint32Array(p.n * T).fill(KMEANS_NO_CENTRE);
  const distance = new Float64Array(p.n * T).fill(Infinity);
  for (let i = 0; i < p.n; i++) {
    const all: [number, number][] = [];
    for (let j = 0; j < p.k; j++) if (!masked(j)) all.push([sqDist(points, i, centres, j, p.d), j]);
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    all.slice(0, T).forEach(([dd, j], u) => {
      index[i * T + u] = j;
      distance[i * T + u] = dd;
    });
  }
  return { index, distance };
}

export interface KmeansUpdateProblem extends KmeansProblem {
  /** Add this chunk to the sums and counts of the previous chunks instead of starting over. */
  accumulate?: boolean;
}

export interface KmeansUpdateOut {
  /** k×d f32: per-cluster sums of the points. */
  sums: GPUBuffer;
  /** k u32: points per cluster. */
  counts: GPUBuffer;
  /** k×d f32: sums / counts for clusters with points; empty clusters keep what the buffer held. */
  centres: GPUBuffer;
}

/** Points per block of the counting sort (kernels' BLK) and clusters per histogram workgroup (CHUNK). */
const UPDATE_BLOCK = 256;
const UPDATE_CLUSTER_CHUNK = 4096;

/**
 * Records the update: a stable counting sort of this chunk's points by cluster (histogram per
 * block of 256 points, prefix sums, scatter in index order), then one invocation per (cluster,
 * dimension) adding its points in that order. No float atomics: the sums are bit-identical run to
 * run (and, with `accumulate`, for the same chunking). Assignments ≥ k are ignored.
 */
export async function recordKmeansUpdate(gpu: Gpu, points: GPUBuffer, assignments: GPUBuffer, out: KmeansUpdateOut, p: KmeansUpdateProblem): Promise<void> {
  validate(gpu, 'kmeansUpdate', p);
  const first = p.first ?? 0;
  checkSizes('kmeansUpdate', [
    ['points (n×d f32)', points, 4 * p.n * p.d],
    ['assignments (first + n u32)', assignments, 4 * (first + p.n)],
    ['sums (k×d f32)', out.sums, 4 * p.k * p.d],
    ['counts (k u32)', out.counts, 4 * p.k],
    ['centres (k×d f32)', out.centres, 4 * p.k * p.d],
  ]);
  // Ranges after the first add to its sums: the same fixed-order sums, so still bit-identical run to run.
  for (const [i, range] of pointRanges(gpu, points, p).entries())
    await updateRange(gpu, range.points, assignments, out, { ...p, n: range.n, first: first + range.at, accumulate: p.accumulate || i > 0 });
}

async function updateRange(gpu: Gpu, points: GPUBuffer | BufferRange, assignments: GPUBuffer, out: KmeansUpdateOut, p: KmeansUpdateProblem): Promise<void> {
  const blocks = Math.ceil(p.n / UPDATE_BLOCK);
  if (blocks > maxWorkgroups(gpu))
    throw new Error(`kmeansUpdate: n = ${p.n} points in one call is over ${UPDATE_BLOCK * maxWorkgroups(gpu)}; pass fewer per call`);
  if (4 * p.k * blocks > maxBinding(gpu))
    throw new Error(
      `kmeansUpdate: the k × ${blocks}-block histogram (${4 * p.k * blocks} bytes) is over the storage binding limit; pass fewer points per call`,
    );
  const first = p.first ?? 0;
  const accumulate = p.accumulate ? 1 : 0;
  const hist = gpu.buffer(4 * p.k * blocks, 'kmeans histogram');
  const offsets = gpu.buffer(4 * (p.k + 1), 'kmeans offsets');
  const order = gpu.buffer(4 * p.n, 'kmeans order');
  gpu.dispatch(await gpu.kernel('kmeans_update_hist'), {
    bindings: { assign: assignments, hist },
    uniforms: { n: p.n, k: p.k, first, blocks },
    workgroups: [blocks, Math.ceil(p.k / UPDATE_CLUSTER_CHUNK)],
    label: `kmeans update hist ${dims(p)}`,
  });
  gpu.dispatch(await gpu.kernel('kmeans_update_scan'), {
    bindings: { hist, offsets, counts: out.counts },
    uniforms: { k: p.k, blocks, accumulate },
    workgroups: 1,
    label: `kmeans update scan k=${p.k}`,
  });
  gpu.dispatch(await gpu.kernel('kmeans_update_scatter'), {
    bindings: { assign: assignments, hist, offsets, order },
    uniforms: { n: p.n, k: p.k, first, blocks },
    workgroups: blocks,
    label: `kmeans update scatter ${dims(p)}`,
  });
  gpu.dispatch(await gpu.kernel('kmeans_update'), {
    bindings: { points, order, offsets, counts: out.counts, sums: out.sums, centres: out.centres },
    uniforms: { k: p.k, d: p.d, accumulate },
    workgroups: [Math.ceil(p.k / 8), Math.ceil(p.d / 128)], // 8 clusters × 128 columns a workgroup
    work: { flops: p.n * p.d, bytes: 4 * p.n * (p.d + 1) },
    label: `kmeans update sums ${dims(p)}`,
  });
  [hist, offsets, order].forEach((b) => gpu.release(b));
}

/** Records the update, runs it, and reads the counts back: the empty clusters are the caller's to re-seed. */
export async function kmeansUpdate(
  gpu: Gpu,
  points: GPUBuffer,
  assignments: GPUBuffer,
  out: KmeansUpdateOut,
  p: KmeansUpdateProblem,
): Promise<{ counts: Uint32Array; empty: number[] }> {
  await recordKmeansUpdate(gpu, points, assignments, out, p);
  const counts = await gpu.read(out.counts, Uint32Array, p.k);
  return { counts, empty: emptyClusters(counts) };
}

export function emptyClusters(counts: ArrayLike<number>): number[] {
  const empty: number[] = [];
  for (let c = 0; c < counts.length; c++) if (counts[c] === 0) empty.push(c);
  return empty;
}

/** Float64 squared distance between row i of x and row j of c. */
function sqDist(x: ArrayLike<number>, i: number, c: ArrayLike<number>, j: number, d: number): number {
  let s = 0;
  for (let q = 0; q < d; q++) {
    const t = x[i * d + q]! - c[j * d + q]!;
    s += t * t;
  }
  return s;
}

/** CPU float64 reference: per point the nearest centre (lowest index on ties), its distance Σ(x − c)², and the second-best distance. */
export function kmeansAssignReference(points: ArrayLike<number>, centres: ArrayLike<number>, p: { n: number; k: number; d: number }) {
  const index = new Uint32Array(p.n);
  const distance = new Float64Array(p.n);
  const second = new Float64Array(p.n).fill(Infinity);
  for (let i = 0; i < p.n; i++) {
    let best = Infinity;
    for (let j = 0; j < p.k; j++) {
      const s = sqDist(points, i, centres, j, p.d);
      if (s < best) {
        second[i] = best;
        best = s;
        index[i] = j;
      } else if (s < second[i]!) second[i] = s;
    }
    distance[i] = best;
  }
  return { index, distance, second };
}

/** Relative tolerance of the checks, against the scale ‖x‖² + ‖c‖² of each distance. */
export const KMEANS_TOLERANCE = 1e-5;

function sqNorm(x: ArrayLike<number>, i: number, d: number): number {
  let s = 0;
  for (let q = 0; q < d; q++) s += x[i * d + q]! ** 2;
  return s;
}

/**
 * Checks a GPU assignment against the float64 reference. An index must match exactly, except
 * where the reference's best two distances differ by less than `tol`·(‖x‖² + ‖c‖²) (a near-tie
 * float32 cannot resolve), and then the chosen centre must itself be within that of the best.
 * Each distance must be within `tol`·(‖x‖² + ‖c‖²) of the float64 distance to the chosen centre.
 * Returns the failing points (index out of range or NaN counts as failing) and the worst error.
 */
export function checkAssignment(
  out: { index: ArrayLike<number>; distance: ArrayLike<number> },
  points: ArrayLike<number>,
  centres: ArrayLike<number>,
  p: { n: number; k: number; d: number },
  ref = kmeansAssignReference(points, centres, p),
  tol = KMEANS_TOLERANCE,
): { badIndex: number[]; badDistance: number[]; worstDistanceError: number; exempt: number } {
  const badIndex: number[] = [];
  const badDistance: number[] = [];
  let worst = 0;
  let exempt = 0;
  for (let i = 0; i < p.n; i++) {
    const j = out.index[i]!;
    if (!(j < p.k)) {
      badIndex.push(i);
      continue;
    }
    const scale = sqNorm(points, i, p.d) + sqNorm(centres, j, p.d) + 1e-30;
    const dj = sqDist(points, i, centres, j, p.d);
    if (j !== ref.index[i]) {
      const nearTie = ref.second[i]! - ref.distance[i]! < tol * scale && dj - ref.distance[i]! < tol * scale;
      if (nearTie) exempt++;
      else badIndex.push(i);
    }
    const err = Math.abs(out.distance[i]! - dj) / scale;
    if (!(err <= tol)) badDistance.push(i);
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
  }
  return { badIndex, badDistance, worstDistanceError: worst, exempt };
}

/** CPU float64 reference of the update: sums, counts, and centres (NaN for empty clusters). */
export function kmeansUpdateReference(points: ArrayLike<number>, assignments: ArrayLike<number>, p: { n: number; k: number; d: number }) {
  const sums = new Float64Array(p.k * p.d);
  const counts = new Uint32Array(p.k);
  for (let i = 0; i < p.n; i++) {
    const c = assignments[i]!;
    if (!(c < p.k)) continue;
    counts[c]!++;
    for (let q = 0; q < p.d; q++) sums[c * p.d + q]! += points[i * p.d + q]!;
  }
  const centres = new Float64Array(p.k * p.d);
  for (let c = 0; c < p.k; c++) for (let q = 0; q < p.d; q++) centres[c * p.d + q] = counts[c] ? sums[c * p.d + q]! / counts[c]! : NaN;
  return { sums, counts, centres, empty: emptyClusters(counts) };
}
