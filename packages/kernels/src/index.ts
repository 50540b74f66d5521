export { rng, freshSeed, randomArray, nanArray, relativeError, toF16Bits, fromF16Bits } from './check.js';
export { elementwise, elementwiseReference, ELEMENTWISE_OPS, type ElementwiseOp } from './elementwise.js';
export {
  matmul,
  matmulWith,
  matmulNaive,
  matmulReference,
  matmulUnsupported,
  chooseMatmul,
  autotuner,
  MATMUL_VARIANTS,
  type MatmulProblem,
  type MatmulVariantName,
} from './matmul.js';
export { Autotuner, tuneCachePath, type Candidate } from './autotune.js';
export { tuneKey, pow2Class } from './tune-key.js';
export { selftest, SELFTEST_CHECKS, type SelftestResult } from './selftest.js';
export {
  attentionForward,
  attentionBackward,
  attentionReference,
  attentionBackwardReference,
  attentionFlops,
  ATTENTION_VARIANTS,
  type AttentionProblem,
  type AttentionVariantName,
} from './attention.js';
export { infoNCE, infoNCEReference, type InfoNCEProblem, type InfoNCEInputs, type InfoNCEOutputs } from './infonce.js';
export { softmax, softmaxReference } from './softmax.js';
