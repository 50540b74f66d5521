/**
 * The label of a position that no loss counts (MLM labels where no token was chosen): PyTorch's
 * `ignore_index` default, which `@mode/autograd`'s crossEntropy also takes by default.
 *
 * It lives here, in a module that imports nothing, because data is CPU-only and may not depend on
 * the GPU packages, while the autograd can import this file (`@mode/data/labels`) without loading
 * the rest of the data package (image decoders, resvg, WordNet).
 */
export const IGNORE_INDEX = -100;
