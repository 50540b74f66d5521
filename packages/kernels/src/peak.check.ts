/**
 * The peak kernels' selftest checks (the ceilings are only worth their float64 check too): the
 * arithmetic chains at every chain count, with and without fma(); each memory operation, in both
 * layouts, at odd sizes with a short last workgroup.
 */
import type { Gpu } from '@mode/gpu';
import { nanArray, randomArray } from './check.js';
import {
  peakFlops,
  peakFlopsReference,
  peakMemory,
  peakMemoryReference,
  peakTexture,
  PEAK_WINDOW,
  type PeakFlopsProblem,
  type PeakMemoryOp,
  type PeakMemoryProblem,
} from './peak.js';
import type { SelftestCheck } from './selftest.js';

export const peakFlopsCheck = (chains: number, fma: boolean): SelftestCheck => ({
  kernel: 'peak_flops',
  case: `${chains} chains${fma ? ' fma' : ''}, 100 invocations × 37 steps`,
  files: ['peak_flops'],
  tolerance: 1e-5,
  async run(gpu: Gpu) {
    const p: PeakFlopsProblem = { chains, fma, workgroupSize: 64, iters: 37, threads: 100 };
    const out = gpu.upload(nanArray(4 * p.threads));
    try {
      await peakFlops(gpu, out, p);
      const got = await gpu.read(out);
      return [[got, Array.from({ length: p.threads }, (_, i) => peakFlopsReference(i, p)).flat()]];
    } finally {
      gpu.release(out);
    }
  },
});

export const peakMemoryCheck = (op: PeakMemoryOp, blocked: boolean): SelftestCheck => ({
  kernel: 'peak_memory',
  case: `${op}${blocked ? ' blocked' : ''}, 1037 vec4s by 97 invocations`,
  files: ['peak_memory'],
  tolerance: 1e-5,
  async run(gpu: Gpu, random: () => number) {
    const p: PeakMemoryProblem = { op, n: 1037, threads: 97, blocked, workgroupSize: 64, reps: 45, value: 0.75 };
    const src = randomArray(4 * p.n, random);
    const idx = Uint32Array.from({ length: p.n }, () => Math.floor(random() * p.n));
    const win = randomArray(4 * PEAK_WINDOW, random);
    const texels = randomArray(4 * p.n, random);
    const dstLength = 4 * (op === 'read' || op === 'uniform' ? p.threads : p.n);
    const b = { src: gpu.upload(src), dst: gpu.upload(nanArray(dstLength)), idx: gpu.upload(idx), win: gpu.upload(win) };
    const tex = peakTexture(gpu, texels, 64); // 1037 texels in 17 rows of 64
    try {
      await peakMemory(gpu, { ...b, tex }, p);
      return [[await gpu.read(b.dst), peakMemoryReference(p, src, idx, win, dstLength, texels)]];
    } finally {
      Object.values(b).forEach((x) => gpu.release(x));
      tex.destroy();
    }
  },
});

export const PEAK_CHECKS: SelftestCheck[] = [
  ...[4, 8, 12, 16].map((c) => peakFlopsCheck(c, false)),
  peakFlopsCheck(8, true),
  peakFlopsCheck(16, true),
  ...(['read', 'write', 'copy', 'gather', 'texture'] as const).flatMap((op) => [peakMemoryCheck(op, false), peakMemoryCheck(op, true)]),
  peakMemoryCheck('uniform', false),
];
