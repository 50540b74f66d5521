import { adamw, reduce } from '@mode/kernels';
import type { Module } from './nn.js';
import { add, div, minimum, mul, sqrt, sum } from './ops.js';
import { full, noGrad, Tensor } from './tensor.js';

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
  /** Elements one bank of flat moments holds at most (default 2^24, and within the adapter's binding limit). */
  bank?: number;
}

type Params = Module | Tensor[] | Iterable<[string, Tensor]>;

function named(params: Params): [string, Tensor][] {
  if (Array.isArray(params) && params.every((p) => p instanceof Tensor)) return params.map((p, i) => [String(i), p]);
  if (typeof (params as Module).namedParameters === 'function') return (params as Module).namedParameters();
  return [...(params as Iterable<[string, Tensor]>)];
}

/** One parameter's optimiser state. */
export interface AdamWParam {
  name: string;
  p: Tensor;
  decay: boolean;
  /** Updates this parameter has had: its own bias-correction step, as PyTorch keeps per parameter. */
  step: number;
  /** Its moments: elements [at, at + p.size) of bank `bank`'s flat m and v. */
  bank: number;
  at: number;
}

/**
 * First and second moments (PyTorch's exp_avg, exp_avg_sq) of a set of parameters, back to back
 * in two flat buffers, so that one dispatch updates a run of parameters: a model has a hundred,
 * most of them a few hundred values, and one dispatch each cost more than their arithmetic.
 * Made (zeroed) at the first step: a parameter's first update starts from zero moments.
 */
interface MomentBank {
  params: AdamWParam[];
  size: number;
  m: GPUBuffer | null;
  v: GPUBuffer | null;
}

/** Elements one bank holds at most (64 MiB of f32, within any adapter's binding limit); a larger parameter gets a bank of its own. */
const BANK = 1 << 24;

/** What AdamW saves besides the moments (JSON): enough to resume a run exactly. */
export interface AdamWState {
  format: 'mode-adamw-1';
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  maxGradNorm: number | null;
  t: number;
  params: { name: string; decay: boolean; step: number }[];
}

/**
 * AdamW (decoupled weight decay) with the fused in-place kernel. The moments are flat (see
 * MomentBank); each step packs the gradients and the parameters into the banks' layout, updates
 * every run of parameters that share a weight decay and a step count with one dispatch, and
 * copies the parameters back: copies cost far less than dispatches here.
 */
export class AdamW {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  maxGradNorm: number | undefined;
  /** Steps taken. */
  t = 0;
  /** Global gradient norm before clipping at the last step (when maxGradNorm is set). */
  lastGradNorm: Tensor | null = null;
  readonly params: AdamWParam[];
  private readonly banks: MomentBank[] = [];

  constructor(params: Params, o: AdamWOptions = {}) {
    this.lr = o.lr ?? 1e-3;
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
    this.maxGradNorm = o.maxGradNorm;
    const decay = o.decay ?? defaultDecay;
    if (o.bank !== undefined && !(Number.isInteger(o.bank) && o.bank >= 1)) throw new RangeError(`AdamW: bank must be a positive integer, got ${o.bank}`);
    this.params = named(params).map(([name, p]) => ({ name, p, decay: decay(name, p), step: 0, bank: -1, at: 0 }));
    // Decayed parameters first, then the rest: each kind is one run in the common case.
    const limit = Math.min(o.bank ?? BANK, Math.floor((this.params[0]?.p.engine.gpu.device.limits.maxStorageBufferBindingSize ?? 4 * BANK) / 4));
    for (const s of [...this.params.filter((s) => s.decay), ...this.params.filter((s) => !s.decay)]) {
      let bank = this.banks.at(-1);
      if (!bank || bank.size + s.p.size > limit) this.banks.push((bank = { params: [], size: 0, m: null, v: null }));
      [s.bank, s.at] = [this.banks.length - 1, bank.size];
      bank.params.push(s);
      bank.size += s.p.size;
    }
  }

