import type { Gpu } from '@mode/gpu';
import { cpuPeer } from './cpu.js';
import { jaxPeer } from './jax.js';
import { numpyPeer } from './numpy.js';
import type { Peer } from './peer.js';
import { tfjsPeer } from './tfjs.js';

export * from './peer.js';
export { DEFAULT_SEED, INFO_NCE_SCALE, attentionInputs, infoNCEInputs, kmeansInputs, matmulInputs, matmulShapes } from './inputs.js';
export { cpuPeer, jaxPeer, numpyPeer, tfjsPeer };

/**
 * Every peer, in table order. The GPU peers share `gpu`'s dawn.node instance (each requests its
 * own device from it); pass the promise from `Gpu.open()` so a missing adapter becomes their
 * `available()` reason rather than an exception here.
 */
export function createPeers(gpu: Gpu | Promise<Gpu>): Peer[] {
  return [tfjsPeer(gpu), jaxPeer(gpu), numpyPeer(), cpuPeer()];
}
