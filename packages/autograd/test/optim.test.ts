import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamwReference, freshSeed, randomArray, relativeError, rng } from '@mode/kernels';
import * as ag from '../src/index.js';

// AdamW's per-parameter bias correction, and its state saved and loaded so that a run resumes exactly.
const seed = freshSeed();
console.log(`optim tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let engine: ag.Engine;
const dir = mkdtempSync(join(tmpdir(), 'mode-optim-'));
beforeAll(async () => {
  engine = await ag.init();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await engine?.destroy();
});

describe('gradNorm', () => {
  it('is the global L2 norm (float64 reference) over gradients packed in runs, one larger than a run, and a parameter without a gradient', async () => {
    const sizes = [1, 37, 300, 5, 129, 64, 3];
    const params = sizes.map((n) => ag.tensor(randomArray(n, random), [n], { requiresGrad: true }));
    const frozen = ag.tensor(randomArray(9, random), [9], { requiresGrad: true });
    const grads = sizes.map((n) => randomArray(n, random, -2, 2));
    params.forEach((p, i) => (p.grad = ag.tensor(grads[i]!, [sizes[i]!]).keep()));
    const want = Math.sqrt(grads.reduce((s, g) => s + g.reduce((t, x) => t + x * x, 0), 0));
    // run 200: [1, 37] [300 alone, reduced in place] [5, 129, 64] [3]; the default packs all in one run.
    for (const run of [200, undefined]) {
      const norm = ag.gradNorm([...params, frozen], run);
      expect(Math.abs((await norm.item()) - want) / want).toBeLessThanOrEqual(1e-6);
      norm.dispose();
    }
    expect(() => ag.gradNorm(params, 0)).toThrow('gradNorm: run must be a positive integer, got 0');
    [...params, frozen].forEach((p) => {
      p.grad?.dispose();
      p.dispose();
    });
  });
});

describe('AdamW', () => {
  it('step(clipScale(‖g‖, max)) moves the parameters as clipGradNorm then step() does, without touching the gradients', async () => {
    const init = randomArray(300, random);
    const c = randomArray(300, random, -3, 3);
    const run = async (fused: boolean) => {
      const w = ag.tensor(init, [300], { requiresGrad: true });
      const opt = new ag.AdamW([['w', w]], { lr: 0.05, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2 });
      const norms: number[] = [];
      for (let step = 0; step < 3; step++) {
        opt.zeroGrad();
        ag.tidy(() => ag.sum(ag.mul(ag.mul(w, w), ag.tensor(c)))).backward();
        const before = await w.grad!.read();
        if (fused) {
          const norm = ag.gradNorm([w]);
          norms.push(await norm.item());
          norm.dispose();
          await opt.step(ag.clipScale(norms.at(-1)!, 1));
          expect([...(await w.grad!.read())]).toEqual([...before]);
        } else {
          const norm = ag.clipGradNorm([w], 1);
          norms.push(await norm.item());
          norm.dispose();
          await opt.step();
        }
      }
      const out = { w: await w.read(), norms };
      opt.dispose();
      w.dispose();
      return out;
    };
    const [fused, clipped] = [await run(true), await run(false)];
    expect(fused.norms.every((n) => n > 1)).toBe(true); // clipping is active at every step
    expect(relativeError(fused.w, clipped.w)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(fused.w, init)).toBeGreaterThan(1e-3);
  });

  it('bias-corrects each parameter from its own first step: one with a gradient only from step 3 moves as a fresh AdamW step 1 (float64 reference)', async () => {
    const a = ag.tensor(randomArray(5, random), [5], { requiresGrad: true });
    const b = ag.tensor(randomArray(7, random), [7], { requiresGrad: true });
    const [ca, cb] = [randomArray(5, random), randomArray(7, random)];
    const h = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
    const opt = new ag.AdamW(
      [
        ['a', a],
        ['b', b],
      ],
      { lr: h.lr, betas: [h.beta1, h.beta2], eps: h.eps, weightDecay: h.weightDecay, decay: () => true },
    );
    let before = new Float32Array(7);
    for (let step = 1; step <= 3; step++) {
      // d/db Σ b·cb = cb exactly, so the reference sees the very gradient the kernel does.
      const loss = ag.tidy(() => {
        const la = ag.sum(ag.mul(a, ag.tensor(ca)));
        return step < 3 ? la : ag.add(la, ag.sum(ag.mul(b, ag.tensor(cb))));
      });
      if (step === 3) before = await b.read();
      opt.zeroGrad();
      loss.backward();
      await opt.step();
    }
    const after = await b.read();
    const ref = adamwReference(cb, before, new Float64Array(7), new Float64Array(7), { ...h, step: 1 });
    const update = after.map((v, i) => v - before[i]!);
    expect(
      relativeError(
        update,
        ref.param.map((v, i) => v - before[i]!),
      ),
    ).toBeLessThanOrEqual(1e-5);
    expect(opt.params.map((p) => p.step)).toEqual([3, 1]);
    expect(opt.t).toBe(3);
    opt.dispose();
    [a, b].forEach((t) => t.dispose());
  });

  it('flat moments: interleaved decayed and exempt parameters, one without a gradient at step 2, and banks, against a float64 AdamW per parameter', async () => {
    const sizes = [6, 1, 13, 4, 9];
    const names = ['a.weight', 'a.bias', 'b.weight', 'ln.weight', 'c.weight'];
    const params = sizes.map((n, i) => ag.tensor(randomArray(n, random), i === 1 ? [n] : [1, n], { requiresGrad: true }));
    const h = { lr: 0.05, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 };
    const opt = new ag.AdamW(
      names.map((n, i) => [n, params[i]!] as [string, ag.Tensor]),
      // Banks of at most 20: [a.weight 6, b.weight 13] [c.weight 9, a.bias 1, ln.weight 4].
      { lr: h.lr, betas: [h.beta1, h.beta2], eps: h.eps, weightDecay: h.weightDecay, bank: 20 },
    );
    expect(opt.params.map((p) => [p.bank, p.at])).toEqual([
      [0, 0],
      [1, 9],
      [0, 6],
      [1, 10],
      [1, 0],
    ]);
    expect(opt.params.map((p) => p.decay)).toEqual([true, false, true, false, true]);
    const ref = await Promise.all(
      params.map(async (p) => ({ p: Float64Array.from(await p.read()), m: new Float64Array(p.size), v: new Float64Array(p.size), step: 0 })),
    );
    for (let step = 1; step <= 3; step++) {
      const cs = sizes.map((n) => randomArray(n, random));
      // b.weight sits out step 2: it keeps its moments and its own step count.
      const used = params.map((_, i) => !(step === 2 && i === 2));
      opt.zeroGrad();
      ag.tidy(() =>
        params
          .map((p, i) => ag.sum(ag.mul(ag.reshape(p, [p.size]), ag.tensor(cs[i]!))))
          .filter((_, i) => used[i])
          .reduce((a, b) => ag.add(a, b)),
      ).backward();
      await opt.step(0.7);
      ref.forEach((r, i) => {
        if (!used[i]) return;
        r.step++;
        const out = adamwReference(cs[i]!, r.p, r.m, r.v, { ...h, weightDecay: opt.params[i]!.decay ? h.weightDecay : 0, step: r.step, gradScale: 0.7 });
        [r.p, r.m, r.v] = [out.param, out.m, out.v];
      });
    }
    for (let i = 0; i < params.length; i++) expect(relativeError(await params[i]!.read(), ref[i]!.p)).toBeLessThanOrEqual(1e-5);
    expect(opt.params.map((p) => p.step)).toEqual([3, 3, 2, 3, 3]);
    const { tensors } = opt.stateDict();
    for (let i = 0; i < params.length; i++) {
      expect(relativeError(await tensors[`${names[i]}.exp_avg`]!.read(), ref[i]!.m)).toBeLessThanOrEqual(1e-5);
      expect(relativeError(await tensors[`${names[i]}.exp_avg_sq`]!.read(), ref[i]!.v)).toBeLessThanOrEqual(1e-5);
    }
    Object.values(tensors).forEach((t) => t.dispose());
    opt.dispose();
    params.forEach((t) => t.dispose());
  });

  it('state round trip: N steps, save model + optimiser, load into fresh objects, M more steps = N + M steps, bit for bit', async () => {
    /** An MLP plus a parameter that trains from step 2 and one from step 4: per-parameter steps differ at the save (after 3). */
    class Net extends ag.Module {
      readonly mlp: ag.MLP;
      readonly early: ag.Tensor;
      readonly late: ag.Tensor;
      constructor(s: number) {
        super();
        this.mlp = this.module('mlp', new ag.MLP([6, 12, 3], { activation: 'gelu', seed: s }));
        this.early = this.param('early', ag.randn([4], { seed: s + 1 }));
        this.late = this.param('late', ag.randn([4], { seed: s + 2 }));
      }
    }
    const x = ag.randn([16, 6], { seed: 3 });
    const labels = Array.from({ length: 16 }, (_, i) => (i * 7) % 3);
    const schedule = ag.cosineSchedule({ lr: 0.05, warmup: 2, total: 8 });
    const train = async (net: Net, opt: ag.AdamW, from: number, to: number) => {
      for (let step = from; step < to; step++) {
        opt.lr = schedule(step);
        const loss = ag.tidy(() => {
          let l = ag.crossEntropy(net.mlp.forward(x), labels);
          if (step >= 1) l = ag.add(l, ag.mean(ag.mul(net.early, net.early)));
          if (step >= 3) l = ag.add(l, ag.mean(ag.mul(net.late, net.late)));
          return l;
        });
        opt.zeroGrad();
        loss.backward();
        await opt.step();
      }
    };
    const bits = async (ts: Record<string, ag.Tensor>) =>
      Object.fromEntries(await Promise.all(Object.entries(ts).map(async ([n, t]) => [n, [...new Uint32Array((await t.read()).buffer)]])));
    const stateBits = async (net: Net, opt: ag.AdamW) => ({ params: await bits(net.stateDict()), moments: await bits(opt.stateDict().tensors) });
    const options = { lr: 0.05, weightDecay: 0.1, maxGradNorm: 1 };

    const whole = new Net(1);
    const wholeOpt = new ag.AdamW(whole, options);
    await train(whole, wholeOpt, 0, 6);

    const first = new Net(1);
    const firstOpt = new ag.AdamW(first, options);
    await train(first, firstOpt, 0, 3);
    expect(firstOpt.params.map((p) => [p.name, p.step])).toContainEqual(['early', 2]);
    expect(firstOpt.params.map((p) => [p.name, p.step])).toContainEqual(['late', 0]);
    await ag.saveModule(first, join(dir, 'model.safetensors'));
    await ag.saveOptimizer(firstOpt, join(dir, 'optimizer.safetensors'));
    const savedSteps = firstOpt.stateDict().state;
    first.dispose();
    firstOpt.dispose();

    // Other initial values and hyper-parameters: everything must come from the files.
    const resumed = new Net(99);
    const resumedOpt = new ag.AdamW(resumed, { lr: 1, betas: [0.5, 0.5], eps: 1e-3, weightDecay: 0 });
    ag.loadModule(resumed, join(dir, 'model.safetensors'));
    ag.loadOptimizer(resumedOpt, join(dir, 'optimizer.safetensors'));
    expect(resumedOpt.stateDict().state).toEqual(savedSteps);
    await train(resumed, resumedOpt, 3, 6);
    expect(await stateBits(resumed, resumedOpt)).toEqual(await stateBits(whole, wholeOpt));

    // Negative control: the model alone, with a fresh optimiser, does not resume the run.
    const modelOnly = new Net(99);
    const freshOpt = new ag.AdamW(modelOnly, options);
    ag.loadModule(modelOnly, join(dir, 'model.safetensors'));
    await train(modelOnly, freshOpt, 3, 6);
    expect((await stateBits(modelOnly, freshOpt)).params).not.toEqual((await stateBits(whole, wholeOpt)).params);

    // A file of another optimiser is refused, naming the file and the parameters.
    const other = new ag.AdamW([['w', ag.zeros([2], { requiresGrad: true })]]);
    expect(() => ag.loadOptimizer(other, join(dir, 'optimizer.safetensors'))).toThrow(
      /optimizer\.safetensors: .*parameters missing w; unexpected early, late, mlp\.c_fc\.weight/,
    );
    expect(() => ag.loadOptimizer(other, join(dir, 'model.safetensors'))).toThrow(/no "adamw" metadata/);
    for (const [n, o] of [
      [whole, wholeOpt],
      [resumed, resumedOpt],
      [modelOnly, freshOpt],
    ] as const) {
      n.dispose();
      o.dispose();
    }
    x.dispose();
  });
});
