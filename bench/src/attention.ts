import { Gpu } from '@mode/gpu';
import {
  chooseAttention,
  attentionBackward,
  attentionFlops,
  attentionForward,
  autotuner,
  matmulUnsupported,
  matmulWith,
  softmax,
  type AttentionProblem,
  type AttentionVariantName,
} from '@mode/kernels';
import { clockMethod, speedup, wall } from './clock.js';
import { columnsOf, compareRow, openPeers } from './compare.js';
import { textTable, writeTrace } from './results.js';
import type { Suite } from './suites.js';
import { timeAsync } from './timing.js';

const BH_SWEEP = 8;

interface Case {
  bh: number;
  L: number;
  causal: boolean;
  /** Whose shape this is, when it is a model's. */
  model?: string;
}

// The trainer's attention (see matmul.ts): the ViT's 64 tokens × 3 heads × batch 64, and the text
// tower's 32 causal tokens × 4 heads × batch 64; head dim 64 in both.
const TRAINER: Case[] = [
  { bh: 192, L: 64, causal: false, model: 'ViT' },
  { bh: 256, L: 32, causal: true, model: 'text' },
];
const D = 64;

/**
 * The unfused baseline: S = Q·Kᵀ (batched A·Bᵀ), P = softmax(S/√d), O = P·V (batched A·B), on the
 * register-blocked subgroup matmuls; S and P are BH·L² floats each. Where the adapter cannot run
 * those (no subgroups of 8, as on most GPUs), the reason instead: the suite reports it, as the
 * k-means and InfoNCE suites do for their matmul yardstick.
 */
export function unfusedBaseline(
  gpu: Gpu,
  t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer },
  p: { bh: number; L: number; d: number; causal: boolean },
): { unsupported: string } | { run: () => Promise<void>; buffers: GPUBuffer[] } {
  const mm = { m: p.L, n: p.L, k: p.d, batch: p.bh, transB: true };
  const pv = { m: p.L, n: p.d, k: p.L, batch: p.bh };
  const why = matmulUnsupported(gpu, 'sg_bt', mm) ?? matmulUnsupported(gpu, 'sg', pv);
  if (why) return { unsupported: `needs matmul_sg_bt and matmul_sg: ${why}` };
  const s = gpu.buffer(4 * p.bh * p.L * p.L);
  const pr = gpu.buffer(4 * p.bh * p.L * p.L);
  return {
    buffers: [s, pr],
    run: async () => {
      await matmulWith(gpu, 'sg_bt', t.q, t.k, s, mm);
      await softmax(gpu, s, pr, { rows: p.bh * p.L, n: p.L, scale: 1 / Math.sqrt(p.d), causal: p.causal });
      await matmulWith(gpu, 'sg', pr, t.v, t.o, pv);
      await gpu.sync();
    },
  };
}

