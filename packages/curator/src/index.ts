export { Automaton, type AutomatonOptions, type BuildInfo } from './automaton.js';
export { NaiveMatcher } from './naive.js';
export { spaceText, padEntry, isNoSpaceScript, WRAPPED_MARKS, SPACED_CHARS } from './spacing.js';
export { entryProbabilities, keepProbability, keepPair, keepAtLoad } from './balance.js';
export { pairUniform, hashString, mix32, rng } from './random.js';
export {
  buildMetadata,
  numberEntries,
  wordnetEntries,
  subtlexEntries,
  countCorpus,
  frequentUnigrams,
  pmiBigrams,
  pmi,
  titleEntries,
  isExcluded,
  readMetadata,
  writeMetadata,
  defaultMetadata,
  cacheDir,
  type MetadataOptions,
  type MetadataBuild,
  type CorpusCounts,
} from './metadata.js';
export { jsonErrorAt, lineColumn, type JsonErrorPosition } from './json-error.js';
export { expandPool, describeShards, detectFormat, planTasks, type Format, type Shard, type Task } from './inputs.js';
export { runTask, type ReadOptions, type SampleOptions, type TaskResult, type Malformed } from './task.js';
export { TaskPool, workersAvailable, WORKER_URL } from './pool.js';
export {
  curate,
  curateStep,
  type CurateStep,
  type CurateStepResult,
  type CurateOptions,
  type CurateResult,
  type CurateStats,
  type CurateProgress,
} from './curate.js';
export { longTailSvg, distributionTable, topEntries, sortedCounts } from './report.js';
export { emojibasePairs, writeEmojibasePool } from './emojibase.js';
export { syntheticWords, syntheticEntries, syntheticCaptions } from './synthetic.js';
