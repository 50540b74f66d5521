import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { curate, curateStep, NaiveMatcher, rng, type CurateOptions } from '@mode/curator';

const META = ['cat', 'dog', 'hot dog', 'red', 'big', 'tree', 'sky'];
const tmp = () => mkdtempSync(join(tmpdir(), 'curator-'));

function captions(n: number, seed = 3): string[] {
  const words = ['cat', 'dog', 'hot', 'red', 'big', 'tree', 'sky', 'a', 'the', 'on', 'cats', 'blue'];
  const r = rng(seed);
  return Array.from({ length: n }, () =>
    Array.from({ length: 2 + Math.floor(r() * 5) }, () => words[Math.floor(r() * words.length)]).join(r() < 0.3 ? ', ' : ' '),
  );
}

async function makeTar(samples: { key: string; files: Record<string, Buffer | string> }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((res) => p.on('end', res));
  for (const s of samples)
    for (const [ext, data] of Object.entries(s.files)) p.entry({ name: `${s.key}.${ext}` }, typeof data === 'string' ? Buffer.from(data) : data);
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function readTar(buf: Buffer): Promise<Map<string, Buffer>> {
  const x = extract();
  const out = new Map<string, Buffer>();
  const done = (async () => {
    for await (const e of x) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      out.set(e.header.name, Buffer.concat(parts));
    }
  })();
  x.end(buf);
  await done;
  return out;
}

const run = (o: Partial<CurateOptions> & { pool: string[]; out: string }) => curate({ metadata: META, workers: 0, ...o });

