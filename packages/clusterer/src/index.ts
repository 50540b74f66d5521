export {
  EmbeddingsWriter,
  readEmbeddingsManifest,
  readEmbeddingShard,
  importNpy,
  checkVectors,
  normalizeRows,
  ClusterInputError,
  EMBEDDINGS_FORMAT,
  type EmbeddingRow,
  type EmbeddingsManifest,
  type EmbeddingShard,
  type EmbeddingShardInfo,
} from './embeddings.js';
export { embedCaptions, clipTextEncoder, type TextEncoder, type EmbedOptions } from './embed.js';
export { fitKmeans, kmeansPlusPlus, nearestCentre, type FitOptions, type FitResult, type IterationReport } from './kmeans.js';
export { balancedAssign, nearestCandidates, argsortFloat, rowNorms, BALANCED_CANDIDATES } from './balanced.js';
export { fitClusters, writeClusters, readClusters, mergeClusters, CLUSTERS_FORMAT, type ClusterOptions, type Clusters } from './cluster.js';
export {
  assignPairs,
  extraExperts,
  expertKeys,
  ASSIGNMENT_FORMAT,
  EXTRA_FRACTION,
  type AssignedPair,
  type AssignmentManifest,
  type AssignOptions,
  type AssignResult,
} from './assign.js';
export { clusterReport, reportMarkdown, writeReport, captionWords, type ClusterReport, type LevelReport } from './report.js';
