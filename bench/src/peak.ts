/**
 * `mode bench peak`: what the adapter itself can do, measured with the project's own two peak
 * kernels (kernels/peak_flops.wgsl, kernels/peak_memory.wgsl) and the WebGPU calls every step
 * makes. The ceilings go to bench/results/peak-<adapter>.md|json and to the per-adapter cache
 * (`cachedPeak`) that `mode info` shows and the kernels' rows are read against.
 *
 * - Arithmetic: independent vec4 multiply-add chains (and WGSL's fma()), swept over chains per
 *   invocation and workgroup size; the best is the peak.
 * - Memory: streaming storage read, write and copy of a 64 MiB buffer (each invocation a
 *   contiguous run, or a grid stride), reads of a 64 KiB uniform window, per-lane gathers.
 * - Fixed costs: an empty dispatch as the project records one and inside a shared pass, a
 *   submit, a 4-byte readback, a bind group.
 * Kernels are timed by GPU timestamps where the adapter has them (the median of 3 calls), each
 * call sized to at least `minSeconds`; the fixed costs by the wall clock over many calls.
 */
import { Gpu } from '@mode/gpu';
import {
  peakFlops,
  peakFlopsWork,
  peakMemory,
  peakMemoryBytes,
  peakTexture,
  PEAK_WINDOW,
  storePeak,
  peakCachePath,
  type Ceiling,
  type PeakFlopsProblem,
  type PeakMemoryBuffers,
  type PeakMemoryOp,
  type PeakMemoryProblem,
  type PeakReport,
} from '@mode/kernels';
import { timestampTime, wallCall } from './clock.js';
import { textTable, type SuiteResults } from './results.js';
import type { Suite } from './suites.js';

type Row = Record<string, string | number | null>;

/** Seconds of one call: GPU timestamps of its dispatches where the adapter has them, else the wall clock (median of 3). */
async function seconds(gpu: Gpu, record: () => Promise<unknown>): Promise<number> {
  await wallCall(gpu, record); // compiles the pipeline
  const ts = await timestampTime(gpu, record, ['peak_'], { calls: 3, maxSeconds: 5 });
  if (ts !== null) return ts;
  const s = [await wallCall(gpu, record), await wallCall(gpu, record), await wallCall(gpu, record)].sort((a, b) => a - b);
  return s[1]!;
}

/** Grows `size(k)` (k = 1, 2, 4, …) until one call takes `minSeconds`: enough work that launch costs vanish in it. */
async function sized<T>(gpu: Gpu, minSeconds: number, make: (k: number) => T, record: (p: T) => Promise<unknown>, maxK: number): Promise<{ p: T; s: number }> {
  for (let k = 1; ; k *= 2) {
    const p = make(k);
    const s = await seconds(gpu, () => record(p));
    if (s >= minSeconds || k >= maxK) return { p, s };
  }
}

const best = (rows: Row[], metric: string, filter: (r: Row) => boolean): Ceiling => {
  const r = rows.filter(filter).sort((a, b) => (b[metric] as number) - (a[metric] as number))[0]!;
  return { value: (r[metric] as number) * 1e9, best: r.config as string };
};

/** Wall seconds per call of `call`, over `n` calls after a warm-up. */
async function perCall(n: number, call: () => Promise<unknown> | unknown): Promise<number> {
  await call();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await call();
  return (performance.now() - t0) / 1e3 / n;
}

