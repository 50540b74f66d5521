import { rooflineSvg, type Roof, type RooflinePoint } from './roofline.js';

export type { Roof };

/** The work one dispatch does, declared by whoever dispatches it, so rates can be printed. */
export interface Work {
  flops?: number;
  bytes?: number;
}

export interface DispatchRecord {
  kernel: string;
  label: string;
  /** Start, in nanoseconds since the profiler's first record. */
  startNs: number;
  durationNs: number;
  work: Work;
}

export interface KernelSummary {
  kernel: string;
  calls: number;
  totalMs: number;
  meanUs: number;
  p50Us: number;
  p95Us: number;
  /** Present when every call declared its FLOPs. */
  gflops?: number;
  /** Present when every call declared its bytes. */
  gbps?: number;
  /** gflops as a share of the roof's arithmetic peak (with a roof). */
  peakFlops?: number;
  /** gbps as a share of the roof's bandwidth (with a roof). */
  peakBandwidth?: number;
}

/**
 * How times are taken. `gpu-timestamps`: timestamp queries written by the GPU at the start and
 * end of each dispatch's compute pass. `cpu-wall`: the adapter lacks `timestamp-query`, so each
 * dispatch is submitted alone and timed from submit to completion on the CPU clock, which
 * includes submission and synchronisation overhead.
 */
export type ProfileClock = 'gpu-timestamps' | 'cpu-wall';

export class Profiler {
  readonly records: DispatchRecord[] = [];
  private originNs: number | null = null;
  /** The adapter's ceilings, when measured: adds % of peak to the summary, table and trace, and the dispatch overhead. */
  roof: Roof | null = null;

  constructor(
    readonly clock: ProfileClock,
    public enabled = false,
  ) {}

  /** Adds one timed dispatch; `startNs` on any clock that is consistent within this profiler. */
  record(kernel: string, label: string, startNs: number, endNs: number, work: Work): void {
    this.originNs ??= startNs;
    this.records.push({ kernel, label, startNs: startNs - this.originNs, durationNs: Math.max(0, endNs - startNs), work });
  }

  clear(): void {
    this.records.length = 0;
    this.originNs = null;
  }

  summary(): KernelSummary[] {
    const byKernel = new Map<string, DispatchRecord[]>();
    for (const r of this.records) byKernel.set(r.kernel, [...(byKernel.get(r.kernel) ?? []), r]);
    const rows: KernelSummary[] = [];
    for (const [kernel, recs] of byKernel) {
      const ns = recs.map((r) => r.durationNs).sort((a, b) => a - b);
      const total = ns.reduce((a, b) => a + b, 0);
      const row: KernelSummary = {
        kernel,
        calls: recs.length,
        totalMs: total / 1e6,
        meanUs: total / recs.length / 1e3,
        p50Us: quantile(ns, 0.5) / 1e3,
        p95Us: quantile(ns, 0.95) / 1e3,
      };
      if (total > 0 && recs.every((r) => r.work.flops !== undefined)) row.gflops = recs.reduce((a, r) => a + r.work.flops!, 0) / total;
      if (total > 0 && recs.every((r) => r.work.bytes !== undefined)) row.gbps = recs.reduce((a, r) => a + r.work.bytes!, 0) / total;
      if (this.roof && row.gflops !== undefined) row.peakFlops = (row.gflops * 1e9) / this.roof.flops;
      if (this.roof && row.gbps !== undefined) row.peakBandwidth = (row.gbps * 1e9) / this.roof.bandwidth;
      rows.push(row);
    }
    return rows.sort((a, b) => b.totalMs - a.totalMs);
  }

  /**
   * What the dispatches' fixed cost comes to: their count × the roof's measured cost of an empty
   * dispatch, and its share of the profiled time plus that overhead. Null without a measured cost.
   */
  overhead(): { dispatches: number; seconds: number; share: number } | null {
    if (!this.roof?.dispatchSeconds || this.records.length === 0) return null;
    const seconds = this.records.length * this.roof.dispatchSeconds;
    const profiled = this.records.reduce((a, r) => a + r.durationNs, 0) / 1e9;
    return { dispatches: this.records.length, seconds, share: seconds / (profiled + seconds) };
  }

