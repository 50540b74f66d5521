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
      rows.push(row);
    }
    return rows.sort((a, b) => b.totalMs - a.totalMs);
  }

  /** The summary as an aligned text table, its clock named in the heading. */
  table(): string {
    const head = ['kernel', 'calls', 'total ms', 'mean µs', 'p50 µs', 'p95 µs', 'GFLOP/s', 'GB/s'];
    const fmt = (x: number | undefined, d = 1) => (x === undefined ? '–' : x.toFixed(d));
    const rows = this.summary().map((r) => [
      r.kernel,
      String(r.calls),
      fmt(r.totalMs, 3),
      fmt(r.meanUs),
      fmt(r.p50Us),
      fmt(r.p95Us),
      fmt(r.gflops, 2),
      fmt(r.gbps, 2),
    ]);
    const note = this.clock === 'gpu-timestamps' ? 'GPU timestamps' : 'CPU wall clock per dispatch (no timestamp-query: includes submit and sync overhead)';
    return `profile (${note})\n${formatTable(head, rows)}`;
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
        args: { label: r.label, ...r.work },
      });
    }
    return { traceEvents, displayTimeUnit: 'ns', otherData: { clock: this.clock } };
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
