import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KERNELS_DIR, Gpu } from '@mode/gpu';
import { cachedPeak, peakFlopsWork, peakMemoryBytes, roof, storePeak, type PeakReport } from '../src/index.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.open();
});
afterAll(() => gpu?.destroy());

const ceiling = (value: number, best = 'x') => ({ value, best });
const report: PeakReport = {
  adapter: 'test',
  date: '2026-12-07T00:00:00.000Z',
  clock: 'gpu-timestamps',
  flops: { mulAdd: ceiling(70e9), fma: ceiling(75e9) },
  bandwidth: { read: ceiling(10e9), write: ceiling(17e9), copy: ceiling(11e9), uniform: ceiling(15e9), gather: ceiling(1.5e9), texture: ceiling(9e9) },
  dispatch: { recorded: 3e-4, inSharedPass: 1e-4, gpu: 2e-4, submit: 4e-5, readback: 1e-4, bindGroup: 3e-5 },
};

describe('peak ceilings', () => {
  it('count the work a dispatch does: every invocation of its workgroups, every byte once', () => {
    // 100 invocations in workgroups of 64: 128 run, 8 FLOPs a chain step.
    expect(peakFlopsWork({ chains: 12, fma: false, workgroupSize: 64, iters: 10, threads: 100 })).toBe(128 * 12 * 10 * 8);
    const m = { n: 1000, threads: 10, blocked: true, workgroupSize: 64 };
    expect(peakMemoryBytes({ ...m, op: 'copy' })).toBe(32_000);
    expect(peakMemoryBytes({ ...m, op: 'read' })).toBe(16_000 + 160);
    expect(peakMemoryBytes({ ...m, op: 'uniform', reps: 5 })).toBe(10 * 5 * 16 + 160);
  });

  it("are cached per adapter with the kernels' checksum: an edited peak kernel is measured anew", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mode-peak-')), 'peak.json');
    expect(cachedPeak(gpu, path)).toBeNull();
    storePeak(gpu, report, path);
    expect(cachedPeak(gpu, path)).toEqual(report);
    expect(Object.keys((JSON.parse(readFileSync(path, 'utf8')) as { adapters: object }).adapters)).toHaveLength(1);
    expect(roof(report)).toEqual({ flops: 75e9, bandwidth: 17e9 });
    // The same adapter with one peak kernel edited (the kernels given as sources, as a page gives them).
    const sources = Object.fromEntries(
      readdirSync(DEFAULT_KERNELS_DIR)
        .filter((f) => f.endsWith('.wgsl'))
        .map((f) => [f.slice(0, -5), readFileSync(join(DEFAULT_KERNELS_DIR, f), 'utf8')]),
    );
    const edited = await Gpu.open({ kernels: { ...sources, peak_memory: `${sources.peak_memory}\n// edited\n` } });
    try {
      expect(cachedPeak(edited, path)).toBeNull();
    } finally {
      edited.destroy();
    }
  });
});
