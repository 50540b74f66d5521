import { parentPort, workerData } from 'node:worker_threads';
import { Automaton } from './automaton.js';
import type { Shard, Task } from './inputs.js';
import { runTask, type ReadOptions } from './task.js';

/**
 * Worker-thread entry (runs from the built dist/ only: a worker cannot load TypeScript). The
 * automaton arrives as a SharedArrayBuffer and is used in place, not rebuilt or copied.
 */
export interface WorkerInit {
  automaton: SharedArrayBuffer;
  shards: Shard[];
  read: ReadOptions;
}

export interface TaskMessage {
  task: Task;
  /** Sample pass: the per-entry probabilities (shared), the seed, the online flag and the output path. */
  sample: { probs: SharedArrayBuffer; seed: number; online: boolean; outPath: string } | null;
}

const init = workerData as WorkerInit;
const automaton = Automaton.fromBuffer(init.automaton);
const port = parentPort!;

port.on('message', (msg: TaskMessage) => {
  const { task, sample } = msg;
  runTask(
    automaton,
    init.shards[task.shard]!,
    task,
    init.read,
    sample && { probs: new Float64Array(sample.probs), seed: sample.seed, online: sample.online, outPath: sample.outPath },
    (texts, bytes) => port.postMessage({ type: 'progress', texts, bytes }),
  ).then(
    (result) => port.postMessage({ type: 'done', result }, [result.counts.buffer as ArrayBuffer]),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
