export { PRESETS, preset, checkConfig, visionTokens, type ClipConfig, type VisionConfig, type TextConfig, type PresetName, type Activation } from './config.js';
export { MultiheadAttention, ResidualAttentionBlock, Transformer, initNormal, initZero, seeds } from './transformer.js';
export { VisionTransformer } from './vision.js';
export { TextTransformer, EOT_ID, eotPositions } from './text.js';
export { CLIP, loadClip, clipFromSafetensors, checkTokenizer, MAX_LOGIT_SCALE } from './clip.js';
export { classifierFromFeatures, zeroShotClassifier, zeroShotLogits } from './zeroshot.js';
export { parameterCounts, forwardFlops, summaryTable } from './summary.js';
