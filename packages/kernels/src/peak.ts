/**
 * The adapter's own ceilings, measured (`mode bench peak`): its arithmetic rate (peak_flops.wgsl),
 * its memory bandwidths (peak_memory.wgsl) and the fixed cost of a dispatch. Here: the two kernels'
 * wrappers with their float64 references, and the per-adapter cache of the measured ceilings that
 * `mode info`, the profiler's tables and the bench rows read (`% of peak`).
 *
 * Cache: $MODE_PEAK_CACHE, else ~/.cache/mode/peak.json, keyed by adapter (as the autotuner's),
 * stored with a checksum of the two kernels' WGSL: edit them and the adapter is measured anew.
 */
import type { Gpu, Roof } from '@mode/gpu';
import { Autotuner } from './autotune.js';
import { grid } from './grid.js';
import { tuneCachePath, tuneStore, type TuneStore } from './tune-store.js';

export interface PeakFlopsProblem {
  /** Independent vec4 chains per invocation: 4, 8, 12 or 16. */
  chains: number;
  /** WGSL's fma() instead of a multiply and an add. */
  fma: boolean;
  workgroupSize: number;
  /** Steps per chain. */
  iters: number;
  /** Invocations (each writes one vec4 of `out`). */
  threads: number;
  a?: number;
  b?: number;
}

export const PEAK_A = 1 - 2 ** -8;
export const PEAK_B = 2 ** -10;

/** FLOPs one peak_flops dispatch does: every invocation of its workgroups, 8 a chain step. */
export const peakFlopsWork = (p: PeakFlopsProblem): number => {
  const [x, y] = grid(p.threads, p.workgroupSize);
  return x * y * p.workgroupSize * p.chains * p.iters * 8;
};

/** Records the arithmetic-ceiling kernel: out[i] = the sum of invocation i's chains. */
export async function peakFlops(gpu: Gpu, out: GPUBuffer, p: PeakFlopsProblem): Promise<void> {
  if (![4, 8, 12, 16].includes(p.chains)) throw new RangeError(`peakFlops: chains = ${p.chains}; use 4, 8, 12 or 16`);
  const kernel = await gpu.kernel('peak_flops', { CHAINS: p.chains, FMA: p.fma, WG: p.workgroupSize });
  gpu.dispatch(kernel, {
    bindings: { out },
    uniforms: { iters: p.iters, n: p.threads, a: p.a ?? PEAK_A, b: p.b ?? PEAK_B },
    workgroups: grid(p.threads, p.workgroupSize),
    work: { flops: peakFlopsWork(p), bytes: 16 * p.threads },
    label: `peak flops ${p.chains} chains${p.fma ? ' fma' : ''} wg ${p.workgroupSize}`,
  });
}

/** Invocation i's output, in float64. */
export function peakFlopsReference(i: number, p: PeakFlopsProblem): number[] {
  const [a, b] = [p.a ?? PEAK_A, p.b ?? PEAK_B];
  const s = [0, 0, 0, 0];
  for (let c = 0; c < p.chains; c++)
    for (let l = 0; l < 4; l++) {
      let x = (i % 7) * 0.01 + l * 0.1 + c * 0.001;
      for (let t = 0; t < p.iters; t++) x = x * a + b;
      s[l]! += x;
    }
  return s;
}

export const PEAK_MEMORY_OPS = { read: 0, write: 1, copy: 2, uniform: 3, gather: 4, texture: 5 } as const;
export type PeakMemoryOp = keyof typeof PEAK_MEMORY_OPS;
/** vec4s in peak_memory's uniform window (64 KiB). */
export const PEAK_WINDOW = 4096;

export interface PeakMemoryProblem {
  op: PeakMemoryOp;
  /** vec4 elements of src / dst / idx (read, write, copy, gather). */
  n: number;
  /** Invocations sharing them; 0 makes the empty dispatch. */
  threads: number;
  /** Contiguous runs per invocation instead of a grid stride. */
  blocked: boolean;
  workgroupSize: number;
  /** uniform: vec4s each invocation reads from the window. */
  reps?: number;
  /** write: the value written is (k mod 8) · value. */
  value?: number;
}

