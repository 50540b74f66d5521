import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from '@mode/kernels';
import * as ag from '../src/index.js';

// The tensor and the tape: creation, views, detach, noGrad/tidy, accumulation, release.
let engine: ag.Engine;
beforeAll(async () => {
  engine = await ag.init();
});
afterAll(async () => engine?.destroy());
const live = async () => (await engine.sync(), engine.gpu.pool.stats().liveBytes);

describe('creation', () => {
  it('tensor, zeros, ones, full, u32, read', async () => {
    expect([...(await ag.tensor([1, 2, 3, 4], [2, 2]).read())]).toEqual([1, 2, 3, 4]);
    expect([...(await ag.zeros([3]).read())]).toEqual([0, 0, 0]);
    expect([...(await ag.full([2], 7).read())]).toEqual([7, 7]);
    expect(await ag.ones([]).item()).toBe(1);
    expect([...(await ag.tensor([5, 0, 2 ** 32 - 1], [3], { dtype: 'u32' }).readU32())]).toEqual([5, 0, 2 ** 32 - 1]);
  });
  it('randn is seeded: same seed same values, another seed others; mean ≈ 0, std ≈ 1', async () => {
    const [a, b, c] = [ag.randn([4000], { seed: 9 }), ag.randn([4000], { seed: 9 }), ag.randn([4000], { seed: 10 })];
    const [va, vb, vc] = [await a.read(), await b.read(), await c.read()];
    expect(va).toEqual(vb);
    expect(va).not.toEqual(vc);
    const mean = va.reduce((s, v) => s + v, 0) / va.length;
    const std = Math.sqrt(va.reduce((s, v) => s + (v - mean) ** 2, 0) / va.length);
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(std - 1)).toBeLessThan(0.05);
  });
  it('bad shapes and values give clear errors', () => {
    expect(() => ag.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2,2\]/);
    expect(() => ag.zeros([2, 0])).toThrow(/positive integer/);
    expect(() => ag.tensor([-1], [1], { dtype: 'u32' })).toThrow(/not a u32/);
    expect(() => ag.add(ag.zeros([2, 3]), ag.zeros([4]))).toThrow(/do not broadcast/);
    expect(() => ag.matmul(ag.zeros([2, 3]), ag.zeros([4, 2]))).toThrow(/inner dimensions 3 and 4/);
  });
});

