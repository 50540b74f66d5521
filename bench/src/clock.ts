import { availableParallelism, cpus } from 'node:os';
import type { AdapterReport, Gpu } from '@mode/gpu';

/**
 * Which clock a time was taken on. Every × (and ÷) column divides two times of one clock:
 * - `wall`: per call, from recording the call to the end of the wait for the GPU (what a user of
 *   the op waits; benchmark.js times a deferred call so, and the matmul suite times every column so);
 * - `gpu-timestamps`: the profiler's GPU timestamps summed over the call's dispatches: execution
 *   on the GPU only, without recording, submission or the wait.
 * A ratio across the two would credit one side with the submission and wait the other pays.
 */
export type Clock = 'wall' | 'gpu-timestamps';

export interface Timed {
  seconds: number;
  clock: Clock;
  /** Work done in that time (FLOPs), when times of different work are compared as rates. Default 1 (same work: a time ratio). */
  work?: number;
}

export const wall = (seconds: number, work?: number): Timed => ({ seconds, clock: 'wall', ...(work === undefined ? {} : { work }) });
export const gpuTimestamps = (seconds: number, work?: number): Timed => ({ seconds, clock: 'gpu-timestamps', ...(work === undefined ? {} : { work }) });

export class ClockMismatchError extends Error {
  override name = 'ClockMismatchError';
}

/** How many times ours outpaces theirs (work per second over work per second): only between times of one clock. */
export function speedup(ours: Timed, theirs: Timed): number {
  if (ours.clock !== theirs.clock) throw new ClockMismatchError(`a ratio of a ${ours.clock} time to a ${theirs.clock} time mixes clocks`);
  return ((ours.work ?? 1) / ours.seconds) * (theirs.seconds / (theirs.work ?? 1));
}

/**
 * The sentence each GPU suite's method text carries about its clocks. `profiled`: the wall times
 * were taken with the profiler on (a --trace run), so its timestamp writes are in them.
 */
export function clockMethod(o: { timestampColumns?: boolean; profiled?: boolean } = {}): string {
  return (
    `Clock: every time, GFLOP/s and × column is wall time per call, from recording the call to the end of the wait for the GPU, ` +
    `${o.profiled ? 'with the profiler on (--trace: its timestamp writes are in the times)' : 'with the profiler off'} ` +
    `(rows say clock = wall; no ratio divides times of different clocks).` +
    (o.timestampColumns
      ? ` Columns marked "(GPU timestamps)" are extra: the profiler's GPU timestamps summed over a call's dispatches, median of up to 3 ` +
        `further calls (fewer past 2 s; execution only, no submission or wait); no × column divides them by a wall time.`
      : '')
  );
}

/** Wall seconds of one call: record, submit, wait, with the profiler off (so no timestamp writes or readback in it). */
export async function wallCall(gpu: Gpu, record: () => Promise<unknown>): Promise<number> {
  const was = gpu.profiler.enabled;
  gpu.profiler.enabled = false;
  try {
    const t0 = performance.now();
    await record();
    await gpu.sync();
    return (performance.now() - t0) / 1e3;
  } finally {
    gpu.profiler.enabled = was;
  }
}

/**
 * GPU seconds per call by the profiler's timestamps, over the dispatches whose kernel starts with
 * one of `kernels` (default: all): the median of `calls` calls, fewer where they take over
 * `maxSeconds` in all (at least one). Null where the adapter has no timestamp-query (the profiler
 * then times on the CPU, another clock). The profiler's records are the last call's afterwards.
 */
export async function timestampTime(
  gpu: Gpu,
  record: () => Promise<unknown>,
  kernels?: string[],
  o: { calls?: number; maxSeconds?: number } = {},
): Promise<number | null> {
  if (gpu.profiler.clock !== 'gpu-timestamps') return null;
  const was = gpu.profiler.enabled;
  gpu.profiler.enabled = true;
  const samples: number[] = [];
  const start = performance.now();
  try {
    do {
      gpu.profiler.clear();
      await record();
      await gpu.sync();
      samples.push(gpu.profiler.records.filter((r) => !kernels || kernels.some((k) => r.kernel.startsWith(k))).reduce((s, r) => s + r.durationNs, 0) / 1e9);
    } while (samples.length < (o.calls ?? 3) && (performance.now() - start) / 1e3 < (o.maxSeconds ?? 2));
  } finally {
    gpu.profiler.enabled = was;
  }
  samples.sort((x, y) => x - y);
  const m = samples.length >> 1;
  return samples.length % 2 ? samples[m]! : (samples[m - 1]! + samples[m]!) / 2;
}

/** Widest f32 SIMD assumed on a CPU: 512-bit vectors (AVX-512, SVE-512), 16 lanes. */
const CPU_LANES = 16;
/** Clock assumed where the OS reports none (VMs often report 0 MHz): above any shipping CPU's boost. */
const FALLBACK_MHZ = 5000;

/**
 * FLOP/s above which a call cannot have done its work on this machine (it returned before the
 * work ran, or skipped it): a ceiling, never an estimate, so that honest results are not flagged.
 * - CPU adapters (llvmpipe/lavapipe, SwiftShader), whose shaders and CPU peers share this host:
 *   cores × clock × f32 SIMD lanes × 4 (two FMA units, 2 FLOPs each) × 2 (margin). Lanes: 16,
 *   or more if the adapter's name declares wider vectors ("256 bits"); clock: the fastest core's
 *   reported MHz, else 5 GHz. Two cores: about 1.3e12.
 * - Any other adapter (a real GPU): 1e15, above any GPU's f32 rate (tens of TFLOP/s today).
 */
export function plausibleFlopsCeiling(
  report: Pick<AdapterReport, 'isCpu' | 'name' | 'description'>,
  host: { cores: number; mhz: number } = { cores: availableParallelism(), mhz: Math.max(0, ...cpus().map((c) => c.speed)) },
): number {
  if (!report.isCpu) return 1e15;
  const bits = Number(/(\d+)[ -]bits?/i.exec(`${report.name} ${report.description}`)?.[1] ?? 0);
  const lanes = Math.max(CPU_LANES, bits / 32);
  const hz = (host.mhz > 0 ? host.mhz : FALLBACK_MHZ) * 1e6;
  return host.cores * hz * lanes * 4 * 2;
}
