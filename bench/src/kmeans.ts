import { renameSync, writeFileSync } from 'node:fs';
import { Gpu } from '@mode/gpu';
import {
  autotuner,
  chooseKmeans,
  KMEANS_ASSIGN_VARIANTS,
  kmeansAssignUnsupported,
  kmeansAssignWith,
  kmeansChunkRows,
  matmulUnsupported,
  matmulWith,
  recordKmeansUpdate,
  type KmeansAssignVariantName,
} from '@mode/kernels';
import { clockMethod, gpuTimestamps, speedup, timestampTime, wall, wallCall, type Timed } from './clock.js';
import { createPeers, FLOPS, type Peer } from './peers/index.js';
import { textTable } from './results.js';
import type { Suite } from './suites.js';
import { timeAsync } from './timing.js';

/**
 * k-means assignment at N = 1e5–1e6 points, K = 256–4096 centres, D = 64–768: the autotuned
 * variant at the full size, beside (measured in the same run, minutes apart at most) every other
 * variant, the naive one-invocation-per-point kernel, the peers, and the A·Bᵀ matmul at 1024³,
 * the yardstick of issue 11 (assignment ≥ half the matmul's GFLOP/s at N = 1e6, K = 1024, D = 256).
 * Also the update (counting sort + fixed-order sums) at the full size.
 */

interface Shape {
  n: number;
  k: number;
  d: number;
}

const FULL: Shape[] = [
  { n: 1e5, k: 256, d: 64 },
  { n: 1e5, k: 4096, d: 64 },
  { n: 1e5, k: 256, d: 768 },
  { n: 1e5, k: 1024, d: 256 },
  { n: 1e6, k: 256, d: 64 },
  { n: 1e6, k: 1024, d: 256 },
];
const HEADLINE: Shape[] = [{ n: 1e6, k: 1024, d: 256 }];
const QUICK: Shape[] = [
  { n: 1e5, k: 256, d: 64 },
  { n: 1e5, k: 1024, d: 128 },
];

/** FLOPs a sample should take: the slow runners (naive, other variants, peers) run on fewer points. */
const BUDGET = { variants: 2e9, naive: 5e8, peers: 1e9 };
const QUICK_BUDGET = { variants: 5e8, naive: 1e8, peers: 2e8 };

/** Points for a sample of about `flops` (a multiple of 128, at most n): time per point does not depend on n once every thread has work. */
const sampleRows = (s: Shape, flops: number) => Math.min(s.n, Math.max(256, Math.round(flops / FLOPS.kmeansAssign(1, s.k, s.d) / 128) * 128));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Uniform [-1, 1) values (the values do not change the speed: the kernels select, never branch, on them). */
function fill(gpu: Gpu, buffer: GPUBuffer, count: number): void {
  const x = new Float32Array(count);
  for (let i = 0; i < count; i++) x[i] = 2 * Math.random() - 1;
  gpu.write(buffer, x);
}

/**
 * Wall time per call of `record` (recording, submission, the wait; the profiler off), median over
 * at least `minRuns` calls and `maxTime` seconds. With a `yardstick` (another workload), it runs
 * right before each call and its median comes back too: the machine is shared, so a ratio is only
 * fair between runs taken side by side.
 */
async function wallTime(
  gpu: Gpu,
  record: () => Promise<void>,
  minRuns: number,
  maxTime: number,
  yardstick?: () => Promise<void>,
): Promise<{ seconds: number; runs: number; yardstick: number | null }> {
  const seconds: number[] = [];
  const yardSeconds: number[] = [];
  const start = performance.now();
  while (seconds.length < minRuns || (performance.now() - start) / 1e3 < maxTime) {
    if (yardstick) yardSeconds.push(await wallCall(gpu, yardstick));
    seconds.push(await wallCall(gpu, record));
    if (seconds.length >= 25) break;
  }
  return { seconds: median(seconds), runs: seconds.length, yardstick: yardstick ? median(yardSeconds) : null };
}

/**
 * A peer's GFLOP/s and our speed over it on `n` points (wall time per call, benchmark.js median,
 * or numpy's own in-process median), or why it was not measured. `ours` must be wall time too.
 */
export async function peerColumns(
  peer: Peer,
  s: { k: number; d: number },
  n: number,
  ours: Timed,
  timing: { maxTime: number; minSamples: number },
): Promise<Record<string, string | number>> {
  const name = peer.name;
  speedup(ours, wall(1)); // refused before any work when ours is on another clock
  if (!(await peer.available()).ok) return { [`× ${name}`]: 'n/a' };
  if (!peer.kmeansAssign) return { [`× ${name}`]: 'no kmeansAssign op' }; // TODO: measure once the peer has the op
  const op = await peer.kmeansAssign(n, s.k, s.d);
  try {
    const t0 = performance.now();
    await op.run();
    if ((performance.now() - t0) / 1e3 > 30) return { [`× ${name}`]: 'skipped (> 30 s a call)' };
    const seconds = op.selfTimed ? (await op.selfTimed(timing)).median : (await timeAsync(() => op.run(), timing)).median;
    const theirs = wall(seconds, FLOPS.kmeansAssign(n, s.k, s.d));
    return { [`${name} GFLOP/s`]: theirs.work! / seconds / 1e9, [`× ${name}`]: speedup(ours, theirs) };
  } finally {
    await op.dispose();
  }
}

