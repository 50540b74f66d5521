/** Worker-thread entry for `renderInOrder` (compiled to dist/render-worker.js). */
import { parentPort } from 'node:worker_threads';
import { DataError } from './errors.js';
import { renderTask, type RenderTask } from './render-pool.js';

parentPort!.on('message', ({ id, task }: { id: number; task: RenderTask }) => {
  try {
    const sample = renderTask(task);
    // A copy of exactly the PNG's bytes: small Buffers share Node's pool, which must not be transferred.
    const png = new Uint8Array(sample.png);
    parentPort!.postMessage({ id, sample: { ...sample, png } }, [png.buffer]);
  } catch (e) {
    if (e instanceof DataError) parentPort!.postMessage({ id, error: e.toJSON() });
    else parentPort!.postMessage({ id, error: { file: '<render worker>', record: id, reason: e instanceof Error ? (e.stack ?? e.message) : String(e) } });
  }
});
