export { rng, freshSeed, randomArray, nanArray, relativeError, toF16Bits, fromF16Bits } from './check.js';
export {
  matmul,
  matmulWith,
  matmulReference,
  matmulReferenceWithRowSums,
  matmulUnsupported,
  chooseMatmul,
  autotuner,
  MATMUL_VARIANTS,
  type MatmulProblem,
  type MatmulVariantName,
} from './matmul.js';
export { Autotuner, tuneCachePath, type Candidate } from './autotune.js';
export {
  kmeansAssign,
  kmeansAssignWith,
  kmeansAssignUnsupported,
  kmeansAssignReference,
  kmeansTopK,
  kmeansTopKUnsupported,
  kmeansTopKReference,
  KMEANS_TOPK,
  KMEANS_MASKED_NORM,
  KMEANS_NO_CENTRE,
  kmeansNorms,
  kmeansChunkRows,
  kmeansTuneRows,
  chooseKmeans,
  checkAssignment,
  kmeansUpdate,
  recordKmeansUpdate,
  kmeansUpdateReference,
  emptyClusters,
  KMEANS_ASSIGN_VARIANTS,
  KMEANS_TOLERANCE,
  type KmeansProblem,
  type KmeansUpdateProblem,
  type KmeansAssignOut,
  type KmeansUpdateOut,
  type KmeansAssignVariantName,
} from './kmeans.js';
export { tuneKey, pow2Class } from './tune-key.js';
export {
  selftest,
  selftestTable,
  selftestSummary,
  SELFTEST_CHECKS,
  type SelftestCheck,
  type SelftestOptions,
  type SelftestResult,
  type SelftestStatus,
} from './selftest.js';
export {
  attentionForward,
  attentionBackward,
  attentionReference,
  attentionBackwardReference,
  attentionFlops,
  attentionLayouts,
  attentionSpan,
  attentionTuneHeads,
  chooseAttention,
  fusedQKVLayout,
  ATTENTION_VARIANTS,
  type AttentionLayout,
  type AttentionProblem,
  type AttentionTensor,
  type AttentionVariantName,
} from './attention.js';
export {
  infoNCE,
  infoNCEReference,
  infoNCEUnsupported,
  infoNCEFlops,
  chunkColumns,
  chooseInfoNCE,
  INFONCE_VARIANTS,
  type InfoNCEProblem,
  type InfoNCEInputs,
  type InfoNCEOutputs,
  type InfoNCEVariantName,
} from './infonce.js';
export { softmax, softmaxReference } from './softmax.js';
// Kernels of the autograd (@mode/autograd): strided broadcasting ops, unary ops, reductions,
// normalisation, (log-)softmax and cross-entropy, embedding, dropout, AdamW.
export { strided, stridedReference, contiguousStrides, coalesce, STRIDED_OPS, type StridedOp, type StridedView, type StridedProblem } from './strided.js';
export {
  unary,
  fill,
  unaryReference,
  geluReference,
  geluErfReference,
  quickGeluReference,
  quickGeluGradReference,
  erfReference,
  UNARY_OPS,
  type UnaryOp,
  type UnaryParams,
} from './unary.js';
export { reduce, reduceReference, reduceVariant, REDUCE_OPS, type ReduceOp, type ReduceProblem, type ReduceVariant } from './reduce.js';
export {
  layerNormAffine,
  layerNormAffineBackward,
  layerNormAffineBackwardReference,
  layerNormAffineReference,
  normalize,
  normalizeBackward,
  normalizeReference,
  normalizeBackwardReference,
  type LayerNormProblem,
  type NormalizeProblem,
} from './normalize.js';
export {
  logSoftmax,
  softmaxBackward,
  crossEntropy,
  crossEntropyBackward,
  logSoftmaxReference,
  crossEntropyReference,
  softmaxBackwardReference,
  crossEntropyBackwardReference,
  IGNORE_TARGET,
  type RowsProblem,
} from './logsoftmax.js';
export {
  embedding,
  embeddingBackward,
  embeddingPlan,
  embeddingReference,
  embeddingBackwardReference,
  checkIndices,
  type EmbeddingProblem,
} from './embedding.js';
export { dropout, dropoutReference, dropoutThreshold, type DropoutProblem } from './dropout.js';
export { adamw, adamwReference, type AdamWParams } from './adamw.js';