/** Points uploaded in chunks no larger than one storage binding may be. */
function uploadPoints(gpu: Gpu, s: Shape): { buffer: GPUBuffer; first: number; n: number }[] {
  const rows = kmeansChunkRows(gpu, s.d);
  const chunks = [];
  for (let first = 0; first < s.n; first += rows) {
    const n = Math.min(rows, s.n - first);
    const buffer = gpu.buffer(4 * n * s.d, `kmeans points ${first}…`);
    fill(gpu, buffer, n * s.d);
    chunks.push({ buffer, first, n });
  }
  return chunks;
}

const ASSIGN_KERNELS = ['kmeans_assign', 'kmeans_norms'];

export const suite: Suite = {
  description:
    'k-means assignment (fused ‖x‖² − 2x·c + ‖c‖² + argmin) N 1e5–1e6, K 256–4096, D 64–768, vs its variants, naive WGSL, the peers and the A·Bᵀ matmul; update',
  async run(options) {
    const quick = !!options.quick;
    const budget = quick ? QUICK_BUDGET : BUDGET;
    const [minRuns, maxTime] = quick ? [2, 0.5] : [3, 2];
    const gpu = await Gpu.open({ profile: true });
    autotuner.retune = !!options.retune;
    const peers: Peer[] = createPeers(gpu);
    const peerNotes: string[] = [];
    for (const p of peers) {
      const a = await p.available();
      peerNotes.push(a.ok ? `${p.name}: ${a.detail ?? 'available'}; ${p.syncNote}` : `${p.name}: not available (${a.reason})`);
    }
    peerNotes.forEach((n) => console.log(`peer ${n}`));
    const mm = { m: 1024, n: 1024, k: 1024, transB: true };
    const mmSupported = !matmulUnsupported(gpu, 'sg_bt', mm);
    const mmBuffers = [gpu.buffer(4 * 1024 * 1024), gpu.buffer(4 * 1024 * 1024), gpu.buffer(4 * 1024 * 1024)] as const;
    fill(gpu, mmBuffers[0], 1024 * 1024);
    fill(gpu, mmBuffers[1], 1024 * 1024);
    const rows: Record<string, string | number | null>[] = [];
    const trace: object[] = [];
    try {
      for (const s of options.headline ? HEADLINE : quick ? QUICK : FULL) {
        const label = `n=${s.n.toExponential(0)} k=${s.k} d=${s.d}`;
        console.log(`${label}: uploading ${((4 * s.n * s.d) / 2 ** 20).toFixed(0)} MiB of points`);
        const chunks = uploadPoints(gpu, s);
        const centres = gpu.buffer(4 * s.k * s.d, 'kmeans centres');
        fill(gpu, centres, s.k * s.d);
        const out = { index: gpu.buffer(4 * s.n, 'kmeans index'), distance: gpu.buffer(4 * s.n, 'kmeans distance') };
        const sums = { sums: gpu.buffer(4 * s.k * s.d), counts: gpu.buffer(4 * s.k), centres: gpu.buffer(4 * s.k * s.d) };
        const assign =
          (variant: KmeansAssignVariantName, rows = s.n) =>
          async () => {
            for (const c of chunks) {
              if (c.first >= rows) break;
              await kmeansAssignWith(gpu, variant, c.buffer, centres, out, { n: Math.min(c.n, rows - c.first), k: s.k, d: s.d, first: c.first });
            }
          };
        try {
          const variant = await chooseKmeans(gpu, s);
          // Compile and warm up on a few points, so the full-size runs are all measured.
          await assign(variant, 4096)();
          await gpu.sync();

          // The yardstick (matmul A·Bᵀ 1024³) runs right before each full-size call.
          const yardstick = mmSupported ? () => matmulWith(gpu, 'sg_bt', ...mmBuffers, mm) : undefined;
          if (yardstick) await wallCall(gpu, yardstick); // compiles it
          console.log(`${label}: ${variant} at full size…`);
          const flops = FLOPS.kmeansAssign(s.n, s.k, s.d);
          const mmFlops = FLOPS.matmul(1024, 1024, 1024);
          const timed = await wallTime(gpu, assign(variant), minRuns, maxTime, yardstick);
          const ours = wall(timed.seconds, flops);
          const mmTime = timed.yardstick === null ? null : wall(timed.yardstick, mmFlops);
          // Extra columns: ours (‖c‖² and the assignment) and the yardstick by GPU timestamps, on further calls.
          const tsOurs = await timestampTime(gpu, assign(variant), ASSIGN_KERNELS);
          if (options.trace) trace.push(...gpu.profiler.chromeTrace().traceEvents);
          const tsMm = yardstick ? await timestampTime(gpu, yardstick, ['matmul']) : null;
          const row: Record<string, string | number | null> = {
            case: label,
            variant,
            clock: ours.clock,
            'ms (median)': ours.seconds * 1e3,
            runs: timed.runs,
            'GFLOP/s': flops / ours.seconds / 1e9,
            'matmul A·Bᵀ 1024³ GFLOP/s': mmTime ? mmFlops / mmTime.seconds / 1e9 : null,
            '÷ matmul': mmTime ? speedup(ours, mmTime) : 'n/a (no sg_bt here)',
          };

          // The update at full size, on the assignment just made.
          const update = await wallTime(
            gpu,
            async () => {
              for (const c of chunks)
                await recordKmeansUpdate(gpu, c.buffer, out.index, sums, { n: c.n, k: s.k, d: s.d, first: c.first, accumulate: c.first > 0 });
            },
            minRuns,
            0,
          );
          row['update ms'] = update.seconds * 1e3;

          // Every other variant, then naive, on a sample of the points.
          for (const other of Object.keys(KMEANS_ASSIGN_VARIANTS) as KmeansAssignVariantName[]) {
            if (other === variant) continue;
            const isNaive = other === 'naive';
            const why = kmeansAssignUnsupported(gpu, other, s);
            if (why) {
              row[`${other} GFLOP/s`] = `n/a (${why})`;
              continue;
            }
            const n = sampleRows(s, isNaive ? budget.naive : budget.variants);
            await wallCall(gpu, assign(other, Math.min(n, 256))); // compiles it
            const theirs = wall((await wallTime(gpu, assign(other, n), minRuns, 0)).seconds, FLOPS.kmeansAssign(n, s.k, s.d));
            row[`${other} GFLOP/s`] = theirs.work! / theirs.seconds / 1e9;
            if (isNaive) row['× naive'] = speedup(ours, theirs);
          }

          // The peers, each on its own sample (they materialise the n×k distances), wall time per call.
          for (const peer of peers)
            Object.assign(row, await peerColumns(peer, s, sampleRows(s, budget.peers), ours, { maxTime: quick ? 0.3 : 1, minSamples: minRuns }));
          row['ms (GPU timestamps)'] = tsOurs === null ? null : tsOurs * 1e3;
          row['GFLOP/s (GPU timestamps)'] = tsOurs === null ? null : flops / tsOurs / 1e9;
          row['÷ matmul (GPU timestamps)'] = tsOurs !== null && tsMm !== null ? speedup(gpuTimestamps(tsOurs, flops), gpuTimestamps(tsMm, mmFlops)) : null;
          console.log(
            Object.entries(row)
              .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(3) : v}`)
              .join('  '),
          );
          rows.push(row);
        } finally {
          [...chunks.map((c) => c.buffer), centres, out.index, out.distance, ...Object.values(sums)].forEach((b) => gpu.release(b));
        }
      }
      const columns: string[] = [];
      for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
      const results = {
        suite: 'kmeans',
        adapter: gpu.report.name,
        date: new Date().toISOString(),
        method:
          `FLOPs = 2·N·K·D: the distance part only (the x·c products); the norms, the argmin and the update are not counted. ` +
          `${clockMethod({ timestampColumns: true })} ` +
          `Our kernels: one call is ‖c‖² + assignment per chunk of at most maxStorageBufferBindingSize bytes of points, ` +
          `median of ≥ ${minRuns} calls${maxTime ? ` and ${maxTime} s` : ''}. The chosen variant (autotuned, cached per adapter) runs at the full N; ` +
          `the other variants, the naive kernel (one invocation per point) and the peers run on a sample of the points ` +
          `(about ${budget.variants.toExponential(0)}, ${budget.naive.toExponential(0)} and ${budget.peers.toExponential(0)} FLOPs; the peers materialise the N×K distances), ` +
          `so × columns compare GFLOP/s. Peers: wall time per call (benchmark.js median), numpy its own in-process median. ` +
          `'matmul A·Bᵀ 1024³' is matmul_sg_bt (wall time, median) run right before each of the row's full-size calls, the yardstick of issue 11. Update: hist + scan + scatter + sums, ` +
          `wall time, median of ${minRuns}. Inputs uniform in [-1, 1). One process, one adapter (${gpu.report.description}), ` +
          `LP_NUM_THREADS=${gpu.report.threads.LP_NUM_THREADS}; other work on the machine shows as noise, so compare within a row. Peers: ${peerNotes.join(' | ')}`,
        columns,
        rows,
      };
      console.log(`\n${textTable(results)}`);
      if (options.trace) {
        writeFileSync(`${options.trace}.tmp`, JSON.stringify({ traceEvents: trace, displayTimeUnit: 'ns' }));
        renameSync(`${options.trace}.tmp`, options.trace);
      }
      return results;
    } finally {
      mmBuffers.forEach((b) => gpu.release(b));
      gpu.destroy();
    }
  },
};
