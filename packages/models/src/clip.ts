import { assign, clamp, full, l2Normalize, loadModuleFrom, Module, noGrad, saveModule, type SafetensorsFile, type Tensor } from '@mode/autograd';
import { checkConfig, type ClipConfig, type Preprocess } from './config.js';
import { TextTransformer } from './text.js';
import { seeds } from './transformer.js';
import { VisionTransformer } from './vision.js';

/** ln(100): OpenCLIP clamps logit_scale to [0, ln 100] after every step. */
export const MAX_LOGIT_SCALE = Math.log(100);

/**
 * OpenCLIP's CLIP: `visual.*`, the text tower at the top level, and `logit_scale` initialised to
 * ln(1/0.07). encode*() give unnormalised features; features() the L2-normalised pair.
 */
export class CLIP extends Module {
  readonly visual: VisionTransformer;
  readonly text: TextTransformer;
  readonly logit_scale: Tensor;
  /** The tokenizer it was trained with (`Tokenizer.id` and the file it came from), recorded in the saved file. */
  tokenizer: { id: string; source: string } | null = null;
  /** How its images are prepared (OpenCLIP's preprocess_cfg; null: OpenAI's constants at the image size), recorded in the saved file. */
  preprocess: Preprocess | null = null;

  constructor(
    readonly config: ClipConfig,
    opts: { seed?: number } = {},
  ) {
    super();
    checkConfig(config);
    const s = seeds(opts.seed);
    this.visual = this.module('visual', new VisionTransformer(config.vision, config.embedDim, config.gelu, s()));
    this.text = new TextTransformer(config.text, config.embedDim, config.gelu, s());
    // The text tower's parts sit at the top level, as in OpenCLIP's state dict.
    for (const [name, t] of this.text.namedParameters()) if (!name.includes('.')) this.param(name, t);
    for (const name of ['token_embedding', 'transformer', 'ln_final'] as const) this.module(name, this.text[name]);
    this.logit_scale = this.param('logit_scale', full([], Math.log(1 / 0.07)));
  }

  encodeImage(images: Tensor): Tensor {
    return this.visual.forward(images);
  }
  encodeText(tokens: ArrayLike<number>): Tensor {
    return this.text.forward(tokens);
  }
  /** L2-normalised image and text features. */
  features(images: Tensor, tokens: ArrayLike<number>): { image: Tensor; text: Tensor } {
    return { image: l2Normalize(this.encodeImage(images)), text: l2Normalize(this.encodeText(tokens)) };
  }

  /** Clamps logit_scale to [0, ln 100] in place (call after each optimiser step). */
  clampLogitScale(): void {
    noGrad(() => assign(this.logit_scale, clamp(this.logit_scale, 0, MAX_LOGIT_SCALE)));
  }

  /** Weights as safetensors, with the config in the file's metadata (so a file is a model). */
  async save(path: string): Promise<void> {
    await saveModule(this, path, {
      config: JSON.stringify(this.config),
      ...(this.tokenizer ? { tokenizer: JSON.stringify(this.tokenizer) } : {}),
      ...(this.preprocess ? { preprocess: JSON.stringify(this.preprocess) } : {}),
    });
  }
}

/** loadClip from a decoded file (bytes a browser page fetched, say); `where` names it in errors. */
export function clipFromSafetensors(file: SafetensorsFile, where: string, opts: { config?: ClipConfig } = {}): CLIP {
  const text = file.metadata?.config;
  const config = opts.config ?? (text ? (JSON.parse(text) as ClipConfig) : undefined);
  if (!config)
    throw Object.assign(
      new Error(
        `${where}: no model config in the safetensors metadata (it was not written by mode). Fix: for an OpenCLIP file, give its model_configs/NAME.json (--config)`,
      ),
      { userFacing: true },
    );
  const model = new CLIP(config, { seed: 0 });
  loadModuleFrom(model, file, where);
  const tok = file.metadata?.tokenizer;
  if (tok) model.tokenizer = JSON.parse(tok) as { id: string; source: string };
  const pre = file.metadata?.preprocess;
  if (pre) model.preprocess = JSON.parse(pre) as Preprocess;
  return model;
}

/**
 * A model refuses a tokenizer other than the one it was trained with (its ids would mean other
 * strings): the error names both and the fix. Models saved before tokenizers were recorded pass.
 */
export function checkTokenizer(model: CLIP, tokenizer: { id: string }, source: string, where: string): void {
  const t = model.tokenizer;
  if (!t || t.id === tokenizer.id) return;
  throw Object.assign(
    new Error(`${where} was trained with tokenizer ${t.id} (${t.source}), not ${tokenizer.id} (${source}). Fix: pass --tokenizer ${t.source}`),
    { userFacing: true },
  );
}