  /** Disposes every gradient. */
  zeroGrad(): void {
    for (const { p } of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The banks' moment buffers, made and zeroed on first use. */
  private moments(bank: MomentBank): { m: GPUBuffer; v: GPUBuffer } {
    if (!bank.m || !bank.v) {
      const e = bank.params[0]!.p.engine;
      const [m, v] = [e.alloc(4 * bank.size, 'adamw exp_avg'), e.alloc(4 * bank.size, 'adamw exp_avg_sq')];
      e.enqueue('adamw moments', () => [m, v].forEach((b) => e.gpu.clearBuffer(b, 0, 4 * bank.size)));
      [bank.m, bank.v] = [m, v];
    }
    return { m: bank.m, v: bank.v };
  }

  /**
   * One update of every parameter that has a gradient, on the gradient times `gradScale` (e.g.
   * clipScale of a norm the caller read: the scale is applied inside the update, not by a pass
   * over every gradient first); waits for the GPU (one sync per step).
   */
  async step(gradScale = 1): Promise<void> {
    this.t++;
    if (this.maxGradNorm !== undefined) {
      this.lastGradNorm?.dispose();
      this.lastGradNorm = clipGradNorm(
        this.params.map((x) => x.p),
        this.maxGradNorm,
      );
    }
    // A parameter without a gradient is not stepped, so one that starts training late (an
    // unfrozen tower) is bias-corrected from its own first update, not the optimiser's t.
    for (const s of this.params) if (s.p.grad) s.step++;
    for (const bank of this.banks) {
      // Runs: neighbours in the bank with gradients, the same decay and the same step.
      const runs: AdamWParam[][] = [];
      let last: AdamWParam | null = null;
      for (const s of bank.params) {
        if (!s.p.grad) last = null;
        else if (last && last.decay === s.decay && last.step === s.step) runs.at(-1)!.push((last = s));
        else runs.push([(last = s)]);
      }
      if (!runs.length) continue;
      const e = bank.params[0]!.p.engine;
      const { m, v } = this.moments(bank);
      const [grad, param] = [e.alloc(4 * bank.size, 'adamw grads'), e.alloc(4 * bank.size, 'adamw params')];
      const parts = runs.flat().map((s) => ({ at: 4 * s.at, bytes: 4 * s.p.size, grad: s.p.grad!.buffer, param: s.p.buffer }));
      const updates = runs.map((run) => {
        const s = run[0]!;
        const n = run.reduce((sum, r) => sum + r.p.size, 0);
        const h = {
          lr: this.lr,
          beta1: this.betas[0],
          beta2: this.betas[1],
          eps: this.eps,
          weightDecay: s.decay ? this.weightDecay : 0,
          step: s.step,
          gradScale,
        };
        return { n, at: s.at, h };
      });
      for (const s of runs.flat()) s.p.storage.bump(`AdamW step of ${s.name}`);
      e.enqueue(`adamw ${runs.flat().length} parameters`, async () => {
        for (const x of parts) {
          e.gpu.copyBuffer(x.grad, 0, grad, x.at, x.bytes);
          e.gpu.copyBuffer(x.param, 0, param, x.at, x.bytes);
        }
        for (const u of updates) await adamw(e.gpu, { grad, param, m, v }, u.n, u.h, u.at);
        for (const x of parts) e.gpu.copyBuffer(param, x.at, x.param, 0, x.bytes);
      });
      e.release(grad);
      e.release(param);
    }
    await this.params[0]?.p.engine.sync();
  }

  /**
   * The state to resume from: the moments of every parameter stepped so far, as
   * `<name>.exp_avg` / `<name>.exp_avg_sq` (fresh tensors copied out of the flat moments: dispose
   * them), and the hyper-parameters and per-parameter steps.
   */
  stateDict(): { tensors: Record<string, Tensor>; state: AdamWState } {
    const tensors: Record<string, Tensor> = {};
    for (const s of this.params) {
      const bank = this.banks[s.bank]!;
      if (s.step === 0 || !bank.m || !bank.v) continue;
      for (const [key, from] of [
        ['exp_avg', bank.m],
        ['exp_avg_sq', bank.v],
      ] as const) {
        const e = s.p.engine;
        const t = Tensor.empty(e, s.p.shape, 'f32', `${s.name}.${key}`);
        const to = t.buffer;
        e.enqueue(`adamw ${s.name}.${key}`, () => e.gpu.copyBuffer(from, 4 * s.at, to, 0, 4 * s.p.size));
        tensors[`${s.name}.${key}`] = t;
      }
    }
    const state: AdamWState = {
      format: 'mode-adamw-1',
      lr: this.lr,
      betas: [...this.betas],
      eps: this.eps,
      weightDecay: this.weightDecay,
      maxGradNorm: this.maxGradNorm ?? null,
      t: this.t,
      params: this.params.map((s) => ({ name: s.name, decay: s.decay, step: s.step })),
    };
    return { tensors, state };
  }

  /** Restores what stateDict() gave (the same parameter names; values copied in place), hyper-parameters included. */
  loadStateDict(tensors: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>, state: AdamWState): void {
    if (state?.format !== 'mode-adamw-1') throw new Error(`AdamW.loadStateDict: format ${JSON.stringify(state?.format)} is not mode-adamw-1`);
    const own = new Map(this.params.map((s) => [s.name, s]));
    const given = new Set(state.params.map((p) => p.name));
    const missing = [...own.keys()].filter((n) => !given.has(n));
    const unexpected = [...given].filter((n) => !own.has(n));
    if (missing.length || unexpected.length)
      throw new Error(`AdamW.loadStateDict: parameters missing ${missing.join(', ') || 'none'}; unexpected ${unexpected.join(', ') || 'none'}`);
    const moments = (name: string, shape: readonly number[]) =>
      (['exp_avg', 'exp_avg_sq'] as const).map((k) => {
        const t = tensors[`${name}.${k}`];
        if (!t || t.shape.join() !== shape.join())
          throw new Error(`AdamW.loadStateDict: ${name}.${k} is ${t ? `[${t.shape}]` : 'missing'}, the parameter is [${shape}]`);
        return t;
      });
    // Everything is checked before anything changes.
    const loaded = state.params.map((saved) => {
      const s = own.get(saved.name)!;
      return { saved, s, mv: saved.step > 0 ? moments(saved.name, s.p.shape) : null };
    });
    // Fresh zeroed banks, then the saved moments at their parameters' places (a parameter never stepped keeps zeros).
    for (const bank of this.banks) this.releaseMoments(bank);
    for (const { saved, s, mv } of loaded) {
      if (mv) {
        const { m, v } = this.moments(this.banks[s.bank]!);
        const [dm, dv] = mv.map((t) => Float32Array.from(t.data));
        const e = s.p.engine;
        e.enqueue(`adamw load ${s.name}`, () => {
          e.gpu.write(m, dm!, 4 * s.at);
          e.gpu.write(v, dv!, 4 * s.at);
        });
      }
      s.step = saved.step;
      s.decay = saved.decay;
    }
    [this.lr, this.betas, this.eps, this.weightDecay, this.t] = [state.lr, [...state.betas], state.eps, state.weightDecay, state.t];
    this.maxGradNorm = state.maxGradNorm ?? undefined;
  }

  /** Hands a bank's moment buffers back; moments() makes zeroed ones on next use. */
  private releaseMoments(bank: MomentBank): void {
    const e = bank.params[0]!.p.engine;
    [bank.m, bank.v].forEach((b) => b && e.release(b));
    [bank.m, bank.v] = [null, null];
  }

  dispose(): void {
    for (const bank of this.banks) this.releaseMoments(bank);
    this.lastGradNorm?.dispose();
  }
}

/** Rows a packed run of gradients is summed in: that many workgroups work on it at once. */
const NORM_ROWS = 64;
/** Elements one packed run holds at most (64 MiB of f32), so the scratch stays within any adapter's binding limit. */
const NORM_RUN = 1 << 24;

/**
 * The global L2 norm of the parameters' gradients (a scalar tensor), by deterministic reductions.
 * The gradients are copied back to back into runs of up to NORM_RUN elements and each run is
 * summed in NORM_ROWS rows by one dispatch: one reduction per gradient (a model has a hundred,
 * most of them a few hundred values) cost more in dispatches than in arithmetic. A gradient
 * larger than a run is reduced where it lies. `run`: elements a packed run holds at most.
 */
export function gradNorm(params: Tensor[], run = NORM_RUN): Tensor {
  if (!(Number.isInteger(run) && run >= 1)) throw new RangeError(`gradNorm: run must be a positive integer, got ${run}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (!grads.length) throw new Error('gradNorm: no parameter has a gradient (call backward() first)');
  return noGrad(() => {
    const e = grads[0]!.engine;
    const runs: { grads: Tensor[]; size: number }[] = [];
    for (const g of grads) {
      const last = runs.at(-1);
      if (last && last.size + g.size <= run) {
        last.grads.push(g);
        last.size += g.size;
      } else runs.push({ grads: [g], size: g.size });
    }
    const packed = (r: { size: number }) => r.size <= run;
    const partial = Tensor.empty(e, [runs.reduce((n, run) => n + (packed(run) ? NORM_ROWS : 1), 0)], 'f32', 'grad norm partials');
    const pb = partial.buffer;
    let at = 0;
    for (const r of runs) {
      if (!packed(r)) {
        const gb = r.grads[0]!.buffer;
        const outOffset = at++;
        e.enqueue('grad sumsq', () => reduce(e.gpu, 'sumsq', gb, pb, { outer: 1, len: r.size, inner: 1, outOffset }));
        continue;
      }
      const len = Math.ceil(r.size / NORM_ROWS);
      const flat = e.alloc(4 * NORM_ROWS * len, 'grad norm run');
      const parts = r.grads.map((g) => ({ buffer: g.buffer, bytes: 4 * g.size }));
      const outOffset = at;
      at += NORM_ROWS;
      e.enqueue('grad pack', async () => {
        let offset = 0;
        for (const { buffer, bytes } of parts) {
          e.gpu.copyBuffer(buffer, 0, flat, offset, bytes);
          offset += bytes;
        }
        e.gpu.clearBuffer(flat, offset, 4 * NORM_ROWS * len - offset); // the last row's tail
        await reduce(e.gpu, 'sumsq', flat, pb, { outer: NORM_ROWS, len, inner: 1, outOffset });
      });
      e.release(flat);
    }
    return sqrt(sum(partial));
  });
}

/** Global-norm clipping's factor for a gradient norm read on the host: min(1, maxNorm / (‖g‖ + 1e-6)), as AdamW.step's gradScale. */
export function clipScale(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
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
