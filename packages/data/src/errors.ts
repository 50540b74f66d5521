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
    options?: { cause?: unknown },
  ) {
    super(`${file}${record === undefined ? '' : `: record ${record}`}: ${reason}`, options);
  }

  /** A plain object that survives structured cloning (worker → main thread). */
  toJSON(): { file: string; record: string | number | undefined; reason: string } {
    return { file: this.file, record: this.record, reason: this.reason };
  }

  static fromJSON(o: { file: string; record: string | number | undefined; reason: string }): DataError {
    return new DataError(o.file, o.record, o.reason);
  }
}

export interface BadRecord {
  file: string;
  record: string | number | undefined;
  reason: string;
}

/**
 * The `--skip-bad` ledger: bad records are counted and remembered (the first `keep` of them)
 * instead of stopping the run. Without a ledger, `report()` throws the error.
 */
export class BadRecords {
  count = 0;
  readonly examples: BadRecord[] = [];
  constructor(readonly keep = 20) {}

  add(e: DataError | BadRecord): void {
    this.count++;
    if (this.examples.length < this.keep) this.examples.push({ file: e.file, record: e.record, reason: e.reason });
  }

  merge(other: { count: number; examples: BadRecord[] }): void {
    for (const e of other.examples) if (this.examples.length < this.keep) this.examples.push(e);
    this.count += other.count;
  }

  /** One line per remembered record, then how many more there were. */
  summary(): string {
    if (!this.count) return 'no bad records';
    const lines = this.examples.map((e) => `  ${e.file}${e.record === undefined ? '' : `: record ${e.record}`}: ${e.reason}`);
    if (this.count > this.examples.length) lines.push(`  ... and ${this.count - this.examples.length} more`);
    return `${this.count} bad record${this.count === 1 ? '' : 's'} skipped:\n${lines.join('\n')}`;
  }
}

/** With a ledger (`--skip-bad`), counts the error; without one, throws it. */
export function report(e: DataError, bad: BadRecords | undefined): void {
  if (!bad) throw e;
  bad.add(e);
}

/** The error's message, for wrapping errors thrown by libraries. */
export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