/** Bytes one peak_memory dispatch moves (reads and writes of storage and uniform data). */
export function peakMemoryBytes(p: PeakMemoryProblem): number {
  switch (p.op) {
    case 'read':
      return 16 * p.n + 16 * p.threads;
    case 'write':
      return 16 * p.n;
    case 'copy':
      return 32 * p.n;
    case 'uniform':
      return 16 * p.threads * (p.reps ?? 0) + 16 * p.threads;
    case 'gather':
      return 36 * p.n; // the index, the gathered vec4, the written vec4
    case 'texture':
      return 32 * p.n; // the texel read, the vec4 written
  }
}

export interface PeakMemoryBuffers {
  src: GPUBuffer;
  dst: GPUBuffer;
  /** gather's indices (another op may pass any buffer). */
  idx: GPUBuffer;
  /** The 64 KiB uniform window (another op may pass any buffer of that size with UNIFORM usage). */
  win: GPUBuffer;
  /** texture's rgba32float texture, at least n texels (another op may pass any 2-D texture). */
  tex: GPUTexture;
}

/** An rgba32float texture of `texels` (4 floats each) in rows of `width`, for the texture op (the last row zero-padded). */
export function peakTexture(gpu: Gpu, texels: Float32Array, width: number): GPUTexture {
  const height = Math.max(1, Math.ceil(texels.length / 4 / width));
  const texture = gpu.device.createTexture({ size: [width, height], format: 'rgba32float', usage: 0x04 | 0x02, label: 'peak texture' }); // TEXTURE_BINDING | COPY_DST
  const padded = new Float32Array(width * height * 4);
  padded.set(texels);
  gpu.device.queue.writeTexture({ texture }, padded, { bytesPerRow: width * 16, rowsPerImage: height }, [width, height]);
  return texture;
}

/** Records one memory-ceiling dispatch. */
export async function peakMemory(gpu: Gpu, b: PeakMemoryBuffers, p: PeakMemoryProblem): Promise<void> {
  const kernel = await gpu.kernel('peak_memory', { OP: PEAK_MEMORY_OPS[p.op], BLOCKED: p.blocked, WG: p.workgroupSize });
  gpu.dispatch(kernel, {
    bindings: { src: b.src, dst: b.dst, idx: b.idx, win: b.win, tex: b.tex },
    uniforms: { n: p.n, threads: p.threads, reps: p.reps ?? 0, value: p.value ?? 1 },
    workgroups: p.threads === 0 ? 1 : grid(p.threads, p.workgroupSize),
    work: { bytes: peakMemoryBytes(p) },
    label: p.threads === 0 ? 'peak empty dispatch' : `peak ${p.op}${p.blocked ? ' blocked' : ''} wg ${p.workgroupSize}`,
  });
}

/** dst as peak_memory leaves it (float64; the elements an op does not write are absent: NaN). `texels`: the texture's, row after row. */
export function peakMemoryReference(
  p: PeakMemoryProblem,
  src: ArrayLike<number>,
  idx: ArrayLike<number>,
  win: ArrayLike<number>,
  dstLength: number,
  texels: ArrayLike<number> = [],
): Float64Array {
  const dst = new Float64Array(dstLength).fill(NaN);
  const { n, threads } = p;
  if (p.op === 'uniform') {
    for (let i = 0; i < threads; i++)
      for (let l = 0; l < 4; l++) {
        let s = 0;
        for (let r = 0; r < (p.reps ?? 0); r++) s += win[((i + r) % PEAK_WINDOW) * 4 + l]!;
        dst[i * 4 + l] = s;
      }
    return dst;
  }
  const per = Math.ceil(n / threads);
  for (let i = 0; i < threads; i++) {
    const elements = p.blocked ? { first: i * per, last: Math.min(n, i * per + per), step: 1 } : { first: i, last: n, step: threads };
    const s = [0, 0, 0, 0];
    for (let k = elements.first; k < elements.last; k += elements.step)
      for (let l = 0; l < 4; l++) {
        if (p.op === 'read') s[l]! += src[k * 4 + l]!;
        else if (p.op === 'write') dst[k * 4 + l] = (k % 8) * (p.value ?? 1);
        else if (p.op === 'copy') dst[k * 4 + l] = src[k * 4 + l]!;
        else if (p.op === 'texture') dst[k * 4 + l] = texels[k * 4 + l]!;
        else dst[k * 4 + l] = src[idx[k]! * 4 + l]!;
      }
    if (p.op === 'read') for (let l = 0; l < 4; l++) dst[i * 4 + l] = s[l]!;
  }
  return dst;
}