export const suite: Suite = {
  description:
    'flash attention (forward, forward+backward) L = 64–1024 and the trainer’s shapes, d = 64, vs unfused matmul+softmax, the portable kernel and the peers',
  async run(options) {
    const gpu = await Gpu.open({ profile: !!options.trace });
    autotuner.retune = !!options.retune;
    try {
      const { peers, notes } = await openPeers(gpu);
      notes.forEach((n) => console.log(`peer ${n}`));
      const lengths = options.headline ? [1024] : options.quick ? [256, 1024] : [64, 128, 256, 512, 1024];
      const cases: Case[] = [
        ...lengths.flatMap((L) => (options.headline ? [false] : [false, true]).map((causal) => ({ bh: BH_SWEEP, L, causal }))),
        ...(options.quick && !options.headline ? [] : TRAINER),
      ];
      const rows: Record<string, string | number | null>[] = [];
      for (const { bh: BH, L, causal, model } of cases) {
        const p: AttentionProblem = { bh: BH, lq: L, d: D, causal };
        const n = BH * L * D;
        const random = () => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
        const t = {
          q: gpu.upload(random()),
          k: gpu.upload(random()),
          v: gpu.upload(random()),
          dO: gpu.upload(random()),
          o: gpu.buffer(4 * n),
          lse: gpu.buffer(4 * BH * L),
          dQ: gpu.buffer(4 * n),
          dKV: gpu.buffer(8 * n), // dK, then dV
        };
        const variant = await chooseAttention(gpu, p);
        const fwd = (v: AttentionVariantName) => async () => (await attentionForward(gpu, t.q, t.k, t.v, t.o, t.lse, p, v), gpu.sync());
        const fwdBwd = (v: AttentionVariantName) => async () => (
          await attentionForward(gpu, t.q, t.k, t.v, t.o, t.lse, p, v),
          await attentionBackward(gpu, t, p, v),
          gpu.sync()
        );

        const unfused = unfusedBaseline(gpu, t, { bh: BH, L, d: D, causal });
        const flops = attentionFlops(p);
        const label = `${model ? `${model} ` : ''}${BH}×${L}×${D}${causal ? ' causal' : ''}`;
        const row = await compareRow(
          { label: `fwd ${label}`, flops, ours: { variant, run: fwd(variant) }, naive: fwd('portable'), peer: (peer) => peer.attention?.(BH, L, D, causal) },
          peers,
          { quick: options.quick },
        );
        if ('run' in unfused) {
          const un = await timeAsync(unfused.run, { maxTime: options.quick ? 0.3 : 1.5, minSamples: options.quick ? 2 : 5 });
          row['unfused GFLOP/s'] = flops / un.median / 1e9;
          row['× unfused'] = speedup(wall((row['ms (median)'] as number) / 1e3), wall(un.median));
        } else {
          row['unfused GFLOP/s'] = `n/a (${unfused.unsupported})`;
          row['× unfused'] = 'n/a';
        }
        // Memory the fused pass needs beyond its inputs and outputs: O(L·d) (the LSE), against the unfused 2·BH·L².
        row['unfused scratch MiB'] = (2 * 4 * BH * L * L) / 2 ** 20;
        row['fused scratch MiB'] = (4 * BH * L) / 2 ** 20;
        rows.push(row);
        console.log(
          Object.entries(row)
            .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(3) : v}`)
            .join('  '),
        );

        const both = await compareRow(
          { label: `fwd+bwd ${label}`, flops: flops * 4.5, ours: { variant, run: fwdBwd(variant) }, naive: fwdBwd('portable'), peer: () => undefined },
          [],
          { quick: options.quick },
        );
        rows.push(both);
        console.log(
          Object.entries(both)
            .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(3) : v}`)
            .join('  '),
        );
        [...Object.values(t), ...('buffers' in unfused ? unfused.buffers : [])].forEach((b) => gpu.release(b));
      }
      const results = {
        suite: 'attention',
        adapter: gpu.report.name,
        date: new Date().toISOString(),
        method:
          `FLOPs as done by the fused kernels: forward 4·d per visible (query, key) pair (2·d for the score, 2·d for the weighted value; ` +
          `causal rows count only visible pairs), forward+backward 4.5× that (backward recomputes the score and forms dP, dS·K, Pᵀ·dO, dSᵀ·Q). ` +
          `Peers and the unfused path get the same FLOP count, so every × is a ratio of times. Wall time per call including the wait for the GPU, ` +
          `benchmark.js median, one process, one adapter (${gpu.report.description}), LP_NUM_THREADS=${gpu.report.threads?.LP_NUM_THREADS}. ` +
          `${clockMethod({ profiled: !!options.trace })} ` +
          `naive = the portable kernel (one invocation per row). unfused = our batched A·Bᵀ matmul, softmax kernel, batched A·B matmul (stores BH·L² scores twice; matmul_sg_bt and matmul_sg, n/a where the adapter has no subgroups of 8). ` +
          `Peers (forward only, unfused from their own ops): ${notes.join(' | ')}`,
        columns: columnsOf(rows),
        rows,
      };
      console.log(`\n${textTable(results)}`);
      writeTrace(gpu, options.trace);
      return results;
    } finally {
      gpu.destroy();
    }
  },
};
