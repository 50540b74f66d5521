import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ag from '@mode/autograd';
import { freshSeed } from '@mode/kernels';
import { loadTokenizer, openMix, readTokenizer } from '@mode/data';
import { loadClip, OPENAI_TOKENIZER } from '@mode/models';
import {
  findCheckpoint,
  NonFiniteError,
  type DeclipTerm,
  readCheckpointState,
  recalls,
  retrieval,
  train,
  zeroShot,
  type StepReport,
  type TrainOptions,
} from '../src/index.js';
import { makeDataDir } from './fixture.js';

const seed = freshSeed() % 1000;
console.log(`trainer tests: seed ${seed} (replay with MODE_SEED=${seed})`);
let engine: ag.Engine;
let dataDir: string;
const runs = mkdtempSync(join(tmpdir(), 'mode-trainer-runs-'));
// A private autotune cache: runs compared bit for bit must pick the same kernel variants, so no
// other test process may rewrite the choices between them.
process.env.MODE_TUNE_CACHE = join(runs, 'autotune.json');

beforeAll(async () => {
  engine = await ag.init();
  dataDir = await makeDataDir();
});
afterAll(async () => {
  rmSync(runs, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  await engine?.destroy();
});

let runCount = 0;
const base = (o: Partial<TrainOptions> = {}): TrainOptions => ({
  out: join(runs, `run${runCount++}`),
  preset: 'tiny',
  steps: 12,
  batchSize: 16,
  seed,
  lr: 2e-3,
  warmup: 3,
  dataDir,
  data: [{ dir: join(dataDir, 'shapes') }, { dir: join(dataDir, 'colours'), fraction: 0.5 }],
  workers: 0,
  checkpointEvery: 4,
  ...o,
});
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepReport);

