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

/** GPU seconds of the dispatches recorded since the last clear whose kernel starts with one of `kernels`. */
const profiled = (gpu: Gpu, kernels: string[]) =>
  gpu.profiler.records.filter((r) => kernels.some((k) => r.kernel.startsWith(k))).reduce((s, r) => s + r.durationNs, 0) / 1e9;

/**
 * GPU time of `record`'s dispatches whose kernel starts with one of `kernels`: the profiler's
 * timestamps summed per call, median over at least `minRuns` calls and `maxTime` seconds. With a
 * `yardstick` (another workload), it runs right before each call and its median comes back too:
 * the machine is shared, so a ratio is only fair between runs taken side by side.
 */
async function gpuTime(
  gpu: Gpu,
  record: () => Promise<void>,
  kernels: string[],
  minRuns: number,
  maxTime: number,
  yardstick?: { record: () => Promise<void>; kernels: string[] },
): Promise<{ seconds: number; wall: number; runs: number; yardstick: number | null }> {
  const gpuSeconds: number[] = [];
  const wallSeconds: number[] = [];
  const yardSeconds: number[] = [];
  const start = performance.now();
  while (gpuSeconds.length < minRuns || (performance.now() - start) / 1e3 < maxTime) {
    if (yardstick) {
      gpu.profiler.clear();
      await yardstick.record();
      await gpu.sync();
      yardSeconds.push(profiled(gpu, yardstick.kernels));
    }
    gpu.profiler.clear();
    const t0 = performance.now();
    await record();
    await gpu.sync();
    wallSeconds.push((performance.now() - t0) / 1e3);
    gpuSeconds.push(profiled(gpu, kernels));
    if (gpuSeconds.length >= 25) break;
  }
  return { seconds: median(gpuSeconds), wall: median(wallSeconds), runs: gpuSeconds.length, yardstick: yardstick ? median(yardSeconds) : null };
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
const UPDATE_KERNELS = ['kmeans_update'];

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
          const yardstick = mmSupported ? { record: () => matmulWith(gpu, 'sg_bt', ...mmBuffers, mm), kernels: ['matmul'] } : undefined;
          if (yardstick) await yardstick.record(); // compiles it
          console.log(`${label}: ${variant} at full size…`);
          const ours = await gpuTime(gpu, assign(variant), ASSIGN_KERNELS, minRuns, maxTime, yardstick);
          const mmRate = ours.yardstick ? FLOPS.matmul(1024, 1024, 1024) / ours.yardstick / 1e9 : null;
          const rate = FLOPS.kmeansAssign(s.n, s.k, s.d) / ours.seconds / 1e9;
          if (options.trace) trace.push(...gpu.profiler.chromeTrace().traceEvents);
          const row: Record<string, string | number | null> = {
            case: label,
            variant,
            'ms (median)': ours.seconds * 1e3,
            runs: ours.runs,
            'GFLOP/s': rate,
            'wall ms': ours.wall * 1e3,
            'matmul A·Bᵀ 1024³ GFLOP/s': mmRate,
            '÷ matmul': mmRate ? rate / mmRate : 'n/a (no sg_bt here)',
          };

          // The update at full size, on the assignment just made.
          const update = await gpuTime(
            gpu,
            async () => {
              for (const c of chunks)
                await recordKmeansUpdate(gpu, c.buffer, out.index, sums, { n: c.n, k: s.k, d: s.d, first: c.first, accumulate: c.first > 0 });
            },
            UPDATE_KERNELS,
            minRuns,
            0,
          );
          row['update ms'] = update.seconds * 1e3;

          // Every other variant, then naive, on a sample of the points (GPU timestamps too).
          for (const other of Object.keys(KMEANS_ASSIGN_VARIANTS) as KmeansAssignVariantName[]) {
            if (other === variant) continue;
            const isNaive = other === 'naive';
            const why = kmeansAssignUnsupported(gpu, other, s);
            if (why) {
              row[`${other} GFLOP/s`] = `n/a (${why})`;
              continue;
            }
            const n = sampleRows(s, isNaive ? budget.naive : budget.variants);
            await assign(other, Math.min(n, 256))();
            const t = await gpuTime(gpu, assign(other, n), ASSIGN_KERNELS, minRuns, 0);
            const r = FLOPS.kmeansAssign(n, s.k, s.d) / t.seconds / 1e9;
            row[`${other} GFLOP/s`] = r;
            if (isNaive) row['× naive'] = rate / r;
          }

          // The peers, each on its own sample (they materialise the n×k distances), wall time per call.
          for (const peer of peers) {
            const name = peer.name;
            if (!(await peer.available()).ok) {
              row[`× ${name}`] = 'n/a';
              continue;
            }
            if (!peer.kmeansAssign) {
              row[`× ${name}`] = 'no kmeansAssign op'; // TODO: measure once the peer has the op
              continue;
            }
            const n = sampleRows(s, budget.peers);
            const op = await peer.kmeansAssign(n, s.k, s.d);
            try {
              const t0 = performance.now();
              await op.run();
              let seconds: number;
              if ((performance.now() - t0) / 1e3 > 30) {
                row[`× ${name}`] = 'skipped (> 30 s a call)';
                continue;
              }
              if (op.selfTimed) seconds = (await op.selfTimed({ maxTime: quick ? 0.3 : 1, minSamples: minRuns })).median;
              else seconds = (await timeAsync(() => op.run(), { maxTime: quick ? 0.3 : 1, minSamples: minRuns })).median;
              const r = FLOPS.kmeansAssign(n, s.k, s.d) / seconds / 1e9;
              row[`${name} GFLOP/s`] = r;
              row[`× ${name}`] = rate / r;
            } finally {
              await op.dispose();
            }
          }
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
          `Our kernels: GPU timestamps (profiler) summed over the call's dispatches (‖c‖² + assignment, per chunk of at most ` +
          `maxStorageBufferBindingSize bytes of points), median of ≥ ${minRuns} calls${maxTime ? ` and ${maxTime} s` : ''}; 'wall ms' is the same call ` +
          `timed on the CPU clock including submission and waiting. The chosen variant (autotuned, cached per adapter) runs at the full N; ` +
          `the other variants, the naive kernel (one invocation per point) and the peers run on a sample of the points ` +
          `(about ${budget.variants.toExponential(0)}, ${budget.naive.toExponential(0)} and ${budget.peers.toExponential(0)} FLOPs; the peers materialise the N×K distances), ` +
          `so × columns compare GFLOP/s. Peers: wall time per call (benchmark.js median), numpy its own in-process median. ` +
          `'matmul A·Bᵀ 1024³' is matmul_sg_bt (GPU timestamps, median) run right before each of the row's full-size calls, the yardstick of issue 11. Update: hist + scan + scatter + sums, ` +
          `GPU timestamps, median of ${minRuns}. Inputs uniform in [-1, 1). One process, one adapter (${gpu.report.description}), ` +
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
