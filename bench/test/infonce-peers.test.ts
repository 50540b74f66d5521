import { describe, expect, it } from 'vitest';
import { ClockMismatchError, gpuTimestamps, wall } from '../src/clock.js';
import { peerRatio } from '../src/infonce.js';
import type { Peer, PreparedOp } from '../src/peers/index.js';

/** A peer whose op takes `seconds` a call (self-timed), counting how often it was prepared. */
function fakePeer(onGpu: boolean, seconds: number) {
  const calls = { prepared: 0 };
  const op: PreparedOp = {
    run: async () => {},
    selfTimed: async () => ({ median: seconds }) as never,
    read: async () => new Float32Array(0),
    dispose: async () => {},
  } as PreparedOp;
  const peer = {
    name: onGpu ? 'gpu-peer' : 'cpu-peer',
    syncNote: '',
    onGpu,
    available: async () => ({ ok: true }),
    infoNCE: async () => (calls.prepared++, op),
  } as unknown as Peer;
  return { peer, calls };
}

describe('InfoNCE bench: peer ratios', () => {
  const MIB_128 = 2 ** 27;
  const CEILING = 1e12;

  it('does not run a GPU peer whose B×B logits exceed the binding limit, and says so', async () => {
    const { peer, calls } = fakePeer(true, 1);
    expect(await peerRatio(peer, 8192, false, wall(1), new Map(), MIB_128, CEILING)).toBe(
      'cannot run: its B×B logits (256 MiB) exceed the 128 MiB storage binding limit',
    );
    expect(calls.prepared).toBe(0);
    // A CPU peer has no such limit; 4096² × 4 B = 64 MiB fits the GPU peer.
    expect(await peerRatio(fakePeer(false, 2).peer, 8192, false, wall(1), new Map(), MIB_128, CEILING)).toBe(2);
    expect(await peerRatio(fakePeer(true, 3).peer, 4096, false, wall(1), new Map(), MIB_128, CEILING)).toBe(3);
  });

  it('compares the peer’s wall time with ours only on the same clock: a GPU-timestamp time of ours is refused', async () => {
    const { peer, calls } = fakePeer(false, 2);
    await expect(peerRatio(peer, 1024, false, gpuTimestamps(1), new Map(), MIB_128, CEILING)).rejects.toThrow(ClockMismatchError);
    expect(calls.prepared).toBe(0);
  });

  it('calls a peer faster than the adapter’s ceiling implausible', async () => {
    // Forward at B = 1024, d = 512: 2·B²·d ≈ 1.07e9 FLOPs; in 1 ms that is 1.07e12 FLOP/s.
    expect(await peerRatio(fakePeer(false, 1e-3).peer, 1024, false, wall(1), new Map(), MIB_128, 1e12)).toBe('implausible (1.0 ms a call)');
    expect(await peerRatio(fakePeer(false, 1e-3).peer, 1024, false, wall(1), new Map(), MIB_128, 1e15)).toBeCloseTo(1e-3);
  });
});
