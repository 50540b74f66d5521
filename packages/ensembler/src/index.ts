export { metadataWeights, combineLogits, type TaskWeights } from './weights.js';
export {
  ensembleZeroShot,
  taskWeights,
  classEmbeddings,
  concatRows,
  type EnsembleResult,
  type EnsembleOptions,
  type Accuracy,
  type Clusters,
} from './ensemble.js';
export { linearProbe, imageFeatures, concatFeatures, probeTask, type ProbeResult, type ProbeOptions } from './probe.js';
export { zeroShotTask, topK, type ZeroShotTask, type TaskLogits } from './classify.js';
