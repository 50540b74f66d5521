/**
 * Bad input names the file and the record inside it. `userFacing` makes the CLI print the
 * message without a stack trace (packages that cannot depend on @mode/gpu mark errors this way).
 */
export class DataError extends Error {
  override name = 'DataError';
  readonly userFacing = true;
  constructor(
    /** The file that holds the bad record: a shard, a manifest, an SVG, an IDX file. */
    readonly file: string,
    /** The record inside it: a WebDataset key, a manifest line, an image index; undefined for the file as a whole. */
    readonly record: string | number | undefined,
    /** What is wrong with it. */
    readonly reason: string,
    options?: { cause?: unknown; kind?: string },
  ) {
    super(`${file}${record === undefined ? '' : `: record ${record}`}: ${reason}`, options);
    this.kind = options?.kind ?? kindOf(reason);
  }

  /** What sort of bad it is (`corrupt image`, `missing caption`, `truncated shard`, ...): skipped records are counted by it. */
  readonly kind: string;

  /** A plain object that survives structured cloning (worker → main thread). */
  toJSON(): BadRecord {
    return { file: this.file, record: this.record, reason: this.reason, kind: this.kind };
  }

  static fromJSON(o: Omit<BadRecord, 'kind'> & { kind?: string }): DataError {
    return new DataError(o.file, o.record, o.reason, { kind: o.kind });
  }
}

export interface BadRecord {
  file: string;
  record: string | number | undefined;
  reason: string;
  kind: string;
}

/** The kind of a reason that did not name one: its words before the first parenthesis or colon. */
function kindOf(reason: string): string {
  if (/^(truncated|unreadable) tar|^truncated or corrupt tar|^cannot open shard/.test(reason)) return 'truncated shard';
  if (/^missing caption|empty caption/.test(reason)) return 'missing caption';
  if (/^missing image/.test(reason)) return 'missing image';
  if (/^corrupt/.test(reason)) return 'corrupt image';
  if (/UTF-8/.test(reason)) return 'invalid text';
  if (/JSON/.test(reason)) return 'invalid json';
  if (/\.cls|label/.test(reason)) return 'invalid label';
  return 'other';
}

/**
 * The `--skip-bad` ledger: bad records are counted and remembered (the first `keep` of them)
 * instead of stopping the run. Without a ledger, `report()` throws the error.
 */
export class BadRecords {
  count = 0;
  /** Counts by kind (`corrupt image`: 2, `missing caption`: 1, ...). */
  readonly kinds: Record<string, number> = {};
  readonly examples: BadRecord[] = [];
  constructor(readonly keep = 20) {}

  /** Records already counted: an endless loader reads a bad record once per epoch, and it counts once. */
  private readonly seen = new Set<string>();

  add(e: DataError | BadRecord): void {
    const id = `${e.file}\0${String(e.record)}\0${e.kind}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.count++;
    this.kinds[e.kind] = (this.kinds[e.kind] ?? 0) + 1;
    if (this.examples.length < this.keep) this.examples.push({ file: e.file, record: e.record, reason: e.reason, kind: e.kind });
  }

  /** `2 corrupt image, 1 missing caption`. */
  byKind(): string {
    return Object.entries(this.kinds)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
  }

  /** One line per remembered record, then how many more there were. */
  summary(): string {
    if (!this.count) return 'no bad records';
    const lines = this.examples.map((e) => `  ${e.file}${e.record === undefined ? '' : `: record ${e.record}`}: ${e.reason}`);
    if (this.count > this.examples.length) lines.push(`  ... and ${this.count - this.examples.length} more`);
    return `${this.count} bad record${this.count === 1 ? '' : 's'} skipped (${this.byKind()}):\n${lines.join('\n')}`;
  }
}

/** With a ledger (`--skip-bad`), counts the error; without one, throws it. */
export function report(e: DataError, bad: BadRecords | undefined): void {
  if (!bad) throw e;
  bad.add(e);
}

/** The error's message, for wrapping errors thrown by libraries. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
