/** The runtime's view of where it runs: Node (platform.ts) or a browser (platform.browser.ts). */
export interface Platform {
  name: 'node' | 'browser';
  /** Where `.wgsl` files are read from when the kernels are not given as sources ('' in a browser). */
  defaultKernelsDir: string;
  defaultBackend: string;
  /** The WebGPU entry point: dawn.node with these instance flags, or the browser's navigator.gpu. */
  webgpu(flags: string[]): Promise<GPU>;
  /** llvmpipe's thread count and who chose it; null where there is no llvmpipe to tell. */
  lavapipeThreads(): { LP_NUM_THREADS: string; setBy: 'user' | 'mode' } | null;
  /** A kernel's WGSL and the path its diagnostics name, or null when there is no such file. */
  readKernel(dir: string, name: string): { source: string; file: string } | null;
  /**
   * Runs `request` (the adapter request) with what Dawn prints natively about the adapter held
   * back: lines matching `quirk` are returned as notes (for the adapter report), anything else is
   * passed on to stderr.
   */
  adapterNotes<T>(request: () => Promise<T>, quirk: RegExp): Promise<{ value: T; notes: string[] }>;
  /** Why no adapter opened and what to do about it. */
  noAdapter(): { why: string; fix: string };
}