describe('curate: streaming pipeline (in-process)', () => {
  it('JSONL: counts, t = ∞ keeps exactly the matched lines verbatim, malformed lines reported by file and line', async () => {
    const dir = tmp();
    const caps = captions(500);
    const lines = caps.map((c, i) => JSON.stringify({ id: i, caption: c }));
    lines.splice(10, 0, '{"id": "bad json"', '', '{"text": 5}', '[1,2]', '{"text":"a red tree"}');
    const file = join(dir, 'pool.jsonl');
    writeFileSync(file, lines.join('\n')); // no trailing newline
    const r = await run({ pool: [file], out: join(dir, 'out'), t: Infinity });
    const naive = new NaiveMatcher(META);
    const texts = [...caps, 'a red tree'];
    const matched = texts.filter((c) => naive.matchAll(c).length > 0);
    expect(r.stats.pool.texts).toBe(501);
    expect(r.stats.matched).toBe(matched.length);
    expect(r.stats.kept).toBe(matched.length);
    const counts = new Array(META.length).fill(0);
    for (const c of texts) for (const e of naive.matchAll(c)) counts[e]++;
    expect(Array.from(r.counts)).toEqual(counts);
    const ec = JSON.parse(readFileSync(r.paths.entryCounts, 'utf8'));
    expect(ec.cat).toBe(counts[0]);
    const out = readFileSync(join(dir, 'out/curated/pool.jsonl'), 'utf8').trimEnd().split('\n');
    expect(out).toEqual(
      lines.filter((l) => {
        try {
          const o = JSON.parse(l);
          const c = o.caption ?? o.text;
          return typeof c === 'string' && naive.matchAll(c).length > 0;
        } catch {
          return false;
        }
      }),
    );
    expect(r.stats.malformed.count).toBe(3);
    expect(r.stats.malformed.first.map((m) => [m.line, m.message.split(':')[0]])).toEqual([
      [11, 'invalid JSON'],
      [13, 'no string field "caption" or "text"'],
      [14, 'no string field "caption" or "text"'],
    ]);
    expect(r.stats.malformed.first[0]!.file).toBe(file);
    expect(r.stats.malformed.byFile[file]).toBe(3);
    expect(existsSync(join(dir, 'out/.curate-work'))).toBe(false);
    expect(readFileSync(r.paths.plot, 'utf8')).toMatch(/^<svg[\s\S]*<path d="M[\s\S]*<path d="M[\s\S]*<\/svg>\n$/);
  });

  it('byte-range tasks give the same output, counts and line numbers as whole files; sampling is balanced', async () => {
    const dir = tmp();
    const lines = captions(3000, 9).map((c, i) => JSON.stringify({ k: i, caption: c }));
    lines.splice(1234, 0, 'not json');
    writeFileSync(join(dir, 'a.jsonl'), lines.join('\r\n') + '\r\n');
    const whole = await run({ pool: [join(dir, 'a.jsonl')], out: join(dir, 'w'), t: 100, seed: 5 });
    const split = await run({ pool: [join(dir, 'a.jsonl')], out: join(dir, 's'), t: 100, seed: 5, chunkBytes: 997 });
    expect(readFileSync(join(dir, 's/curated/a.jsonl'))).toEqual(readFileSync(join(dir, 'w/curated/a.jsonl')));
    expect(Array.from(split.counts)).toEqual(Array.from(whole.counts));
    expect(split.stats.malformed.first).toEqual(whole.stats.malformed.first);
    expect(whole.stats.malformed.first[0]!.line).toBe(1235);
    // each head entry ends near t
    for (let e = 0; e < META.length; e++) {
      if (whole.counts[e]! > 100) expect(whole.keptCounts[e]!).toBeGreaterThanOrEqual(60);
      else expect(whole.keptCounts[e]).toBe(whole.counts[e]);
    }
    expect(whole.stats.kept).toBeLessThan(whole.stats.matched);
    const other = await run({ pool: [join(dir, 'a.jsonl')], out: join(dir, 'o'), t: 100, seed: 6 });
    expect(readFileSync(join(dir, 'o/curated/a.jsonl'))).not.toEqual(readFileSync(join(dir, 'w/curated/a.jsonl')));
  });

  it('TSV with a header and a named column, gzipped, and the online variant', async () => {
    const dir = tmp();
    const caps = captions(200, 4);
    const body = ['url\tcaption', ...caps.map((c, i) => `http://x/${i}.jpg\t${c}`), 'only-one-column'].join('\n') + '\n';
    writeFileSync(join(dir, 'p.tsv.gz'), gzipSync(body));
    const r = await run({ pool: [join(dir, '*.tsv.gz')], out: join(dir, 'out'), t: 10, tsvColumn: 1, tsvHeader: true, online: true });
    const out = gunzipSync(readFileSync(join(dir, 'out/curated/p.tsv.gz')))
      .toString()
      .trimEnd()
      .split('\n');
    expect(out[0]).toBe('url\tcaption\tmetaclip_p');
    const naive = new NaiveMatcher(META);
    expect(out.length - 1).toBe(caps.filter((c) => naive.matchAll(c).length > 0).length);
    let sum = 0;
    for (const l of out.slice(1)) {
      const p = Number(l.split('\t')[2]);
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThanOrEqual(1);
      sum += p;
    }
    expect(r.stats.kept).toBeCloseTo(sum, 2);
    expect(r.stats.malformed.first).toEqual([{ file: join(dir, 'p.tsv.gz'), line: 202, message: '1 column(s), caption column is 2' }]);
  });

  it('WebDataset tar (and .tar.gz): kept samples keep all their members; samples without a caption are reported', async () => {
    const dir = tmp();
    const caps = captions(60, 5);
    const samples = caps.map((c, i) => ({
      key: `s/${String(i).padStart(4, '0')}`,
      files: { jpg: Buffer.from([0xff, 0xd8, i, 0, 1, 2]), txt: c, json: JSON.stringify({ i }) },
    }));
    samples.splice(7, 0, { key: 's/nocap', files: { jpg: Buffer.from([1]), txt: undefined as unknown as string } });
    samples[7]!.files = { jpg: Buffer.from([1]) } as never;
    const tarBuf = await makeTar(samples);
    writeFileSync(join(dir, 'shard-000.tar'), tarBuf);
    writeFileSync(join(dir, 'shard-001.tar.gz'), gzipSync(tarBuf));
    const r = await run({ pool: [dir], out: join(dir, 'out'), t: Infinity });
    expect(r.stats.pool.shards).toBe(2);
    expect(r.stats.malformed.count).toBe(2);
    expect(r.stats.malformed.first[0]!.message).toContain('"s/nocap" has no caption');
    expect(r.stats.malformed.first[0]!.line).toBe(8);
    const naive = new NaiveMatcher(META);
    const keptKeys = samples.filter((s) => typeof s.files.txt === 'string' && naive.matchAll(s.files.txt as string).length > 0).map((s) => s.key);
    for (const name of ['shard-000.tar', 'shard-001.tar.gz']) {
      let buf = readFileSync(join(dir, 'out/curated', name));
      if (name.endsWith('.gz')) buf = gunzipSync(buf);
      const members = await readTar(buf);
      expect([...members.keys()].filter((k) => k.endsWith('.txt')).map((k) => k.slice(0, -4))).toEqual(keptKeys);
      const k = keptKeys[0]!;
      const i = Number(k.slice(2));
      expect(members.get(`${k}.jpg`)).toEqual(Buffer.from([0xff, 0xd8, i, 0, 1, 2]));
      expect(JSON.parse(members.get(`${k}.json`)!.toString())).toEqual({ i });
    }
    expect(r.stats.kept).toBe(2 * keptKeys.length);
  });

  it('a BOM, a line longer than the read buffer, and a file without a final newline', async () => {
    const dir = tmp();
    const long = JSON.stringify({ caption: `${'lorem ipsum '.repeat(300_000)}red sky` });
    writeFileSync(join(dir, 'x.jsonl'), `\ufeff{"caption":"a cat"}\n${long}\n{"caption":"big dog"}`);
    const r = await run({ pool: [join(dir, 'x.jsonl')], out: join(dir, 'out'), t: Infinity });
    expect(r.stats.malformed.count).toBe(0);
    expect(r.stats.pool.texts).toBe(3);
    expect(r.stats.kept).toBe(3);
    expect(r.counts[META.indexOf('sky')]).toBe(1);
    const split = await run({ pool: [join(dir, 'x.jsonl')], out: join(dir, 'out2'), t: Infinity, chunkBytes: 100_000 });
    expect(split.stats.pool.texts).toBe(3);
    expect(readFileSync(join(dir, 'out2/curated/x.jsonl'))).toEqual(readFileSync(join(dir, 'out/curated/x.jsonl')));
  });

  it('an interrupted run leaves no output and resumes task by task to the same result', async () => {
    const dir = tmp();
    for (let s = 0; s < 4; s++)
      writeFileSync(
        join(dir, `part-${s}.jsonl`),
        captions(400, 20 + s)
          .map((c) => JSON.stringify({ caption: c }))
          .join('\n'),
      );
    const clean = await run({ pool: [join(dir, 'part-*.jsonl')], out: join(dir, 'clean'), t: 50, seed: 1 });
    const out = join(dir, 'out');
    let texts = 0;
    await expect(
      run({
        pool: [join(dir, 'part-*.jsonl')],
        out,
        t: 50,
        seed: 1,
        onProgress: (p) => {
          texts = p.texts;
          if (p.phase === 'sample' && p.texts > 900) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(texts).toBeGreaterThan(0);
    expect(existsSync(join(out, 'stats.json'))).toBe(false);
    expect(existsSync(join(out, 'curated'))).toBe(false);
    const resumed: [string, number][] = [];
    const r = await run({ pool: [join(dir, 'part-*.jsonl')], out, t: 50, seed: 1, onPhase: (phase, i) => resumed.push([phase, i.resumed]) });
    expect(resumed[0]).toEqual(['count', 4]);
    expect(resumed[1]![1]).toBeGreaterThanOrEqual(2);
    for (let s = 0; s < 4; s++) expect(readFileSync(join(out, `curated/part-${s}.jsonl`))).toEqual(readFileSync(join(dir, `clean/curated/part-${s}.jsonl`)));
    expect(r.stats.kept).toBe(clean.stats.kept);
    expect(readdirSync(out).sort()).toEqual(['curated', 'entry_counts.json', 'longtail.svg', 'stats.json']);
    // a different t reuses the counts but not the samples
    const phases: [string, number][] = [];
    await run({ pool: [join(dir, 'part-*.jsonl')], out, t: 80, seed: 1, keepWork: true, onPhase: (phase, i) => phases.push([phase, i.resumed]) });
    expect(phases).toEqual([
      ['count', 0],
      ['sample', 0],
    ]);
  });

  it('split into jobs (plan → count parts → reduce → sample parts → assemble): the same bytes as one run', async () => {
    const dir = tmp();
    const pool = [0, 1, 2, 3, 4].map((i) => {
      const file = join(dir, `p${i}.jsonl`);
      writeFileSync(
        file,
        captions(300, 10 + i)
          .map((c, j) => JSON.stringify({ id: j, caption: c }))
          .join('\n') + '\n',
      );
      return file;
    });
    const o = { pool, t: 20, seed: 7, chunkBytes: 4096 };
    const whole = await run({ ...o, out: join(dir, 'whole') });
    const opts = { metadata: META, workers: 0, ...o, out: join(dir, 'steps') };
    // Before planning, a map step is refused rather than starting a work folder of its own.
    await expect(curateStep(opts, { phase: 'count', part: { index: 0, count: 2 } })).rejects.toThrow(/Fix: run `mode curate --phase plan`/);
    expect((await curateStep(opts, { phase: 'plan' })).ran).toBe(0);
    await expect(curateStep(opts, { phase: 'reduce' })).rejects.toThrow(/count tasks have no result/);
    const ran = [];
    for (const index of [1, 0]) ran.push((await curateStep(opts, { phase: 'count', part: { index, count: 2 } })).ran);
    await expect(curateStep(opts, { phase: 'sample', part: { index: 0, count: 2 } })).rejects.toThrow(/no summed counts/);
    await curateStep(opts, { phase: 'reduce' });
    for (const index of [0, 1]) await curateStep(opts, { phase: 'sample', part: { index, count: 2 } });
    const r = await curate(opts);
    expect(ran[0]! + ran[1]!).toBeGreaterThan(5); // byte ranges: more tasks than files
    expect(r.stats.kept).toBe(whole.stats.kept);
    expect(r.stats.matched).toBe(whole.stats.matched);
    for (const f of readdirSync(join(dir, 'whole', 'curated')))
      expect(readFileSync(join(dir, 'steps', 'curated', f))).toEqual(readFileSync(join(dir, 'whole', 'curated', f)));
    expect(existsSync(join(dir, 'steps', '.curate-work'))).toBe(false);
  });
});
