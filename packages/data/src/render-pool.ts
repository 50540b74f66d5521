/**
 * Rasterising thousands of SVGs is the slow part of `prepare`: this spreads it over worker
 * threads (the compiled `dist/render-worker.js`; in-process when running from sources) and
 * hands the results back in input order, so the shards are the same whatever the thread count.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LabelledSample, PairSample } from './dataset.js';
import { DataError } from './errors.js';
import { renderClipart, type ClipartEntry } from './sources/clipart.js';
import { renderOpenmoji, type OpenMojiItem } from './sources/openmoji.js';

export type RenderTask = { kind: 'clipart'; item: ClipartEntry; size: number } | { kind: 'openmoji'; item: OpenMojiItem; size: number };
export type RenderResult = { sample: PairSample | LabelledSample; error?: undefined } | { error: DataError; sample?: undefined };

export function renderTask(task: RenderTask): PairSample | LabelledSample {
  return task.kind === 'clipart' ? renderClipart(task.item, task.size) : renderOpenmoji(task.item, task.size);
}

interface Reply {
  id: number;
  sample?: PairSample | LabelledSample;
  error?: { file: string; record: string | number | undefined; reason: string };
  crash?: string;
}

/** The compiled worker entry beside this module, or undefined when running from TypeScript sources. */
export function renderWorkerUrl(): URL | undefined {
  const url = new URL('./render-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : undefined;
}

/** Renders every task, `threads` at a time (default: one per core, at most 4), yielding results in order. */
export async function* renderInOrder(
  tasks: readonly RenderTask[],
  threads = Math.min(4, availableParallelism()),
  url = renderWorkerUrl(),
): AsyncGenerator<RenderResult> {
  if (!url || threads < 1 || tasks.length < 64) {
    for (const t of tasks) {
      try {
        yield { sample: renderTask(t) };
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        yield { error: e };
      }
    }
    return;
  }
  const waiting = new Map<number, (r: Reply) => void>();
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(url);
    w.on('message', (r: Reply) => {
      waiting.get(r.id)?.(r);
      waiting.delete(r.id);
    });
    w.on('error', (e) => {
      for (const resolve of waiting.values()) resolve({ id: -1, crash: e.message });
      waiting.clear();
    });
    return w;
  });
  const send = (id: number) =>
    new Promise<Reply>((resolve) => {
      waiting.set(id, resolve);
      workers[id % threads]!.postMessage({ id, task: tasks[id] });
    });
  const depth = threads * 8;
  const inFlight: Promise<Reply>[] = [];
  let next = 0;
  try {
    while (next < tasks.length && inFlight.length < depth) inFlight.push(send(next++));
    while (inFlight.length) {
      const r = await inFlight.shift()!;
      if (next < tasks.length) inFlight.push(send(next++));
      if (r.crash !== undefined) throw new Error(`render worker crashed: ${r.crash}`);
      if (r.error) yield { error: DataError.fromJSON(r.error) };
      else yield { sample: r.sample! };
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
