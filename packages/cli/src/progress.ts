import cliProgress from 'cli-progress';

/** Where a progress bar draws: stderr, or in tests anything with `write` and `isTTY`. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): unknown;
}

export interface ProgressOptions {
  /** Default `process.stderr`. Nothing is ever written when it is not a terminal (CI logs). */
  stream?: ProgressStream;
  /** What `count` counts, for the rate: `texts`, `records`. */
  unit: string;
  /** How to show where the step is (default: `done/total unit`), e.g. `1234 texts, 2.1/5.0 MB`. */
  value?: (done: number, total: number, count: number) => string;
  /** Redraws per second (default 10). */
  fps?: number;
}

/**
 * One progress bar for the long commands (`mode curate`, `mode data prepare`): the step, how far
 * it is, the rate and the ETA, on stderr, redrawn in place. `active` is false when stderr is not
 * a terminal: then every method does nothing and the caller prints its own plain log lines.
 */
export interface Progress {
  readonly active: boolean;
  /** A new step (ends the previous one): `total` units of work, e.g. bytes or records. */
  start(step: string, total: number): void;
  /** `done` of the step's total; `count` units (default `done`) for the rate. */
  update(done: number, count?: number): void;
  stop(): void;
}

export function progress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY) return { active: false, start() {}, update() {}, stop() {} };
  const show = options.value ?? ((done: number, total: number) => `${done}/${total} ${options.unit}`);
  const bar = new cliProgress.SingleBar(
    {
      format: `{step} |{bar}| {percentage}% | {shown} | {rate} ${options.unit}/s | ETA {eta_formatted}`,
      stream: stream as NodeJS.WritableStream,
      hideCursor: true,
      etaBuffer: 50,
      fps: options.fps ?? 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let t0 = 0;
  let total = 0;
  let running = false;
  const payload = (done: number, count: number) => {
    const s = (performance.now() - t0) / 1000;
    return { shown: show(done, total, count), rate: s > 0 ? Math.round(count / s) : 0 };
  };
  return {
    active: true,
    start(step, stepTotal) {
      if (running) bar.stop();
      running = true;
      t0 = performance.now();
      total = stepTotal;
      bar.start(Math.max(1, stepTotal), 0, { step, ...payload(0, 0) });
    },
    update(done, count = done) {
      if (running) bar.update(done, payload(done, count));
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
