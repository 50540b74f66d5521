import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Automaton, type BuildInfo } from './automaton.js';
import { entryProbabilities } from './balance.js';
import { describeShards, expandPool, planTasks, userError, type Format, type Shard, type Task } from './inputs.js';
import { defaultMetadata, readMetadata } from './metadata.js';
import { TaskPool } from './pool.js';
import { distributionTable, longTailSvg, topEntries, type EntryCount } from './report.js';
import type { Malformed, ReadOptions, TaskResult } from './task.js';

/**
 * `curate`: the whole MetaCLIP curation of a pool, as map/reduce over tasks (shards, or byte
 * ranges of large plain shards):
 *
 * 1. count (map): every task matches its texts and returns per-entry counts; (reduce): sum.
 * 2. p_e = t / max(count_e, t).
 * 3. sample (map): every task matches again and keeps each pair with probability
 *    1 − ∏(1 − p_e), drawn from (seed, shard name, position) so that the result does not depend
 *    on the number of workers or on resuming; the per-entry counts of kept pairs are summed.
 *
 * Every task's result is saved under `<out>/.curate-work/` as it completes, so an interrupted run
 * resumes where it stopped (same inputs, metadata and options); outputs are written under a
 * temporary name and renamed when complete.
 */

export interface CurateOptions {
  /** Files, directories or globs of JSONL / TSV / WebDataset .tar shards (gzip accepted). */
  pool: string[];
  /** Metadata file (JSON list of strings) or the entries themselves; default: `defaultMetadata()`. */
  metadata?: string | readonly string[];
  /** Output directory. */
  out: string;
  /** Balancing threshold (default 20 000; `Infinity` keeps every matched pair). */
  t?: number;
  seed?: number;
  /** Online variant: write every matched pair with its probability (`metaclip_p`) instead of sampling. */
  online?: boolean;
  /** Worker threads (default: all cores; 0 = in the main thread). */
  workers?: number;
  /** MetaCLIP 2 padding for no-space scripts. */
  multilingual?: boolean;
  format?: Format;
  textField?: string;
  /** TSV caption column: 0-based index, or a header name (implies `tsvHeader`). */
  tsvColumn?: number | string;
  tsvHeader?: boolean;
  /** Plain JSONL/TSV shards larger than this are split into byte ranges (default 32 MiB). */
  chunkBytes?: number;
  /** Reuse the results of an interrupted run (default true). */
  resume?: boolean;
  /** Keep `.curate-work/` after a successful run. */
  keepWork?: boolean;
  /** Entries listed in the stats' top lists (default 20). */
  top?: number;
  onProgress?: (p: CurateProgress) => void;
  /** Called once per phase with what it is about to do. */
  onPhase?: (phase: 'count' | 'sample', info: { tasks: number; resumed: number; bytes: number; threads: number }) => void;
}

export interface CurateProgress {
  phase: 'count' | 'sample';
  texts: number;
  /** Input bytes read so far in this phase (compressed bytes for gzip shards). */
  bytes: number;
  totalBytes: number;
}

export interface CurateStats {
  pool: { shards: number; bytes: number; texts: number; malformed: number };
  metadata: { entries: number; source: string; matchedEntries: number };
  t: number | 'inf';
  seed: number;
  online: boolean;
  matched: number;
  kept: number;
  keepRateOfMatched: number;
  keepRateOfPool: number;
  head: { entries: number; matchesBefore: number; matchesAfter: number };
  tail: { entries: number; matchesBefore: number; matchesAfter: number };
  topBefore: EntryCount[];
  topAfter: EntryCount[];
  malformed: { count: number; byFile: Record<string, number>; first: (Malformed & { file: string })[] };
  automaton: BuildInfo & { loaded: boolean };
  timing: { countS: number; sampleS: number; totalS: number; textsPerS: number; mbPerS: number; threads: number };
}

export interface CurateResult {
  stats: CurateStats;
  /** Per-entry match counts over the pool, and of kept pairs. */
  counts: Float64Array;
  keptCounts: Float64Array;
  entries: readonly string[];
  /** The distribution as text (entries per decade of count, before and after). */
  distribution: string;
  paths: { curated: string[]; entryCounts: string; stats: string; plot: string };
}

const WORK = '.curate-work';

