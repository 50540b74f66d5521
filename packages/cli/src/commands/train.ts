import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { withDevice } from '../device.js';
import { progress } from '../progress.js';
import { int, parseSources } from '../sources.js';

interface TrainFlags {
  preset: string;
  declip: string;
  steps: string;
  batch: string;
  accumulate: string;
  accumFreq?: string;
  seed: string;
  lr: string;
  warmup?: string;
  out: string;
  resume?: boolean;
  data?: string[];
  dataDir?: string;
  checkpointEvery: string;
  queue: string;
  workers?: string;
  injectNan?: string;
  progress: boolean;
  seedModel?: string;
  initWeights?: string;
  expert?: string;
  assignment?: string;
  stopAt?: string;
  profileStep?: string;
  cropScale?: string;
  skipBad?: boolean;
  tokenizer?: string;
}

/** `--crop-scale 0.9,1`: RandomResizedCrop's area range. */
function parseCropScale(s: string): [number, number] {
  const v = s.split(',').map(Number);
  if (v.length !== 2 || !v.every((x) => x > 0 && x <= 1) || v[0]! > v[1]!)
    throw Object.assign(new Error(`--crop-scale ${s}: expected MIN,MAX with 0 < MIN ≤ MAX ≤ 1 (OpenCLIP's default: 0.9,1)`), { userFacing: true });
  return [v[0]!, v[1]!];
}

