import { add, concat, expand, LayerNorm, linear, matmul, mean, Module, permute, rand, randn, reshape, slice, type Tensor } from '@mode/autograd';
import { visionTokens, type VisionConfig, type Activation } from './config.js';
import { seeds, Transformer } from './transformer.js';

/** A module holding one tensor under `weight` (the patch embedding's `conv1.weight`). */
class Weight extends Module {
  readonly weight: Tensor;
  constructor(t: Tensor) {
    super();
    this.weight = this.param('weight', t);
  }
}

/**
 * OpenCLIP's VisionTransformer: patch embedding (a stride-p convolution without bias, computed
 * as patches × weight), learned positions, ln_pre, pre-LN blocks, ln_post, pooling, and the
 * projection `proj` [width, embed] without bias.
 */
export class VisionTransformer extends Module {
  readonly conv1: Weight;
  readonly class_embedding: Tensor | null;
  readonly positional_embedding: Tensor;
  readonly ln_pre: LayerNorm;
  readonly transformer: Transformer;
  readonly ln_post: LayerNorm;
  readonly proj: Tensor;
  readonly grid: number;

  constructor(
    readonly cfg: VisionConfig,
    embedDim: number,
    gelu: Activation,
    seed?: number,
  ) {
    super();
    const s = seeds(seed);
    const { width: w, patchSize: p } = cfg;
    const scale = w ** -0.5;
    this.grid = cfg.imageSize / p;
    // PyTorch's Conv2d default: U(±1/√fan_in) with fan_in = 3·p·p.
    const bound = 1 / Math.sqrt(3 * p * p);
    this.conv1 = this.module('conv1', new Weight(rand([w, 3, p, p], { low: -bound, high: bound, seed: s() })));
    this.class_embedding = cfg.pool === 'cls' ? this.param('class_embedding', randn([w], { std: scale, seed: s() })) : null;
    this.positional_embedding = this.param('positional_embedding', randn([visionTokens(cfg), w], { std: scale, seed: s() }));
    this.ln_pre = this.module('ln_pre', new LayerNorm(w));
    this.transformer = this.module('transformer', new Transformer({ ...cfg, causal: false, gelu, seed: s() }));
    this.ln_post = this.module('ln_post', new LayerNorm(w));
    this.proj = this.param('proj', randn([w, embedDim], { std: scale, seed: s() }));
  }

  /** images [B, 3, S, S] (normalised CHW) → features [B, embed] (not normalised). */
  forward(images: Tensor): Tensor {
    const { imageSize: S, patchSize: p, width: w } = this.cfg;
    const g = this.grid;
    if (images.ndim !== 4 || images.shape[1] !== 3 || images.shape[2] !== S || images.shape[3] !== S)
      throw new RangeError(`VisionTransformer: images must be [B, 3, ${S}, ${S}], got [${images.shape}]`);
    const B = images.shape[0]!;
    // [B·3·g, py, g, px] → [B·3·g, g, py, px], then [B, 3, g², p²] → [B, g², 3, p²]: each patch's
    // pixels in the (channel, row, column) order of the convolution weight.
    const rows = permute(reshape(images, [B * 3 * g, p, g, p]), [0, 2, 1, 3]);
    const patches = reshape(permute(reshape(rows, [B, 3, g * g, p * p]), [0, 2, 1, 3]), [B, g * g, 3 * p * p]);
    let x = linear(patches, reshape(this.conv1.weight, [w, 3 * p * p])); // [B, g², w]
    if (this.class_embedding) x = concat([expand(reshape(this.class_embedding, [1, 1, w]), [B, 1, w]), x], 1);
    x = this.ln_pre.forward(add(x, this.positional_embedding));
    x = this.ln_post.forward(this.transformer.forward(x));
    const pooled = this.class_embedding ? reshape(slice(x, 1, 0, 1), [B, w]) : mean(x, 1);
    return matmul(pooled, this.proj);
  }
}
