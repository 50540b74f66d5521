/**
 * Model shapes: OpenCLIP's `CLIPVisionCfg` / `CLIPTextCfg` reduced to what these networks use,
 * and the presets the trainer and the CLI name.
 */

export interface VisionConfig {
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  /** MLP hidden size ÷ width (OpenCLIP: 4). */
  mlpRatio: number;
  /**
   * 'mean': mean of the patch tokens after ln_post (OpenCLIP's `pool_type='avg'`, no class
   * token: every sequence is the whole grid, so no tile of the kernels is ragged);
   * 'cls': a learned class token prepended, its output taken (OpenAI CLIP).
   */
  pool: 'mean' | 'cls';
}

export interface TextConfig {
  contextLength: number;
  vocabSize: number;
  /**
   * The tokenizer's end-of-text id, whose position the text tower pools: the project's BPE 2 (the
   * default), OpenAI's 49407 (its largest id: OpenCLIP's `argmax` finds the same position).
   */
  eotId?: number;
  width: number;
  layers: number;
  heads: number;
  mlpRatio: number;
}

export type Activation = 'none' | 'tanh' | 'quick';

/** How images are prepared for a model: OpenCLIP's `preprocess_cfg`. */
export interface Preprocess {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: 'bicubic' | 'bilinear';
  /** 'shortest': shorter side to size, then centre crop (CLIP's eval transform). */
  resizeMode: 'shortest';
}

export const OPENAI_PREPROCESS = (size: number): Preprocess => ({
  size,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  interpolation: 'bicubic',
  resizeMode: 'shortest',
});

export interface ClipConfig {
  embedDim: number;
  vision: VisionConfig;
  text: TextConfig;
  /**
   * Activation of the MLPs: 'none' the exact erf GELU (OpenCLIP's nn.GELU), 'tanh' its
   * approximation, 'quick' OpenAI's QuickGELU x·σ(1.702x) (OpenCLIP's `quick_gelu`, what OpenAI's
   * trained CLIPs use).
   */
  gelu: Activation;
}

/** ViT-B/32 text and image shapes (vocabulary: our tokenizer's, not OpenAI's 49,408). */
const B32: ClipConfig = {
  embedDim: 512,
  vision: { imageSize: 224, patchSize: 32, width: 768, layers: 12, heads: 12, mlpRatio: 4, pool: 'cls' },
  text: { contextLength: 77, vocabSize: 4096, width: 512, layers: 12, heads: 8, mlpRatio: 4 },
  gelu: 'none',
};

export const PRESETS = {
  /** CI: a 60-step run in well under a minute on lavapipe. */
  tiny: {
    embedDim: 64,
    vision: { imageSize: 32, patchSize: 8, width: 64, layers: 2, heads: 2, mlpRatio: 4, pool: 'mean' },
    text: { contextLength: 16, vocabSize: 4096, width: 64, layers: 2, heads: 2, mlpRatio: 4 },
    gelu: 'none',
  },
  /**
   * The default on a CPU adapter, sized so `mode run` (seed model, experts, the equal-compute
   * baseline) fits 20 minutes on two cores: about 1 s a 64-pair step on lavapipe. 32-px images in
   * 8-px patches (16 tokens), 16-token captions, head dimension 64 in both towers.
   */
  small: {
    embedDim: 128,
    vision: { imageSize: 32, patchSize: 8, width: 128, layers: 4, heads: 2, mlpRatio: 4, pool: 'mean' },
    text: { contextLength: 16, vocabSize: 4096, width: 128, layers: 4, heads: 2, mlpRatio: 4 },
    gelu: 'none',
  },
  /**
   * Wider and longer sequences (64 image tokens in 4-px patches, 32-token captions): ~86 GFLOP a
   * 64-pair step, where the matmuls are large enough to run near the adapter's best rate.
   */
  medium: {
    embedDim: 256,
    vision: { imageSize: 32, patchSize: 4, width: 192, layers: 4, heads: 3, mlpRatio: 4, pool: 'mean' },
    text: { contextLength: 32, vocabSize: 4096, width: 256, layers: 4, heads: 4, mlpRatio: 4 },
    gelu: 'none',
  },
  /** ViT-B/32 shapes, for real GPUs. */
  b32: B32,
} satisfies Record<string, ClipConfig>;

export type PresetName = keyof typeof PRESETS;

/** A preset by name, with overrides (e.g. the tokenizer's vocabulary size); a clear error for an unknown name. */
export function preset(name: string, overrides: { vocabSize?: number; eotId?: number; contextLength?: number; imageSize?: number } = {}): ClipConfig {
  const base = (PRESETS as Record<string, ClipConfig>)[name];
  if (!base) throw new Error(`unknown model preset "${name}": use one of ${Object.keys(PRESETS).join(', ')}`);
  const c: ClipConfig = structuredClone(base);
  if (overrides.vocabSize !== undefined) c.text.vocabSize = overrides.vocabSize;
  if (overrides.eotId !== undefined) c.text.eotId = overrides.eotId;
  if (overrides.contextLength !== undefined) c.text.contextLength = overrides.contextLength;
  if (overrides.imageSize !== undefined) c.vision.imageSize = overrides.imageSize;
  checkConfig(c);
  return c;
}

/** Throws naming the field when a config cannot build a model. */
export function checkConfig(c: ClipConfig): void {
  const v = c.vision;
  const t = c.text;
  const bad = (what: string) => {
    throw new RangeError(`model config: ${what}`);
  };
  for (const [k, x] of Object.entries({ embedDim: c.embedDim, ...prefixed('vision', v), ...prefixed('text', t) }))
    if (typeof x === 'number' && !(Number.isInteger(x) && x > 0)) bad(`${k} = ${x} must be a positive integer`);
  if (v.imageSize % v.patchSize) bad(`vision.imageSize ${v.imageSize} is not a multiple of vision.patchSize ${v.patchSize}`);
  if (v.width % v.heads) bad(`vision.width ${v.width} is not a multiple of vision.heads ${v.heads}`);
  if (t.width % t.heads) bad(`text.width ${t.width} is not a multiple of text.heads ${t.heads}`);
  if (v.pool !== 'mean' && v.pool !== 'cls') bad(`vision.pool "${v.pool}" must be "mean" or "cls"`);
  if (!['none', 'tanh', 'quick'].includes(c.gelu)) bad(`gelu "${c.gelu}" must be "none", "tanh" or "quick"`);
  if (t.contextLength < 2) bad(`text.contextLength ${t.contextLength} leaves no room for start and end tokens`);
  if (t.eotId !== undefined && !(Number.isInteger(t.eotId) && t.eotId >= 0 && t.eotId < t.vocabSize))
    bad(`text.eotId ${t.eotId} is not an id of the ${t.vocabSize}-token vocabulary`);
}

const prefixed = (p: string, o: object) => Object.fromEntries(Object.entries(o).map(([k, x]) => [`${p}.${k}`, x]));

/** Tokens a vision sequence holds: the patch grid, plus the class token when pooling by it. */
export const visionTokens = (v: VisionConfig) => (v.imageSize / v.patchSize) ** 2 + (v.pool === 'cls' ? 1 : 0);
