export {
  PRESETS,
  preset,
  checkConfig,
  visionTokens,
  type ClipConfig,
  type VisionConfig,
  type TextConfig,
  type PresetName,
  type Activation,
  type Preprocess,
  OPENAI_PREPROCESS,
} from './config.js';
export { MultiheadAttention, ResidualAttentionBlock, Transformer, initNormal, initZero, seeds } from './transformer.js';
export { VisionTransformer } from './vision.js';
export { TextTransformer, EOT_ID, eotPositions } from './text.js';
export { CLIP, clipFromSafetensors, checkTokenizer, MAX_LOGIT_SCALE } from './clip.js';
export { loadClip } from './load.js';
export {
  configFromOpenClip,
  openClipConfigOf,
  loadOpenClip,
  saveOpenClip,
  isOpenClipFolder,
  OPENAI_TOKENIZER,
  OPENCLIP_CONFIG,
  OPENCLIP_WEIGHTS,
} from './openclip.js';
export { classifierFromFeatures, zeroShotClassifier, zeroShotLogits } from './zeroshot.js';
export { parameterCounts, forwardFlops, summaryTable } from './summary.js';
