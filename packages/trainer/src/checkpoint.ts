/**
 * Checkpoints: one folder `OUT/checkpoint/` holding
 *   model.safetensors      the CLIP weights (config in the metadata) and the DeCLIP heads (`declip.*`)
 *   optimizer.safetensors  AdamW's moments (`<param>.exp_avg`, `<param>.exp_avg_sq`) and the NN queue
 *   state.json             step, data cursor, the run's flags, AdamW's hyper-parameters and steps
 * Written into `checkpoint.tmp/` and swapped in by renames (`state.json` last, as the marker of
 * a complete folder), so a kill at any moment leaves the previous checkpoint or the new one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  readSafetensorsFile,
  saveSafetensors,
  tensor,
  toFloat32,
  type AdamW,
  type AdamWState,
  type Module,
  type SafetensorsFile,
  type Tensor,
} from '@mode/autograd';
import type { CLIP } from '@mode/models';
import type { FeatureQueue } from './losses.js';

export const CHECKPOINT_FORMAT = 'mode-checkpoint-1';

/** The flags that shape a run: a resume must give the same ones. */
export interface RunFlags {
  preset: string;
  declip: string[];
  steps: number;
  batchSize: number;
  accumulate: number;
  seed: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  data: string[];
  queueSize: number;
  /** OpenCLIP's training crop scale (RandomResizedCrop) when no DeCLIP views are made. */
  cropScale?: [number, number];
  /** The tokenizer file, when not the data folder's (`--tokenizer`). */
  tokenizer?: string;
  /** A run continued from another's checkpoint (a data expert from its seed model): that folder and step. */
  from?: { run: string; step: number };
  /** The pairs trained on, when a subset of the data (e.g. `expert 2 of out/clusters`). */
  subset?: string;
  /** The model whose weights (only) started the run (`--init-weights`): its config replaces the preset's. */
  initWeights?: string;
}

export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  /** Steps completed. */
  step: number;
  /** Where the data continues: the epoch and the batches of it already used. */
  cursor: { epoch: number; batch: number };
  flags: RunFlags;
  optimizer: AdamWState;
  /** Lines of metrics.jsonl that belong to the steps done (a resume drops the rest). */
  metricsLines: number;
  /**
   * The kernel variants the run used, by autotune key: a resume pins them, so its arithmetic is
   * the same even where the autotune cache was lost or re-measured in between.
   */
  autotune: Record<string, string>;
  savedAt: string;
}

export const checkpointDir = (out: string) => join(out, 'checkpoint');

/** Which flags of a resumed run differ from the checkpoint's, as "name: saved → now" lines. */
export function flagChanges(saved: RunFlags, now: RunFlags): string[] {
  return (Object.keys(now) as (keyof RunFlags)[])
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}: ${JSON.stringify(saved[k])} → ${JSON.stringify(now[k])}`);
}

export async function saveCheckpoint(
  out: string,
  o: { model: CLIP; heads: Module; opt: AdamW; queue: FeatureQueue | null; state: Omit<CheckpointState, 'format' | 'optimizer' | 'savedAt'> },
): Promise<void> {
  const dir = checkpointDir(out);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const heads = Object.fromEntries(Object.entries(o.heads.stateDict()).map(([n, t]) => [`declip.${n}`, t]));
  await saveSafetensors(join(tmp, 'model.safetensors'), { ...o.model.stateDict(), ...heads }, { format: 'pt', config: JSON.stringify(o.model.config) });
  const { tensors, state: optimizer } = o.opt.stateDict();
  const queue: Record<string, Tensor> = o.queue?.features ? { 'nn.queue': o.queue.features } : {};
  try {
    await saveSafetensors(join(tmp, 'optimizer.safetensors'), { ...tensors, ...queue });
  } finally {
    Object.values(tensors).forEach((t) => t.dispose()); // copies of the flat moments
  }
  const state: CheckpointState = { format: CHECKPOINT_FORMAT, ...o.state, optimizer, savedAt: new Date().toISOString() };
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(state, null, 1) + '\n');
  const old = `${dir}.old`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** The newest complete checkpoint folder of OUT (or the previous one, when a kill hit the swap), or null. */
export function findCheckpoint(out: string): string | null {
  for (const d of [checkpointDir(out), `${checkpointDir(out)}.old`]) if (existsSync(join(d, 'state.json'))) return d;
  return null;
}

export function readCheckpointState(dir: string): CheckpointState {
  const path = join(dir, 'state.json');
  let s: CheckpointState;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as CheckpointState;
  } catch (e) {
    throw new Error(`${path}: not a readable checkpoint state (${(e as Error).message}). Fix: resume from an intact checkpoint, or start without --resume`);
  }
  if (s.format !== CHECKPOINT_FORMAT) throw new Error(`${path}: format ${JSON.stringify(s.format)}, expected ${CHECKPOINT_FORMAT}`);
  return s;
}

/** Loads weights, heads, optimizer state and the queue of a checkpoint folder into live objects, in place. */
export function loadCheckpoint(dir: string, o: { model: CLIP; heads: Module; opt: AdamW; queue: FeatureQueue | null }, state: CheckpointState): void {
  const file = readSafetensorsFile(join(dir, 'model.safetensors'));
  const opt = readSafetensorsFile(join(dir, 'optimizer.safetensors'));
  // The tensors of a file whose names pass `keep`, renamed by `rename`, as loadStateDict takes them (F32 bits kept).
  const values = (f: SafetensorsFile, keep: (n: string) => boolean, rename = (n: string) => n) =>
    Object.fromEntries(
      Object.entries(f.tensors)
        .filter(([n]) => keep(n))
        .map(([n, t]) => [rename(n), { shape: t.shape, data: toFloat32(t, n) }]),
    );
  o.model.loadStateDict(values(file, (n) => !n.startsWith('declip.')));
  o.heads.loadStateDict(
    values(
      file,
      (n) => n.startsWith('declip.'),
      (n) => n.slice('declip.'.length),
    ),
  );
  o.opt.loadStateDict(
    values(opt, (n) => n !== 'nn.queue'),
    state.optimizer,
  );
  const q = opt.tensors['nn.queue'];
  o.queue?.load(q ? tensor(toFloat32(q, 'nn.queue'), q.shape) : null);
}
