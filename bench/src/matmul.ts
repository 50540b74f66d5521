import { Gpu } from '@mode/gpu';
import { autotuner, chooseMatmul, matmulWith, type MatmulProblem } from '@mode/kernels';
import { clockMethod } from './clock.js';
import { columnsOf, compareRow, openPeers, type CompareCase } from './compare.js';
import type { Layout } from './peers/index.js';
import { textTable, writeTrace } from './results.js';
import type { Suite } from './suites.js';

interface Shape {
  label: string;
  m: number;
  n: number;
  k: number;
  layout: Layout;
  batch?: number;
}

const square = (n: number, layout: Layout): Shape => ({ label: `${n}³`, m: n, n, k: n, layout });

// The trainer's models (packages/trainer, the CLIP towers): a ViT of width 192 on 8×8 patches of
// 64×64 images (64 tokens: the image embedding is the mean over patches, no CLS token, so no
// tile is ragged; batch 64) and a text transformer of width 256 on 32 tokens (batch 64).
// Forward x·Wᵀ (A·Bᵀ), backward dX = dY·W (A·B) and dW = dYᵀ·X (Aᵀ·B); attention's batched
// Q·Kᵀ per head (the unfused path; the trainer's own attention is the fused kernel).
const TRAINER: Shape[] = [
  { label: 'ViT qkv fwd', m: 4096, n: 576, k: 192, layout: 'ABt' },
  { label: 'ViT mlp fwd', m: 4096, n: 768, k: 192, layout: 'ABt' },
  { label: 'ViT mlp dX', m: 4096, n: 192, k: 768, layout: 'AB' },
  { label: 'ViT mlp dW', m: 768, n: 192, k: 4096, layout: 'AtB' },
  { label: 'text mlp fwd', m: 2048, n: 1024, k: 256, layout: 'ABt' },
  { label: 'text mlp dX', m: 2048, n: 256, k: 1024, layout: 'AB' },
  { label: 'text qkv dW', m: 768, n: 256, k: 2048, layout: 'AtB' },
  { label: 'ViT attn Q·Kᵀ (64×3 heads)', m: 64, n: 64, k: 64, layout: 'ABt', batch: 192 },
];

const problemOf = (s: Shape): MatmulProblem => ({ m: s.m, n: s.n, k: s.k, batch: s.batch, transA: s.layout === 'AtB', transB: s.layout === 'ABt' });

export const suite: Suite = {
  description: 'matmul (A·B, A·Bᵀ, Aᵀ·B, batched) 128–2048³ and the trainer’s shapes, vs naive WGSL, TensorFlow.js, jax-js, numpy/OpenBLAS, plain TypeScript',
  async run(options) {
    const gpu = await Gpu.open({ profile: !!options.trace });
    autotuner.retune = !!options.retune;
    try {
      const { peers, notes } = await openPeers(gpu);
      notes.forEach((n) => console.log(`peer ${n}`));
      const sizes = options.headline ? [1024] : options.quick ? [256, 1024] : [128, 256, 512, 1024, 2048];
      const shapes: Shape[] = [
        ...sizes.flatMap((n) => [square(n, 'AB'), square(n, 'ABt'), square(n, 'AtB')]),
        ...(options.quick && !options.headline ? TRAINER.slice(0, 3) : TRAINER),
      ];
      const rows = [];
      for (const s of shapes) {
        const p = problemOf(s);
        const batch = s.batch ?? 1;
        const a = gpu.buffer(4 * s.m * s.k * batch);
        const b = gpu.buffer(4 * s.k * s.n * batch);
        const c = gpu.buffer(4 * s.m * s.n * batch);
        // Inputs' values do not change a matmul's speed: uniform random once per shape.
        for (const [buf, n] of [
          [a, s.m * s.k * batch],
          [b, s.k * s.n * batch],
        ] as const)
          gpu.write(
            buf,
            Float32Array.from({ length: n }, () => Math.random() - 0.5),
          );
        const variant = await chooseMatmul(gpu, p);
        const label = `${s.layout} ${s.label}${s.label.endsWith('³') ? '' : ` ${batch > 1 ? `${batch}×` : ''}${s.m}×${s.n}×${s.k}`}`;
        const flops = 2 * s.m * s.n * s.k * batch;
        const c_: CompareCase = {
          label,
          flops,
          ours: { variant, run: async () => (await matmulWith(gpu, variant, a, b, c, p), gpu.sync()) },
          naive: flops <= 2 * 1024 ** 3 ? async () => (await matmulWith(gpu, 'naive', a, b, c, p), gpu.sync()) : undefined,
          peer: (peer) => peer.matmul?.(s.m, s.n, s.k, s.layout, batch),
        };
        const row = await compareRow(c_, peers, { quick: options.quick });
        console.log(
          Object.entries(row)
            .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(3) : v}`)
            .join('  '),
        );
        rows.push(row);
        [a, b, c].forEach((x) => gpu.release(x));
      }
      const results = {
        suite: 'matmul',
        adapter: gpu.report.name,
        date: new Date().toISOString(),
        method:
          `FLOPs = 2·M·N·K per matrix. Each column: wall time per call including the wait for the GPU, benchmark.js median ` +
          `(maxTime ${options.quick ? 0.3 : 1.5} s, ≥ ${options.quick ? 2 : 5} samples), all in one process on one adapter (${gpu.report.description}); ` +
          `numpy/OpenBLAS times itself in its own process. × columns: our GFLOP/s over theirs. ${clockMethod({ profiled: !!options.trace })} LP_NUM_THREADS=${gpu.report.threads?.LP_NUM_THREADS}. ` +
          `Peers: ${notes.join(' | ')}`,
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
