import { assign, attentionQKV, gelu, LayerNorm, Linear, linear, mlp, Module, nextSeed, noGrad, randn, zeros, type Tensor } from '@mode/autograd';
import type { Activation } from './config.js';
import { rng } from '@mode/kernels';

/** A seed stream for one module's initialisation: every tensor gets its own seed from it. */
export const seeds = (seed: number | undefined) => {
  const r = rng(seed ?? nextSeed());
  return () => (r() * 2 ** 32) >>> 0;
};

export interface BlockOptions {
  width: number;
  heads: number;
  mlpRatio: number;
  layers: number;
  causal: boolean;
  gelu: Activation;
  seed?: number;
}

/**
 * nn.MultiheadAttention's parameters as OpenCLIP names them (`in_proj_weight` [3w, w],
 * `in_proj_bias`, `out_proj`), over the fused flash-attention kernel.
 */
export class MultiheadAttention extends Module {
  readonly in_proj_weight: Tensor;
  readonly in_proj_bias: Tensor;
  readonly out_proj: Linear;

  constructor(
    readonly width: number,
    readonly heads: number,
    readonly causal: boolean,
    std: { attn: number; proj: number },
    seed: () => number,
  ) {
    super();
    this.in_proj_weight = this.param('in_proj_weight', randn([3 * width, width], { std: std.attn, seed: seed() }));
    this.in_proj_bias = this.param('in_proj_bias', zeros([3 * width]));
    this.out_proj = this.module('out_proj', new Linear(width, width, { seed: seed() }));
    // OpenCLIP: out_proj weight N(0, proj_std), bias 0.
    initNormal(this.out_proj.weight, std.proj, seed());
    initZero(this.out_proj.bias!);
  }

  /** x [B, L, w] → [B, L, w]; `residual` (same shape) is added in the out-projection's epilogue. */
  forward(x: Tensor, residual?: Tensor): Tensor {
    const qkv = linear(x, this.in_proj_weight, this.in_proj_bias); // [B, L, 3w]: q | k | v, heads inside each
    // The kernels read the heads where they lie in qkv and write them merged: [B, L, w].
    return linear(attentionQKV(qkv, this.heads, { causal: this.causal }), this.out_proj.weight, this.out_proj.bias!, residual);
  }
}

/** OpenCLIP's ResidualAttentionBlock: x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export class ResidualAttentionBlock extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly ln_2: LayerNorm;
  readonly c_fc: Linear;
  readonly c_proj: Linear;

  constructor(readonly o: BlockOptions) {
    super();
    const seed = seeds(o.seed);
    const w = o.width;
    const std = { attn: w ** -0.5, proj: w ** -0.5 * (2 * o.layers) ** -0.5, fc: (2 * w) ** -0.5 };
    this.ln_1 = this.module('ln_1', new LayerNorm(w));
    this.attn = this.module('attn', new MultiheadAttention(w, o.heads, o.causal, std, seed));
    this.ln_2 = this.module('ln_2', new LayerNorm(w));
    const mlp = this.module('mlp', new Container());
    const hidden = Math.round(w * o.mlpRatio);
    this.c_fc = mlp.add('c_fc', new Linear(w, hidden, { seed: seed() }));
    this.c_proj = mlp.add('c_proj', new Linear(hidden, w, { seed: seed() }));
    initNormal(this.c_fc.weight, std.fc, seed());
    initNormal(this.c_proj.weight, std.proj, seed());
    initZero(this.c_fc.bias!);
    initZero(this.c_proj.bias!);
  }

  forward(x: Tensor): Tensor {
    // The residual adds happen in the projections' epilogues.
    const h = this.attn.forward(this.ln_1.forward(x), x);
    const y = this.ln_2.forward(h);
    // The exact GELU and QuickGELU run in the matmul epilogues (one op); the tanh form as a separate op.
    if (this.o.gelu !== 'tanh')
      return mlp(y, this.c_fc.weight, this.c_fc.bias!, this.c_proj.weight, this.c_proj.bias!, h, this.o.gelu === 'quick' ? 'quick' : 'erf');
    return linear(gelu(this.c_fc.forward(y), { approximate: 'tanh' }), this.c_proj.weight, this.c_proj.bias!, h);
  }
}

/** Named children and nothing else (nn.ModuleList's role): `mlp.c_fc`, `resblocks.0`, … */
class Container extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.module(name, m);
  }
}

/** OpenCLIP's Transformer: `resblocks.0` … `resblocks.{layers−1}`. */
export class Transformer extends Module {
  readonly resblocks: ResidualAttentionBlock[];
  constructor(o: BlockOptions) {
    super();
    const seed = seeds(o.seed);
    const holder = this.module('resblocks', new Container());
    this.resblocks = Array.from({ length: o.layers }, (_, i) => holder.add(String(i), new ResidualAttentionBlock({ ...o, seed: seed() })));
  }
  forward(x: Tensor): Tensor {
    return this.resblocks.reduce((h, b) => b.forward(h), x);
  }
}

/** Overwrites a parameter with N(0, std²) samples (OpenCLIP's initialisation of the named weights). */
export function initNormal(t: Tensor, std: number, seed: number): void {
  noGrad(() => assign(t, randn(t.shape, { std, seed })));
}

export const initZero = (t: Tensor) => t.set(new Float32Array(t.size));
