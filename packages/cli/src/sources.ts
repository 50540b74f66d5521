/** Flag parsing the data commands share. */

export const int = (name: string, s: string) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw Object.assign(new Error(`--${name} must be a non-negative integer, got "${s}"`), { userFacing: true });
  return n;
};

/**
 * `DIR`, `DIR:SPLIT`, `DIR@FRACTION` or `DIR:SPLIT@FRACTION`, where DIR is a data set folder, a
 * folder of .tar shards, a brace pattern or a glob (`@FRACTION` is the source's weight in the mix:
 * below 1 the share of its samples kept, above 1 each sample repeated ⌊w⌋ or ⌊w⌋ + 1 times an
 * epoch, by key hash, as OpenCLIP's upsampling factors).
 */
export function parseSource(s: string): { dir: string; split?: string; fraction?: number } {
  const m = /^(.*?)(?::([^:@/]+))?(?:@([\d.]+))?$/.exec(s)!;
  const fraction = m[3] === undefined ? undefined : Number(m[3]);
  if (fraction !== undefined && !(fraction > 0 && Number.isFinite(fraction)))
    throw Object.assign(
      new Error(`--data ${s}: the weight after @ must be a positive number (below 1: the share kept; above: each sample repeated, on average)`),
      {
        userFacing: true,
      },
    );
  return { dir: m[1]!, ...(m[2] ? { split: m[2] } : {}), ...(fraction !== undefined ? { fraction } : {}) };
}

/** Every `--data` value, `::`-joined ones (OpenCLIP's `--train-data`) split into their sources. */
export const parseSources = (values: readonly string[]) =>
  values
    .flatMap((v) => v.split('::'))
    .filter(Boolean)
    .map(parseSource);

/** `--part i/n`: this job's share (index i of n) of a map step run as a job array. */
export function parsePart(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || !(count >= 1) || !(index < count))
    throw Object.assign(new Error(`--part ${s}: expected i/n with 0 ≤ i < n (e.g. $SLURM_ARRAY_TASK_ID/4)`), { userFacing: true });
  return { index, count };
}
