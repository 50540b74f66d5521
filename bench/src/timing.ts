import Benchmark from 'benchmark';

export interface Timing {
  /** Median seconds per call over the samples benchmark.js took. */
  median: number;
  mean: number;
  /** Relative margin of error of the mean, in percent (benchmark.js's `rme`). */
  rme: number;
  samples: number;
}

/**
 * Times an async operation with benchmark.js (deferred mode): warm-up, then samples until
 * `maxTime` seconds, with its statistics. The first call also compiles shaders: benchmark.js's
 * own warm-up cycle absorbs it.
 */
export function timeAsync(fn: () => Promise<unknown>, options: { maxTime?: number; minSamples?: number } = {}): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark({
      defer: true,
      async: true,
      maxTime: options.maxTime ?? 2,
      minSamples: options.minSamples ?? 5,
      fn: (deferred: { resolve(): void }) => {
        fn().then(
          () => deferred.resolve(),
          (e: unknown) => reject(e),
        );
      },
      onComplete() {
        const sample = [...bench.stats.sample].sort((a, b) => a - b);
        const mid = sample.length >> 1;
        const median = sample.length % 2 ? sample[mid]! : (sample[mid - 1]! + sample[mid]!) / 2;
        resolve({ median, mean: bench.stats.mean, rme: bench.stats.rme, samples: sample.length });
      },
      onError(event: { target: { error: unknown } }) {
        reject(event.target.error);
      },
    } as Benchmark.Options);
    bench.run();
  });
}
