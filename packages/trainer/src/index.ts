export { defaultMix } from '@mode/data';
export { train, HOLDOUT, NonFiniteError, type TrainOptions, type TrainResult, type StepReport } from './train.js';
export { stepLosses, lossWeights, parseDeclip, FeatureQueue, DECLIP_TERMS, type DeclipTerm, type LossTerm, type StepInputs } from './losses.js';
export { DeclipHeads, SimSiamHeads, MlmHead } from './heads.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  findCheckpoint,
  readCheckpointState,
  flagChanges,
  checkpointDir,
  CHECKPOINT_FORMAT,
  type CheckpointState,
  type RunFlags,
} from './checkpoint.js';
export { zeroShot, retrieval, recalls, evaluate, EVAL_TASKS, type EvalTask, type ZeroShotResult, type RetrievalResult } from './eval.js';
