import type { Gpu } from '@mode/gpu';
import { checksumOf, tuneCachePath, tuneStore, type TuneStore } from './tune-store.js';

/**
 * Picks, per adapter and shape class, the fastest of a kernel family's variants by measuring
 * them, and remembers the choice in a JSON file. Entries are keyed by adapter and stored with a
 * checksum of the family's candidate set (names and WGSL sources): change a kernel and its
 * family's entries are re-measured.
 *
 * File: $MODE_TUNE_CACHE, else ~/.cache/mode/autotune.json; in a browser, localStorage.
 */
export interface Candidate {
  name: string;
  /** Why this candidate cannot run the problem on this adapter, or null when it can. */
  unsupported: string | null;
  /** Runs the problem once and waits for it; resolves to seconds. Its first call (compile included) is a warm-up and not counted. */
  time: () => Promise<number>;
}

interface FamilyEntry {
  checksum: string;
  choices: Record<string, { variant: string; seconds: Record<string, number>; date: string }>;
}

interface CacheFile {
  version: 1;
  adapters: Record<string, Record<string, FamilyEntry>>;
}

const kernelSums = new WeakMap<Gpu, Map<string, string>>();

export { tuneCachePath };

export class Autotuner {
  private cache: CacheFile | null = null;
  /** Re-measure even when the cache has a choice (`mode bench --retune`). */
  retune = false;
  /** Set on each pick: what was chosen and whether it came from the cache. */
  readonly log: { key: string; variant: string; cached: boolean; skipped: string[] }[] = [];
  /**
   * Choices that win over the cache and measuring, by key: a resumed training run pins the
   * variants its checkpoint was trained with, so its arithmetic (summation orders) stays the same.
   */
  readonly pinned = new Map<string, string>();

  private readonly used = new Map<string, string>();

  /** Every choice handed out in this process so far (looked up, measured or pinned), by key: what a checkpoint saves. */
  choicesMade(): Record<string, string> {
    return { ...Object.fromEntries(this.used), ...Object.fromEntries(this.pinned) };
  }

  pin(choices: Record<string, string>): void {
    for (const [k, v] of Object.entries(choices)) this.pinned.set(k, v);
  }

  private readonly store: TuneStore;

  constructor(
    readonly path = tuneCachePath(),
    private readonly warn: (message: string) => void = (m) => console.warn(m),
  ) {
    this.store = tuneStore(path);
  }

  /** The adapter's identity in the cache: name and driver description. */
  static adapterId(gpu: Gpu): string {
    return `${gpu.report.name} | ${gpu.report.description} | ${gpu.report.backend}`;
  }

  /** Checksum of a family's candidate set: its variant names and their WGSL sources. */
  static checksum(sources: Record<string, string>): string {
    return checksumOf(
      Object.keys(sources)
        .sort()
        .map((name) => `${name}\0${sources[name]}\0`),
    );
  }

  /** `checksum` of these kernels' WGSL as this Gpu loads them, read once per Gpu and family (a new Gpu sees edited kernels). */
  static kernelsChecksum(gpu: Gpu, family: string, kernels: string[]): string {
    let byFamily = kernelSums.get(gpu);
    if (!byFamily) kernelSums.set(gpu, (byFamily = new Map()));
    let sum = byFamily.get(family);
    if (!sum) {
      sum = Autotuner.checksum(Object.fromEntries(kernels.map((k) => [k, gpu.kernelSource(k).source])));
      byFamily.set(family, sum);
    }
    return sum;
  }

  /** The cached choice for `key` (null when absent or measured with other candidate sources). */
  lookup(adapter: string, family: string, checksum: string, key: string): string | null {
    const pin = this.pinned.get(key);
    if (pin !== undefined) return pin;
    if (this.retune) return null;
    const entry = this.load().adapters[adapter]?.[family];
    const variant = entry?.checksum === checksum ? (entry.choices[key]?.variant ?? null) : null;
    if (variant !== null) this.used.set(key, variant);
    return variant;
  }

  /** The cached choice for `key`, or measure every supported candidate and store the fastest. */
  async pick(adapter: string, family: string, checksum: string, key: string, candidates: Candidate[]): Promise<string> {
    const supported = candidates.filter((c) => c.unsupported === null);
    const skipped = candidates.filter((c) => c.unsupported !== null).map((c) => `${c.name}: ${c.unsupported}`);
    if (supported.length === 0) throw new Error(`autotune ${key}: no variant can run this problem here (${skipped.join('; ')})`);
    const pin = this.pinned.get(key);
    if (pin !== undefined && !supported.some((c) => c.name === pin))
      throw new Error(`autotune ${key}: the pinned variant ${pin} cannot run here (${skipped.join('; ') || 'not a candidate'})`);
    const known = this.lookup(adapter, family, checksum, key);
    if (known && supported.some((c) => c.name === known)) {
      this.log.push({ key, variant: known, cached: true, skipped });
      return known;
    }
    const cache = this.load();
    const entry = (cache.adapters[adapter] ??= {})[family];
    const fresh = entry?.checksum === checksum ? entry : undefined;
    const seconds: Record<string, number> = {};
    // One untimed run of each first: it compiles the candidate's shaders and warms caches. Timed
    // with them, a candidate whose compile costs more than 8 runs would never be timed past its first.
    for (const c of supported) await c.time();
    // Then three rounds, each timing every candidate once, the best run kept: on a shared or
    // throttled CPU a slow spell lasts a while, and in rounds it costs each candidate one run at
    // most, not all of one candidate's.
    let live = supported;
    for (let round = 0; round < 3; round++) {
      for (const c of live) seconds[c.name] = Math.min(seconds[c.name] ?? Infinity, await c.time());
      // A candidate whose first timed run is already 8× the best cannot win: not timed further.
      if (round === 0) {
        const best = Math.min(...Object.values(seconds));
        live = live.filter((c) => seconds[c.name]! <= 8 * best);
      }
    }
    const variant = Object.entries(seconds).sort((a, b) => a[1] - b[1])[0]![0];
    const family_ = fresh ?? { checksum, choices: {} };
    family_.choices[key] = { variant, seconds, date: new Date().toISOString() };
    cache.adapters[adapter]![family] = family_;
    this.save();
    this.log.push({ key, variant, cached: false, skipped });
    this.used.set(key, variant);
    return variant;
  }

  /** Every cached choice for an adapter (for `mode info`). */
  choices(adapter: string): Record<string, Record<string, string>> {
    const families = this.load().adapters[adapter] ?? {};
    return Object.fromEntries(Object.entries(families).map(([f, e]) => [f, Object.fromEntries(Object.entries(e.choices).map(([k, c]) => [k, c.variant]))]));
  }

  private load(): CacheFile {
    if (this.cache) return this.cache;
    const text = this.store.read();
    if (text !== null) {
      try {
        const parsed = JSON.parse(text) as CacheFile;
        if (parsed?.version !== 1 || typeof parsed.adapters !== 'object' || parsed.adapters === null) throw new Error('not an autotune cache (version 1)');
        this.cache = parsed;
        return parsed;
      } catch (e) {
        this.warn(`autotune: ${this.path} is corrupt (${(e as Error).message}); rebuilding it`);
      }
    }
    this.cache = { version: 1, adapters: {} };
    return this.cache;
  }

  private save(): void {
    this.store.write(JSON.stringify(this.cache, null, 1));
  }
}
