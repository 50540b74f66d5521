import { Gpu, sizeClass, type OpenOptions } from '@mode/gpu';

/**
 * The device the tensors live on, with one ordered queue of GPU work.
 *
 * Ops are synchronous calls (`x.matmul(w).relu()`), but recording a dispatch may first have to
 * compile a pipeline or autotune a matmul, which is asynchronous. So each op enqueues its
 * recording here and the queue runs the recordings one after another, in program order; `read()`
 * and `sync()` wait for the queue. Buffers are acquired from the pool at op time (a tensor has
 * its buffer from the start), but released through the queue: the pool then only hands out a
 * buffer once every op that used it has been recorded, so whoever reuses it (a later op, or a
 * kernel's own temporary acquired while it is recorded) runs after them on the GPU. Releasing at
 * once is not safe: a kernel recorded late could take, as a temporary, a buffer that the very
 * dispatch it records still reads. Uploads go through the queue for the same reason.
 *
 * Between the two, a buffer released at op time may be taken again at op time (`recycled`):
 * every user of its old contents was queued before the release, every user of the new ones
 * after, so the queue order is the GPU order. Each release has its own token, so that a buffer
 * taken back and released again goes to the pool only at its last release's place in the queue.
 */
export class Engine {
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | null = null;

  constructor(
    readonly gpu: Gpu,
    /** Whether destroy() also destroys the Gpu (it was opened by init()). */
    private readonly ownsGpu = false,
  ) {}

  /** Queues GPU work; an error is kept and thrown by the next flush(), named by `label`. */
  enqueue(label: string, record: () => Promise<void> | void): void {
    this.tail = this.tail.then(async () => {
      if (this.failure) return; // after a failure nothing more is recorded
      try {
        await record();
      } catch (e) {
        this.failure = new Error(`${label}: ${(e as Error).message}`, { cause: e });
      }
    });
  }

  /** Waits until every queued op is recorded; throws the first error of the queue. */
  async flush(): Promise<void> {
    await this.tail;
    if (this.failure) {
      const e = this.failure;
      this.failure = null;
      throw e;
    }
  }

  /** Records everything queued and waits for the GPU to finish it (this also recycles uniform buffers). */
  async sync(): Promise<void> {
    await this.flush();
    await this.gpu.sync();
  }

  /** Buffers released at op time whose queued release has not run yet, by size class. */
  private readonly recycled = new Map<number, { buffer: GPUBuffer }[]>();

  alloc(bytes: number, label: string): GPUBuffer {
    const token = this.recycled.get(sizeClass(Math.max(4, bytes)))?.pop();
    return token ? token.buffer : this.gpu.buffer(Math.max(4, bytes), label);
  }

  release(buffer: GPUBuffer): void {
    const token = { buffer };
    const list = this.recycled.get(buffer.size) ?? [];
    this.recycled.set(buffer.size, list);
    list.push(token);
    this.enqueue('release', () => {
      const i = list.indexOf(token);
      if (i < 0) return; // taken back by alloc(): its new owner releases it
      list.splice(i, 1);
      this.gpu.release(buffer);
    });
  }

  upload(data: Float32Array | Uint32Array, label: string): GPUBuffer {
    const buffer = this.alloc(data.byteLength, label);
    this.enqueue(`upload ${label}`, () => this.gpu.write(buffer, data));
    return buffer;
  }

  async read<T extends Float32Array | Uint32Array>(
    buffer: GPUBuffer,
    type: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
    length: number,
  ): Promise<T> {
    await this.flush();
    return this.gpu.read(buffer, type, length);
  }

  async destroy(): Promise<void> {
    await this.tail;
    if (this.ownsGpu) this.gpu.destroy();
    if (current === this) current = null;
  }
}

let current: Engine | null = null;

/**
 * Opens the device every creation function uses (or adopts `gpu`); call once before making tensors.
 * Returns the engine; `await engine.destroy()` at the end lets the process exit.
 */
export async function init(gpu?: Gpu | OpenOptions): Promise<Engine> {
  if (current) await current.destroy();
  current = gpu instanceof Gpu ? new Engine(gpu) : new Engine(await Gpu.open(gpu ?? {}), true);
  return current;
}

/** The engine set by init(). */
export function engine(): Engine {
  if (!current) throw new Error('@mode/autograd: no device yet; call `await init()` (or init(gpu)) before creating tensors');
  return current;
}
