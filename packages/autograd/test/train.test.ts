import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSeed, rng } from '@mode/kernels';
import * as ag from '../src/index.js';

// The optimiser and backward together: a two-layer MLP learns XOR, and a small classifier learns
// a synthetic 8×8 "digits" set (noisy class templates) to a stated held-out accuracy.
const seed = freshSeed();
console.log(`train tests: seed ${seed} (replay with MODE_SEED=${seed})`);
let engine: ag.Engine;
beforeAll(async () => {
  engine = await ag.init();
  ag.manualSeed(seed);
});
afterAll(async () => engine?.destroy());

const argmaxRows = (v: Float32Array, n: number) =>
  Array.from({ length: v.length / n }, (_, r) => v.subarray(r * n, (r + 1) * n).reduce((b, x, j, a) => (x > a[b]! ? j : b), 0));

describe('training', () => {
  it('a two-layer MLP learns XOR (4/4 correct, loss < 0.05)', async () => {
    const x = ag.tensor([0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
    const y = [0, 1, 1, 0];
    const model = new ag.MLP([2, 16, 2], { activation: 'tanh' });
    const opt = new ag.AdamW(model, { lr: 0.05, weightDecay: 0 });
    let last = Infinity;
    for (let step = 0; step < 200; step++) {
      const loss = ag.crossEntropy(model.forward(x), y);
      if (step % 50 === 49) last = await loss.item();
      opt.zeroGrad();
      loss.backward();
      await opt.step();
    }
    const logits = ag.noGrad(() => model.forward(x));
    expect(argmaxRows(await logits.read(), 2)).toEqual(y);
    expect(last).toBeLessThan(0.05);
    [logits, x].forEach((t) => t.dispose());
    opt.dispose();
    model.dispose();
  });

  it('a classifier learns synthetic 8×8 digits to ≥ 90% held-out accuracy (chance 10%)', async () => {
    // Ten random 8×8 templates; samples are a template plus N(0, 1) noise per pixel (SNR well below 1 per pixel).
    const random = rng(seed ^ 0x5eed);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const templates = Array.from({ length: 10 }, () => Float32Array.from({ length: 64 }, () => (random() < 0.4 ? 1 : 0)));
    const make = (n: number) => {
      const labels = Array.from({ length: n }, (_, i) => i % 10);
      const data = new Float32Array(n * 64);
      labels.forEach((c, i) => templates[c]!.forEach((v, j) => (data[i * 64 + j] = v + gauss())));
      return { x: ag.tensor(data, [n, 64]), labels };
    };
    const train = make(640);
    const test = make(200);
    const model = new ag.MLP([64, 32, 10], { activation: 'gelu' });
    const opt = new ag.AdamW(model, { lr: 1e-2, weightDecay: 1e-4, maxGradNorm: 5 });
    const batch = 64;
    for (let epoch = 0; epoch < 6; epoch++) {
      for (let b = 0; b < 640 / batch; b++) {
        const loss = ag.tidy(() =>
          ag.crossEntropy(model.forward(train.x.slice(0, b * batch, (b + 1) * batch)), train.labels.slice(b * batch, (b + 1) * batch)),
        );
        opt.zeroGrad();
        loss.backward();
        await opt.step();
      }
    }
    const logits = ag.noGrad(() => model.eval().forward(test.x));
    const pred = argmaxRows(await logits.read(), 10);
    const accuracy = pred.filter((p, i) => p === test.labels[i]).length / pred.length;
    console.log(`synthetic digits: held-out accuracy ${(100 * accuracy).toFixed(1)}%`);
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
    [logits, train.x, test.x].forEach((t) => t.dispose());
    opt.dispose();
    model.dispose();
  });
});
