import type { Command } from 'commander';
import { progress } from '../progress.js';
import { int, parseSources } from '../sources.js';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export function register(program: Command): void {
  const data = program.command('data').description('data sets: build the default shards, import your own, verify shards');

  data
    .command('prepare')
    .description('build the default data sets (emoji, clip art, Fashion-MNIST, MNIST, OpenMoji), tokenizer and EDA synonyms into a cache folder')
    .option('--out <dir>', 'cache folder (default $MODE_DATA_DIR or ~/.cache/mode/data)')
    .option('--only <sets>', 'comma-separated subset: emoji,clipart,fashion-mnist,mnist,openmoji')
    .option('--force', 'rebuild sets that are already there')
    .option('--skip-bad', 'count and report bad records instead of stopping at the first')
    .option('--vocab-size <n>', 'BPE vocabulary size (specials and bytes included)', '4096')
    .option('--limit <n>', 'at most n records per set and split (a quick look)')
    .action(async (opts: { out?: string; only?: string; force?: boolean; skipBad?: boolean; vocabSize: string; limit?: string }) => {
      const { prepare, SOURCES, defaultDataDir } = await import('@mode/data');
      const only = opts.only?.split(',').map((s) => s.trim()) as (typeof SOURCES)[number][] | undefined;
      const unknown = only?.filter((s) => !(SOURCES as readonly string[]).includes(s));
      if (unknown?.length) throw Object.assign(new Error(`unknown set(s) ${unknown.join(', ')}; sets: ${SOURCES.join(', ')}`), { userFacing: true });
      const out = opts.out ?? defaultDataDir();
      console.log(`mode data prepare → ${out}`);
      // On a terminal, a progress bar (set, records, records/s, ETA); elsewhere one line per set.
      const bar = progress({ unit: 'records' });
      const rows: string[] = [];
      const result = await prepare({
        out,
        only,
        force: opts.force,
        skipBad: opts.skipBad,
        vocabSize: Number(opts.vocabSize),
        limit: opts.limit ? Number(opts.limit) : undefined,
        onStart: (source, total) => {
          if (bar.active) bar.start(source.padEnd(14), total);
          else console.log(`  building ${source} (${total})`);
        },
        onProgress: (e) => bar.update(e.done),
        onDone: (source, info, reused) => {
          bar.stop();
          const splits = Object.entries(info.splits)
            .map(([s, v]) => `${s} ${v.count}`)
            .join(', ');
          const bytes = Object.values(info.splits).reduce((a, v) => a + v.bytes, 0);
          const skipped = Object.entries(info.skipped ?? {})
            .filter(([, n]) => n)
            .map(([why, n]) => `${n} ${why}`)
            .join(', ');
          const classes = info.classes ? `, ${info.classes.length} classes` : '';
          rows.push(
            `  ${source.padEnd(14)} ${info.kind.padEnd(15)} ${splits}${classes}   ${mb(bytes)}${reused ? '   (already there)' : `   ${info.seconds}s`}${skipped ? `   left out: ${skipped}` : ''}`,
          );
        },
      });
      bar.stop();
      console.log('\ndata sets');
      for (const r of rows) console.log(r);
      if (result.tokenizer)
        console.log(`  tokenizer      BPE, ${result.tokenizer.vocabSize} ids, trained on ${result.tokenizer.captions} captions → ${result.tokenizer.path}`);
      if (result.synonyms) console.log(`  synonyms       ${result.synonyms.words} words with WordNet synonyms → ${result.synonyms.path}`);
      console.log(`total ${mb(result.bytes)} in ${out}, ${result.seconds.toFixed(1)} s`);
      if (result.bad.count) console.log(result.bad.summary());
    });

  data
    .command('import')
    .description('import a JSONL manifest ({"image": path, "text": ...} or {"image": path, "label": ...}) as a data set')
    .argument('<manifest>', 'JSONL file; image paths relative to it')
    .requiredOption('--out <dir>', 'data set folder to write')
    .option('--name <name>', 'data set name (default: the manifest file name)')
    .option('--classes <list>', 'classification: class names in label order, comma-separated (default: sorted distinct labels)')
    .option('--template <t...>', 'classification: prompt template(s), {} for the class name')
    .option('--skip-bad', 'count and report bad records instead of stopping at the first')
    .action(async (manifest: string, opts: { out: string; name?: string; classes?: string; template?: string[]; skipBad?: boolean }) => {
      const { importManifest, BadRecords } = await import('@mode/data');
      const bad = opts.skipBad ? new BadRecords() : undefined;
      const info = await importManifest(manifest, {
        out: opts.out,
        name: opts.name,
        bad,
        classes: opts.classes?.split(',').map((s) => s.trim()),
        templates: opts.template,
      });
      const splits = Object.entries(info.splits).map(([s, v]) => `${s} ${v.count} (${v.shards.length} shard${v.shards.length === 1 ? '' : 's'})`);
      console.log(`${info.name}: ${info.kind}, ${splits.join(', ')}${info.classes ? `, ${info.classes.length} classes` : ''} → ${opts.out}`);
      if (bad) console.log(bad.summary());
    });

  data
    .command('index')
    .description('index shards once (samples, byte offsets, captions): a run resumed mid-epoch then seeks instead of re-reading')
    .argument('<patterns...>', 'folders of .tar shards, brace patterns or globs (joined with :: as --train-data)')
    .option('--index-dir <dir>', 'where indexes go (default $MODE_INDEX_DIR or ~/.cache/mode/index)')
    .action(async (patterns: string[], opts: { indexDir?: string }) => {
      const d = await import('@mode/data');
      const shards = d.splitSpecs(patterns).flatMap((p) => d.resolveShardSet(p).shards);
      const t0 = performance.now();
      let [samples, indexed, current] = [0, 0, 0];
      for (const shard of shards) {
        if (d.readIndex(shard, opts.indexDir)) {
          current++;
          continue;
        }
        try {
          const index = await d.indexShard(shard);
          d.writeIndex(index, opts.indexDir);
          samples += index.samples.length;
          indexed++;
          if (index.truncated) console.log(`${shard}: ${index.truncated.reason}`);
        } catch (e) {
          if (!(e instanceof d.DataError)) throw e;
          console.log(`${e.message}`);
        }
      }
      console.log(
        `indexed ${indexed} shard${indexed === 1 ? '' : 's'} (${samples} samples) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${current} already current; ${shards.length - indexed - current} not indexable (they stream) → ${opts.indexDir ?? d.defaultIndexDir()}`,
      );
    });

  data
    .command('tokenizer')
    .description("train the project's byte-level BPE on your captions; pass the file to train, eval, embed with --tokenizer")
    .requiredOption(
      '--data <patterns...>',
      'caption sources: folders of .tar shards, brace patterns, globs or data set folders, joined with :: as --train-data',
    )
    .requiredOption('--out <file>', 'tokenizer file to write (JSON, atomically)')
    .option('--vocab-size <n>', 'ids in all, the 4 specials and 256 bytes included', '4096')
    .option('--limit <n>', 'at most this many captions (the first, in shard order)', '1000000')
    .option('--skip-bad', 'skip samples without a readable caption (counted by kind) instead of stopping')
    .action(async (opts: { data: string[]; out: string; vocabSize: string; limit: string; skipBad?: boolean }) => {
      const d = await import('@mode/data');
      const { renameSync, writeFileSync } = await import('node:fs');
      const vocabSize = int('vocab-size', opts.vocabSize);
      if (vocabSize < 260) throw Object.assign(new Error(`--vocab-size ${vocabSize}: at least 260 (4 specials and 256 bytes)`), { userFacing: true });
      const limit = int('limit', opts.limit);
      const bad = opts.skipBad ? new d.BadRecords() : undefined;
      const t0 = performance.now();
      const captions: string[] = [];
      for await (const c of d.mixCaptions(parseSources(opts.data), bad ? { skipBad: bad } : {})) {
        captions.push(c.text);
        if (captions.length >= limit) break;
      }
      if (!captions.length) throw Object.assign(new Error(`--data ${opts.data.join(' ')}: no captions to train on`), { userFacing: true });
      const tok = d.Tokenizer.train(captions, { vocabSize });
      writeFileSync(`${opts.out}.${process.pid}.tmp`, JSON.stringify(tok.toJSON()) + '\n');
      renameSync(`${opts.out}.${process.pid}.tmp`, opts.out);
      console.log(`${opts.out}: ${tok.vocabSize} ids from ${captions.length} captions in ${((performance.now() - t0) / 1000).toFixed(1)} s (id ${tok.id})`);
      if (bad?.count) console.log(bad.summary());
    });

  data
    .command('verify')
    .description('read every record of data sets or shards: decode each image, check captions and labels')
    .argument('[paths...]', 'data set folders or .tar/.tar.gz shards (default: every set in the cache)')
    .option('--out <dir>', 'cache folder whose sets to verify when no paths are given')
    .option('--skip-bad', 'count and report bad records instead of stopping at the first')
    .action(async (paths: string[], opts: { out?: string; skipBad?: boolean }) => {
      const { BadRecords, DataError, datasetShards, decodeImage, defaultDataDir, readDatasetInfo, readShards, report, toClass, toPair } =
        await import('@mode/data');
      const { existsSync, readdirSync, statSync } = await import('node:fs');
      const { join } = await import('node:path');
      const root = opts.out ?? defaultDataDir();
      const targets = paths.length
        ? paths
        : existsSync(root)
          ? readdirSync(root)
              .map((d) => join(root, d))
              .filter((d) => existsSync(join(d, 'dataset.json')))
          : [];
      if (!targets.length) throw Object.assign(new Error(`nothing to verify in ${root}. Fix: npx mode data prepare`), { userFacing: true });
      const bad = opts.skipBad ? new BadRecords() : undefined;
      for (const t of targets) {
        const isSet = statSync(t).isDirectory();
        const info = isSet ? readDatasetInfo(t) : undefined;
        const shards = isSet ? datasetShards(t) : [t];
        let n = 0;
        const before = bad?.count ?? 0;
        for await (const raw of readShards(shards, { bad })) {
          try {
            const rec = raw.files.cls || info?.kind === 'classification' ? toClass(raw, info?.classes?.length) : toPair(raw);
            await decodeImage(rec.image, { file: raw.shard, record: raw.key });
            n++;
          } catch (e) {
            if (!(e instanceof DataError)) throw e;
            report(e, bad);
          }
        }
        console.log(`${t}: ${n} records ok${bad ? `, ${bad.count - before} bad` : ''}`);
      }
      if (bad?.count) {
        console.log(bad.summary());
        process.exitCode = 1;
      }
    });
}