export const suite: Suite = {
  description: "the adapter's own ceilings: f32 arithmetic (multiply-add chains, fma), memory bandwidth (storage, uniform, gathers), fixed costs of a dispatch",
  async run(options) {
    const gpu = await Gpu.open({ profile: true });
    try {
      const quick = !!options.quick;
      const minSeconds = quick ? 0.005 : 0.02;
      const maxInvocations = gpu.report.limits.maxComputeInvocationsPerWorkgroup ?? 256;
      const sizes = [64, 128, 256].filter((w) => w <= maxInvocations);
      // Enough invocations to fill the adapter: a CPU's threads take whole workgroups; a GPU wants hundreds of thousands.
      const threads = gpu.report.isCpu ? 16384 : 1 << 20;
      const sweep: Row[] = [];

      // Arithmetic.
      const out = gpu.buffer(16 * threads, 'peak flops out');
      for (const fma of [false, true])
        for (const chains of quick ? [8, 16] : [4, 8, 12, 16])
          for (const workgroupSize of quick ? [64] : sizes) {
            const base: PeakFlopsProblem = { chains, fma, workgroupSize, threads, iters: 16 };
            const { p, s } = await sized(
              gpu,
              minSeconds,
              (k) => ({ ...base, iters: 16 * k }),
              (q) => peakFlops(gpu, out, q),
              1 << 14,
            );
            sweep.push({
              ceiling: fma ? 'f32 fma()' : 'f32 multiply + add',
              config: `${chains} chains${fma ? ', fma' : ''}, wg ${workgroupSize}`,
              'GFLOP/s': peakFlopsWork(p) / s / 1e9,
              'GB/s': null,
              ms: s * 1e3,
              work: `${threads} invocations × ${p.iters} steps`,
            });
          }
      gpu.release(out);

      // Memory.
      const maxBinding = gpu.report.limits.maxStorageBufferBindingSize ?? 128 * 2 ** 20;
      const n = Math.min(64 * 2 ** 20, maxBinding) / 16;
      const src = gpu.upload(Float32Array.from({ length: 4 * n }, (_, i) => (i % 1000) / 1000));
      const dst = gpu.buffer(16 * n, 'peak dst');
      // Gather indices: a fixed pseudo-random permutation-like walk over all of src.
      const idx = gpu.upload(Uint32Array.from({ length: n }, (_, k) => (k * 2654435761) % n));
      const win = gpu.upload(new Float32Array(4 * PEAK_WINDOW).fill(0.5));
      // As many texels as src has vec4s, in rows as wide as the adapter allows (k-means' stage texture).
      const width = Math.min(gpu.report.limits.maxTextureDimension2D ?? 8192, 8192);
      const tex = peakTexture(gpu, new Float32Array(4 * n).fill(0.25), width);
      const b: PeakMemoryBuffers = { src, dst, idx, win, tex };
      const ops: PeakMemoryOp[] = ['read', 'write', 'copy', 'gather', 'texture'];
      for (const op of ops)
        for (const blocked of [true, false])
          for (const t of quick ? [4096] : [4096, 65536])
            for (const workgroupSize of quick ? [64] : [64, 256]) {
              const p: PeakMemoryProblem = { op, n, threads: t, blocked, workgroupSize };
              const s = await seconds(gpu, () => peakMemory(gpu, b, p));
              sweep.push({
                ceiling: op === 'gather' ? 'gather (per-lane addresses)' : op === 'texture' ? 'texture read' : `storage ${op}`,
                config: `${blocked ? 'contiguous runs' : 'grid stride'}, ${t} invocations, wg ${workgroupSize}`,
                'GFLOP/s': null,
                'GB/s': peakMemoryBytes(p) / s / 1e9,
                ms: s * 1e3,
                work: `${(peakMemoryBytes(p) / 2 ** 20).toFixed(0)} MiB moved`,
              });
            }
      for (const workgroupSize of quick ? [64] : [64, 256]) {
        const base: PeakMemoryProblem = { op: 'uniform', n: 0, threads: 65536, blocked: false, workgroupSize, reps: 64 };
        const { p, s } = await sized(
          gpu,
          minSeconds,
          (k) => ({ ...base, reps: 64 * k }),
          (q) => peakMemory(gpu, b, q),
          1 << 10,
        );
        sweep.push({
          ceiling: 'uniform window',
          config: `${p.threads} invocations × ${p.reps} vec4s, wg ${workgroupSize}`,
          'GFLOP/s': null,
          'GB/s': peakMemoryBytes(p) / s / 1e9,
          ms: s * 1e3,
          work: `${(peakMemoryBytes(p) / 2 ** 20).toFixed(0)} MiB read`,
        });
      }

      // Fixed costs.
      const calls = quick ? 50 : 300;
      const empty: PeakMemoryProblem = { op: 'read', n: 0, threads: 0, blocked: false, workgroupSize: 64 };
      const recorded = await perCall(1, async () => {
        for (let i = 0; i < calls; i++) await peakMemory(gpu, b, empty);
        await gpu.sync();
      });
      const gpuEmpty = await timestampTime(gpu, () => peakMemory(gpu, b, empty), ['peak_'], { calls: 5 });
      const kernel = await gpu.kernel('peak_memory', { OP: 0, BLOCKED: false, WG: 64 });
      const params = gpu.upload(new Uint32Array(4)); // n = threads = reps = 0, value 0
      const groupOf = () =>
        gpu.device.createBindGroup({
          layout: kernel.layouts[0]!,
          entries: [...[params, src, dst, idx, win].map((buffer, binding) => ({ binding, resource: { buffer } })), { binding: 5, resource: tex.createView() }],
        });
      const group = groupOf();
      const shared = await perCall(1, async () => {
        const encoder = gpu.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(kernel.pipeline);
        pass.setBindGroup(0, group);
        for (let i = 0; i < calls; i++) pass.dispatchWorkgroups(1);
        pass.end();
        gpu.device.queue.submit([encoder.finish()]);
        await gpu.device.queue.onSubmittedWorkDone();
      });
      const submit = await perCall(calls, async () => {
        gpu.device.queue.submit([]);
        await gpu.device.queue.onSubmittedWorkDone();
      });
      const tiny = gpu.upload(new Float32Array(1));
      const readback = await perCall(calls, () => gpu.read(tiny));
      const bindGroup = await perCall(calls * 10, groupOf);
      [tiny, params, src, dst, idx, win].forEach((x) => gpu.release(x));
      tex.destroy();

      const fixed = [
        { cost: 'empty dispatch, as recorded here (own pass, bind group, uniforms; recorded, submitted and waited in a batch)', s: recorded / calls },
        { cost: 'empty dispatch in a shared pass (one bind group, one submit)', s: shared / calls },
        { cost: 'empty dispatch, GPU timestamps (pass begin to end)', s: gpuEmpty },
        { cost: 'empty submit and its wait', s: submit },
        { cost: '4-byte readback (copy, map, read)', s: readback },
        { cost: 'createBindGroup (5 buffers, a texture)', s: bindGroup },
      ];
      const clock = gpu.profiler.clock === 'gpu-timestamps' ? 'gpu-timestamps' : 'wall';
      const isCeiling = (c: string) => (r: Row) => r.ceiling === c;
      const report: PeakReport = {
        adapter: `${gpu.report.name} (${gpu.report.description})`,
        date: new Date().toISOString(),
        clock,
        flops: { mulAdd: best(sweep, 'GFLOP/s', isCeiling('f32 multiply + add')), fma: best(sweep, 'GFLOP/s', isCeiling('f32 fma()')) },
        bandwidth: {
          read: best(sweep, 'GB/s', isCeiling('storage read')),
          write: best(sweep, 'GB/s', isCeiling('storage write')),
          copy: best(sweep, 'GB/s', isCeiling('storage copy')),
          uniform: best(sweep, 'GB/s', isCeiling('uniform window')),
          gather: best(sweep, 'GB/s', isCeiling('gather (per-lane addresses)')),
          texture: best(sweep, 'GB/s', isCeiling('texture read')),
        },
        dispatch: {
          recorded: fixed[0]!.s!,
          inSharedPass: fixed[1]!.s!,
          gpu: fixed[2]!.s,
          submit: fixed[3]!.s!,
          readback: fixed[4]!.s!,
          bindGroup: fixed[5]!.s!,
        },
      };
      if (!quick) storePeak(gpu, report);

      const ceilings: [string, Ceiling, string][] = [
        ['f32 arithmetic, multiply + add', report.flops.mulAdd, 'GFLOP/s'],
        ['f32 arithmetic, fma()', report.flops.fma, 'GFLOP/s'],
        ['storage read', report.bandwidth.read, 'GB/s'],
        ['storage write', report.bandwidth.write, 'GB/s'],
        ['storage copy (read + write)', report.bandwidth.copy, 'GB/s'],
        ['uniform window reads', report.bandwidth.uniform, 'GB/s'],
        ['per-lane gathers (index, value, write)', report.bandwidth.gather, 'GB/s'],
        ['texture reads (rgba32float texel, write)', report.bandwidth.texture, 'GB/s'],
      ];
      const results: SuiteResults = {
        suite: 'peak',
        adapter: gpu.report.name,
        date: report.date,
        method:
          `Ceilings of this adapter by the project's peak kernels (kernels/peak_flops.wgsl, kernels/peak_memory.wgsl), each configuration timed by ${clock === 'gpu-timestamps' ? 'GPU timestamps' : 'the wall clock (no timestamp-query)'}, the median of 3 calls, ` +
          `each call sized to at least ${minSeconds * 1e3} ms; the best configuration is the ceiling (the sweep follows). An arithmetic step is 8 FLOPs (a vec4 multiply and add); ` +
          `bandwidth counts every byte read or written once (a copy moves its size twice). Fixed costs by the wall clock, the mean of ${calls} calls after a warm-up.` +
          (quick ? '' : ` Cached for this adapter in ${peakCachePath()} (mode info shows it).`),
        columns: ['ceiling', 'value', 'unit', 'best configuration'],
        rows: [
          ...ceilings.map(([ceiling, c, unit]) => ({ ceiling, value: c.value / 1e9, unit, 'best configuration': c.best })),
          ...fixed.map((f) => ({
            ceiling: f.cost,
            value: f.s === null ? null : f.s * 1e6,
            unit: 'µs',
            'best configuration': f.s === null ? 'no timestamp-query' : '',
          })),
        ],
        sections: [
          {
            suite: 'sweep',
            adapter: gpu.report.name,
            date: report.date,
            method:
              'Every configuration measured: arithmetic over chains per invocation and workgroup size; memory over layout, invocations and workgroup size.',
            columns: ['ceiling', 'config', 'GFLOP/s', 'GB/s', 'ms', 'work'],
            rows: sweep,
          },
        ],
      };
      console.log(textTable(results));
      return results;
    } finally {
      gpu.destroy();
    }
  },
};
