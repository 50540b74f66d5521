import { describe, expect, it } from 'vitest';
import type { Gpu } from '@mode/gpu';
import { unfusedBaseline } from '../src/attention.js';
import { ClockMismatchError, clockMethod, gpuTimestamps, plausibleFlopsCeiling, speedup, wall } from '../src/clock.js';
import { peerColumns } from '../src/kmeans.js';
import type { Peer, PreparedOp } from '../src/peers/index.js';

describe('one clock per ratio', () => {
  it('divides times of one clock, as time or as rate, and refuses two clocks', () => {
    expect(speedup(wall(1), wall(3))).toBe(3);
    expect(speedup(wall(2, 4e9), wall(1, 1e9))).toBe(2); // 2 GFLOP/s over 1 GFLOP/s
    expect(speedup(gpuTimestamps(1), gpuTimestamps(2))).toBe(2);
    expect(() => speedup(gpuTimestamps(1), wall(2))).toThrow(ClockMismatchError);
    expect(() => speedup(wall(1), gpuTimestamps(2))).toThrow('a ratio of a wall time to a gpu-timestamps time mixes clocks');
  });

  it('the method text states the clock', () => {
    expect(clockMethod()).toMatch(/^Clock: every time, GFLOP\/s and × column is wall time per call.*the wait for the GPU, with the profiler off/);
    expect(clockMethod({ timestampColumns: true })).toContain('"(GPU timestamps)" are extra');
    expect(clockMethod({ profiled: true })).toContain('with the profiler on');
  });

  it('k-means: a peer is timed and divided on the wall clock only', async () => {
    let prepared = 0;
    const op = {
      run: async () => {},
      selfTimed: async () => ({ median: 0.5 }),
      read: async () => new Float32Array(0),
      dispose: async () => {},
    } as unknown as PreparedOp;
    const peer = { name: 'p', syncNote: '', available: async () => ({ ok: true }), kmeansAssign: async () => (prepared++, op) } as unknown as Peer;
    const timing = { maxTime: 0.1, minSamples: 1 };
    // Ours: 1e9 FLOPs in 0.1 s (10 GFLOP/s); theirs: 2·1000·64·8 FLOPs in 0.5 s.
    const cols = await peerColumns(peer, { k: 64, d: 8 }, 1000, wall(0.1, 1e9), timing);
    expect(cols['× p']).toBeCloseTo(10 / ((2 * 1000 * 64 * 8) / 0.5 / 1e9));
    await expect(peerColumns(peer, { k: 64, d: 8 }, 1000, gpuTimestamps(0.1, 1e9), timing)).rejects.toThrow(ClockMismatchError);
    expect(prepared).toBe(1);
  });
});

/** Just what matmulUnsupported reads of a Gpu. */
const fakeGpu = (subgroup: number | null) =>
  ({
    device: { features: new Set(subgroup ? ['subgroups'] : []) },
    report: { subgroupSize: subgroup ? { min: subgroup, max: subgroup } : null },
    buffer: () => ({}) as GPUBuffer,
  }) as unknown as Gpu;

describe('attention bench: the unfused baseline', () => {
  const t = { q: {}, k: {}, v: {}, o: {} } as Record<'q' | 'k' | 'v' | 'o', GPUBuffer>;
  const p = { bh: 8, L: 256, d: 64, causal: false };

  it('on an adapter without subgroups of 8 (most GPUs) says why instead of throwing', () => {
    expect(unfusedBaseline(fakeGpu(32), t, p)).toEqual({ unsupported: 'needs matmul_sg_bt and matmul_sg: needs subgroup size 8, adapter has 32–32' });
    expect(unfusedBaseline(fakeGpu(null), t, p)).toEqual({ unsupported: 'needs matmul_sg_bt and matmul_sg: adapter lacks the subgroups feature' });
  });

  it('runs on subgroups of 8', () => {
    expect(unfusedBaseline(fakeGpu(8), t, p)).toHaveProperty('run');
  });
});

describe('plausible FLOP/s ceiling from the adapter', () => {
  const lavapipe = { isCpu: true, name: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' };

  it('for a CPU adapter: cores × clock × 16 f32 lanes × 4 × 2', () => {
    expect(plausibleFlopsCeiling(lavapipe, { cores: 2, mhz: 3000 })).toBe(2 * 3e9 * 16 * 8);
    // No reported clock (VMs): 5 GHz. More cores, a higher ceiling.
    expect(plausibleFlopsCeiling(lavapipe, { cores: 2, mhz: 0 })).toBe(2 * 5e9 * 16 * 8);
    expect(plausibleFlopsCeiling(lavapipe, { cores: 64, mhz: 0 })).toBe(64 * 5e9 * 16 * 8);
    // A name declaring wider vectors than 512 bits counts them.
    expect(plausibleFlopsCeiling({ ...lavapipe, name: 'llvmpipe-1024-bits' }, { cores: 1, mhz: 1000 })).toBe(1e9 * 32 * 8);
  });

  it('for a real GPU: 1e15, past what the old fixed 1e12 allowed', () => {
    const gpu = { isCpu: false, name: 'NVIDIA H200', description: '' };
    expect(plausibleFlopsCeiling(gpu, { cores: 2, mhz: 3000 })).toBe(1e15);
    expect(plausibleFlopsCeiling(gpu)).toBeGreaterThan(1e12);
  });
});
