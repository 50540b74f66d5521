import { afterAll, beforeAll, expect, it } from 'vitest';
import * as ag from '../src/index.js';

// 1,000 training steps of a small MLP: the pool's live bytes after each step must not grow
// (every intermediate, gradient and uniform buffer goes back to the pool each step).
let engine: ag.Engine;
beforeAll(async () => {
  engine = await ag.init();
  ag.manualSeed(1);
});
afterAll(async () => engine?.destroy());

it('pool liveBytes stay flat over 1,000 MLP training steps', async () => {
  const x = ag.randn([32, 16], { seed: 2 });
  const labels = Array.from({ length: 32 }, (_, i) => i % 4);
  const model = new ag.MLP([16, 32, 32, 4], { activation: 'relu', dropout: 0.1 });
  const norm = new ag.LayerNorm(16);
  const opt = new ag.AdamW([...norm.namedParameters(), ...model.namedParameters()], { lr: 1e-3, maxGradNorm: 1 });
  const live: number[] = [];
  const first = engine.gpu.pool.stats();
  for (let step = 0; step < 1000; step++) {
    const loss = ag.crossEntropy(model.forward(norm.forward(x)), labels);
    opt.zeroGrad();
    loss.backward();
    await opt.step();
    live.push(engine.gpu.pool.stats().liveBytes);
  }
  const after = engine.gpu.pool.stats();
  console.log(
    `memory: liveBytes step 1 ${live[0]}, step 10 ${live[9]}, step 1000 ${live[999]}; peak ${after.peakLiveBytes}; allocations ${first.allocations} → ${after.allocations}`,
  );
  // After the first steps (optimiser moments appear at step 1) nothing more stays live.
  expect(Math.max(...live.slice(2))).toBe(live[2]);
  expect(Math.min(...live.slice(2))).toBe(live[2]);
  // Negative control: a leaked tensor per step is visible in liveBytes.
  const before = engine.gpu.pool.stats().liveBytes;
  const leaked = ag.noGrad(() => model.forward(x)).keep();
  await engine.sync();
  expect(engine.gpu.pool.stats().liveBytes).toBeGreaterThan(before);
  leaked.dispose();
  await engine.sync();
  expect(engine.gpu.pool.stats().liveBytes).toBe(before);
  opt.dispose();
  model.dispose();
  norm.dispose();
  x.dispose();
  await engine.sync();
});
