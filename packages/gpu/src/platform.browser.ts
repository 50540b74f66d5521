/**
 * platform.ts for a browser page (swapped in by the package's "browser" field): WebGPU is
 * navigator.gpu, and the kernels' WGSL comes bundled (OpenOptions.kernels), never from files.
 */
import type { Platform } from './platform-types.js';

export const platform: Platform = {
  name: 'browser',
  defaultKernelsDir: '',
  defaultBackend: 'browser',

  async webgpu() {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) throw new Error(platform.noAdapter().why);
    return gpu;
  },

  lavapipeThreads: () => null,
  adapterNotes: async (request) => ({ value: await request(), notes: [] }), // a browser keeps its own console

  readKernel: () => null,

  noAdapter: () => ({
    why: 'this browser has no WebGPU (navigator.gpu is undefined)',
    fix: 'open the page in a browser with WebGPU: Chrome or Edge 113+, Safari 26+, Firefox 141+ (Windows); headless Chromium needs --enable-unsafe-webgpu',
  }),
};
