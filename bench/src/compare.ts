import type { Gpu } from '@mode/gpu';
import { speedup, wall, type Timed } from './clock.js';
import { createPeers, type Peer, type PreparedOp } from './peers/index.js';
import { timeAsync, type Timing } from './timing.js';

/**
 * One benchmark row: our kernel (autotuned variant), the naive WGSL kernel, and every peer on the
 * same problem, each timed the same way in this one process: wall time per call including
 * waiting for the GPU (benchmark.js, median of its samples). numpy runs in its own process and
 * reports its own median (no pipe round-trip in it).
 */
export interface CompareCase {
  label: string;
  /** FLOPs one call does, by the suite's stated counting rule. */
  flops: number;
  /** Runs our kernel once and waits (gpu.sync()); `variant` says which variant ran. */
  ours: { variant: string; run: () => Promise<void> };
  /** The naive WGSL kernel on the same problem, when there is one and it is not too slow. */
  naive?: () => Promise<void>;
  /** The peer's preparation of the same problem, or undefined when it lacks the op. */
  peer: (p: Peer) => Promise<PreparedOp> | undefined;
}

export interface CompareOptions {
  quick?: boolean;
  /** Skip a runner (naive or peer) whose first call takes longer than this many seconds. */
  slowLimit?: number;
}

const gflops = (flops: number, seconds: number) => flops / seconds / 1e9;

async function time(run: () => Promise<unknown>, quick: boolean): Promise<Timing> {
  return timeAsync(run, { maxTime: quick ? 0.3 : 1.5, minSamples: quick ? 2 : 5 });
}

/** Peers in column order, with availability printed once (a missing peer is reported, never dropped). */
export async function openPeers(gpu: Gpu): Promise<{ peers: Peer[]; notes: string[] }> {
  const peers = createPeers(gpu);
  const notes: string[] = [];
  for (const p of peers) {
    const a = await p.available();
    notes.push(a.ok ? `${p.name}: ${a.detail ?? 'available'}; ${p.syncNote}` : `${p.name}: not available (${a.reason})`);
  }
  return { peers, notes };
}

/** Measures one case against naive and every peer; returns the row (GFLOP/s and ratios). */
export async function compareRow(c: CompareCase, peers: Peer[], options: CompareOptions = {}): Promise<Record<string, string | number | null>> {
  const quick = !!options.quick;
  const limit = options.slowLimit ?? 10;
  const timing = await time(c.ours.run, quick);
  const ours = wall(timing.median, c.flops);
  const row: Record<string, string | number | null> = {
    case: c.label,
    variant: c.ours.variant,
    clock: ours.clock,
    'ms (median)': timing.median * 1e3,
    'GFLOP/s': gflops(c.flops, timing.median),
    '±%': timing.rme,
  };
  // One probe call first: a runner slower than the limit is reported as skipped, not waited for.
  const measure = async (run: () => Promise<void>): Promise<Timed | string> => {
    const t0 = performance.now();
    await run();
    if ((performance.now() - t0) / 1e3 > limit) return `skipped (>${limit} s a call)`;
    return wall((await time(run, quick)).median, c.flops);
  };
  const rate = (t: Timed | string) => (typeof t === 'string' ? t : gflops(c.flops, t.seconds));
  const ratio = (t: Timed | string) => (typeof t === 'string' ? t : speedup(ours, t));
  if (c.naive) {
    const t = await measure(c.naive);
    row['naive WGSL GFLOP/s'] = rate(t);
    row['× naive'] = ratio(t);
  }
  for (const peer of peers) {
    if (!(await peer.available()).ok) {
      row[`× ${peer.name}`] = 'n/a';
      continue;
    }
    const op = await c.peer(peer);
    if (!op) {
      row[`× ${peer.name}`] = 'no such op';
      continue;
    }
    try {
      // numpy's own in-process median is wall time per call too.
      const t = op.selfTimed
        ? wall((await op.selfTimed({ maxTime: quick ? 0.3 : 1.5, minSamples: quick ? 2 : 5 })).median, c.flops)
        : await measure(() => op.run());
      row[`${peer.name} GFLOP/s`] = rate(t);
      row[`× ${peer.name}`] = ratio(t);
    } finally {
      await op.dispose();
    }
  }
  return row;
}

/** The union of the rows' columns, in first-seen order. */
export function columnsOf(rows: Record<string, unknown>[]): string[] {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return cols;
}
