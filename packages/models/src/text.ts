import { add, Embedding, embedding, LayerNorm, matmul, Module, randn, reshape, type Tensor } from '@mode/autograd';
import type { TextConfig, Activation } from './config.js';
import { initNormal, seeds, Transformer } from './transformer.js';

/** The project tokenizer's end-of-text id (`@mode/data`'s SPECIAL.eot), the default of `TextConfig.eotId`; models take token ids, not text. */
export const EOT_ID = 2;

/**
 * OpenCLIP's text tower: token + position embeddings, causal pre-LN blocks, ln_final, the
 * features at the end-of-text token, `text_projection` [width, embed] without bias. Its names are
 * those of OpenCLIP's CLIP top level (`token_embedding.weight`, `positional_embedding`, …).
 */
export class TextTransformer extends Module {
  readonly token_embedding: Embedding;
  readonly positional_embedding: Tensor;
  readonly transformer: Transformer;
  readonly ln_final: LayerNorm;
  readonly text_projection: Tensor;

  constructor(
    readonly cfg: TextConfig,
    embedDim: number,
    gelu: Activation,
    seed?: number,
  ) {
    super();
    const s = seeds(seed);
    const w = cfg.width;
    this.token_embedding = this.module('token_embedding', new Embedding(cfg.vocabSize, w, { seed: s() }));
    initNormal(this.token_embedding.weight, 0.02, s());
    this.positional_embedding = this.param('positional_embedding', randn([cfg.contextLength, w], { std: 0.01, seed: s() }));
    this.transformer = this.module('transformer', new Transformer({ ...cfg, causal: true, gelu, seed: s() }));
    this.ln_final = this.module('ln_final', new LayerNorm(w));
    this.text_projection = this.param('text_projection', randn([w, embedDim], { std: w ** -0.5, seed: s() }));
  }

  /** tokens [B·ctx] ids (start, tokens, end, padding), B rows of contextLength → features [B, embed]. */
  forward(tokens: ArrayLike<number>): Tensor {
    const L = this.cfg.contextLength;
    const eot = eotPositions(tokens, L, this.cfg.eotId ?? EOT_ID); // checked before any work is queued
    const x = this.tokenFeatures(tokens);
    const B = eot.length;
    // The row of each caption's end token (captions are padded: not the last column).
    const pooled = embedding(
      reshape(x, [B * L, this.cfg.width]),
      Array.from(eot, (p, b) => b * L + p),
    );
    return matmul(pooled, this.text_projection);
  }

  /** Every position's output after ln_final, [B, ctx, width] (what an MLM head reads). */
  tokenFeatures(tokens: ArrayLike<number>): Tensor {
    const L = this.cfg.contextLength;
    if (tokens.length === 0 || tokens.length % L) throw new RangeError(`TextTransformer: ${tokens.length} token ids are not rows of contextLength ${L}`);
    const B = tokens.length / L;
    const x = add(this.token_embedding.forward(tokens, [B, L]), this.positional_embedding);
    return this.ln_final.forward(this.transformer.forward(x));
  }
}

/** The column of the first end-of-text id in each row; throws naming a row that has none. */
export function eotPositions(tokens: ArrayLike<number>, contextLength: number, eotId = EOT_ID): Int32Array {
  if (tokens.length === 0 || tokens.length % contextLength)
    throw new RangeError(`TextTransformer: ${tokens.length} token ids are not rows of contextLength ${contextLength}`);
  const B = tokens.length / contextLength;
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let p = -1;
    for (let j = 0; j < contextLength; j++)
      if (tokens[b * contextLength + j] === eotId) {
        p = j;
        break;
      }
    if (p < 0)
      throw new RangeError(`TextTransformer: row ${b} has no end-of-text token (id ${eotId}); tokenize with the model's tokenizer (@mode/data's tokenize)`);
    out[b] = p;
  }
  return out;
}