describe('the tape', () => {
  it('reshape is a view (no copy); detach cuts the graph', async () => {
    const x = ag.tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
    const r = x.reshape([3, 2]);
    expect(r.storage).toBe(x.storage);
    const d = x.detach();
    expect(d.requiresGrad).toBe(false);
    const loss = ag.sum(ag.add(ag.mul(r, 2), ag.reshape(d, [3, 2])));
    loss.backward();
    expect([...(await x.grad!.read())]).toEqual([2, 2, 2, 2, 2, 2]);
  });
  it('gradients accumulate across backward() calls until zeroed', async () => {
    const w = ag.tensor([1, -2], [2], { requiresGrad: true });
    for (let i = 0; i < 3; i++) ag.sum(ag.mul(w, w)).backward();
    expect([...(await w.grad!.read())]).toEqual([6, -12]); // 3 × 2w
  });
  it('noGrad records nothing and disposes its temporaries', async () => {
    const w = ag.randn([64, 64], { requiresGrad: true });
    ag.noGrad(() => ag.matmul(w, w)).dispose(); // the matmul's first call makes its lasting no-bias placeholder
    const before = await live();
    const y = ag.noGrad(() => ag.relu(ag.matmul(ag.exp(w), w)));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    const with1 = await live();
    y.dispose();
    expect(with1 - before).toBe(16384); // only y (64·64·4 bytes) stayed
    expect(await live()).toBe(before);
  });
  it('backward frees the graph it walked; reading a freed intermediate says what to do; keep() keeps one', async () => {
    const x = ag.randn([8, 8], { requiresGrad: true });
    const before = await live();
    const h = ag.tanh(ag.matmul(x, x));
    const kept = ag.exp(h).keep();
    const loss = ag.mean(ag.mul(kept, h));
    loss.backward();
    await expect(h.read()).rejects.toThrow(/was disposed \(backward\(\) frees the graph.*keep\(\)/);
    expect((await kept.read()).length).toBe(64);
    kept.dispose();
    x.grad!.dispose();
    x.grad = null;
    expect(await live()).toBe(before);
    expect(() => ag.sum(h)).toThrow(/disposed/);
  });
  it('tidy keeps the returned tensor and the data a pending backward saved', async () => {
    const x = ag.randn([5], { requiresGrad: true });
    const loss = ag.tidy(() => ag.sum(ag.exp(ag.mul(x, 3))));
    loss.backward(); // exp's saved output and mul's saved inputs survived the scope
    const g = await x.grad!.read();
    const xv = await x.read();
    g.forEach((v, i) => expect(Math.abs(v / (3 * Math.exp(3 * xv[i]!)) - 1)).toBeLessThan(1e-5));
  });
  it('backward on a non-scalar needs its gradient; twice through a freed graph fails clearly', async () => {
    const x = ag.randn([3], { requiresGrad: true });
    const y = ag.mul(x, 2);
    expect(() => y.backward()).toThrow(/not a scalar/);
    y.backward(ag.ones([3]));
    expect([...(await x.grad!.read())]).toEqual([2, 2, 2]);
    expect(() => y.backward(ag.ones([3]))).toThrow(/already consumed its graph/);
  });
  it('a second loss over a trunk that a backward() consumed is refused, naming the ops; the summed loss gets the sum of the gradients', async () => {
    const w = ag.randn([4, 4], { requiresGrad: true, seed: 1 });
    const x = ag.randn([3, 4], { seed: 2 });
    const trunk = () => ag.tanh(ag.matmul(x, w));
    const head1 = (h: ag.Tensor) => ag.mean(ag.mul(h, h));
    const head2 = (h: ag.Tensor) => ag.sum(ag.sigmoid(h));
    const gradOf = async (loss: ag.Tensor) => {
      loss.backward();
      const g = await w.grad!.read();
      w.grad!.dispose();
      w.grad = null;
      return g;
    };
    // Each loss over its own trunk, then both over one trunk, summed before backward().
    const [g1, g2] = [await gradOf(head1(trunk())), await gradOf(head2(trunk()))];
    const shared = trunk();
    const both = await gradOf(ag.add(head1(shared), head2(shared)));
    expect(
      relativeError(
        both,
        g1.map((v, i) => v + g2[i]!),
      ),
    ).toBeLessThanOrEqual(1e-6);

    // Two losses over one trunk, backward() on each: the second is refused before it adds anything.
    const h = trunk();
    const [a, b] = [head1(h), head2(h)];
    a.backward();
    expect(() => b.backward()).toThrow(
      /backward\(\): sigmoid: an input \(tensor \[3, 4\] f32, made by tanh\) was consumed by an earlier backward\(\).*Sum the losses before backward\(\)/,
    );
    expect(relativeError(await w.grad!.read(), g1)).toBe(0);
    w.grad!.dispose();
    w.grad = null;
    // A kept intermediate is data after its backward: a new op over it and a parameter is refused too, unless detached.
    const kept = trunk().keep();
    head1(kept).backward();
    const v = ag.randn([3, 4], { requiresGrad: true });
    expect(() => ag.mul(kept, v)).toThrow(/^mul: an input \(tensor \[3, 4\] f32, made by tanh\) was consumed.*Sum the losses before backward\(\)/);
    expect(ag.mul(kept.detach(), v).requiresGrad).toBe(true);
    expect(ag.noGrad(() => ag.mul(kept, v)).requiresGrad).toBe(false);
    kept.dispose();
  });
  it('backward refuses saved data written in place since it was saved (set, assign, AdamW), naming the tensor and the writer', async () => {
    const w = ag.randn([3, 3], { requiresGrad: true });
    const x = ag.randn([2, 3]);
    const y = ag.sum(ag.matmul(x, w)); // matmul saves x and w
    x.set(new Float32Array(6));
    expect(() => y.backward()).toThrow(
      /tensor \[2, 3\] f32, saved by matmul for its backward, was modified in place by set after it was saved \(version 0, now 1\)/,
    );
    expect(w.grad).toBeNull();

    const z = ag.sum(ag.mul(w, w));
    ag.assign(w, ag.zeros([3, 3]));
    expect(() => z.backward()).toThrow(/tensor \[3, 3\] f32, saved by mul .* by assign/);

    const opt = new ag.AdamW([['w', w]], { lr: 0.1 });
    const pending = ag.sum(ag.matmul(x, w));
    ag.sum(ag.mul(w, 3)).backward();
    await opt.step();
    expect(() => pending.backward()).toThrow(/saved by matmul .* by AdamW step of w/);
    // Writing after backward() is what training does, and is fine.
    opt.zeroGrad();
    const fine = ag.sum(ag.matmul(x, w));
    fine.backward();
    await opt.step();
    expect(w.grad).not.toBeNull();
    opt.dispose();
  });
  it('infoNCE under noGrad runs the loss kernels only, not the gradient passes', async () => {
    const x = ag.randn([8, 16], { requiresGrad: true });
    const y = ag.randn([8, 16], { requiresGrad: true });
    const s = ag.tensor([1], [1], { requiresGrad: true });
    const kernelsOf = async (fn: () => ag.Tensor) => {
      await engine.sync();
      const prof = engine.gpu.profiler;
      prof.clear();
      prof.enabled = true;
      const loss = fn();
      const value = await loss.item();
      await engine.sync();
      prof.enabled = false;
      loss.dispose();
      return { value, kernels: prof.records.map((r) => r.kernel) };
    };
    const withGrad = await kernelsOf(() => ag.infoNCE(x, y, s)); // also tunes the shape first
    const evaluation = await kernelsOf(() => ag.noGrad(() => ag.infoNCE(x, y, s)));
    const gradient = (k: string) => /infonce_(grad|dy)/.test(k);
    expect(withGrad.kernels.some(gradient)).toBe(true);
    expect(evaluation.kernels.length).toBeGreaterThan(0);
    expect(evaluation.kernels.filter(gradient)).toEqual([]);
    expect(evaluation.value).toBe(withGrad.value);
  });
  it('an error inside a queued kernel surfaces at the next read, naming the op; the engine goes on', async () => {
    const q = ag.zeros([1, 4, 300]); // head dim 300: the attention kernels take at most 256
    const o = ag.attention(q, q, q);
    await expect(o.read()).rejects.toThrow(/^attention: .*head dim 300 > 256/);
    expect([...(await ag.tensor([1, 2]).read())]).toEqual([1, 2]);
  });
});

describe('nn modules and optimiser pieces', () => {
  it('parameter names follow OpenCLIP where the module is the same', () => {
    const mlp = new ag.MLP([4, 8, 4]);
    expect(Object.keys(mlp.stateDict())).toEqual(['c_fc.bias', 'c_fc.weight', 'c_proj.bias', 'c_proj.weight']);
    expect(Object.keys(new ag.MLP([4, 8, 8, 2]).stateDict())).toContain('layers.2.weight');
    expect(Object.keys(new ag.BatchNorm1d(3).stateDict())).toEqual(['bias', 'running_mean', 'running_var', 'weight']);
    expect(Object.keys(new ag.LayerNorm(3).stateDict())).toEqual(['bias', 'weight']);
  });
  it('AdamW decays only matrices (OpenCLIP mask), and train()/eval() switch dropout and batch norm', async () => {
    const mlp = new ag.MLP([3, 3, 2]);
    const opt = new ag.AdamW(mlp, { lr: 0.1, weightDecay: 0.5 });
    expect(opt.params.map((p) => [p.name, p.decay])).toEqual([
      ['c_fc.weight', true],
      ['c_fc.bias', false],
      ['c_proj.weight', true],
      ['c_proj.bias', false],
    ]);
    // With zero gradients, only decay moves the parameters: w·(1 − lr·wd), biases unchanged.
    for (const p of mlp.parameters()) p.grad = ag.zeros(p.shape).keep();
    const [w0, b0] = [await mlp.layers[0]!.weight.read(), await mlp.layers[0]!.bias!.read()];
    await opt.step();
    const [w1, b1] = [await mlp.layers[0]!.weight.read(), await mlp.layers[0]!.bias!.read()];
    w1.forEach((v, i) => expect(v).toBeCloseTo(w0[i]! * 0.95, 6));
    expect(b1).toEqual(b0);
    const bn = new ag.BatchNorm1d(2);
    const x = ag.tensor([1, 10, 3, 20, 5, 30, 7, 40], [4, 2]);
    bn.forward(x).dispose();
    // running_mean = 0.9·0 + 0.1·batch mean; running_var = 0.9·1 + 0.1·unbiased var
    const [rm, rv] = [await bn.runningMean.read(), await bn.runningVar.read()];
    expect(rm[0]).toBeCloseTo(0.4, 5);
    expect(rm[1]).toBeCloseTo(2.5, 5);
    expect(rv[0]).toBeCloseTo(0.9 + 0.1 * (20 / 3), 4);
    expect(rv[1]).toBeCloseTo(0.9 + 0.1 * (500 / 3), 3);
    bn.eval();
    const y = await bn.forward(x).read();
    expect(y[0]).toBeCloseTo((1 - rm[0]!) / Math.sqrt(rv[0]! + 1e-5), 4);
    const d = ag.dropout(x, 0.5, { training: false });
    expect(d).toBe(x);
  });
  it('clipGradNorm scales to the global norm', async () => {
    const a = ag.zeros([2], { requiresGrad: true });
    const b = ag.zeros([1], { requiresGrad: true });
    a.grad = ag.tensor([3, 0]).keep();
    b.grad = ag.tensor([4]).keep();
    const norm = ag.clipGradNorm([a, b], 1);
    expect(await norm.item()).toBeCloseTo(5, 5);
    expect((await a.grad!.read())[0]).toBeCloseTo(0.6, 5);
    expect((await b.grad!.read())[0]).toBeCloseTo(0.8, 5);
    // negative control: a max norm above the norm leaves gradients alone
    ag.clipGradNorm([a, b], 10);
    expect((await b.grad!.read())[0]).toBeCloseTo(0.8, 5);
  });
  it('cosine schedule: linear warm-up, then cosine to minLr', () => {
    const lr = ag.cosineSchedule({ lr: 1, warmup: 10, total: 110, minLr: 0.1 });
    expect(lr(0)).toBeCloseTo(0.1);
    expect(lr(9)).toBeCloseTo(1);
    expect(lr(10)).toBeCloseTo(1);
    expect(lr(60)).toBeCloseTo(0.55);
    expect(lr(110)).toBeCloseTo(0.1);
  });
});
