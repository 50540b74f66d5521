/**
 * Training step speed: pairs/s of one CLIP step (forward, symmetric InfoNCE, backward, global-norm
 * clip, AdamW, logit_scale clamp) for the `tiny` and `small` presets, against the same model —
 * the same weights, saved and loaded — in PyTorch float32 on the CPU, side by side in one run.
 * Both sides are timed on the wall clock per step (ours: benchmark.js over a step that ends with
 * AdamW's wait for the GPU; torch: perf_counter around each step in its process). Inputs are
 * synthetic (no data loader in the timed loop). Then one profiled step: time by kernel.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as ag from '@mode/autograd';
import { Gpu } from '@mode/gpu';
import { rng } from '@mode/kernels';
import { CLIP, EOT_ID, forwardFlops, preset } from '@mode/models';
import { speedup, wall } from './clock.js';
import { blasChildEnv, PYTHON } from './peers/numpy.js';
import { textTable, writeTrace, type SuiteResults } from './results.js';
import type { BenchOptions, Suite } from './suites.js';
import { timeAsync } from './timing.js';

// Same relative path from bench/src and bench/dist: tsc does not copy .py files.
const TORCH = fileURLToPath(new URL('../src/peers/torch_train.py', import.meta.url));
const TORCH_INSTALL = 'apt-get install -y python3-torch';

interface TorchRun {
  threads: number;
  median: number;
}

/** The torch peer's step times at each thread count, or why it cannot run. */
async function torchStep(
  model: string,
  batch: number,
  steps: number,
  threads: number[],
): Promise<{ version: string; runs: TorchRun[] } | { unavailable: string }> {
  try {
    // blasChildEnv: OpenBLAS on the kernels this CPU supports (left to itself it picks Prescott's here, 2–3× slower).
    const { stdout } = await promisify(execFile)(PYTHON, [TORCH, model, String(batch), String(steps), '2', threads.join(',')], {
      env: blasChildEnv(),
      timeout: 1_800_000,
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(stdout) as { torch: string; runs: TorchRun[] };
    return { version: r.torch, runs: r.runs };
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').pop();
    return { unavailable: `torch: ${PYTHON} cannot run the peer (${msg}); install with \`${TORCH_INSTALL}\`` };
  }
}

function syntheticBatch(B: number, S: number, L: number, vocab: number) {
  const r = rng(1);
  const images = Float32Array.from({ length: B * 3 * S * S }, () => 2 * r() - 1);
  const tokens = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    tokens[b * L] = 1;
    for (let j = 1; j < L / 2; j++) tokens[b * L + j] = 4 + Math.floor(r() * (vocab - 4));
    tokens[b * L + L / 2] = EOT_ID;
  }
  return { images, tokens };
}

export const suite: Suite = {
  description: 'training step: pairs/s of the tiny and small presets (CLIP loss) against the same model in PyTorch CPU, side by side; time by kernel',
  async run(options: BenchOptions): Promise<SuiteResults> {
    const gpu = await Gpu.open({});
    const engine = await ag.init(gpu);
    const dir = mkdtempSync(join(tmpdir(), 'mode-bench-train-'));
    const rows: Record<string, string | number | null>[] = [];
    const breakdowns: SuiteResults[] = [];
    const threads = [1, 2];
    let torchVersion = '';
    try {
      for (const name of options.quick ? ['tiny'] : ['tiny', 'small', 'medium']) {
        const config = preset(name);
        const B = 64;
        const S = config.vision.imageSize;
        const L = config.text.contextLength;
        const model = new CLIP(config, { seed: 0 });
        const opt = new ag.AdamW(model, { lr: 1e-4, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2 });
        const { images, tokens } = syntheticBatch(B, S, L, config.text.vocabSize);
        const x = ag.tensor(images, [B, 3, S, S]);
        const step = async () => {
          const f = model.features(x, tokens);
          const loss = ag.infoNCE(f.image, f.text, model.logit_scale);
          opt.zeroGrad();
          loss.backward();
          // As the trainer does: the norm read (its NaN guard), clipping as AdamW's gradient scale.
          const norm = ag.gradNorm(model.parameters());
          const n = await norm.item();
          norm.dispose();
          await opt.step(ag.clipScale(n, 1));
          model.clampLogitScale();
        };
        // The peer first, on the same initial weights, while this process is idle.
        const path = join(dir, `${name}.safetensors`);
        await model.save(path);
        const peer = await torchStep(path, B, options.quick ? 3 : 10, threads);
        await step(); // compiles and autotunes every kernel of the step
        const t = await timeAsync(step, { maxTime: options.quick ? 2 : 20, minSamples: options.quick ? 3 : 8 });
        // One profiled step: where the time goes.
        gpu.profiler.enabled = true;
        gpu.profiler.clear();
        await step();
        gpu.profiler.enabled = false;
        const summary = gpu.profiler.summary();
        const gpuMs = summary.reduce((s, k) => s + k.totalMs, 0);
        const matmulMs = summary.filter((k) => k.kernel.startsWith('matmul')).reduce((s, k) => s + k.totalMs, 0);
        const dispatches = summary.reduce((s, k) => s + k.calls, 0);
        breakdowns.push({
          suite: `${name}: one step by kernel`,
          adapter: gpu.report.name,
          date: new Date().toISOString(),
          method: `One profiled step at batch ${B}: ${dispatches} dispatches, ${gpuMs.toFixed(1)} ms of GPU timestamps (each dispatch in its own pass, so the sum exceeds the unprofiled step's GPU time).`,
          columns: ['kernel', 'calls', 'ms', 'share', 'GFLOP/s'],
          rows: summary.map((k) => ({
            kernel: k.kernel,
            calls: k.calls,
            ms: Math.round(k.totalMs * 10) / 10,
            share: `${((100 * k.totalMs) / gpuMs).toFixed(1)}%`,
            'GFLOP/s': k.gflops ?? null,
          })),
        });
        if (options.trace) writeTrace(gpu, options.trace.replace(/(\.json)?$/, `-${name}$1`));
        gpu.profiler.clear();

        const flops = forwardFlops(config, B).step;
        const ours = wall(t.median, B);
        const row: Record<string, string | number | null> = {
          preset: name,
          params: model.parameters().reduce((s, p) => s + p.size, 0),
          batch: B,
          'GFLOP/step': Math.round(flops / 1e8) / 10,
          'ms/step': Math.round(t.median * 1000),
          '±%': Math.round(t.rme * 10) / 10,
          'pairs/s': Math.round((B / t.median) * 10) / 10,
          'GFLOP/s': Math.round((flops / t.median / 1e9) * 10) / 10,
          'matmul share (GPU timestamps)': `${((100 * matmulMs) / gpuMs).toFixed(0)}%`,
          'pairs/s if only the matmuls ran (GPU timestamps)': Math.round((B / (matmulMs / 1000)) * 10) / 10,
        };
        if ('unavailable' in peer) row['torch'] = peer.unavailable;
        else {
          torchVersion = peer.version;
          const best = peer.runs.reduce((a, b) => (b.median < a.median ? b : a));
          for (const r of peer.runs) row[`torch ${r.threads}T pairs/s`] = Math.round((B / r.median) * 10) / 10;
          row['× torch (best)'] = Math.round(speedup(ours, wall(best.median, B)) * 1000) / 1000;
          row['torch best at'] = `${best.threads} thread${best.threads > 1 ? 's' : ''}`;
        }
        rows.push(row);
        console.log(
          `  ${name}: ${row['pairs/s']} pairs/s${'unavailable' in peer ? '' : `, ×${row['× torch (best)']} of torch at its best (${row['torch best at']})`}`,
        );
        x.dispose();
        opt.dispose();
        model.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await engine.destroy();
      gpu.destroy();
    }
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    const results: SuiteResults = {
      suite: 'train',
      adapter: gpu.report.name,
      date: new Date().toISOString(),
      method:
        `Clock: wall time per training step for both sides (ours: benchmark.js median over steps, each ending with AdamW's wait for the GPU; ` +
        `torch ${torchVersion || '(not run)'}: median of perf_counter per step in its own process, float32 on OpenBLAS (OPENBLAS_CORETYPE=${blasChildEnv().OPENBLAS_CORETYPE ?? 'detected'}), after 2 warm-up steps, at ${threads.join(' and ')} threads; ` +
        `the × column divides pairs/s by torch's at its fastest thread count). Same model and weights (saved by @mode/models, loaded by the peer), ` +
        `synthetic 64-pair batches, CLIP loss only; the step is forward, InfoNCE, backward, global-norm clip, AdamW, logit_scale clamp. ` +
        `GFLOP/step counts matmuls and attention (forwardFlops: 3× forward, attention 3.5×). ` +
        `The bound: "pairs/s if only the matmuls ran" is the batch over the profiled step's matmul time (GPU timestamps, every matmul dispatch of the step), ` +
        `what the step would reach if every other kernel and all recording took no time: a ceiling on GPU timestamps, not a measurement, ` +
        `and no × column divides it by the peer's wall time.`,
      columns,
      rows,
      sections: breakdowns,
    };
    console.log(textTable(results));
    for (const b of breakdowns) console.log(`\n${b.suite}\n${textTable({ ...b, rows: b.rows.slice(0, 15) })}`);
    return results;
  },
};
