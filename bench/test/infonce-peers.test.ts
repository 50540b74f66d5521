import { describe, expect, it } from 'vitest';
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

  it('does not run a GPU peer whose B×B logits exceed the binding limit, and says so', async () => {
    const { peer, calls } = fakePeer(true, 1);
    expect(await peerRatio(peer, 8192, false, 1, new Map(), MIB_128)).toBe('cannot run: its B×B logits (256 MiB) exceed the 128 MiB storage binding limit');
    expect(calls.prepared).toBe(0);
    // A CPU peer has no such limit; 4096² × 4 B = 64 MiB fits the GPU peer.
    expect(await peerRatio(fakePeer(false, 2).peer, 8192, false, 1, new Map(), MIB_128)).toBe(2);
    expect(await peerRatio(fakePeer(true, 3).peer, 4096, false, 1, new Map(), MIB_128)).toBe(3);
  });
});
