/**
 * On-disk data sets: a folder with `dataset.json` and its WebDataset shards. Two kinds:
 * - `pairs`: image-text pairs (`KEY.png`, `KEY.txt`, `KEY.json`), for contrastive training;
 * - `classification`: labelled images (`KEY.png`, `KEY.cls`) plus class names and prompt
 *   templates (`{}` stands for the class name), for zero-shot evaluation.
 * Users bring their own data in the same format (see `importManifest`, `mode data import`).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShardWriter } from './shards.js';

export const DATASET_FORMAT = 'mode-dataset-1';

export interface SplitInfo {
  count: number;
  /** Shard file names, relative to the data set folder. */
  shards: string[];
  bytes: number;
}

export interface DatasetInfo {
  format: typeof DATASET_FORMAT;
  name: string;
  kind: 'pairs' | 'classification';
  description?: string;
  source?: string;
  license?: string;
  splits: Record<string, SplitInfo>;
  /** Classification only: class names by label, and prompt templates with `{}` for the name. */
  classes?: string[];
  templates?: string[];
  /** Records left out: skipped as bad (`--skip-bad`) or by design (e.g. duplicate captions). */
  skipped?: Record<string, number>;
  /** Seconds the import took. */
  seconds?: number;
}

export function readDatasetInfo(dir: string): DatasetInfo {
  const path = join(dir, 'dataset.json');
  if (!existsSync(path))
    throw Object.assign(new Error(`${dir} is not a data set (no dataset.json). Fix: npx mode data prepare, or point at a folder it made`), {
      userFacing: true,
    });
  const info = JSON.parse(readFileSync(path, 'utf8')) as DatasetInfo;
  if (info.format !== DATASET_FORMAT)
    throw Object.assign(new Error(`${path}: format "${String(info.format)}", expected "${DATASET_FORMAT}"`), { userFacing: true });
  return info;
}

/** Absolute shard paths of one split (default: every split). */
export function datasetShards(dir: string, split?: string): string[] {
  const info = readDatasetInfo(dir);
  const splits = split ? [split] : Object.keys(info.splits);
  return splits.flatMap((s) => {
    const sp = info.splits[s];
    if (!sp) throw Object.assign(new Error(`${dir}: no split "${s}" (has ${Object.keys(info.splits).join(', ')})`), { userFacing: true });
    return sp.shards.map((f) => join(dir, f));
  });
}

export interface PairSample {
  key: string;
  png: Uint8Array;
  text: string;
  json?: object;
}

export interface LabelledSample {
  key: string;
  png: Uint8Array;
  label: number;
}

/**
 * Builds a data set in `${dir}.partial`, then renames it to `dir`: a folder with a
 * `dataset.json` is always complete, which makes `mode data prepare` resumable.
 */
export class DatasetBuilder {
  private readonly tmp: string;
  private readonly splits: Record<string, SplitInfo> = {};
  private readonly started = performance.now();

  constructor(
    readonly dir: string,
    readonly meta: Omit<DatasetInfo, 'format' | 'splits' | 'seconds'>,
    readonly shardOptions: { samplesPerShard?: number; gzip?: boolean } = {},
  ) {
    this.tmp = `${dir}.partial`;
    rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Writes one split from `samples`; `onSample` is called after each (for progress bars). */
  async writeSplit(
    split: string,
    samples: AsyncIterable<PairSample | LabelledSample> | Iterable<PairSample | LabelledSample>,
    onSample?: () => void,
  ): Promise<SplitInfo> {
    const writer = new ShardWriter(this.tmp, { prefix: split, ...this.shardOptions });
    for await (const s of samples) {
      if ('text' in s) await writer.write(s.key, s.json ? { png: s.png, txt: s.text, json: s.json } : { png: s.png, txt: s.text });
      else await writer.write(s.key, { png: s.png, cls: String(s.label) });
      onSample?.();
    }
    const shards = await writer.close();
    const info = { count: writer.count, shards: shards.map((p) => p.slice(this.tmp.length + 1)), bytes: writer.bytes };
    this.splits[split] = info;
    return info;
  }

  /** Writes dataset.json and moves the folder into place (replacing an older one). */
  finish(extra: Partial<DatasetInfo> = {}): DatasetInfo {
    const info: DatasetInfo = {
      format: DATASET_FORMAT,
      ...this.meta,
      ...extra,
      splits: this.splits,
      seconds: Math.round((performance.now() - this.started) / 100) / 10,
    };
    writeFileSync(join(this.tmp, 'dataset.json'), JSON.stringify(info, null, 2) + '\n');
    rmSync(this.dir, { recursive: true, force: true });
    renameSync(this.tmp, this.dir);
    return info;
  }

  abort(): void {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
