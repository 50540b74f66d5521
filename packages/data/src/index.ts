export { DataError, BadRecords, report, type BadRecord } from './errors.js';
export { Rng, mixSeed, hashString } from './rng.js';
export { ShardWriter, readShard, readShards, listShards, splitName, safeKey, type RawSample, type ShardWriterOptions, type ReadOptions } from './shards.js';
export {
  expandBraces,
  expandGlob,
  shardsOf,
  splitSpecs,
  firstSampleMembers,
  tarMembers,
  countSamples,
  type TarMember,
  readTemplates,
  readClassNames,
  resolveShardSet,
  labelFiles,
  classFolderTree,
  folderSamples,
  type ShardSet,
  type ClassFolderTree,
} from './patterns.js';
export {
  indexShard,
  writeIndex,
  readIndex,
  readIndexedSample,
  indexedSample,
  defaultIndexDir,
  INDEX_FORMAT,
  type ShardIndex,
  type IndexedSample,
} from './shard-index.js';
export { decodeImage, decodeRegion, imageMember, jpegHeader, IMAGE_EXTENSIONS, type Fit, type Box, type ImageHeader } from './decode.js';
export { toPair, toClass, isLabelled, decodeUtf8, firstInvalidUtf8, type PairRecord, type ClassRecord } from './records.js';
export { decodePng, encodePng, type RgbaImage } from './png.js';
export {
  toFloat,
  toBytes,
  resample,
  resize,
  normalizeCHW,
  toCHW,
  evalImage,
  resizeBicubic,
  coverGeometry,
  resizeToCHW,
  type Window,
  CLIP_MEAN,
  CLIP_STD,
  type FloatImage,
} from './image.js';
export {
  augmentView,
  cropBox,
  randomResizedCrop,
  colorJitter,
  grayscale,
  gaussianBlur,
  hflip,
  adjustBrightness,
  adjustContrast,
  adjustSaturation,
  adjustHue,
  DECLIP_AUGMENT,
  type AugmentConfig,
} from './augment.js';
export { IGNORE_INDEX } from './labels.js';
export { Tokenizer, maskTokens, checksum, SPECIAL, SPECIAL_TOKENS, type TokenizerJSON, type TrainOptions } from './tokenizer.js';
export { OpenAiTokenizer, OPENAI_MERGES, type OpenAiTokenizerJSON } from './openai-tokenizer.js';
export { tokenizerFromJSON, type TextTokenizer, type AnyTokenizerJSON } from './tokenizers.js';
export { eda, synonymReplacement, randomSwap, randomDeletion, EDA_OPS, type EdaOp, type EdaOptions } from './eda.js';
export { loadWordNet, loadFrequencies, buildSynonymTable, wordnetDir, type WordNet, type SynonymTable, type SynonymTableOptions } from './wordnet.js';
export {
  DatasetBuilder,
  readDatasetInfo,
  datasetShards,
  DATASET_FORMAT,
  type DatasetInfo,
  type SplitInfo,
  type PairSample,
  type LabelledSample,
} from './dataset.js';
export { readManifest, importManifest, loadImage, type ManifestRecord, type ImportOptions } from './manifest.js';
export { BatchBuilder, transferList, DEFAULT_SPEC, type Batch, type BatchJob, type BatchSpec, type JobSample } from './batch.js';
export {
  DataLoader,
  openPairs,
  openClassification,
  openMix,
  mixCaptions,
  mixCount,
  defaultMix,
  inFraction,
  copies,
  templateCaption,
  defaultWorkerUrl,
  type CaptionRecord,
  type LoaderOptions,
  type OpenOptions,
  type ShardOptions,
  type MixSource,
} from './loader.js';
export {
  prepare,
  defaultDataDir,
  loadTokenizer,
  readTokenizer,
  tokenizerFor,
  loadSynonyms,
  folderBytes,
  SOURCES,
  IMPORTER_VERSION,
  type SourceName,
  type PrepareOptions,
  type PrepareResult,
  type ProgressEvent,
} from './prepare.js';
export { emojiEntries, emojiPairs, emojiCaption, loadEmojiSheet, cropEmoji, type EmojiEntry } from './sources/emoji.js';
export {
  scanClipart,
  renderClipart,
  clipartMeta,
  clipartCaption,
  fileWords,
  listSvgs,
  decodeXml,
  type ClipartEntry,
  type ClipartMeta,
} from './sources/clipart.js';
export { openmojiItems, renderOpenmoji, OPENMOJI_TEMPLATES, type OpenMojiItem } from './sources/openmoji.js';
export { parseIdx, readIdxSplit, idxSamples, mnistSet, fashionMnistSet, type IdxArray, type IdxSet } from './sources/idx.js';
export { renderSvg, fixSvgNamespace, isBlank } from './sources/render.js';
export { OPENCLIPART_DIR, FASHION_MNIST_DIR, packageDir } from './sources/paths.js';
export { renderInOrder, renderTask, renderWorkerUrl, type RenderTask, type RenderResult } from './render-pool.js';
export { writeNoisyPool, zipfShares, FASHION_POOL_WORDS, type NoisyPoolOptions, type PoolClass } from './noisy-pool.js';