function atomicWrite(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

function sha(x: unknown): string {
  return createHash('sha256')
    .update(typeof x === 'string' ? x : JSON.stringify(x))
    .digest('hex')
    .slice(0, 24);
}

/** Sparse binary per-entry counts: u32 nnz, u32 ids[nnz], (pad to 8), f64 values[nnz]. */
function encodeCounts(counts: Float64Array): Buffer {
  let nnz = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i] !== 0) nnz++;
  const idBytes = 4 + nnz * 4;
  const off = (idBytes + 7) & ~7;
  const buf = Buffer.alloc(off + nnz * 8);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const u32 = new Uint32Array(ab, 0, 1 + nnz);
  const f64 = new Float64Array(ab, off, nnz);
  u32[0] = nnz;
  let j = 0;
  for (let i = 0; i < counts.length; i++)
    if (counts[i] !== 0) {
      u32[1 + j] = i;
      f64[j++] = counts[i]!;
    }
  return Buffer.from(ab);
}

function addCounts(into: Float64Array, buf: Buffer): void {
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const nnz = new Uint32Array(ab, 0, 1)[0]!;
  const ids = new Uint32Array(ab, 4, nnz);
  const off = (4 + nnz * 4 + 7) & ~7;
  const vals = new Float64Array(ab, off, nnz);
  for (let j = 0; j < nnz; j++) into[ids[j]!]! += vals[j]!;
}

type Summary = Omit<TaskResult, 'counts'>;

/**
 * One step of the curation run as separate jobs (a SLURM job array per map, `mode curate
 * --phase`), all sharing `<out>/.curate-work/`:
 *   plan (one job: the work folder and the automaton) → count (map: part i of n of the tasks) →
 *   reduce (one job: the counts summed) → sample (map: part i of n, with the global counts) →
 *   `curate()` itself (one job: every task's result is there, so it only assembles and reports).
 * The result is the same bytes as one `curate()` call.
 */
export type CurateStep = { phase: 'plan' } | { phase: 'reduce' } | { phase: 'count' | 'sample'; part: { index: number; count: number } };

export interface CurateStepResult {
  phase: CurateStep['phase'];
  /** Tasks this step ran (of all the run's tasks). */
  ran: number;
  tasks: number;
}

/** Runs the MetaCLIP curation of `options.pool`; see `CurateOptions`. */
export async function curate(options: CurateOptions): Promise<CurateResult> {
  return (await run(options)) as CurateResult;
}

/** Runs one step of a curation split into jobs; see `CurateStep`. */
export async function curateStep(options: CurateOptions, step: CurateStep): Promise<CurateStepResult> {
  return (await run(options, step)) as CurateStepResult;
}

