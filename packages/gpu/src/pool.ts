/**
 * Buffers grouped by usage and size class, reused instead of re-created: creating a GPU
 * buffer costs far more than handing back one that is already there.
 *
 * Size classes: powers of two below 4 KiB, then quarter steps between powers of two
 * (4, 5, 6, 7, 8, 10, 12, 14, 16 KiB, …), so a buffer wastes at most 25% of its size.
 */
export interface PoolStats {
  /** Bytes in buffers handed out and not yet released (size-class bytes). */
  liveBytes: number;
  peakLiveBytes: number;
  /** Bytes held in the free lists, ready for reuse. */
  freeBytes: number;
  /** `createBuffer` calls made by the pool. */
  allocations: number;
  /** Requests served from a free list. */
  poolHits: number;
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
}

export function sizeClass(bytes: number): number {
  const n = Math.max(16, Math.ceil(bytes));
  if (n <= 4096) return 2 ** Math.ceil(Math.log2(n));
  const quarter = 2 ** Math.floor(Math.log2(n)) / 4;
  return Math.ceil(n / quarter) * quarter;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  /** Live buffers: their free-list key and the byte size asked for (≤ the class size). */
  private readonly live = new Map<GPUBuffer, { key: string; bytes: number }>();
  private stats_: PoolStats = { liveBytes: 0, peakLiveBytes: 0, freeBytes: 0, allocations: 0, poolHits: 0, liveBuffers: 0 };

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` bytes with exactly `usage`; its contents are undefined. */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    let buffer = this.free.get(key)?.pop();
    if (buffer) {
      this.stats_.poolHits++;
      this.stats_.freeBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage, label: label ?? `pool ${size}B` });
      this.stats_.allocations++;
    }
    this.live.set(buffer, { key, bytes });
    this.stats_.liveBytes += size;
    this.stats_.liveBuffers++;
    this.stats_.peakLiveBytes = Math.max(this.stats_.peakLiveBytes, this.stats_.liveBytes);
    return buffer;
  }

  /** Hands a buffer back for reuse. The caller must not use it afterwards. */
  release(buffer: GPUBuffer): void {
    const key = this.live.get(buffer)?.key;
    if (key === undefined) throw new Error(`BufferPool.release: buffer "${buffer.label}" was not acquired from this pool or was already released`);
    this.live.delete(buffer);
    const list = this.free.get(key) ?? [];
    list.push(buffer);
    this.free.set(key, list);
    this.stats_.liveBytes -= buffer.size;
    this.stats_.liveBuffers--;
    this.stats_.freeBytes += buffer.size;
  }

  /** The byte size asked for when a live buffer was acquired (its `size` is the class size). */
  requestedBytes(buffer: GPUBuffer): number | undefined {
    return this.live.get(buffer)?.bytes;
  }

  /** Destroys every free buffer (live ones stay). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats_.freeBytes = 0;
  }

  stats(): PoolStats {
    return { ...this.stats_ };
  }

  resetPeak(): void {
    this.stats_.peakLiveBytes = this.stats_.liveBytes;
  }
}