export function register(program: Command): void {
  program
    .command('train')
    .description('Train a CLIP model (DeCLIP losses optional) on the prepared data or your shards; resumable bit for bit')
    .option('--preset <name>', 'model preset: tiny, small, medium, b32', 'small')
    .option('--declip <terms>', 'DeCLIP losses: any of mv,ssl,mlm,nn (or none)', 'none')
    .option('--steps <n>', 'optimiser steps', '1000')
    .option('--batch <n>', 'pairs per step', '64')
    .option(
      '--accumulate <n>',
      "micro-batches per step: OpenCLIP's --accum-freq (every micro-batch's features first without gradients, then each again with them, so the contrastive batch is the whole --batch)",
      '1',
    )
    .option('--accum-freq <n>', 'the same as --accumulate (OpenCLIP’s name)')
    .option('--seed <n>', 'seed of the initialisation, the data order and the augmentations', '0')
    .option('--lr <x>', 'peak learning rate (linear warm-up, then cosine)', '5e-4')
    .option('--warmup <n>', 'warm-up steps (default: a tenth of the run, at most 500)')
    .option('--out <dir>', 'run folder: checkpoint/, metrics.jsonl, final.safetensors (git ignores out/)', 'out/train')
    .option('--resume', 'continue the run in --out from its checkpoint (the same flags)')
    .option('--stop-at <step>', 'end at this step though the schedule runs to --steps (a seed model for experts to continue)')
    .option('--seed-model <dir>', "continue another run's checkpoint (its weights, optimizer, step; the schedule goes on to --steps, default the seed's)")
    .option(
      '--init-weights <model>',
      "start from a model's weights only (a model file or an OpenCLIP hub folder): its architecture, a fresh optimiser and schedule",
    )
    .option('--expert <k>', 'train data expert k: its pairs and 2% out-of-cluster sample from --assignment (with --seed-model)')
    .option('--assignment <dir>', 'written by mode cluster (assignment.json, assign-*.jsonl)')
    .option(
      '--data <dirs...>',
      'what to train on: data set folders, folders of .tar shards, brace patterns or globs (img2dataset output), DIR[:SPLIT][@FRACTION], several joined with :: (default: emoji, clipart, 5% of fashion-mnist and mnist)',
    )
    .option('--data-dir <dir>', 'where `mode data prepare` wrote (tokenizer, synonyms, the default mix)')
    .option(
      '--tokenizer <file>',
      "a tokenizer file (mode data tokenizer: BPE trained on your captions; or OpenAI's bpe_simple_vocab_16e6.txt.gz); default: the data folder's. The model records it",
    )
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--queue <n>', 'NN supervision: queue length', '4096')
    .option(
      '--workers <n>',
      'loader worker threads, each decoding whole batches (default: one per core on a GPU; 1 on a CPU adapter such as lavapipe, whose shaders need the cores)',
    )
    .option('--crop-scale <min,max>', "OpenCLIP's training crop: RandomResizedCrop's area range, bicubic (runs without DeCLIP views; default 0.9,1)")
    .option(
      '--skip-bad',
      'skip bad samples (corrupt images, missing captions, truncated shards), counted by kind in metrics.jsonl and the summary, instead of stopping',
    )
    .option('--profile-step <n>', 'profile this step: OUT/profile.json (time by kernel) and OUT/trace.json (Chrome trace)')
    .option('--inject-nan <step:term>', 'testing the guard: make a loss term NaN at a step')
    .option('--no-progress', 'no progress bar')
    .action(async (flags: TrainFlags, cmd: Command) => {
      const t = await import('@mode/trainer');
      const ag = await import('@mode/autograd');
      const userError = (m: string) => Object.assign(new Error(m), { userFacing: true });
      // Continuing a seed: its schedule length and data, unless given.
      const seedState = flags.seedModel ? t.findCheckpoint(flags.seedModel) : null;
      if (flags.seedModel && !seedState)
        throw userError(`--seed-model ${flags.seedModel}: no checkpoint there. Fix: train the seed model first (mode train --out ${flags.seedModel})`);
      const seed = seedState ? t.readCheckpointState(seedState) : null;
      const steps = seed && cmd.getOptionValueSource('steps') === 'default' ? seed.flags.steps : int('steps', flags.steps);
      if ((flags.expert === undefined) !== (flags.assignment === undefined)) throw userError('--expert and --assignment go together');
      if (flags.expert !== undefined && !flags.seedModel && !flags.initWeights)
        throw userError('--expert needs --seed-model (the seed run the expert continues) or --init-weights (a pretrained seed it fine-tunes)');
      let include: { keys: ReadonlySet<string>; subset: string } | undefined;
      if (flags.expert !== undefined) {
        const c = await import('@mode/clusterer');
        const k = int('expert', flags.expert);
        include = { keys: c.expertKeys(flags.assignment!, k), subset: `expert ${k} of ${flags.assignment}` };
      }
      const data = flags.data ? parseSources(flags.data) : seed ? parseSources(seed.flags.data) : undefined;
      const runSeed = flags.expert !== undefined && cmd.getOptionValueSource('seed') === 'default' ? 1 + int('expert', flags.expert) : int('seed', flags.seed);
      const declip = t.parseDeclip(flags.declip);
      const abort = new AbortController();
      const onSignal = (sig: string) => {
        if (abort.signal.aborted) process.exit(130); // a second ^C: stop at once
        console.error(`\nmode train: ${sig}: finishing this step, writing a checkpoint, then stopping (--resume continues)`);
        abort.abort();
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      const nan = flags.injectNan?.split(':');
      let shown = { loss: 0, pps: 0 };
      const bar = flags.progress
        ? progress({ unit: 'pairs', value: (done, total) => `step ${done}/${total}, loss ${shown.loss.toFixed(4)}, ${shown.pps.toFixed(1)} pairs/s` })
        : null;
      const every = Math.max(1, Math.round(steps / 20));
      await withDevice(program, {}, async (gpu) => {
        const engine = await ag.init(gpu);
        let pairs = 0;
        try {
          const r = await t.train({
            out: flags.out,
            preset: flags.preset,
            declip,
            steps,
            batchSize: int('batch', flags.batch),
            accumulate: flags.accumFreq !== undefined ? int('accum-freq', flags.accumFreq) : int('accumulate', flags.accumulate),
            seed: runSeed,
            lr: Number(flags.lr),
            ...(flags.warmup !== undefined ? { warmup: int('warmup', flags.warmup) } : {}),
            ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
            ...(flags.tokenizer ? { tokenizer: flags.tokenizer } : {}),
            ...(data ? { data } : {}),
            ...(flags.seedModel ? { from: flags.seedModel } : {}),
            ...(flags.initWeights ? { initWeights: flags.initWeights } : {}),
            ...(include ? { include } : {}),
            ...(flags.stopAt !== undefined ? { stopAt: int('stop-at', flags.stopAt) } : {}),
            ...(flags.profileStep !== undefined ? { profileStep: int('profile-step', flags.profileStep) } : {}),
            resume: !!flags.resume,
            checkpointEvery: int('checkpoint-every', flags.checkpointEvery),
            queueSize: int('queue', flags.queue),
            workers: flags.workers !== undefined ? int('workers', flags.workers) : gpu.report.isCpu ? 1 : availableParallelism(),
            ...(flags.cropScale !== undefined ? { cropScale: parseCropScale(flags.cropScale) } : {}),
            ...(flags.skipBad ? { skipBad: true } : {}),
            signal: abort.signal,
            ...(nan ? { injectNaN: { step: int('inject-nan', nan[0]!), term: nan[1] as 'clip' } } : {}),
            onStep: (s) => {
              pairs += s.pairsPerSecond * s.seconds;
              shown = { loss: s.loss, pps: s.pairsPerSecond };
              if (bar?.active) {
                if (pairs === s.pairsPerSecond * s.seconds) bar.start('train', s.steps);
                bar.update(s.step, pairs);
              } else if (s.step % every === 0 || s.step === s.steps) {
                const terms = Object.entries(s.terms)
                  .map(([k, v]) => `${k} ${v.toFixed(4)}`)
                  .join(', ');
                console.log(
                  `step ${s.step}/${s.steps}  loss ${s.loss.toFixed(4)} (${terms})  lr ${s.lr.toExponential(2)}  |g| ${s.gradNorm.toFixed(3)}  scale ${Math.exp(s.logitScale).toFixed(2)}  ${s.pairsPerSecond.toFixed(1)} pairs/s`,
                );
              }
            },
          });
          bar?.stop();
          if (r.interrupted) {
            if (r.bad?.count) console.log(r.bad.summary());
            console.log(`stopped at step ${r.step}/${steps}; checkpoint in ${flags.out}/checkpoint (continue with --resume)`);
            return 130;
          }
          if (r.bad) console.log(r.bad.summary());
          console.log(`trained ${r.step} steps: ${r.final}`);
        } finally {
          bar?.stop();
          await engine.destroy();
        }
      });
    });
}