/** One measured ceiling: the best configuration found and its rate. */
export interface Ceiling {
  /** FLOP/s (arithmetic) or bytes/s (memory). */
  value: number;
  /** The configuration that reached it, e.g. "16 chains, fma, wg 64". */
  best: string;
}

/** What `mode bench peak` measured on one adapter. */
export interface PeakReport {
  adapter: string;
  date: string;
  /** 'gpu-timestamps' or 'wall' (no timestamp-query): how the kernels' seconds were taken. */
  clock: string;
  flops: { mulAdd: Ceiling; fma: Ceiling };
  /** Storage read, write and copy (streaming), uniform-window reads, per-lane gathers, texture reads. */
  bandwidth: { read: Ceiling; write: Ceiling; copy: Ceiling; uniform: Ceiling; gather: Ceiling; texture: Ceiling };
  /** Fixed costs, seconds each. */
  dispatch: {
    /** An empty dispatch as the project records one (its own pass, bind group and uniforms), recorded, submitted and waited for in a batch. */
    recorded: number;
    /** An empty dispatch in a pass shared with others (the GPU's own cost, little recording). */
    inSharedPass: number;
    /** An empty dispatch by GPU timestamps (null without timestamp-query). */
    gpu: number | null;
    /** An empty submit and the wait for it. */
    submit: number;
    /** A 4-byte readback: copy, map, read. */
    readback: number;
    /** device.createBindGroup of a two-buffer group. */
    bindGroup: number;
  };
}

/** The roof a kernel is read against: the best arithmetic rate and the best streaming bandwidth. */
export function roof(r: PeakReport): { flops: number; bandwidth: number } {
  return {
    flops: Math.max(r.flops.mulAdd.value, r.flops.fma.value),
    bandwidth: Math.max(r.bandwidth.read.value, r.bandwidth.write.value, r.bandwidth.copy.value),
  };
}

/** The cached ceilings as the profiler's roof, or null where `mode bench peak` has not run on this adapter. */
export function roofOf(gpu: Gpu, path?: string): Roof | null {
  const r = cachedPeak(gpu, path);
  if (!r) return null;
  const { flops, bandwidth } = roof(r);
  return { flops, bandwidth, dispatchSeconds: r.dispatch.recorded, from: `mode bench peak, ${r.date.slice(0, 10)}` };
}

/** Sets the profiler's roof from the cache (`% of peak` in its table and trace); returns it, or null when not measured. */
export function useMeasuredRoof(gpu: Gpu): Roof | null {
  return (gpu.profiler.roof = roofOf(gpu));
}

interface PeakFile {
  version: 1;
  adapters: Record<string, { checksum: string; report: PeakReport }>;
}

/** Beside the autotuner's file (so $MODE_TUNE_CACHE moves both), unless $MODE_PEAK_CACHE says otherwise. */
export const peakCachePath = (): string => process.env.MODE_PEAK_CACHE ?? tuneCachePath().replace(/[^/\\]*$/, 'peak.json');

/** The checksum of the peak kernels' WGSL as this Gpu loads them. */
export const peakChecksum = (gpu: Gpu): string =>
  Autotuner.checksum(Object.fromEntries(['peak_flops', 'peak_memory'].map((k) => [k, gpu.kernelSource(k).source])));

function readFile(store: TuneStore): PeakFile {
  const text = store.read();
  if (!text) return { version: 1, adapters: {} };
  try {
    const f = JSON.parse(text) as PeakFile;
    if (f.version === 1 && typeof f.adapters === 'object') return f;
  } catch {
    // unreadable: measured anew and rewritten
  }
  return { version: 1, adapters: {} };
}

/** The adapter's measured ceilings, or null when `mode bench peak` has not run on it (or its kernels changed since). */
export function cachedPeak(gpu: Gpu, path?: string): PeakReport | null {
  if (typeof process === 'undefined') return null; // a browser page measures nothing ahead (no file to read)
  path ??= peakCachePath();
  const entry = readFile(tuneStore(path)).adapters[Autotuner.adapterId(gpu)];
  return entry && entry.checksum === peakChecksum(gpu) ? entry.report : null;
}

/** Stores `report` as the adapter's ceilings (atomically). */
export function storePeak(gpu: Gpu, report: PeakReport, path = peakCachePath()): void {
  const store = tuneStore(path);
  const file = readFile(store);
  file.adapters[Autotuner.adapterId(gpu)] = { checksum: peakChecksum(gpu), report };
  store.write(JSON.stringify(file, null, 1) + '\n');
}
