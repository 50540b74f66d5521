import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attentionReference,
  crossEntropyReference,
  dropoutReference,
  embeddingReference,
  freshSeed,
  fusedQKVLayout,
  geluErfReference,
  quickGeluReference,
  geluReference,
  infoNCEReference,
  logSoftmaxReference,
  matmulReference,
  normalizeReference,
  relativeError,
  rng,
  softmaxReference,
} from '@mode/kernels';
import * as ag from '../src/index.js';
import type { Tensor } from '../src/index.js';
import * as R from './reference.js';
import { arr, type Arr } from './reference.js';

// Every op: forward against a CPU float64 reference, and the gradient of L = Σ w·op(inputs)
// (w random) against central finite differences of that reference in float64.
const seed = freshSeed();
console.log(`gradcheck: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let engine: ag.Engine;
beforeAll(async () => {
  engine = await ag.init();
});
afterAll(async () => engine?.destroy());

interface Input {
  shape: number[];
  lo?: number;
  hi?: number;
  /** Keep values at least this far from these points (kinks of relu, clamp, max ties). */
  avoid?: number[];
  grad?: boolean;
}

interface Case {
  name: string;
  inputs: Input[];
  gpu: (ts: Tensor[]) => Tensor;
  cpu: (xs: Arr[]) => Arr;
  fwdTol?: number;
  gradTol?: number;
}

function sample(inp: Input): Float32Array {
  const [lo, hi] = [inp.lo ?? -1, inp.hi ?? 1];
  return Float32Array.from({ length: R.numel(inp.shape) }, () => {
    for (;;) {
      const v = lo + (hi - lo) * random();
      if (!(inp.avoid ?? []).some((a) => Math.abs(v - a) < 0.05)) return v;
    }
  });
}

async function check(c: Case) {
  const data = c.inputs.map(sample);
  const ts = c.inputs.map((inp, i) => ag.tensor(data[i]!, inp.shape, { requiresGrad: inp.grad !== false }));
  const out = c.gpu(ts);
  const xs = data.map((d, i) => arr(d, c.inputs[i]!.shape));
  const want = c.cpu(xs);
  expect(out.shape).toEqual(want.s);
  const got = await out.read();
  expect(relativeError(got, want.d), `${c.name} forward`).toBeLessThanOrEqual(c.fwdTol ?? 1e-5);

  const w = Float32Array.from({ length: out.size }, () => random() * 2 - 1);
  const loss = ag.sum(ag.mul(out, ag.tensor(w, [...out.shape])));
  loss.backward();
  expect(out.disposed, 'backward disposes the intermediates it walked').toBe(true);
  for (let i = 0; i < ts.length; i++) {
    if (c.inputs[i]!.grad === false) {
      expect(ts[i]!.grad).toBeNull();
      continue;
    }
    const num = R.numericGrad(c.cpu, xs, Float64Array.from(w), i);
    const g = await ts[i]!.grad!.read();
    expect(relativeError(g, num), `${c.name} gradient of input ${i}`).toBeLessThanOrEqual(c.gradTol ?? 2e-3);
  }
  ts.forEach((t) => {
    t.grad?.dispose();
    t.dispose();
  });
}

const add = (x: number, y: number) => x + y;
// Batch item 1 attends to its first 4 keys only.
const QKV_MASK = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
const cases: Case[] = [
  // elementwise with broadcasting
  { name: 'add 3×4 + 4', inputs: [{ shape: [3, 4] }, { shape: [4] }], gpu: ([a, b]) => ag.add(a!, b!), cpu: ([a, b]) => R.binary(add, a!, b!) },
  { name: 'add [2,3,1] + [1,4]', inputs: [{ shape: [2, 3, 1] }, { shape: [1, 4] }], gpu: ([a, b]) => a!.add(b!), cpu: ([a, b]) => R.binary(add, a!, b!) },
  {
    name: 'sub 5×1 − 5×3',
    inputs: [{ shape: [5, 1] }, { shape: [5, 3] }],
    gpu: ([a, b]) => ag.sub(a!, b!),
    cpu: ([a, b]) => R.binary((x, y) => x - y, a!, b!),
  },
  {
    name: 'mul 4×3 · scalar tensor []',
    inputs: [{ shape: [4, 3] }, { shape: [] }],
    gpu: ([a, b]) => ag.mul(a!, b!),
    cpu: ([a, b]) => R.binary((x, y) => x * y, a!, b!),
  },
  {
    name: 'mul same shape 7',
    inputs: [{ shape: [7] }, { shape: [7], grad: false }],
    gpu: ([a, b]) => ag.mul(a!, b!),
    cpu: ([a, b]) => R.binary((x, y) => x * y, a!, b!),
  },
  {
    name: 'div 2×3 / 3',
    inputs: [{ shape: [2, 3] }, { shape: [3], lo: 0.5, hi: 2 }],
    gpu: ([a, b]) => ag.div(a!, b!),
    cpu: ([a, b]) => R.binary((x, y) => x / y, a!, b!),
  },
  {
    name: 'scalar ops: (x·3 + 1 − 2) / 4, neg',
    inputs: [{ shape: [6] }],
    gpu: ([a]) => ag.neg(a!.mul(3).add(1).sub(2).div(4)),
    cpu: ([a]) => R.map((x) => -((x * 3 + 1 - 2) / 4), a!),
  },
  // unary
  { name: 'exp', inputs: [{ shape: [3, 5], lo: -2, hi: 2 }], gpu: ([a]) => ag.exp(a!), cpu: ([a]) => R.map(Math.exp, a!) },
  { name: 'log', inputs: [{ shape: [9], lo: 0.2, hi: 3 }], gpu: ([a]) => ag.log(a!), cpu: ([a]) => R.map(Math.log, a!) },
  { name: 'sqrt', inputs: [{ shape: [9], lo: 0.2, hi: 3 }], gpu: ([a]) => ag.sqrt(a!), cpu: ([a]) => R.map(Math.sqrt, a!) },
  { name: 'relu', inputs: [{ shape: [4, 4], avoid: [0] }], gpu: ([a]) => ag.relu(a!), cpu: ([a]) => R.map((x) => Math.max(x, 0), a!) },
  { name: 'gelu', inputs: [{ shape: [11], lo: -3, hi: 3 }], gpu: ([a]) => ag.gelu(a!), cpu: ([a]) => R.map(geluReference, a!) },
  {
    name: 'gelu exact (erf), approximate none',
    inputs: [{ shape: [13], lo: -4, hi: 4 }],
    gpu: ([a]) => a!.gelu({ approximate: 'none' }),
    cpu: ([a]) => R.map(geluErfReference, a!),
  },
  { name: 'tanh', inputs: [{ shape: [11], lo: -3, hi: 3 }], gpu: ([a]) => ag.tanh(a!), cpu: ([a]) => R.map(Math.tanh, a!) },
  { name: 'quick gelu, x·σ(1.702x)', inputs: [{ shape: [13], lo: -5, hi: 5 }], gpu: ([a]) => ag.quickGelu(a!), cpu: ([a]) => R.map(quickGeluReference, a!) },
  { name: 'sigmoid', inputs: [{ shape: [11], lo: -4, hi: 4 }], gpu: ([a]) => ag.sigmoid(a!), cpu: ([a]) => R.map((x) => 1 / (1 + Math.exp(-x)), a!) },
  {
    name: 'clamp',
    inputs: [{ shape: [13], avoid: [-0.5, 0.5] }],
    gpu: ([a]) => ag.clamp(a!, -0.5, 0.5),
    cpu: ([a]) => R.map((x) => Math.min(Math.max(x, -0.5), 0.5), a!),
  },
  // reductions
  { name: 'sum all', inputs: [{ shape: [3, 4, 5] }], gpu: ([a]) => ag.sum(a!), cpu: ([a]) => R.reduceAxes('sum', a!, [0, 1, 2]) },
  { name: 'sum axes [0, 2] keepDims', inputs: [{ shape: [3, 4, 5] }], gpu: ([a]) => a!.sum([0, 2], true), cpu: ([a]) => R.reduceAxes('sum', a!, [0, 2], true) },
  { name: 'mean axis 1', inputs: [{ shape: [3, 70, 2] }], gpu: ([a]) => ag.mean(a!, 1), cpu: ([a]) => R.reduceAxes('mean', a!, [1]) },
  { name: 'mean axis -1 of 1-D', inputs: [{ shape: [5] }], gpu: ([a]) => ag.mean(a!, -1), cpu: ([a]) => R.reduceAxes('mean', a!, [0]) },
  { name: 'max axis 1', inputs: [{ shape: [4, 6] }], gpu: ([a]) => ag.max(a!, 1), cpu: ([a]) => R.reduceAxes('max', a!, [1]) },
  {
    name: 'max axes [0, 1] keepDims',
    inputs: [{ shape: [3, 5, 2] }],
    gpu: ([a]) => ag.max(a!, [0, 1], true),
    cpu: ([a]) => R.reduceAxes('max', a!, [0, 1], true),
  },
  // shape
  { name: 'reshape with −1', inputs: [{ shape: [2, 6] }], gpu: ([a]) => ag.exp(a!.reshape([3, -1])), cpu: ([a]) => R.map(Math.exp, { d: a!.d, s: [3, 4] }) },
  { name: 'transpose 3×5', inputs: [{ shape: [3, 5] }], gpu: ([a]) => a!.transpose(), cpu: ([a]) => R.permute(a!, [1, 0]) },
  { name: 'permute [2,0,1] of 2×3×4', inputs: [{ shape: [2, 3, 4] }], gpu: ([a]) => a!.permute([2, 0, 1]), cpu: ([a]) => R.permute(a!, [2, 0, 1]) },
  { name: 'permute rank 5', inputs: [{ shape: [2, 3, 2, 2, 3] }], gpu: ([a]) => a!.permute([4, 2, 0, 3, 1]), cpu: ([a]) => R.permute(a!, [4, 2, 0, 3, 1]) },
  { name: 'slice axis 1 [1, 4)', inputs: [{ shape: [3, 6, 2] }], gpu: ([a]) => a!.slice(1, 1, 4), cpu: ([a]) => R.slice(a!, 1, 1, 4) },
  {
    name: 'concat axis 1',
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 4] }],
    gpu: (ts) => ag.concat(ts, 1),
    cpu: (xs) => R.concat(xs, 1),
  },
  {
    name: 'expand [3,1] → [2,3,4]',
    inputs: [{ shape: [3, 1] }],
    gpu: ([a]) => a!.expand([2, 3, 4]),
    cpu: ([a]) => R.binary(add, a!, arr(new Float64Array(24), [2, 3, 4])),
  },
  // matmul
  {
    name: 'matmul 5×7 · 7×3',
    inputs: [{ shape: [5, 7] }, { shape: [7, 3] }],
    gpu: ([a, b]) => ag.matmul(a!, b!),
    cpu: ([a, b]) => arr(matmulReference(a!.d, b!.d, { m: 5, n: 3, k: 7 }), [5, 3]),
  },
  {
    name: 'matmul [2,3,8] · 8×4 (rows flattened)',
    inputs: [{ shape: [2, 3, 8] }, { shape: [8, 4] }],
    gpu: ([a, b]) => a!.matmul(b!),
    cpu: ([a, b]) => arr(matmulReference(a!.d, b!.d, { m: 6, n: 4, k: 8 }), [2, 3, 4]),
  },
  {
    name: 'batched matmul [3,4,5] · [3,5,2]',
    inputs: [{ shape: [3, 4, 5] }, { shape: [3, 5, 2] }],
    gpu: ([a, b]) => ag.matmul(a!, b!),
    cpu: ([a, b]) => arr(matmulReference(a!.d, b!.d, { m: 4, n: 2, k: 5, batch: 3 }), [3, 4, 2]),
  },
  {
    name: 'linear x·Wᵀ + b, 6×8 → 4',
    inputs: [{ shape: [6, 8] }, { shape: [4, 8] }, { shape: [4] }],
    gpu: ([x, w, b]) => ag.linear(x!, w!, b!),
    cpu: ([x, w, b]) => arr(matmulReference(x!.d, w!.d, { m: 6, n: 4, k: 8, transB: true, biasValues: b!.d }), [6, 4]),
  },
  {
    // 36 rows × 8 → 12: shapes the subgroup Aᵀ·B kernel takes, where the bias gradient is fused into dW.
    name: 'linear x·Wᵀ + b, 36×8 → 12 (the bias gradient beside dW)',
    inputs: [{ shape: [36, 8] }, { shape: [12, 8] }, { shape: [12] }],
    gpu: ([x, w, b]) => ag.linear(x!, w!, b!),
    cpu: ([x, w, b]) => arr(matmulReference(x!.d, w!.d, { m: 36, n: 12, k: 8, transB: true, biasValues: b!.d }), [36, 12]),
  },
  {
    // x [2, 18, 8] → 12 hidden → 8: shapes the subgroup kernels take (fused GELU epilogues and bias gradients).
    name: 'mlp c_proj(GELU(c_fc(x))), exact GELU, [2,18,8] → 12 → 8',
    inputs: [{ shape: [2, 18, 8] }, { shape: [12, 8] }, { shape: [12] }, { shape: [8, 12] }, { shape: [8] }],
    gpu: ([x, w1, b1, w2, b2]) => ag.mlp(x!, w1!, b1!, w2!, b2!),
    cpu: ([x, w1, b1, w2, b2]) => {
      const h = matmulReference(x!.d, w1!.d, { m: 36, n: 12, k: 8, transB: true, biasValues: b1!.d }).map(geluErfReference);
      return arr(matmulReference(h, w2!.d, { m: 36, n: 8, k: 12, transB: true, biasValues: b2!.d }), [2, 18, 8]);
    },
  },
  {
    // The same shapes with QuickGELU (OpenAI's CLIPs) in the epilogues: its gate σ(1.702h) and gradient.
    name: 'mlp c_proj(QuickGELU(c_fc(x))), [2,18,8] → 12 → 8, with a residual',
    inputs: [{ shape: [2, 18, 8] }, { shape: [12, 8] }, { shape: [12] }, { shape: [8, 12] }, { shape: [8] }, { shape: [2, 18, 8] }],
    gpu: ([x, w1, b1, w2, b2, r]) => ag.mlp(x!, w1!, b1!, w2!, b2!, r!, 'quick'),
    cpu: ([x, w1, b1, w2, b2, r]) => {
      const h = matmulReference(x!.d, w1!.d, { m: 36, n: 12, k: 8, transB: true, biasValues: b1!.d }).map(quickGeluReference);
      return arr(
        matmulReference(h, w2!.d, { m: 36, n: 8, k: 12, transB: true, biasValues: b2!.d }).map((v, i) => v + r!.d[i]!),
        [2, 18, 8],
      );
    },
  },
  {
    name: 'mlp with QuickGELU, odd sizes (the unfused path), 5×3 → 6 → 2',
    inputs: [{ shape: [5, 3] }, { shape: [6, 3] }, { shape: [6] }, { shape: [2, 6] }, { shape: [2] }],
    gpu: ([x, w1, b1, w2, b2]) => ag.mlp(x!, w1!, b1!, w2!, b2!, undefined, 'quick'),
    cpu: ([x, w1, b1, w2, b2]) => {
      const h = matmulReference(x!.d, w1!.d, { m: 5, n: 6, k: 3, transB: true, biasValues: b1!.d }).map(quickGeluReference);
      return arr(matmulReference(h, w2!.d, { m: 5, n: 2, k: 6, transB: true, biasValues: b2!.d }), [5, 2]);
    },
  },
  {
    name: 'linear with a residual added in the epilogue: r + x·Wᵀ + b, 36×8 → 12',
    inputs: [{ shape: [36, 8] }, { shape: [12, 8] }, { shape: [12] }, { shape: [36, 12] }],
    gpu: ([x, w, b, r]) => ag.linear(x!, w!, b!, r!),
    cpu: ([x, w, b, r]) =>
      arr(
        matmulReference(x!.d, w!.d, { m: 36, n: 12, k: 8, transB: true, biasValues: b!.d }).map((v, i) => v + r!.d[i]!),
        [36, 12],
      ),
  },
  {
    name: 'mlp with a residual, [4,9,8] → 12 → 8',
    inputs: [{ shape: [4, 9, 8] }, { shape: [12, 8] }, { shape: [12] }, { shape: [8, 12] }, { shape: [8] }, { shape: [4, 9, 8] }],
    gpu: ([x, w1, b1, w2, b2, r]) => ag.mlp(x!, w1!, b1!, w2!, b2!, r!),
    cpu: ([x, w1, b1, w2, b2, r]) => {
      const h = matmulReference(x!.d, w1!.d, { m: 36, n: 12, k: 8, transB: true, biasValues: b1!.d }).map(geluErfReference);
      return arr(
        matmulReference(h, w2!.d, { m: 36, n: 8, k: 12, transB: true, biasValues: b2!.d }).map((v, i) => v + r!.d[i]!),
        [4, 9, 8],
      );
    },
  },
  {
    name: 'mlp with c_fc frozen and the input not requiring grad, 5×3 → 6 → 2',
    inputs: [{ shape: [5, 3], grad: false }, { shape: [6, 3], grad: false }, { shape: [6] }, { shape: [2, 6] }, { shape: [2] }],
    gpu: ([x, w1, b1, w2, b2]) => ag.mlp(x!, w1!, b1!, w2!, b2!),
    cpu: ([x, w1, b1, w2, b2]) => {
      const h = matmulReference(x!.d, w1!.d, { m: 5, n: 6, k: 3, transB: true, biasValues: b1!.d }).map(geluErfReference);
      return arr(matmulReference(h, w2!.d, { m: 5, n: 2, k: 6, transB: true, biasValues: b2!.d }), [5, 2]);
    },
  },
  {
    name: 'linear with the weight frozen: the bias gradient by a reduction',
    inputs: [{ shape: [9, 8] }, { shape: [4, 8], grad: false }, { shape: [4] }],
    gpu: ([x, w, b]) => ag.linear(x!, w!, b!),
    cpu: ([x, w, b]) => arr(matmulReference(x!.d, w!.d, { m: 9, n: 4, k: 8, transB: true, biasValues: b!.d }), [9, 4]),
  },
  {
    name: 'linear without bias, input not requiring grad',
    inputs: [{ shape: [5, 3], grad: false }, { shape: [2, 3] }],
    gpu: ([x, w]) => ag.linear(x!, w!),
    cpu: ([x, w]) => arr(matmulReference(x!.d, w!.d, { m: 5, n: 2, k: 3, transB: true }), [5, 2]),
  },
  // softmax family, losses
  {
    name: 'softmax 4×7',
    inputs: [{ shape: [4, 7], lo: -3, hi: 3 }],
    gpu: ([a]) => ag.softmax(a!),
    cpu: ([a]) => arr(softmaxReference(a!.d, { rows: 4, n: 7 }), [4, 7]),
  },
  {
    name: 'logSoftmax 2×3×5',
    inputs: [{ shape: [2, 3, 5], lo: -3, hi: 3 }],
    gpu: ([a]) => a!.logSoftmax(),
    cpu: ([a]) => arr(logSoftmaxReference(a!.d, { rows: 6, n: 5 }), [2, 3, 5]),
  },
  {
    name: 'crossEntropy 6×5 with an ignored row',
    inputs: [{ shape: [6, 5], lo: -3, hi: 3 }],
    gpu: ([a]) => ag.crossEntropy(a!, [0, 4, -100, 2, 2, 1]),
    cpu: ([a]) => {
      const rows = crossEntropyReference(a!.d, [0, 4, 0xffffffff, 2, 2, 1], { rows: 6, n: 5 });
      return arr([rows.reduce((s, v) => s + v, 0) / 5], []);
    },
  },
  {
    // IGNORE_INDEX stored as u32 (2³² − 100) is past every class: those rows are ignored, and the mean divides by 4.
    name: 'crossEntropy 6×5 with u32 tensor targets, two rows ignored (count on the GPU)',
    inputs: [{ shape: [6, 5], lo: -3, hi: 3 }],
    gpu: ([a]) => ag.crossEntropy(a!, ag.tensor(Uint32Array.from([0, ag.IGNORE_INDEX, 2, 2, ag.IGNORE_INDEX, 1]), [6], { dtype: 'u32' })),
    cpu: ([a]) => {
      const rows = crossEntropyReference(a!.d, [0, 0xffffffff, 2, 2, 0xffffffff, 1], { rows: 6, n: 5 });
      return arr([rows.reduce((s, v) => s + v, 0) / 4], []);
    },
  },
  {
    name: 'mseLoss',
    inputs: [{ shape: [3, 4] }, { shape: [3, 4] }],
    gpu: ([a, b]) => ag.mseLoss(a!, b!),
    cpu: ([a, b]) => arr([R.binary((x, y) => (x - y) ** 2, a!, b!).d.reduce((s, v) => s + v, 0) / 12], []),
  },
  // normalisation
  {
    name: 'layerNorm 5×9 with weight and bias',
    inputs: [{ shape: [5, 9], lo: -2, hi: 2 }, { shape: [9] }, { shape: [9] }],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    cpu: ([x, w, b]) =>
      R.binary(
        add,
        R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
        b!,
      ),
    gradTol: 5e-3,
  },
  // The fused path (weight and bias [C]: one dispatch forward, one backward) on more shapes, and
  // with some inputs not requiring grad (their gradients are then not computed: grad stays null).
  {
    name: 'layerNorm fused [2, 3, 7] (rows over two axes)',
    inputs: [{ shape: [2, 3, 7], lo: -2, hi: 2 }, { shape: [7] }, { shape: [7] }],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    cpu: ([x, w, b]) =>
      R.binary(
        add,
        R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
        b!,
      ),
    gradTol: 5e-3,
  },
  {
    name: 'layerNorm fused 11×5, x without grad (dweight, dbias only)',
    inputs: [{ shape: [11, 5], lo: -2, hi: 2, grad: false }, { shape: [5] }, { shape: [5] }],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    cpu: ([x, w, b]) =>
      R.binary(
        add,
        R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
        b!,
      ),
    gradTol: 5e-3,
  },
  {
    name: 'layerNorm fused 6×8, weight and bias without grad (dx only)',
    inputs: [
      { shape: [6, 8], lo: -2, hi: 2 },
      { shape: [8], grad: false },
      { shape: [8], grad: false },
    ],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    cpu: ([x, w, b]) =>
      R.binary(
        add,
        R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
        b!,
      ),
    gradTol: 5e-3,
  },
  {
    name: 'layerNorm fused 4×6, bias without grad',
    inputs: [{ shape: [4, 6], lo: -2, hi: 2 }, { shape: [6] }, { shape: [6], grad: false }],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    cpu: ([x, w, b]) =>
      R.binary(
        add,
        R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
        b!,
      ),
    gradTol: 5e-3,
  },
  {
    name: 'layerNorm 5×9 with weight only (plain path: normalize, then mul)',
    inputs: [{ shape: [5, 9], lo: -2, hi: 2 }, { shape: [9] }],
    gpu: ([x, w]) => ag.layerNorm(x!, w!),
    cpu: ([x, w]) => R.binary((p, q) => p * q, R.layerNorm(x!, 1e-5), w!),
    gradTol: 5e-3,
  },
  {
    name: 'batchNorm (training) 8×3 with weight and bias',
    inputs: [{ shape: [8, 3], lo: -2, hi: 2 }, { shape: [3] }, { shape: [3] }],
    gpu: ([x, w, b]) => ag.batchNorm(x!, { weight: w!, bias: b!, training: true }),
    cpu: ([x, w, b]) => {
      const n = normalizeReference(x!.d, { outer: 1, len: 8, inner: 3, mode: 'standardize', eps: 1e-5 });
      return R.binary(
        add,
        R.binary((p, q) => p * q, arr(n.y, [8, 3]), w!),
        b!,
      );
    },
    gradTol: 5e-3,
  },
  {
    name: 'l2Normalize axis 1 of 3×6×2',
    inputs: [{ shape: [3, 6, 2] }],
    gpu: ([x]) => ag.l2Normalize(x!, 1),
    cpu: ([x]) => arr(normalizeReference(x!.d, { outer: 3, len: 6, inner: 2, mode: 'l2', eps: 1e-12 }).y, [3, 6, 2]),
  },
  // embedding, dropout
  {
    name: 'embedding 10×4 table, repeated indices, shape [2, 3]',
    inputs: [{ shape: [10, 4] }],
    gpu: ([t]) => ag.embedding(t!, [3, 1, 3, 9, 0, 3], [2, 3]),
    cpu: ([t]) => arr(embeddingReference(t!.d, [3, 1, 3, 9, 0, 3], 4), [2, 3, 4]),
  },
  {
    name: 'dropout p=0.4 (seeded)',
    inputs: [{ shape: [50] }],
    gpu: ([x]) => ag.dropout(x!, 0.4, { seed: 77 }),
    cpu: ([x]) => arr(dropoutReference(x!.d, { n: 50, p: 0.4, seed: 77 }), [50]),
  },
  // fused kernels
  {
    name: 'attention 2 heads, lq=5, lk=7, d=8, causal',
    inputs: [{ shape: [2, 5, 8] }, { shape: [2, 7, 8] }, { shape: [2, 7, 8] }],
    gpu: ([q, k, v]) => ag.attention(q!, k!, v!, { causal: true }),
    cpu: ([q, k, v]) => arr(attentionReference(q!.d, k!.d, v!.d, { bh: 2, lq: 5, lk: 7, d: 8, causal: true }).o, [2, 5, 8]),
  },
  // qkv [B = 2, L = 5, 3 · 3 heads · d = 4]: the gradient of qkv from both backward kernels into one buffer.
  {
    name: 'attentionQKV 2 batch items × 3 heads, L=5, d=4, causal',
    inputs: [{ shape: [2, 5, 36] }],
    gpu: ([x]) => ag.attentionQKV(x!, 3, { causal: true }),
    cpu: ([x]) => arr(attentionReference(x!.d, x!.d, x!.d, { bh: 6, heads: 3, lq: 5, d: 4, causal: true, layout: fusedQKVLayout(3, 5, 4) }).o, [2, 5, 12]),
  },
  {
    name: 'attentionQKV 2 batch items × 2 heads, L=6, d=3, key-padding mask',
    inputs: [{ shape: [2, 6, 18] }],
    gpu: ([x]) => ag.attentionQKV(x!, 2, { mask: ag.tensor(QKV_MASK, [2, 6], { dtype: 'u32' }), scale: 0.7 }),
    cpu: ([x]) =>
      arr(
        attentionReference(x!.d, x!.d, x!.d, { bh: 4, heads: 2, lq: 6, d: 3, scale: 0.7, maskValues: QKV_MASK, layout: fusedQKVLayout(2, 6, 3) }).o,
        [2, 6, 6],
      ),
  },
  {
    name: 'infoNCE symmetric 6×8 with logit scale',
    inputs: [{ shape: [6, 8] }, { shape: [6, 8] }, { shape: [1], lo: 0.5, hi: 1.5 }],
    gpu: ([x, y, s]) => ag.infoNCE(x!, y!, s!),
    cpu: ([x, y, s]) => arr([infoNCEReference(x!.d, y!.d, s!.d[0]!, { b: 6, m: 6, d: 8, symmetric: true }).loss], []),
  },
  {
    name: 'infoNCE one-directional 4 queries × 7 keys',
    inputs: [{ shape: [4, 8] }, { shape: [7, 8] }, { shape: [], lo: 0.5, hi: 1.5 }],
    gpu: ([x, y, s]) => ag.infoNCE(x!, y!, s!, { symmetric: false, targets: [6, 0, 3, 3] }),
    cpu: ([x, y, s]) => arr([infoNCEReference(x!.d, y!.d, s!.d[0]!, { b: 4, m: 7, d: 8, symmetric: false }, [6, 0, 3, 3]).loss], []),
  },
];

describe('every op: forward vs float64 reference, gradient vs central differences', () => {
  for (const c of cases) it(c.name, () => check(c));
});

describe('layerNorm with weight and bias is fused', () => {
  it('one normalize dispatch forward and one normalize_bwd backward (no mul, add or reduce)', async () => {
    const gpu = engine.gpu;
    const [x, w, b] = [ag.randn([37, 23], { requiresGrad: true }), ag.randn([23], { requiresGrad: true }), ag.randn([23], { requiresGrad: true })];
    const g = ag.randn([37, 23]);
    await engine.sync();
    const counted = async (fn: () => void) => {
      const before = new Map(gpu.dispatchCounts);
      fn();
      await engine.sync();
      return Object.fromEntries([...gpu.dispatchCounts].filter(([k, n]) => n !== (before.get(k) ?? 0)).map(([k, n]) => [k, n - (before.get(k) ?? 0)]));
    };
    let y: Tensor | undefined;
    expect(await counted(() => (y = ag.layerNorm(x, w, b)))).toEqual({ normalize: 1 });
    expect(await counted(() => y!.backward(g))).toEqual({ normalize_bwd: 1 });
    expect([x.grad, w.grad, b.grad].every((t) => t !== null)).toBe(true);
    [x, w, b].forEach((t) => {
      t.grad?.dispose();
      t.dispose();
    });
    g.dispose();
  });
});

describe('negative control', () => {
  it('a wrong backward (sub with a flipped sign) fails the finite-difference check', async () => {
    const wrong: Case = {
      name: 'add checked against a reference of sub',
      inputs: [{ shape: [4] }, { shape: [4] }],
      gpu: ([a, b]) => ag.add(a!, b!),
      cpu: ([a, b]) => R.binary((x, y) => x - y, a!, b!),
      fwdTol: Infinity,
    };
    await expect(check(wrong)).rejects.toThrow(/gradient of input 1/);
  });
});