describe('training a tiny CLIP', () => {
  it('the loss falls over 50 steps; metrics, checkpoint and final weights are written', async () => {
    const o = base({ steps: 50, checkpointEvery: 25, profileStep: 3 });
    const seen: number[] = [];
    // A measured roof (as `mode train` sets from `mode bench peak`'s cache): the profile reads against it.
    engine.gpu.profiler.roof = { flops: 75e9, bandwidth: 17e9, dispatchSeconds: 3.7e-4, from: 'test' };
    const r = await train({ ...o, onStep: (s) => seen.push(s.step) }).finally(() => (engine.gpu.profiler.roof = null));
    expect(r.step).toBe(50);
    // One profiled step: time by kernel and a Chrome trace.
    const profile = JSON.parse(readFileSync(join(o.out, 'profile.json'), 'utf8'));
    expect(profile.step).toBe(3);
    const kernels: string[] = profile.kernels.map((k: { kernel: string }) => k.kernel);
    for (const family of [/^adamw$/, /^attention_fwd/, /^matmul_/, /^infonce_/])
      expect(
        kernels.some((k) => family.test(k)),
        String(family),
      ).toBe(true);
    expect(JSON.parse(readFileSync(join(o.out, 'trace.json'), 'utf8')).traceEvents.length).toBeGreaterThan(100);
    // % of peak per kernel, the dispatches' fixed cost, and the step on the roofline.
    expect(profile.roof).toMatchObject({ flops: 75e9, from: 'test' });
    expect(profile.overhead.dispatches).toBeGreaterThan(100);
    const mm = profile.kernels.find((k: { kernel: string }) => k.kernel.startsWith('matmul_'));
    expect(mm.peakFlops).toBeCloseTo((mm.gflops * 1e9) / 75e9, 9);
    expect(readFileSync(join(o.out, 'roofline.svg'), 'utf8')).toMatch(/<g class="point"><circle[^>]*><title>matmul_/);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const m = metrics(o.out);
    expect(m).toHaveLength(50);
    const first = m.slice(0, 5).reduce((s, x) => s + x.loss, 0) / 5;
    const lastFive = m.slice(-5).reduce((s, x) => s + x.loss, 0) / 5;
    console.log(`tiny CLIP, 50 steps: loss ${first.toFixed(3)} → ${lastFive.toFixed(3)}; ${m.at(-1)!.pairsPerSecond.toFixed(1)} pairs/s`);
    expect(lastFive).toBeLessThan(first * 0.8);
    for (const x of m) {
      expect(x.terms.clip).toBeCloseTo(x.loss, 5);
      expect(x.lr).toBeGreaterThan(0);
      expect(Number.isFinite(x.gradNorm)).toBe(true);
      expect(x.logitScale).toBeLessThanOrEqual(Math.log(100) + 1e-6);
    }
    expect(m[2]!.lr).toBeCloseTo(2e-3, 9); // warm-up reaches the peak at its last step
    expect(existsSync(r.final!)).toBe(true);
    expect(readCheckpointState(findCheckpoint(o.out)!).step).toBe(50);

    // The trained model tells the four colours apart zero-shot (chance: 25%) and retrieves held-out pairs.
    const model = loadClip(r.final!);
    const tokenizer = loadTokenizer(dataDir);
    const zs = await zeroShot(model, { dir: join(dataDir, 'colours'), split: 'test', tokenizer });
    const ret = await retrieval(model, { sources: [{ dir: join(dataDir, 'shapes') }], tokenizer });
    console.log(
      `zero-shot colours: top-1 ${zs.top1.toFixed(3)} (chance ${zs.chance}); retrieval of ${ret.count} held-out pairs: i→t R@1 ${ret.imageToText.r1.toFixed(3)}`,
    );
    expect(zs).toMatchObject({ classes: 4, templates: 2, count: 48 });
    expect(zs.top1).toBeGreaterThan(0.5);
    expect(zs.top5).toBe(1);
    expect(ret.count).toBeGreaterThan(3);
    expect(ret.imageToText.r10).toBeGreaterThanOrEqual(ret.imageToText.r1);
    model.dispose();
  });

  it('recall@k counts a query as a hit when its own key ranks within k (ties count against)', () => {
    // 3 unit queries: query 0's own key ranks first, query 1's second, query 2's ties with key 1.
    const q = Float32Array.from([1, 0, 0, 1, 0.6, 0.8]);
    const k = Float32Array.from([1, 0, 0.8, 0.6, 0.8, 0.6]);
    const r = recalls(q, k, 3, 2);
    expect(r.r1).toBeCloseTo(1 / 3, 9);
    expect(r.r5).toBe(1);
  });

  it('a run killed mid-epoch and resumed ends with bit-identical weights', async () => {
    const whole = base({ steps: 14 });
    await train(whole);
    const killedAt = 5 + (seed % 4); // 5…8: after checkpoint 4, before (or at, ahead of its writing) checkpoint 8
    const cut = base({ steps: 14, out: join(runs, 'killed') });
    // A kill loses everything but what is on disk: throwing out of the loop writes nothing more.
    await expect(
      train({
        ...cut,
        onStep: (s) => {
          if (s.step === killedAt) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    // onStep runs before the step's checkpoint is written: a kill at step 8 finds checkpoint 4.
    expect(readCheckpointState(findCheckpoint(cut.out)!).step).toBe(4);
    const r = await train({ ...cut, resume: true });
    expect(r.step).toBe(14);
    expect(sha(r.final!)).toBe(sha(join(whole.out, 'final.safetensors')));
    expect(metrics(cut.out).map((x) => x.loss)).toEqual(metrics(whole.out).map((x) => x.loss));
  });

  it('a data expert continues the seed: its weights, moments and cosine schedule, on its own pairs only', async () => {
    const whole = base({ steps: 12 });
    await train(whole);
    // The seed stops at 8 of a 12-step schedule; resumed to the end it is the uninterrupted run.
    const seedRun = base({ steps: 12, stopAt: 8 });
    const s = await train(seedRun);
    expect(s.step).toBe(8);
    expect(existsSync(s.final!)).toBe(true);
    const expertKeys = new Set(Array.from({ length: 192 }, (_, i) => `s${String(i).padStart(4, '0')}`).filter((_, i) => i % 4 === 0)); // the red blocks
    const expert = base({ steps: 12, from: seedRun.out, include: { keys: expertKeys, subset: 'red blocks' }, seed: seed + 1, preset: 'small', lr: 1 });
    const e = await train(expert);
    expect(e.step).toBe(12);
    const em = metrics(expert.out);
    const wm = metrics(whole.out);
    expect(em.map((m) => m.step)).toEqual([9, 10, 11, 12]);
    // The seed's preset and lr, not the ones passed; the schedule where the seed left it.
    expect(e.config.vision.width).toBe(64);
    expect(em.map((m) => m.lr)).toEqual(wm.slice(8).map((m) => m.lr));
    expect(readCheckpointState(findCheckpoint(expert.out)!).flags).toMatchObject({ from: { run: seedRun.out, step: 8 }, subset: 'red blocks' });
    const loader = openMix(expert.data!, { batchSize: 8, include: expertKeys, workers: 0, epochs: 1, imageSize: 32 });
    let seen = 0;
    for await (const b of loader)
      for (const k of b.keys) {
        expect(expertKeys.has(k)).toBe(true);
        seen++;
      }
    expect(seen).toBeGreaterThan(24);
    const resumed = await train({ ...seedRun, stopAt: undefined, resume: true });
    expect(sha(resumed.final!)).toBe(sha(join(whole.out, 'final.safetensors')));
    await expect(train(base({ steps: 8, from: seedRun.out }))).rejects.toThrow(/--steps 8: the run in .* is already at step 12/);
    await expect(train(base({ from: join(runs, 'nowhere') }))).rejects.toThrow(/no checkpoint there\. Fix: train the seed model first/);
    await expect(train(base({ steps: 14, from: seedRun.out, include: { keys: new Set(['s0000']), subset: 'one' } }))).rejects.toThrow(
      /the data holds \d+ records after filtering, fewer than one batch of 16/,
    );
  });

  it('refuses a resume whose flags change the schedule, naming them', async () => {
    const o = base({ steps: 4 });
    await train(o);
    await expect(train({ ...o, resume: true, steps: 8, batchSize: 8 })).rejects.toThrow(/--steps: 4 → 8[\s\S]*--batch-size: 16 → 8/);
    await expect(train(o)).rejects.toThrow(/already holds a run \(checkpoint at step 4\)\. Fix: pass --resume/);
    await expect(train({ ...base(), resume: true })).rejects.toThrow(/holds no checkpoint/);
  });

  it('stops on an injected NaN, naming the step and the loss term, and keeps the last good checkpoint', async () => {
    const o = base({ steps: 10, checkpointEvery: 2, injectNaN: { step: 5, term: 'clip' } });
    const err = await train(o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as Error).message).toMatch(/^step 5: the clip loss is NaN; the update was not applied\. The last good checkpoint is .*checkpoint/);
    expect(readCheckpointState(findCheckpoint(o.out)!).step).toBe(4);
    expect(metrics(o.out)).toHaveLength(5);
  });

  it("gradient accumulation is OpenCLIP's --accum-freq: 4 micro-batches give the whole batch's loss, gradient and update", async () => {
    const whole = base({ steps: 2, batchSize: 16, warmup: 1 });
    const four = base({ steps: 2, batchSize: 16, warmup: 1, accumulate: 4 });
    const [rw, r4] = [await train(whole), await train(four)];
    const [mw, m4] = [metrics(whole.out), metrics(four.out)];
    for (const i of [0, 1]) {
      // Every pass's CLIP loss is the whole batch's (cached features around the live micro-batch).
      expect(Math.abs(m4[i]!.loss - mw[i]!.loss) / mw[i]!.loss, `step ${i + 1} loss`).toBeLessThan(1e-5);
      // The gradient norm includes logit_scale's, which only one pass may give.
      expect(Math.abs(m4[i]!.gradNorm - mw[i]!.gradNorm) / mw[i]!.gradNorm, `step ${i + 1} |g|`).toBeLessThan(1e-4);
    }
    const [a, b] = [loadClip(rw.final!), loadClip(r4.final!)];
    for (const [[n, x], [, y]] of a.namedParameters().map((p, i) => [p, b.namedParameters()[i]!] as const)) {
      const [u, v] = [await x.read(), await y!.read()];
      expect(Math.max(...u.map((w, i) => Math.abs(w - v[i]!))), n).toBeLessThan(2e-5); // lr 2e-3: a sign flip of a step would move 4e-3
    }
    [a, b].forEach((m) => m.dispose());
    await expect(train(base({ batchSize: 16, accumulate: 3 }))).rejects.toThrow('--batch 16 is not a multiple of --accumulate 3');
    await expect(train(base({ batchSize: 16, accumulate: 16 }))).rejects.toThrow(/micro-batches of 1 pair/);
  });

  it('accumulation with multi-view and NN supervision: both terms the whole batch’s (every view and neighbour cached), the queue grown after the step', async () => {
    const o = { steps: 3, batchSize: 16, warmup: 1, declip: ['mv', 'nn'] as DeclipTerm[], queueSize: 40 };
    await train(base({ ...o, out: join(runs, 'mvnn-whole') }));
    await train(base({ ...o, out: join(runs, 'mvnn-two'), accumulate: 2 }));
    const [w, t] = [metrics(join(runs, 'mvnn-whole')), metrics(join(runs, 'mvnn-two'))];
    expect(Object.keys(t[1]!.terms).sort()).toEqual(['clip', 'nn']);
    for (const i of [0, 1, 2]) {
      for (const k of Object.keys(w[i]!.terms) as ('clip' | 'nn')[])
        expect(Math.abs(t[i]!.terms[k]! - w[i]!.terms[k]!) / w[i]!.terms[k]!, `step ${i + 1} ${k}`).toBeLessThan(1e-4);
      expect(Math.abs(t[i]!.gradNorm - w[i]!.gradNorm) / w[i]!.gradNorm, `step ${i + 1} |g|`).toBeLessThan(1e-3);
    }
  });

  it('accumulation with SimSiam and MLM: their per-sample means weighted by each micro-batch’s share', async () => {
    const whole = base({ steps: 1, batchSize: 16, declip: ['ssl', 'mlm'] });
    const two = base({ steps: 1, batchSize: 16, declip: ['ssl', 'mlm'], accumulate: 2 });
    await train(whole);
    await train(two);
    const [w, t] = [metrics(whole.out)[0]!, metrics(two.out)[0]!];
    expect(Math.abs(t.terms.clip! - w.terms.clip!) / w.terms.clip!).toBeLessThan(1e-5);
    expect(Number.isFinite(t.terms.ssl!) && Number.isFinite(t.terms.mlm!)).toBe(true);
  });

  it('DeCLIP: multi-view, SimSiam, MLM and NN terms train together, each reported', async () => {
    const o = base({ steps: 6, declip: ['mv', 'ssl', 'mlm', 'nn'], queueSize: 40 });
    await train(o);
    const m = metrics(o.out);
    expect(Object.keys(m[0]!.terms).sort()).toEqual(['clip', 'mlm', 'ssl']); // the NN queue is empty at step 0
    expect(Object.keys(m[1]!.terms).sort()).toEqual(['clip', 'mlm', 'nn', 'ssl']);
    for (const x of m.slice(1)) {
      const t = x.terms as Record<string, number>;
      expect(x.loss).toBeCloseTo(0.4 * t.clip! + 0.2 * t.ssl! + 0.2 * t.mlm! + 0.2 * t.nn!, 4);
      expect(t.ssl).toBeGreaterThanOrEqual(-1);
      expect(t.ssl).toBeLessThanOrEqual(1);
    }
  });
});

const MERGES = join(import.meta.dirname, '../../../../shared/data/bpe_simple_vocab_16e6.txt.gz');

describe('--init-weights', () => {
  it("starts from a model's weights only: its config, a fresh optimiser and schedule; a tokenizer other than the model's is refused", async () => {
    const a = await train(base({ steps: 3, checkpointEvery: 3 }));
    // At a learning rate of 0 nothing moves: the run's weights are the model's, bit for bit.
    const o = base({ steps: 2, lr: 0, warmup: 1, checkpointEvery: 2, initWeights: a.final!, preset: 'small' });
    const b = await train(o);
    expect(b.config).toEqual(a.config); // the model's architecture, not --preset small
    expect(existsSync(b.final!)).toBe(true);
    const [wa, wb] = [loadClip(a.final!), loadClip(b.final!)];
    for (const [[n, x], [, y]] of wa.namedParameters().map((p, i) => [p, wb.namedParameters()[i]!] as const))
      expect(await y!.read(), n).toEqual(await x.read());
    [wa, wb].forEach((m) => m.dispose());
    const state = readCheckpointState(findCheckpoint(o.out)!);
    expect([state.step, state.flags.initWeights]).toEqual([2, a.final]);
    expect(metrics(o.out).map((m) => m.step)).toEqual([1, 2]);
    if (existsSync(MERGES))
      await expect(train(base({ steps: 1, initWeights: a.final!, tokenizer: MERGES }))).rejects.toThrow(
        /--init-weights .* was trained with tokenizer .*, not f1cdebcac788ff96/,
      );
  });
});

it.skipIf(!existsSync(MERGES))(
  `trains with OpenAI's tokenizer: 49,408 ids, pooled at 49407, recorded in the model; MLM refused (needs ${MERGES})`,
  async () => {
    const o = base({ steps: 3, tokenizer: MERGES, checkpointEvery: 3 });
    const r = await train(o);
    expect(r.config.text).toMatchObject({ vocabSize: 49408, eotId: 49407 });
    expect(metrics(o.out).every((m) => Number.isFinite(m.loss))).toBe(true);
    const model = loadClip(r.final!);
    expect(model.tokenizer?.id).toBe(readTokenizer(MERGES).id);
    expect(OPENAI_TOKENIZER.id).toBe(readTokenizer(MERGES).id); // what an imported OpenCLIP model records
    expect(model.config.text.eotId).toBe(49407);
    model.dispose();
    await expect(train(base({ steps: 1, tokenizer: MERGES, declip: ['mlm'] }))).rejects.toThrow(/--declip mlm .* OpenAI's vocabulary .* has none/);
  },
);

it('the b32 preset (ViT-B/32 shapes) builds and runs a training step here, however slowly', async () => {
  const o = base({ preset: 'b32', steps: 1, batchSize: 2, checkpointEvery: 1 });
  const r = await train(o);
  const [m] = metrics(o.out);
  console.log(`b32: one step at batch 2 in ${m!.seconds.toFixed(1)} s (loss ${m!.loss.toFixed(3)})`);
  expect(r.config.vision).toMatchObject({ imageSize: 224, patchSize: 32, width: 768, layers: 12, heads: 12, pool: 'cls' });
  expect(Number.isFinite(m!.loss)).toBe(true);
  expect(existsSync(r.final!)).toBe(true);
}, 600_000);
