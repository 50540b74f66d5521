import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { progress } from '../progress.js';
import { writeCuratedInfo } from '../run/pipeline.js';
import { parsePart } from '../sources.js';

interface CurateFlags {
  pool: string[];
  metadata?: string;
  t: string;
  out: string;
  seed: string;
  online?: boolean;
  workers?: string;
  multilingual?: boolean;
  format?: 'jsonl' | 'tsv' | 'tar';
  textField?: string;
  tsvColumn?: string;
  tsvHeader?: boolean;
  chunkMb: string;
  resume: boolean;
  keepWork?: boolean;
  progress: boolean;
  json?: boolean;
  phase?: string;
  part?: string;
}

const parseT = (s: string): number => (/^(inf|infinity|∞)$/i.test(s) ? Infinity : Number(s));

export function register(program: Command): void {
  const curate = program
    .command('curate')
    .description('MetaCLIP curation of a caption pool: match metadata, count, balance (t), write the curated set and its stats')
    .option(
      '--pool <files...>',
      'JSONL / TSV / WebDataset .tar files, directories, globs or brace patterns (shards/{00000..00099}.tar), joined with :: or not (gzip accepted); "emojibase" = the built-in emoji caption pool',
    )
    .option('--metadata <file>', 'metadata JSON list (default: numbers + WordNet + SUBTLEX words, built once and cached)')
    .option('--t <n>', 'balancing threshold; "inf" keeps every matched pair', '20000')
    .option('--out <dir>', 'output directory (git ignores out/)', 'out/curated')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--online', 'write every matched pair with its probability (metaclip_p) instead of sampling')
    .option('--workers <n>', 'worker threads (default: all cores; 0 = main thread)')
    .option('--multilingual', 'MetaCLIP 2 padding: no space beside CJK, Thai, Lao, Burmese, Khmer, Tibetan')
    .option('--format <format>', 'jsonl | tsv | tar (default: from the file name)')
    .option('--text-field <name>', 'JSONL/.json field of the caption (default: caption, else text)')
    .option('--tsv-column <n|name>', 'TSV caption column: 0-based index or header name (default 0)')
    .option('--tsv-header', 'TSV files start with a header line')
    .option('--chunk-mb <n>', 'split plain JSONL/TSV files into tasks of this many MiB', '32')
    .option('--no-resume', 'ignore the saved state of an interrupted run')
    .option('--keep-work', 'keep <out>/.curate-work after success')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the stats JSON instead of the summary')
    .option(
      '--phase <step>',
      'one step of a curation split into jobs: plan, count (with --part), reduce, sample (with --part); then the same command without --phase assembles the result',
    )
    .option('--part <i/n>', 'with --phase count or sample: the tasks i, i+n, i+2n, … of the run')
    .action(async (flags: CurateFlags) => {
      const c = await import('@mode/curator');
      if (!flags.pool?.length) throw Object.assign(new Error('mode curate: --pool is required (files, globs, or "emojibase")'), { userFacing: true });
      const { expandBraces, splitSpecs } = await import('@mode/data');
      // img2dataset patterns as --data takes them: `::`-joined, brace ranges (the curator expands globs and folders).
      const pool = splitSpecs(flags.pool)
        .flatMap(expandBraces)
        .map((p) => (p === 'emojibase' ? c.writeEmojibasePool() : p));
      const t = parseT(flags.t);
      // On a terminal, a progress bar (step, bytes, texts/s, ETA); elsewhere one line per phase.
      const mb = (b: number) => (b / 1e6).toFixed(1);
      const bar = flags.progress ? progress({ unit: 'texts', value: (bytes, total, texts) => `${texts} texts, ${mb(bytes)}/${mb(total)} MB` }) : null;
      const plain = !bar?.active;
      const tsvColumn = flags.tsvColumn === undefined ? undefined : /^\d+$/.test(flags.tsvColumn) ? Number(flags.tsvColumn) : flags.tsvColumn;
      const started = performance.now();
      const options = {
        pool,
        ...(flags.metadata !== undefined && { metadata: flags.metadata }),
        out: flags.out,
        t,
        seed: Number(flags.seed),
        online: flags.online ?? false,
        ...(flags.workers !== undefined && { workers: Number(flags.workers) }),
        multilingual: flags.multilingual ?? false,
        ...(flags.format !== undefined && { format: flags.format }),
        ...(flags.textField !== undefined && { textField: flags.textField }),
        ...(tsvColumn !== undefined && { tsvColumn }),
        tsvHeader: flags.tsvHeader ?? false,
        chunkBytes: Math.max(4096, Math.round(Number(flags.chunkMb) * 2 ** 20)),
        resume: flags.resume,
        keepWork: flags.keepWork ?? false,
        onPhase: (phase, info) => {
          bar?.start(phase.padEnd(6), info.bytes);
          if (plain && !flags.json)
            console.error(
              `[${phase}] ${info.tasks} task(s)${info.resumed ? `, ${info.resumed} resumed` : ''}, ${info.threads || 'main'} thread${info.threads === 1 ? '' : 's'}`,
            );
        },
        onProgress: (p: { bytes: number; texts: number }) => bar?.update(p.bytes, p.texts),
      } satisfies import('@mode/curator').CurateOptions;
      if (flags.phase !== undefined) {
        const phases = ['plan', 'count', 'reduce', 'sample'];
        if (!phases.includes(flags.phase)) throw Object.assign(new Error(`--phase: "${flags.phase}" is not one of ${phases.join(', ')}`), { userFacing: true });
        const mapped = flags.phase === 'count' || flags.phase === 'sample';
        if (mapped !== (flags.part !== undefined))
          throw Object.assign(new Error(`--phase ${flags.phase} ${mapped ? 'needs' : 'takes no'} --part i/n`), { userFacing: true });
        const step = mapped ? { phase: flags.phase as 'count' | 'sample', part: parsePart(flags.part!) } : { phase: flags.phase as 'plan' | 'reduce' };
        const r = await c.curateStep(options, step);
        bar?.stop();
        console.log(
          `curate ${r.phase}${flags.part ? ` part ${flags.part}` : ''}: ${r.ran} of ${r.tasks} task(s) in ${((performance.now() - started) / 1000).toFixed(2)} s`,
        );
        return;
      }
      const result = await c.curate(options);
      bar?.stop();
      const s = result.stats;
      // Curated tar shards are also a data set folder `mode train --data` reads.
      if (result.paths.curated.length && result.paths.curated.every((f) => f.endsWith('.tar')))
        writeCuratedInfo(flags.out, `${s.pool.texts} pairs of ${s.pool.shards} shard(s) curated MetaCLIP style at t = ${s.t} (seed ${s.seed})`);
      if (flags.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      console.log(
        `pool        ${s.pool.shards} shard(s), ${s.pool.texts} texts, ${(s.pool.bytes / 1e6).toFixed(2)} MB${s.pool.malformed ? `, ${s.pool.malformed} malformed` : ''}`,
      );
      console.log(`metadata    ${s.metadata.entries} entries (${s.metadata.source}); ${s.metadata.matchedEntries} matched at least once`);
      console.log(
        `automaton   ${s.automaton.nodes} nodes, ${(s.automaton.bytes / 2 ** 20).toFixed(1)} MiB, ${s.automaton.loaded ? 'loaded' : 'built'} in ${(s.automaton.ms / 1000).toFixed(2)} s`,
      );
      console.log(`matched     ${s.matched} (${pct(s.matched / Math.max(1, s.pool.texts))} of the pool)`);
      console.log(
        `kept        ${s.kept} (${pct(s.keepRateOfMatched)} of matched) at t = ${s.t}${s.online ? ' (online: expected, probabilities written)' : ''}`,
      );
      console.log(`head (>t)   ${s.head.entries} entries: ${s.head.matchesBefore} matches → ${s.head.matchesAfter}`);
      console.log(`tail (≤t)   ${s.tail.entries} entries: ${s.tail.matchesBefore} matches → ${s.tail.matchesAfter}`);
      const top = s.topBefore.slice(0, 10);
      const after = new Map(s.topAfter.map((e) => [e.entry, e.count]));
      console.log(
        `top entries ${top.map((e) => `${e.entry} ${e.count}→${after.get(e.entry) ?? result.keptCounts[result.entries.indexOf(e.entry)] ?? 0}`).join(', ')}`,
      );
      console.log(`\n${result.distribution}\n`);
      if (s.malformed.count) {
        console.log(`malformed   ${s.malformed.count} line(s):`);
        for (const m of s.malformed.first.slice(0, 10)) console.log(`  ${m.file}:${m.line}: ${m.message}`);
        if (s.malformed.count > 10) console.log(`  … all counts per file and the first 100 in ${result.paths.stats}`);
      }
      const secs = (performance.now() - started) / 1000;
      console.log(
        `time        ${secs.toFixed(2)} s (count ${s.timing.countS.toFixed(2)} s, sample ${s.timing.sampleS.toFixed(2)} s, ${Math.round(s.timing.textsPerS)} texts/s, ${s.timing.mbPerS.toFixed(1)} MB/s, ${s.timing.threads || 'main'} thread(s))`,
      );
      console.log(
        `wrote       ${result.paths.curated.length} curated file(s) in ${flags.out}/curated, ${result.paths.entryCounts}, ${result.paths.stats}, ${result.paths.plot}`,
      );
    });

  curate
    .command('metadata')
    .description('build a metadata list (numbers 0–99, WordNet lemma names, frequent unigrams, PMI bigrams, titles) as JSON')
    .argument('<file>', 'metadata JSON to write')
    .option('--corpus <files...>', 'text files (one text per line) for unigram counts and bigram PMI (default: SUBTLEX word list for unigrams, no bigrams)')
    .option('--unigram-min <n>', 'unigram count threshold over the corpus', '100')
    .option('--bigram-pmi <x>', 'bigram PMI threshold, as the ratio p(ab)/(p(a)p(b))', '30')
    .option('--bigram-min <n>', 'minimum bigram count', '1')
    .option('--subtlex-min <n>', 'without a corpus: SUBTLEX words with at least this count', '100')
    .option('--titles <file>', 'titles list (one per line, optionally "title<TAB>views")')
    .option('--title-views <n>', 'minimum views for a titles line that has a count', '70')
    .option('--no-wordnet', 'leave out WordNet lemma names')
    .action(
      async (
        file: string,
        flags: {
          corpus?: string[];
          unigramMin: string;
          bigramPmi: string;
          bigramMin: string;
          subtlexMin: string;
          titles?: string;
          titleViews: string;
          wordnet: boolean;
        },
      ) => {
        const c = await import('@mode/curator');
        const corpus = flags.corpus?.flatMap((f) => readFileSync(f, 'utf8').split(/\r?\n/));
        const built = c.buildMetadata({
          wordnet: flags.wordnet,
          ...(corpus && { corpus }),
          unigramMinCount: Number(flags.unigramMin),
          bigramPmi: Number(flags.bigramPmi),
          bigramMinCount: Number(flags.bigramMin),
          subtlexMinCount: Number(flags.subtlexMin),
          ...(flags.titles !== undefined && { titles: readFileSync(flags.titles, 'utf8') }),
          titleMinViews: Number(flags.titleViews),
        });
        c.writeMetadata(file, built.entries);
        const src = Object.entries(built.sources)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
        console.log(`${file}: ${built.entries.length} entries (${src}; ${built.duplicates} duplicates and ${built.excluded} excluded entries dropped)`);
      },
    );
}