async function run(options: CurateOptions, step?: CurateStep): Promise<CurateResult | CurateStepResult> {
  const t0 = performance.now();
  const t = options.t ?? 20000;
  if (!(t > 0)) throw userError(`--t must be a positive number or inf (got ${t})`);
  const seed = (options.seed ?? 0) >>> 0;
  const online = options.online ?? false;
  const multilingual = options.multilingual ?? false;
  const out = options.out;
  const work = join(out, WORK);

  // --- inputs and metadata
  const files = expandPool(options.pool);
  if (files.length === 0) throw userError('pool: no input files');
  const shards = describeShards(files, options.format);
  let entries: readonly string[];
  let metadataSource: string;
  if (typeof options.metadata === 'string') {
    entries = readMetadata(options.metadata);
    metadataSource = options.metadata;
  } else if (options.metadata) {
    entries = options.metadata;
    metadataSource = '(in memory)';
  } else {
    const d = defaultMetadata();
    entries = d.entries;
    metadataSource = d.path;
  }
  const read: ReadOptions = { tsvHeader: options.tsvHeader ?? typeof options.tsvColumn === 'string' };
  if (options.textField !== undefined) read.textField = options.textField;
  if (typeof options.tsvColumn === 'number') read.tsvColumn = options.tsvColumn;
  else if (typeof options.tsvColumn === 'string') read.tsvColumn = resolveTsvColumn(shards, options.tsvColumn);
  const chunkBytes = options.chunkBytes ?? 32 << 20;
  const tasks = planTasks(shards, chunkBytes);

  // --- resume state
  const metadataKey = sha(entries.join('\n'));
  const countKey = sha({
    v: 1,
    metadataKey,
    multilingual,
    read,
    chunkBytes,
    shards: shards.map((s) => [s.path, s.size, s.mtimeMs, s.format, s.gzip]),
  });
  const sampleKey = sha({ countKey, t: String(t), seed, online });
  mkdirSync(join(work, 'count'), { recursive: true });
  const manifestPath = join(work, 'manifest.json');
  const prev =
    existsSync(manifestPath) && options.resume !== false ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as { countKey: string; sampleKey: string }) : null;
  // The steps after plan run at once in several jobs: they may only add to a work folder planned
  // for exactly these inputs and flags, never reset it.
  if (step && step.phase !== 'plan' && (prev?.countKey !== countKey || prev.sampleKey !== sampleKey))
    throw userError(`${work}: not planned for this pool and these flags. Fix: run \`mode curate --phase plan\` with the same flags first`);
  if (!prev || prev.countKey !== countKey) {
    // A fresh run: no state to reuse, and curated/ (ours) must not mix shards of two runs.
    rmSync(work, { recursive: true, force: true });
    rmSync(join(out, 'curated'), { recursive: true, force: true });
    mkdirSync(join(work, 'count'), { recursive: true });
  }
  if (!prev || prev.sampleKey !== sampleKey) rmSync(join(work, 'sample'), { recursive: true, force: true });
  mkdirSync(join(work, 'sample'), { recursive: true });
  if (!step || step.phase === 'plan') atomicWrite(manifestPath, JSON.stringify({ countKey, sampleKey }));

  // --- automaton (serialised in the work directory: a resumed run loads it instead of rebuilding)
  const automatonPath = join(work, `automaton-${sha({ metadataKey, multilingual })}.bin`);
  let automaton: Automaton;
  let info: BuildInfo & { loaded: boolean };
  if (step && step.phase !== 'plan' && !existsSync(automatonPath))
    throw userError(`${work}: the plan step has not finished (no automaton). Fix: run \`mode curate --phase plan\` with the same flags first`);
  if (existsSync(automatonPath)) {
    const t1 = performance.now();
    automaton = Automaton.fromBuffer(readFileSync(automatonPath));
    info = {
      entries: automaton.entries,
      uniquePadded: -1,
      nodes: automaton.nodes,
      classes: automaton.classes,
      denseNodes: automaton.denseNodes,
      bytes: automaton.buffer.byteLength,
      ms: performance.now() - t1,
      loaded: true,
    };
  } else {
    const built = Automaton.build(entries, { multilingual });
    automaton = built.automaton;
    info = { ...built.info, loaded: false };
    atomicWrite(automatonPath, automaton.serialize());
  }

  const threads = Math.max(0, Math.min(options.workers ?? availableParallelism(), tasks.length));
  const pool = new TaskPool(automaton, shards, read, threads);
  const totalBytes = shards.reduce((a, s) => a + s.size, 0);
  const summaries = new Map<string, Summary>();

  const runPhase = async (phase: 'count' | 'sample', total: Float64Array, probs: Float64Array | null, mine: Task[] = tasks) => {
    const dir = join(work, phase);
    const todo: Task[] = [];
    let doneBytes = 0;
    for (const task of mine) {
      const meta = join(dir, `${task.id}.json`);
      if (existsSync(meta)) {
        addCounts(total, readFileSync(join(dir, `${task.id}.bin`)));
        summaries.set(`${phase}:${task.id}`, JSON.parse(readFileSync(meta, 'utf8')) as Summary);
        doneBytes += taskBytes(shards[task.shard]!, task);
      } else todo.push(task);
    }
    options.onPhase?.(phase, { tasks: tasks.length, resumed: tasks.length - todo.length, bytes: totalBytes, threads: pool.threads });
    let texts = 0;
    let bytes = doneBytes;
    options.onProgress?.({ phase, texts, bytes, totalBytes });
    await pool.run(
      todo,
      probs && { probs, seed, online, outPath: (task) => join(dir, `${task.id}.part`) },
      (task, r) => {
        const { counts, ...summary } = r;
        const c = counts instanceof Float64Array ? counts : new Float64Array(counts as ArrayBufferLike);
        for (let i = 0; i < c.length; i++) if (c[i] !== 0) total[i]! += c[i]!;
        atomicWrite(join(dir, `${task.id}.bin`), encodeCounts(c));
        atomicWrite(join(dir, `${task.id}.json`), JSON.stringify(summary));
        summaries.set(`${phase}:${task.id}`, summary);
      },
      (dt, db) => {
        texts += dt;
        bytes += db;
        options.onProgress?.({ phase, texts, bytes, totalBytes });
      },
    );
  };

  const countsPath = join(work, 'counts.bin');
  if (step) {
    try {
      if (step.phase === 'plan') return { phase: 'plan', ran: 0, tasks: tasks.length };
      if (step.phase === 'reduce') {
        const missing = tasks.filter((x) => !existsSync(join(work, 'count', `${x.id}.json`)));
        if (missing.length)
          throw userError(
            `${work}: ${missing.length} of ${tasks.length} count tasks have no result (${missing
              .slice(0, 3)
              .map((x) => x.id)
              .join(', ')}…). Fix: run the count parts first`,
          );
        const total = new Float64Array(entries.length);
        for (const x of tasks) addCounts(total, readFileSync(join(work, 'count', `${x.id}.bin`)));
        atomicWrite(countsPath, encodeCounts(total));
        return { phase: 'reduce', ran: tasks.length, tasks: tasks.length };
      }
      const { index, count } = step.part;
      const mine = tasks.filter((_, i) => i % count === index);
      if (step.phase === 'count') await runPhase('count', new Float64Array(entries.length), null, mine);
      else {
        if (!existsSync(countsPath)) throw userError(`${work}: no summed counts. Fix: run \`mode curate --phase reduce\` after the count parts`);
        const total = new Float64Array(entries.length);
        addCounts(total, readFileSync(countsPath));
        await runPhase('sample', new Float64Array(entries.length), entryProbabilities(total, t), mine);
      }
      return { phase: step.phase, ran: mine.length, tasks: tasks.length };
    } finally {
      await pool.close();
    }
  }

  let counts: Float64Array;
  let keptCounts: Float64Array;
  let countS: number;
  let sampleS: number;
  try {
    counts = new Float64Array(entries.length);
    const tc = performance.now();
    await runPhase('count', counts, null);
    countS = (performance.now() - tc) / 1000;
    const probs = entryProbabilities(counts, t);
    keptCounts = new Float64Array(entries.length);
    const ts = performance.now();
    await runPhase('sample', keptCounts, probs);
    sampleS = (performance.now() - ts) / 1000;
  } finally {
    await pool.close();
  }

  // --- assemble each shard's output from its parts (complete files only, renamed into place)
  const curatedDir = join(out, 'curated');
  mkdirSync(curatedDir, { recursive: true });
  const curated: string[] = [];
  for (let i = 0; i < shards.length; i++) {
    const parts = tasks.filter((x) => x.shard === i).map((x) => join(work, 'sample', `${x.id}.part`));
    const dest = join(curatedDir, shards[i]!.name);
    if (!parts.every((p) => existsSync(p))) {
      // Assembled by an earlier, interrupted run after its parts were complete.
      if (!existsSync(dest)) throw new Error(`curate: parts of ${shards[i]!.path} are missing from ${work}; run again with resume off`);
    } else if (parts.length === 1) renameSync(parts[0]!, dest);
    else {
      const ws = createWriteStream(`${dest}.tmp`);
      for (const p of parts) for await (const chunk of createReadStream(p)) if (!ws.write(chunk)) await once(ws, 'drain');
      await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
      renameSync(`${dest}.tmp`, dest);
      for (const p of parts) unlinkSync(p);
    }
    curated.push(dest);
  }

  // --- totals, stats, outputs
  const sum = (phase: string, f: (s: Summary) => number) => tasks.reduce((a, x) => a + f(summaries.get(`${phase}:${x.id}`)!), 0);
  const texts = sum('count', (s) => s.texts);
  const matched = sum('count', (s) => s.matched);
  const kept = sum('sample', (s) => s.kept);
  const malformed = collectMalformed(shards, tasks, (id) => summaries.get(`count:${id}`)!);
  let head = 0;
  let tail = 0;
  let headBefore = 0;
  let tailBefore = 0;
  let headAfter = 0;
  let tailAfter = 0;
  let matchedEntries = 0;
  for (let e = 0; e < counts.length; e++) {
    const c = counts[e]!;
    if (c === 0) continue;
    matchedEntries++;
    if (c > t) {
      head++;
      headBefore += c;
      headAfter += keptCounts[e]!;
    } else {
      tail++;
      tailBefore += c;
      tailAfter += keptCounts[e]!;
    }
  }
  const totalS = (performance.now() - t0) / 1000;
  const top = options.top ?? 20;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  const stats: CurateStats = {
    pool: { shards: shards.length, bytes: totalBytes, texts, malformed: malformed.count },
    metadata: { entries: entries.length, source: metadataSource, matchedEntries },
    t: t === Infinity ? 'inf' : t,
    seed,
    online,
    matched,
    kept: r3(kept),
    keepRateOfMatched: matched ? kept / matched : 0,
    keepRateOfPool: texts ? kept / texts : 0,
    head: { entries: head, matchesBefore: headBefore, matchesAfter: r3(headAfter) },
    tail: { entries: tail, matchesBefore: tailBefore, matchesAfter: r3(tailAfter) },
    topBefore: topEntries(entries, counts, top),
    topAfter: topEntries(entries, keptCounts, top),
    malformed,
    automaton: info,
    timing: {
      countS,
      sampleS,
      totalS,
      // each text is matched twice (count pass and sample pass)
      textsPerS: (2 * texts) / Math.max(1e-9, countS + sampleS),
      mbPerS: (2 * totalBytes) / 1e6 / Math.max(1e-9, countS + sampleS),
      threads: pool.threads,
    },
  };
  const entryCounts: Record<string, number> = {};
  for (let e = 0; e < entries.length; e++) if (counts[e]! > 0) entryCounts[entries[e]!] = counts[e]!;
  const paths = { curated, entryCounts: join(out, 'entry_counts.json'), stats: join(out, 'stats.json'), plot: join(out, 'longtail.svg') };
  atomicWrite(paths.entryCounts, JSON.stringify(entryCounts, null, 0));
  atomicWrite(paths.stats, JSON.stringify(stats, null, 2));
  atomicWrite(paths.plot, longTailSvg(counts, keptCounts, t, `MetaCLIP balancing: entry counts before and after (t = ${t === Infinity ? '∞' : t})`));
  if (!options.keepWork) rmSync(work, { recursive: true, force: true });
  return { stats, counts, keptCounts, entries, distribution: distributionTable(counts, keptCounts), paths };
}

