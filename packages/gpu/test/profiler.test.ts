import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu, Profiler } from '../src/index.js';

/** Runs `count` additions of n floats and returns the profiler's trace. */
async function runAdds(gpu: Gpu, count: number) {
  const k = await gpu.kernel('strided'); // OP 0: out = a + b
  const n = 1 << 14;
  const a = gpu.upload(new Float32Array(n).fill(1));
  const out = gpu.buffer(4 * n);
  const flat = { shape: [1, 1, 1, n], stride_a: [0, 0, 0, 1], stride_b: [0, 0, 0, 1], stride_out: [0, 0, 0, 1], offset: [0, 0, 0, n] };
  for (let i = 0; i < count; i++)
    gpu.dispatch(k, { bindings: { a, b: a, out }, uniforms: flat, workgroups: n / 256, work: { flops: n, bytes: 12 * n }, label: `add #${i}` });
  await gpu.sync();
  gpu.release(a);
  gpu.release(out);
}

describe('profiler', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await Gpu.open();
  });
  afterAll(() => gpu?.destroy());

  it('is off by default and records nothing', async () => {
    expect(gpu.profiler.enabled).toBe(false);
    await runAdds(gpu, 3);
    expect(gpu.profiler.records).toHaveLength(0);
  });

  it('writes Chrome trace JSON with one complete event per dispatch', async () => {
    gpu.profiler.enabled = true;
    await runAdds(gpu, 5);
    const trace = JSON.parse(JSON.stringify(gpu.profiler.chromeTrace()));
    const events = trace.traceEvents.filter((e: { ph: string }) => e.ph === 'X');
    expect(events).toHaveLength(5);
    expect(events.map((e: { args: { label: string } }) => e.args.label)).toEqual(['add #0', 'add #1', 'add #2', 'add #3', 'add #4']);
    for (const e of events) {
      expect(e).toMatchObject({ name: 'strided', cat: 'dispatch', pid: 1, tid: 1 });
      expect(e.dur).toBeGreaterThan(0);
      expect(e.ts).toBeGreaterThanOrEqual(0);
    }
    // Dispatches in one queue do not overlap.
    for (let i = 1; i < events.length; i++) expect(events[i].ts).toBeGreaterThanOrEqual(events[i - 1].ts + events[i - 1].dur - 1e-3);
    const [row] = gpu.profiler.summary();
    expect(row).toMatchObject({ kernel: 'strided', calls: 5 });
    expect(row!.gflops).toBeGreaterThan(0);
    expect(row!.gbps).toBeGreaterThan(0);
    expect(row!.p50Us).toBeLessThanOrEqual(row!.p95Us);
    expect(gpu.profiler.table()).toMatch(/profile \((GPU timestamps|CPU wall clock)/);
  });

  it('times each dispatch on the CPU clock, labelled so, where timestamps are not used', async () => {
    const cpu = await Gpu.open({ profile: 'cpu-wall' });
    try {
      await runAdds(cpu, 4);
      expect(cpu.profiler.clock).toBe('cpu-wall');
      expect(cpu.profiler.records).toHaveLength(4);
      expect(cpu.profiler.table()).toContain('CPU wall clock per dispatch');
      expect(cpu.profiler.chromeTrace().otherData).toEqual({ clock: 'cpu-wall' });
    } finally {
      cpu.destroy();
    }
  });

  it('computes quantiles and rates from records', () => {
    const p = new Profiler('gpu-timestamps', true);
    [100, 200, 300, 400, 1000].forEach((d, i) => p.record('k', 'k', i * 10_000, i * 10_000 + d * 1000, { flops: 1e6 }));
    const [row] = p.summary();
    expect(row).toMatchObject({ calls: 5, totalMs: 2, meanUs: 400, p50Us: 300 });
    expect(row!.p95Us).toBeCloseTo(880);
    expect(row!.gflops).toBeCloseTo(5e6 / 2e6);
    expect(row!.gbps).toBeUndefined();
  });
});

describe("profiler against a roof (the adapter's measured ceilings)", () => {
  it('gives each kernel its % of peak FLOP/s and GB/s, and the dispatches their fixed cost as a line of its own', () => {
    const p = new Profiler('gpu-timestamps', true);
    // Two dispatches of 1 ms: 20 MFLOP and 5 MB each, so 20 GFLOP/s and 5 GB/s.
    p.record('k', 'k #0', 0, 1e6, { flops: 2e7, bytes: 5e6 });
    p.record('k', 'k #1', 1e6, 2e6, { flops: 2e7, bytes: 5e6 });
    expect(p.table()).not.toContain('% peak');
    expect(p.overhead()).toBeNull();
    p.roof = { flops: 80e9, bandwidth: 10e9, dispatchSeconds: 2e-4, from: 'test' };
    const [row] = p.summary();
    expect(row!.peakFlops).toBeCloseTo(0.25, 12);
    expect(row!.peakBandwidth).toBeCloseTo(0.5, 12);
    const table = p.table();
    expect(table).toMatch(/% peak FLOP\/s\s+% peak GB\/s/);
    expect(table).toMatch(/25\.0%\s+50\.0%/);
    expect(table).toContain('peak: 80.0 GFLOP/s, 10.0 GB/s (test)');
    // 2 × 0.2 ms beside 2 ms of kernels: 0.4 / 2.4 of the step.
    const o = p.overhead()!;
    expect([o.dispatches, o.seconds, o.share].map((x) => +x.toPrecision(12))).toEqual([2, 4e-4, +(1 / 6).toPrecision(12)]);
    expect(table).toContain('dispatch overhead: 2 dispatches × 200 µs = 0.4 ms, 16.7% of the profiled time with it');
    const events = p.chromeTrace().traceEvents.filter((e) => (e as { ph: string }).ph === 'X') as { args: Record<string, number> }[];
    expect(events[0]!.args).toMatchObject({ '% peak FLOP/s': 25, '% peak GB/s': 50 });
    // On the roofline: 4 FLOP a byte, where the roof allows min(80, 10 × 4) = 40 GFLOP/s; the kernel does 20.
    p.record('no bytes', 'x', 2e6, 3e6, { flops: 1 });
    const svg = p.roofline('step')!;
    expect(svg.match(/<g class="point">/g)).toHaveLength(1);
    expect(svg).toContain('<title>k: 20.0 GFLOP/s at 4.00 FLOP/byte, 50% of the roof above it</title>');
    expect(svg).toMatch(/<polyline class="roof"[^>]*points="[\d., ]+"/);
    expect(svg).toContain('80.0 GFLOP/s');
    expect(new Profiler('gpu-timestamps').roofline('none')).toBeNull();
  });
});
