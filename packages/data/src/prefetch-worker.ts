/**
 * Worker-thread entry for the loader: builds batches off the main thread. Runs only from
 * the compiled `dist/prefetch-worker.js` (a worker cannot load TypeScript); from sources the
 * loader builds batches in-process instead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ArrayPool, BatchBuilder, transferList, type BatchJob, type BatchSpec } from './batch.js';
import { DataError } from './errors.js';

const builder = new BatchBuilder((workerData as { spec: BatchSpec }).spec, new ArrayPool());

parentPort!.on('message', async (msg: { id: number; job: BatchJob; spare: ArrayBuffer[] }) => {
  builder.pool.give(msg.spare); // batches' buffers the consumer released, for reuse
  try {
    const batch = await builder.build(msg.job);
    parentPort!.postMessage({ id: msg.id, batch }, transferList(batch));
  } catch (e) {
    parentPort!.postMessage({
      id: msg.id,
      error: e instanceof DataError ? { data: e.toJSON() } : { message: e instanceof Error ? (e.stack ?? e.message) : String(e) },
    });
  }
});