function taskBytes(shard: Shard, task: Task): number {
  return Math.min(task.end, shard.size) - task.start;
}

function collectMalformed(shards: Shard[], tasks: Task[], summary: (id: string) => Summary): CurateStats['malformed'] {
  const byFile: Record<string, number> = {};
  const first: (Malformed & { file: string })[] = [];
  let count = 0;
  let lineBase = 0;
  let lastShard = -1;
  for (const task of tasks) {
    if (task.shard !== lastShard) {
      lineBase = 0;
      lastShard = task.shard;
    }
    const s = summary(task.id);
    const file = shards[task.shard]!.path;
    if (s.malformedCount > 0) byFile[file] = (byFile[file] ?? 0) + s.malformedCount;
    count += s.malformedCount;
    for (const m of s.malformed) if (first.length < 100) first.push({ file, line: m.line + lineBase, message: m.message });
    lineBase += s.lines;
  }
  return { count, byFile, first };
}

function resolveTsvColumn(shards: Shard[], name: string): number {
  const s = shards.find((x) => x.format === 'tsv');
  if (!s) throw userError(`--tsv-column ${name}: no TSV shard in the pool`);
  if (s.gzip) throw userError(`--tsv-column ${name}: give a column index for gzipped TSV`);
  const head = readFileSync(s.path)
    .subarray(0, 1 << 16)
    .toString('utf8')
    .split('\n')[0]!
    .replace(/\r$/, '');
  const i = head.split('\t').indexOf(name);
  if (i < 0) throw userError(`--tsv-column ${name}: no such column in the header of ${s.path} (${head.split('\t').join(', ')})`);
  return i;
}
