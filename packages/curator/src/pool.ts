import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Automaton } from './automaton.js';
import type { Shard, Task } from './inputs.js';
import { runTask, type ProgressFn, type ReadOptions, type TaskResult } from './task.js';
import type { TaskMessage, WorkerInit } from './worker.js';

/** The compiled worker entry next to this module; absent when running the TypeScript sources (tests). */
export const WORKER_URL = new URL('./worker.js', import.meta.url);
export const workersAvailable = (): boolean => existsSync(fileURLToPath(WORKER_URL));

export interface PhaseSample {
  probs: Float64Array;
  seed: number;
  online: boolean;
  outPath: (task: Task) => string;
}

/**
 * Runs tasks on `worker_threads` (one task at a time per worker, next task to the first idle
 * worker), or in the main thread when `workers` is 0 or the compiled worker is not there.
 */
export class TaskPool {
  private readonly workers: Worker[] = [];
  readonly threads: number;

  constructor(
    private readonly automaton: Automaton,
    private readonly shards: Shard[],
    private readonly read: ReadOptions,
    workers: number,
  ) {
    this.threads = workers > 0 && workersAvailable() ? workers : 0;
    if (this.threads === 0) return;
    let buffer = automaton.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) {
      const shared = new SharedArrayBuffer(buffer.byteLength);
      new Uint8Array(shared).set(new Uint8Array(buffer));
      buffer = shared;
    }
    const init: WorkerInit = { automaton: buffer, shards, read };
    for (let i = 0; i < this.threads; i++) this.workers.push(new Worker(WORKER_URL, { workerData: init }));
  }

  /** Runs `tasks`; `onResult` sees each result as it completes (in completion order). */
  async run(tasks: Task[], sample: PhaseSample | null, onResult: (task: Task, r: TaskResult) => void, progress: ProgressFn): Promise<void> {
    if (this.threads === 0) {
      for (const task of tasks) {
        const r = await runTask(
          this.automaton,
          this.shards[task.shard]!,
          task,
          this.read,
          sample && { probs: sample.probs, seed: sample.seed, online: sample.online, outPath: sample.outPath(task) },
          progress,
        );
        onResult(task, r);
      }
      return;
    }
    let probs: SharedArrayBuffer | null = null;
    if (sample) {
      probs = new SharedArrayBuffer(sample.probs.byteLength);
      new Float64Array(probs).set(sample.probs);
    }
    let next = 0;
    const one = (w: Worker): Promise<void> =>
      new Promise((resolve, reject) => {
        const go = () => {
          if (next >= tasks.length) {
            w.off('message', onMessage);
            w.off('error', onError);
            resolve();
            return;
          }
          const task = tasks[next++]!;
          current = task;
          const msg: TaskMessage = {
            task,
            sample: sample && { probs: probs!, seed: sample.seed, online: sample.online, outPath: sample.outPath(task) },
          };
          w.postMessage(msg);
        };
        let current: Task | null = null;
        const onMessage = (m: { type: string; texts: number; bytes: number; result: TaskResult; message: string }) => {
          if (m.type === 'progress') progress(m.texts, m.bytes);
          else if (m.type === 'done') {
            onResult(current!, m.result);
            go();
          } else if (m.type === 'error') {
            w.off('message', onMessage);
            w.off('error', onError);
            reject(new Error(`worker failed on task ${current?.id}: ${m.message}`));
          }
        };
        const onError = (e: Error) => reject(e);
        w.on('message', onMessage);
        w.on('error', onError);
        go();
      });
    await Promise.all(this.workers.map(one));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
