import { adamw, reduce } from '@mode/kernels';
import type { Module } from './nn.js';
import { add, div, minimum, mul, sqrt, sum } from './ops.js';
import { full, noGrad, Tensor, zeros } from './tensor.js';

/**
 * OpenCLIP's rule for which parameters get weight decay: none for vectors and scalars, nor for
 * names containing bn, ln, bias or logit_scale.
 */
export function defaultDecay(name: string, p: Tensor): boolean {
  return !(p.ndim < 2 || /bn|ln|bias|logit_scale/.test(name));
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Which parameters decay (per-parameter mask), by name and tensor. Default: defaultDecay. */
  decay?: (name: string, p: Tensor) => boolean;
  /** Clip gradients to this global L2 norm before each step. */
  maxGradNorm?: number;
}

type Params = Module | Tensor[] | Iterable<[string, Tensor]>;

function named(params: Params): [string, Tensor][] {
  if (Array.isArray(params) && params.every((p) => p instanceof Tensor)) return params.map((p, i) => [String(i), p]);
  if (typeof (params as Module).namedParameters === 'function') return (params as Module).namedParameters();
  return [...(params as Iterable<[string, Tensor]>)];
}

/** AdamW (decoupled weight decay) with the fused in-place kernel; moments are created at the first step. */
export class AdamW {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number | undefined;
  /** Steps taken. */
  t = 0;
  /** Global gradient norm before clipping at the last step (when maxGradNorm is set). */
  lastGradNorm: Tensor | null = null;
  readonly params: { name: string; p: Tensor; decay: boolean; m: Tensor | null; v: Tensor | null }[];

  constructor(params: Params, o: AdamWOptions = {}) {
    this.lr = o.lr ?? 1e-3;
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
    this.maxGradNorm = o.maxGradNorm;
    const decay = o.decay ?? defaultDecay;
    this.params = named(params).map(([name, p]) => ({ name, p, decay: decay(name, p), m: null, v: null }));
  }

  /** Disposes every gradient. */
  zeroGrad(): void {
    for (const { p } of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** One update of every parameter that has a gradient; waits for the GPU (one sync per step). */
  async step(): Promise<void> {
    this.t++;
    if (this.maxGradNorm !== undefined) {
      this.lastGradNorm?.dispose();
      this.lastGradNorm = clipGradNorm(
        this.params.map((x) => x.p),
        this.maxGradNorm,
      );
    }
    for (const s of this.params) {
      const g = s.p.grad;
      if (!g) continue;
      s.m ??= zeros(s.p.shape, { engine: s.p.engine }).keep();
      s.v ??= zeros(s.p.shape, { engine: s.p.engine }).keep();
      const [gb, pb, mb, vb, e] = [g.buffer, s.p.buffer, s.m.buffer, s.v.buffer, s.p.engine];
      const h = { lr: this.lr, beta1: this.betas[0], beta2: this.betas[1], eps: this.eps, weightDecay: s.decay ? this.weightDecay : 0, step: this.t };
      e.enqueue(`adamw ${s.name}`, () => adamw(e.gpu, { grad: gb, param: pb, m: mb, v: vb }, s.p.size, h));
    }
    await this.params[0]?.p.engine.sync();
  }

  dispose(): void {
    for (const s of this.params) [s.m, s.v].forEach((t) => t?.dispose());
    this.lastGradNorm?.dispose();
  }
}

/** The global L2 norm of the parameters' gradients (a scalar tensor), by deterministic reductions. */
export function gradNorm(params: Tensor[]): Tensor {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (!grads.length) throw new Error('gradNorm: no parameter has a gradient (call backward() first)');
  return noGrad(() => {
    const e = grads[0]!.engine;
    const partial = Tensor.empty(e, [grads.length], 'f32', 'grad norm partials');
    const pb = partial.buffer;
    grads.forEach((g, i) => {
      const gb = g.buffer;
      e.enqueue('grad sumsq', () => reduce(e.gpu, 'sumsq', gb, pb, { outer: 1, len: g.size, inner: 1, outOffset: i }));
    });
    return sqrt(sum(partial));
  });
}

/**
 * Scales every gradient by min(1, maxNorm / (‖g‖ + 1e-6)) with ‖g‖ the global norm, on the GPU
 * (no read-back); returns ‖g‖ before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const norm = gradNorm(params);
  noGrad(() => {
    const e = norm.engine;
    const scale = minimum(full([], 1, { engine: e }), div(full([], maxNorm, { engine: e }), add(norm, 1e-6)));
    for (const p of params) {
      if (!p.grad) continue;
      const g = mul(p.grad, scale).keep();
      p.grad.dispose();
      p.grad = g;
    }
  });
  return norm;
}

/** Linear warm-up to `lr` over `warmup` steps, then cosine decay to `minLr` at `total` (OpenCLIP's cosine_lr). */
export function cosineSchedule(o: { lr: number; warmup: number; total: number; minLr?: number }): (step: number) => number {
  const min = o.minLr ?? 0;
  return (step) => {
    if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
    const e = step - o.warmup;
    const es = Math.max(1, o.total - o.warmup);
    return min + 0.5 * (1 + Math.cos((Math.PI * Math.min(e, es)) / es)) * (o.lr - min);
  };
}