  /** The summary as an aligned text table, its clock named in the heading; with a roof, % of peak and the dispatch overhead. */
  table(): string {
    const roof = this.roof;
    const head = ['kernel', 'calls', 'total ms', 'mean µs', 'p50 µs', 'p95 µs', 'GFLOP/s', 'GB/s', ...(roof ? ['% peak FLOP/s', '% peak GB/s'] : [])];
    const fmt = (x: number | undefined, d = 1) => (x === undefined ? '–' : x.toFixed(d));
    const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
    const rows = this.summary().map((r) => [
      r.kernel,
      String(r.calls),
      fmt(r.totalMs, 3),
      fmt(r.meanUs),
      fmt(r.p50Us),
      fmt(r.p95Us),
      fmt(r.gflops, 2),
      fmt(r.gbps, 2),
      ...(roof ? [pct(r.peakFlops), pct(r.peakBandwidth)] : []),
    ]);
    const note = this.clock === 'gpu-timestamps' ? 'GPU timestamps' : 'CPU wall clock per dispatch (no timestamp-query: includes submit and sync overhead)';
    const lines = [`profile (${note})`, formatTable(head, rows)];
    if (roof) lines.push(`peak: ${(roof.flops / 1e9).toFixed(1)} GFLOP/s, ${(roof.bandwidth / 1e9).toFixed(1)} GB/s (${roof.from})`);
    const o = this.overhead();
    if (o)
      lines.push(
        `dispatch overhead: ${o.dispatches} dispatches × ${(roof!.dispatchSeconds! * 1e6).toFixed(0)} µs = ${(o.seconds * 1e3).toFixed(1)} ms, ${pct(o.share)} of the profiled time with it`,
      );
    return lines.join('\n');
  }

  /** Chrome trace-event JSON (opens in Perfetto and chrome://tracing): one complete event per dispatch. */
  chromeTrace(): { traceEvents: object[]; displayTimeUnit: 'ns'; otherData: object } {
    const traceEvents: object[] = [
      { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'mode gpu' } },
      {
        name: 'thread_name',
        ph: 'M',
        pid: 1,
        tid: 1,
        args: { name: this.clock === 'gpu-timestamps' ? 'GPU queue (timestamps)' : 'GPU queue (CPU wall clock)' },
      },
    ];
    for (const r of this.records) {
      traceEvents.push({
        name: r.kernel,
        cat: 'dispatch',
        ph: 'X',
        pid: 1,
        tid: 1,
        ts: r.startNs / 1e3,
        dur: r.durationNs / 1e3,
        args: { label: r.label, ...r.work, ...this.peakShares(r) },
      });
    }
    return { traceEvents, displayTimeUnit: 'ns', otherData: { clock: this.clock, ...(this.roof ? { roof: this.roof } : {}) } };
  }

  /** The profiled kernels on the roof (SVG): one point per kernel that declared both FLOPs and bytes. Null without a roof. */
  roofline(title: string): string | null {
    if (!this.roof) return null;
    const byKernel = new Map<string, RooflinePoint>();
    for (const r of this.records) {
      if (r.work.flops === undefined || r.work.bytes === undefined) continue;
      const p = byKernel.get(r.kernel) ?? { label: r.kernel, flops: 0, bytes: 0, seconds: 0 };
      byKernel.set(r.kernel, { ...p, flops: p.flops + r.work.flops, bytes: p.bytes + r.work.bytes, seconds: p.seconds + r.durationNs / 1e9 });
    }
    return rooflineSvg([...byKernel.values()], this.roof, title);
  }

  /** One dispatch's rates as shares of the roof, for the trace's args. */
  private peakShares(r: DispatchRecord): Record<string, number> {
    if (!this.roof || r.durationNs <= 0) return {};
    const s = r.durationNs / 1e9;
    const out: Record<string, number> = {};
    if (r.work.flops !== undefined) out['% peak FLOP/s'] = Math.round((1e4 * r.work.flops) / s / this.roof.flops) / 100;
    if (r.work.bytes !== undefined) out['% peak GB/s'] = Math.round((1e4 * r.work.bytes) / s / this.roof.bandwidth) / 100;
    return out;
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
