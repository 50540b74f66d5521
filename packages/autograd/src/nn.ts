import { batchNorm, dropout, embedding, layerNorm } from './functional.js';
import { gelu, linear, relu, tanh } from './ops.js';
import { full, nextSeed, ones, rand, randn, zeros, type Tensor } from './tensor.js';
import { rng } from '@mode/kernels';

/**
 * Modules as in PyTorch, kept tiny: a module registers its parameters, buffers and children by
 * name, so that `namedParameters()` and `stateDict()` give the dotted names checkpoints use
 * (OpenCLIP's, where the module is the same: `weight`, `bias`, `running_mean`, `c_fc`, …).
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a parameter: it requires grad and outlives scopes and backward. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.params.set(name, t.keep());
    return t;
  }
  /** Registers state that is saved but not trained (running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t.keep());
    return t;
  }
  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    return [
      ...[...this.params].map(([n, t]): [string, Tensor] => [prefix + n, t]),
      ...[...this.children].flatMap(([n, m]) => m.namedParameters(`${prefix}${n}.`)),
    ];
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    return [
      ...[...this.buffers].map(([n, t]): [string, Tensor] => [prefix + n, t]),
      ...[...this.children].flatMap(([n, m]) => m.namedBuffers(`${prefix}${n}.`)),
    ];
  }
  /** Parameters and buffers by name (what a checkpoint holds). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  /**
   * Copies values into the tensors of stateDict(), in place. strict: every name must be given and
   * nothing else (PyTorch's `num_batches_tracked` counters are skipped).
   */
  loadStateDict(values: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>, strict = true): void {
    const own = this.stateDict();
    const given = Object.keys(values).filter((k) => !k.endsWith('num_batches_tracked'));
    const missing = Object.keys(own).filter((k) => !(k in values));
    const unexpected = given.filter((k) => !(k in own));
    if (strict && (missing.length || unexpected.length))
      throw new Error(`loadStateDict: missing ${missing.join(', ') || 'none'}; unexpected ${unexpected.join(', ') || 'none'}`);
    for (const [name, t] of Object.entries(own)) {
      const v = values[name];
      if (!v) continue;
      if (v.shape.join() !== t.shape.join()) throw new RangeError(`loadStateDict: ${name} has shape [${v.shape}], the module expects [${t.shape}]`);
      t.set(v.data);
    }
  }
  train(on = true): this {
    this.training = on;
    for (const m of this.children.values()) m.train(on);
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
  dispose(): void {
    this.zeroGrad();
    for (const t of [...this.parameters(), ...this.namedBuffers().map(([, t]) => t)]) t.dispose();
  }
}

export interface InitOptions {
  /** Seed of the initialisation (default: the next of the global stream, see manualSeed). */
  seed?: number;
}

/** y = x·Wᵀ + b; W [out, in] and b initialised U(−1/√in, 1/√in) as PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: InitOptions & { bias?: boolean } = {},
  ) {
    super();
    const seed = rng(opts.seed ?? nextSeed());
    const bound = 1 / Math.sqrt(inFeatures);
    const u = (shape: number[]) => rand(shape, { low: -bound, high: bound, seed: (seed() * 2 ** 32) >>> 0 });
    this.weight = this.param('weight', u([outFeatures, inFeatures]));
    this.bias = opts.bias === false ? null : this.param('bias', u([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', ones([dim]));
    this.bias = this.param('bias', zeros([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Batch norm over [N, C] (SimSiam's projector and predictor heads), with running statistics. */
export class BatchNorm1d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(
    features: number,
    readonly opts: { eps?: number; momentum?: number } = {},
  ) {
    super();
    this.weight = this.param('weight', ones([features]));
    this.bias = this.param('bias', zeros([features]));
    this.runningMean = this.buffer('running_mean', zeros([features]));
    this.runningVar = this.buffer('running_var', full([features], 1));
  }
  forward(x: Tensor): Tensor {
    return batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      ...(this.opts.eps !== undefined ? { eps: this.opts.eps } : {}),
      ...(this.opts.momentum !== undefined ? { momentum: this.opts.momentum } : {}),
    });
  }
}

/** A [vocab, dim] table initialised N(0, 1) as PyTorch. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(vocab: number, dim: number, opts: InitOptions = {}) {
    super();
    this.weight = this.param('weight', randn([vocab, dim], { seed: opts.seed ?? nextSeed() }));
  }
  forward(indices: ArrayLike<number> | Tensor, shape?: readonly number[]): Tensor {
    return embedding(this.weight, indices, shape);
  }
}

const ACTIVATIONS = { relu, gelu, tanh } as const;

/**
 * Linear layers with an activation between them (not after the last), optional dropout after each
 * activation. Two layers are named `c_fc` and `c_proj` as OpenCLIP's transformer MLP; more are
 * `layers.0`, `layers.1`, … as an nn.Sequential of Linears.
 */
export class MLP extends Module {
  readonly layers: Linear[];
  constructor(
    sizes: number[],
    readonly opts: InitOptions & { activation?: keyof typeof ACTIVATIONS; dropout?: number } = {},
  ) {
    super();
    if (sizes.length < 2) throw new RangeError(`MLP: needs at least [in, out] sizes, got [${sizes}]`);
    const seed = rng(opts.seed ?? nextSeed());
    const n = sizes.length - 1;
    this.layers = Array.from({ length: n }, (_, i) =>
      this.module(n === 2 ? ['c_fc', 'c_proj'][i]! : `layers.${i}`, new Linear(sizes[i]!, sizes[i + 1]!, { seed: (seed() * 2 ** 32) >>> 0 })),
    );
  }
  forward(x: Tensor): Tensor {
    const act = ACTIVATIONS[this.opts.activation ?? 'relu'];
    let h = x;
    this.layers.forEach((layer, i) => {
      h = layer.forward(h);
      if (i < this.layers.length - 1) {
        h = act(h);
        if (this.opts.dropout) h = dropout(h, this.opts.dropout, { training: this.training });
      }
    });
    return h;
  }
}
