import type { SuiteResults } from './results.js';

/** Options every suite takes from `mode bench <suite>`. */
export interface BenchOptions {
  /** Write a Chrome trace of the run's dispatches here. */
  trace?: string;
  /** Fewer sizes and shorter timing, for a quick look (and for tests). */
  quick?: boolean;
  /** Re-measure autotuned choices instead of using the cache. */
  retune?: boolean;
  /** Only the sizes the kernels' speed bars are set at (issue 11), for `mode bench kernels`. */
  headline?: boolean;
  /** `mode bench loader`: the user's own shards (folder, brace pattern or glob) for the real-data rows. */
  data?: string;
}

export interface Suite {
  description: string;
  /** Runs the suite, prints its table and writes the trace if asked; the caller writes the results (writeResults). */
  run(options: BenchOptions): Promise<SuiteResults>;
}

/** Every suite `mode bench` knows, by name, loaded on demand: add a line per suite module, e.g.
 *  `matmul: async () => (await import('./matmul.js')).suite`. */
export const SUITES: Record<string, () => Promise<Suite>> = {
  matmul: async () => (await import('./matmul.js')).suite,
  attention: async () => (await import('./attention.js')).suite,
  loader: async () => (await import('./loader.js')).suite,
  curator: async () => (await import('./curator.js')).suite,
  kmeans: async () => (await import('./kmeans.js')).suite,
  infonce: async () => (await import('./infonce.js')).suite,
  kernels: async () => (await import('./kernels.js')).suite,
  train: async () => (await import('./train.js')).suite,
  peak: async () => (await import('./peak.js')).suite,
};
