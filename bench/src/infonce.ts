/**
 * InfoNCE (the symmetric CLIP loss) at B = 256…8192, d = 512: forward (loss) and
 * forward+backward (loss, dX, dY, ∂loss/∂logit_scale), every InfoNCE variant side by side, the
 * A·Bᵀ matmul of the same shape as the yardstick, and the peers' own implementations.
 */
import { Gpu } from '@mode/gpu';
import {
  autotuner,
  chooseInfoNCE,
  chunkColumns,
  infoNCE,
  infoNCEFlops,
  infoNCEUnsupported,
  INFONCE_VARIANTS,
  matmulUnsupported,
  matmulWith,
  type InfoNCEProblem,
  type InfoNCEVariantName,
} from '@mode/kernels';
import { clockMethod, gpuTimestamps, plausibleFlopsCeiling, speedup, timestampTime, wall, wallCall, type Timed } from './clock.js';
import { openPeers } from './compare.js';
import { FLOPS, INFO_NCE_SCALE, infoNCEInputs, type Peer } from './peers/index.js';
import { textTable, writeTrace } from './results.js';
import type { Suite } from './suites.js';
import { timeAsync } from './timing.js';

const D = 512;
/** The portable kernel (one invocation per row, ~0.5 GFLOP/s) is only timed up to here. */
const PORTABLE_MAX_B = 1024;
/** A peer is skipped where its previous size's time, scaled by the FLOPs, predicts more than this per call. */
const PEER_LIMIT_S = 20;
interface Runner {
  name: string;
  /** Records one call (the caller submits and waits). */
  record: () => Promise<void>;
}

/**
 * Median wall seconds per call (recording, submission and the wait: the clock the peers are timed
 * on), the runners interleaved round by round so that load from other processes on the machine
 * falls on all of them alike. Calls shorter than 0.2 s are repeated within a round.
 */
