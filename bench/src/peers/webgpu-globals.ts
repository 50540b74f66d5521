import type { Gpu } from '@mode/gpu';

/**
 * Makes the dawn.node `GPU` instance that `@mode/gpu` opened look like a browser's
 * `navigator.gpu`, with the WebGPU constants (GPUBufferUsage, …) as globals: tfjs-backend-webgpu
 * and jax-js look for exactly these, and tfjs decides at import time, so call this before
 * importing either. Both peers then request their own device from this one instance.
 */
export async function installNavigatorGpu(gpu: Gpu): Promise<void> {
  const { globals } = await import('webgpu');
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const current = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (current?.gpu === gpu.instance) return;
  if (current?.gpu) throw new Error('navigator.gpu is already set to another WebGPU instance: open one Gpu per process for the peers');
  // Node 21+ defines a read-only `navigator`: replace it rather than assign to it.
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...(current ?? {}), gpu: gpu.instance, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
}
