export { rng, freshSeed, randomArray, nanArray, relativeError } from './check.js';
export { elementwise, elementwiseReference, ELEMENTWISE_OPS, type ElementwiseOp } from './elementwise.js';
export { matmulNaive, matmulReference } from './matmul.js';
export { selftest, SELFTEST_CHECKS, type SelftestResult } from './selftest.js';