async function interleaved(gpu: Gpu, runners: Runner[], rounds: number): Promise<Map<string, { median: number; spread: number }>> {
  const reps = new Map<string, number>();
  for (const r of runners) {
    await wallCall(gpu, r.record); // warm-up: compiles the pipelines
    const t = await wallCall(gpu, r.record);
    reps.set(r.name, Math.max(1, Math.min(20, Math.ceil(0.2 / Math.max(t, 1e-4)))));
  }
  const samples = new Map<string, number[]>(runners.map((r) => [r.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const r of runners) {
      const n = reps.get(r.name)!;
      let total = 0;
      for (let k = 0; k < n; k++) total += await wallCall(gpu, r.record);
      samples.get(r.name)!.push(total / n);
    }
  }
  const out = new Map<string, { median: number; spread: number }>();
  for (const [name, s] of samples) {
    s.sort((a, b) => a - b);
    const median = s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    out.set(name, { median, spread: (100 * (s[s.length - 1]! - s[0]!)) / median });
  }
  return out;
}

export const suite: Suite = {
  description: 'InfoNCE (symmetric CLIP loss) B = 256–8192, d = 512, forward and forward+backward: every variant, the A·Bᵀ matmul, the peers',
  async run(options) {
    const gpu = await Gpu.open({ profile: true });
    autotuner.retune = !!options.retune;
    try {
      const { peers, notes } = await openPeers(gpu);
      notes.forEach((n) => console.log(`peer ${n}`));
      // Headline: 1024 first, so that the peers' time there predicts (and skips) their slow calls at 8192.
      const sizes = options.headline ? [1024, 8192] : options.quick ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096, 8192];
      const rounds = options.quick ? 3 : 5;
      const rows: Record<string, string | number | null>[] = [];
      const ceiling = plausibleFlopsCeiling(gpu.report);
      const lastPeerSeconds = new Map<string, { seconds: number; flops: number }>();
      for (const B of sizes) {
        const p: InfoNCEProblem = { b: B, m: B, d: D, symmetric: true };
        const { img, txt } = infoNCEInputs(B, B, D);
        const inp = { x: gpu.upload(img), y: gpu.upload(txt), logitScale: gpu.upload(new Float32Array([Math.log(INFO_NCE_SCALE)])) };
        const out = { loss: gpu.buffer(8), dx: gpu.buffer(4 * B * D), dy: gpu.buffer(4 * B * D) };
        // The yardstick: C = A·Bᵀ with A, B of B × d (one score pass), n capped so that C stays
        // within one storage binding (128 MiB).
        const mm = { m: B, n: Math.min(B, 2048), k: D, transB: true };
        const c = gpu.buffer(4 * mm.m * mm.n);
        const chosen = await chooseInfoNCE(gpu, p);
        const variants = (Object.keys(INFONCE_VARIANTS) as InfoNCEVariantName[]).filter(
          // The one-row-per-invocation variants take minutes past PORTABLE_MAX_B here.
          (v) => !infoNCEUnsupported(gpu, v, p) && ((v !== 'portable' && v !== 'tiled') || B <= (options.quick ? 512 : PORTABLE_MAX_B)),
        );
        for (const backward of [false, true]) {
          const outputs = backward ? out : { loss: out.loss };
          const runners: Runner[] = variants.map((v) => ({ name: v, record: () => infoNCE(gpu, inp, p, outputs, v) }));
          const yardstick = !matmulUnsupported(gpu, 'sg_bt', mm) ? () => matmulWith(gpu, 'sg_bt', inp.x, inp.y, c, mm) : null;
          if (yardstick) runners.push({ name: 'A·Bᵀ', record: yardstick });
          const t = await interleaved(gpu, runners, rounds);
          // Extra columns: ours and the yardstick timed by GPU timestamps, on further calls.
          const tsOurs = await timestampTime(gpu, () => infoNCE(gpu, inp, p, outputs, chosen));
          const tsMm = yardstick ? await timestampTime(gpu, yardstick) : null;
          // Memory: what one call of the chosen variant allocates beyond its inputs and outputs.
          const live = gpu.pool.stats().liveBytes;
          gpu.pool.resetPeak();
          await infoNCE(gpu, inp, p, outputs, chosen);
          await gpu.sync();
          const scratch = gpu.pool.stats().peakLiveBytes - live;

          const flops = infoNCEFlops(p, backward, chosen);
          const useful = FLOPS.infoNCE(B, B, D, backward);
          const mmFlops = 2 * mm.m * mm.n * mm.k;
          const ours = wall(t.get(chosen)!.median, flops);
          const mmTime = t.has('A·Bᵀ') ? wall(t.get('A·Bᵀ')!.median, mmFlops) : null;
          const rate = flops / ours.seconds / 1e9;
          const row: Record<string, string | number | null> = {
            case: `${backward ? 'fwd+bwd' : 'fwd'} B=${B} d=${D}`,
            variant: chosen,
            clock: ours.clock,
            ms: ours.seconds * 1e3,
            'GFLOP/s (as done)': rate,
            'spread %': t.get(chosen)!.spread,
            'useful GFLOP/s': useful / ours.seconds / 1e9,
            'A·Bᵀ GFLOP/s': mmTime ? mmFlops / mmTime.seconds / 1e9 : null,
            '× A·Bᵀ (as done)': mmTime ? speedup(ours, mmTime) : null,
          };
          for (const v of Object.keys(INFONCE_VARIANTS) as InfoNCEVariantName[]) {
            if (v === chosen) continue;
            const tv = t.get(v);
            row[`${v} ms`] = tv ? tv.median * 1e3 : infoNCEUnsupported(gpu, v, p) ? 'unsupported' : 'skipped (slow)';
            // Time ratios: each variant does the same loss (its own FLOPs as done differ).
            row[`× ${v}`] = tv ? speedup(wall(ours.seconds), wall(tv.median)) : null;
          }
          for (const peer of peers)
            row[`× ${peer.name}`] = await peerRatio(
              peer,
              B,
              backward,
              wall(ours.seconds),
              lastPeerSeconds,
              gpu.report.limits.maxStorageBufferBindingSize ?? 134217728,
              ceiling,
            );
          row['ms (GPU timestamps)'] = tsOurs === null ? null : tsOurs * 1e3;
          row['GFLOP/s (as done, GPU timestamps)'] = tsOurs === null ? null : flops / tsOurs / 1e9;
          row['× A·Bᵀ (as done, GPU timestamps)'] =
            tsOurs !== null && tsMm !== null ? speedup(gpuTimestamps(tsOurs, flops), gpuTimestamps(tsMm, mmFlops)) : null;
          row['scratch MiB'] = scratch / 2 ** 20;
          row['B·d MiB'] = (4 * B * D) / 2 ** 20;
          row['B×B MiB'] = (4 * B * B) / 2 ** 20;
          rows.push(row);
          console.log(
            Object.entries(row)
              .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(3) : v}`)
              .join('  '),
          );
        }
        [...Object.values(inp), ...Object.values(out), c].forEach((b) => gpu.release(b));
      }
      const passes = Object.entries(INFONCE_VARIANTS)
        .map(([name, v]) => `${name}: ${v.passesText}`)
        .join('; ');
      const results = {
        suite: 'infonce',
        adapter: gpu.report.name,
        date: new Date().toISOString(),
        method:
          `Symmetric CLIP loss, b = m = B, d = ${D}, rows L2-normalised, scale 1/0.07 (the peers' inputs). ` +
          `FLOPs as done: 2·B²·d per pass over the B×B logits (a score pass S = X·Yᵀ, or a product with the recomputed G), passes per variant: ${passes}. ` +
          `useful GFLOP/s counts the peers' rule instead (forward one B×B×d matmul, forward+backward three). ` +
          `${clockMethod({ timestampColumns: true })} ` +
          `Times: wall time per call, median of ${rounds} rounds in which every variant and the yardstick run in turn ` +
          `(calls under 0.2 s repeated within a round), one process, one adapter (${gpu.report.description}), LP_NUM_THREADS=${gpu.report.threads?.LP_NUM_THREADS}; ` +
          `spread % = (max − min) / median over the rounds. A·Bᵀ = our matmul_sg_bt on B × min(B, 2048) × d (the score pass alone). ` +
          `× columns are time ratios (theirs / ours); × A·Bᵀ a ratio of rates. Portable and tiled timed up to B = ${options.quick ? 512 : PORTABLE_MAX_B}. ` +
          `Peers: wall time per run() (numpy: its own in-process median), skipped where their previous size predicts more than ${PEER_LIMIT_S} s a call, "implausible" where a call took less time than ` +
          `${(ceiling / 1e12).toPrecision(2)} TFLOP/s would (this adapter's ceiling: it cannot have run); ${notes.join(' | ')}. ` +
          `sg_chunk's chunk of columns: ${chunkColumns({ b: 8192, m: 8192, d: D, symmetric: true })} at B ≥ 1024 (G ≤ 2·B·d floats). ` +
          `scratch MiB: the pool's peak live bytes over one call of the chosen variant minus what was live before it (inputs, outputs): ` +
          `O(B·d), against the B×B logits' B×B MiB, which no variant allocates.`,
        columns: [...new Set(rows.flatMap((r) => Object.keys(r)))],
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

/**
 * The peer's time over ours at this size (both wall time per call: `ours` must be on that clock),
 * or why it was not measured. `ceiling`: FLOP/s no call can honestly reach here (plausibleFlopsCeiling).
 */
export async function peerRatio(
  peer: Peer,
  B: number,
  backward: boolean,
  ours: Timed,
  last: Map<string, { seconds: number; flops: number }>,
  maxBinding: number,
  ceiling: number,
): Promise<number | string> {
  // Refused before any work: a ratio to a time of another clock would be meaningless.
  speedup(ours, wall(1));
  if (!(await peer.available()).ok) return 'n/a';
  if (!peer.infoNCE) return 'no such op';
  // The peers build the B×B logits as one tensor: past the binding limit their kernels fail
  // validation (thousands of lines of Dawn errors) and time nothing.
  if (peer.onGpu && 4 * B * B > maxBinding)
    return `cannot run: its B×B logits (${(4 * B * B) / 2 ** 20} MiB) exceed the ${maxBinding / 2 ** 20} MiB storage binding limit`;
  const key = `${peer.name} ${backward}`;
  const flops = FLOPS.infoNCE(B, B, D, backward);
  const prev = last.get(key);
  if (prev) {
    const predicted = (prev.seconds * flops) / prev.flops;
    if (predicted > PEER_LIMIT_S) return `skipped (~${predicted.toFixed(0)} s a call)`;
  }
  const op = await peer.infoNCE(B, B, D, backward);
  try {
    const seconds = op.selfTimed
      ? (await op.selfTimed({ maxTime: 1, minSamples: 3 })).median
      : (await timeAsync(() => op.run(), { maxTime: 1, minSamples: 3 })).median;
    // Faster than this machine can multiply: the peer did not do the work (seen: jax-js at B = 8192).
    if (flops / seconds > ceiling) return `implausible (${(seconds * 1e3).toFixed(1)} ms a call)`;
    last.set(key, { seconds, flops });
    return speedup(ours, wall(seconds));
  } finally {
    await op.dispose();
  }
}
