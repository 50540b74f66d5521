import { readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BadRecords, DataError, ShardWriter, decodePng, firstInvalidUtf8, readShard, readShards, toClass, toPair, type RawSample } from '../src/index.js';
import { Rng } from '../src/rng.js';
import { testPng, tmp } from './helpers.js';

const collect = async (it: AsyncIterable<RawSample>) => {
  const out: RawSample[] = [];
  for await (const s of it) out.push(s);
  return out;
};

async function writeSet(dir: string, n: number, options: { gzip?: boolean; samplesPerShard?: number } = {}) {
  const w = new ShardWriter(dir, { prefix: 'train', samplesPerShard: options.samplesPerShard ?? 4, gzip: options.gzip });
  const samples = Array.from({ length: n }, (_, i) => ({
    key: `s${String(i).padStart(3, '0')}`,
    png: testPng(i),
    txt: `caption ${i}: ünïcödé ✓ 🦊`,
    json: { i, tags: ['a', 'b'] },
  }));
  for (const s of samples) await w.write(s.key, { png: s.png, txt: s.txt, json: s.json });
  return { shards: await w.close(), samples };
}

describe('WebDataset shards', () => {
  it('round trip: every file of every sample comes back byte for byte, in order', async () => {
    for (const gzip of [false, true]) {
      const { shards, samples } = await writeSet(tmp(), 10, { gzip });
      expect(shards).toHaveLength(3);
      expect(shards[0]).toMatch(gzip ? /train-000000\.tar\.gz$/ : /train-000000\.tar$/);
      const back = await collect(readShards(shards));
      expect(back.map((s) => s.key)).toEqual(samples.map((s) => s.key));
      back.forEach((b, i) => {
        const s = samples[i]!;
        expect(Object.keys(b.files).sort()).toEqual(['json', 'png', 'txt']);
        expect(Buffer.compare(Buffer.from(b.files.png!), Buffer.from(s.png))).toBe(0);
        expect(Buffer.from(b.files.txt!).toString('utf8')).toBe(s.txt);
        expect(JSON.parse(Buffer.from(b.files.json!).toString('utf8'))).toEqual(s.json);
        expect(toPair(b).text).toBe(s.txt);
      });
    }
  });

  it('is deterministic: the same samples give the same shard bytes, and GNU tar reads them', async () => {
    const a = await writeSet(tmp(), 5, { samplesPerShard: 100 });
    const b = await writeSet(tmp(), 5, { samplesPerShard: 100 });
    expect(readFileSync(a.shards[0]!).equals(readFileSync(b.shards[0]!))).toBe(true);
    const { execFileSync } = await import('node:child_process');
    const names = execFileSync('tar', ['tf', a.shards[0]!], { encoding: 'utf8' }).trim().split('\n');
    expect(names.slice(0, 3)).toEqual(['s000.png', 's000.txt', 's000.json']);
  });

  it('refuses keys with dots (the first dot starts the extension) and duplicate keys', async () => {
    const w = new ShardWriter(tmp());
    await expect(w.write('a.b', { txt: 'x' })).rejects.toThrow(/without dots/);
    await w.write('a', { txt: 'x' });
    await expect(w.write('a', { txt: 'y' })).rejects.toThrow(/duplicate key/);
  });

  it('truncated tar (cut inside a member): an error naming the shard and the record', async () => {
    const { shards } = await writeSet(tmp(), 4, { samplesPerShard: 100 });
    const file = shards[0]!;
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const err = await collect(readShard(file)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).file).toBe(file);
    expect((err as DataError).message).toMatch(new RegExp(`${file}: record s00\\d: truncated or corrupt tar`));
    // --skip-bad: the samples before the cut come back, the cut is counted.
    const bad = new BadRecords();
    const got = await collect(readShard(file, { bad }));
    expect(bad.count).toBe(1);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(4);
    for (const s of got) expect(toPair(s).text).toMatch(/^caption/);
  });

  it('truncated tar (cut at a member boundary, end blocks missing) and truncated .tar.gz', async () => {
    const { shards } = await writeSet(tmp(), 3, { samplesPerShard: 100 });
    const file = shards[0]!;
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 1024 * 2)); // tar-stream pads to records; drop the end blocks
    await expect(collect(readShard(file))).rejects.toThrow(/truncated tar/);
    const gz = join(tmp(), 'x.tar.gz');
    const packed = gzipSync(bytes);
    writeFileSync(gz, packed.subarray(0, packed.length - 100));
    const err = (await collect(readShard(gz)).catch((e: unknown) => e)) as DataError;
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toContain(gz);
    expect(err.message).toMatch(/record s00\d/);
  });

  it('missing caption and invalid UTF-8 name the shard and the record', async () => {
    const dir = tmp();
    const w = new ShardWriter(dir, { samplesPerShard: 100 });
    await w.write('ok', { png: testPng(1), txt: 'fine' });
    await w.write('nocap', { png: testPng(2), json: { a: 1 } });
    await w.write('badutf', { png: testPng(3), txt: Uint8Array.of(0x61, 0x62, 0xc3, 0x28) });
    await w.write('empty', { png: testPng(4), txt: '   ' });
    const [shard] = await w.close();
    const raws = await collect(readShard(shard!));
    expect(toPair(raws[0]!).text).toBe('fine');
    expect(() => toPair(raws[1]!)).toThrow(`${shard}: record nocap: missing caption (no nocap.txt, and no "caption" in nocap.json; members: png, json)`);
    expect(() => toPair(raws[2]!)).toThrow(`${shard}: record badutf: badutf.txt is not valid UTF-8 (byte 2: 0xc3)`);
    expect(() => toPair(raws[3]!)).toThrow(/record empty: missing caption/);
    expect(() => toClass(raws[0]!)).toThrow(/record ok: missing label/);
  });

  it('corrupt PNG: an error naming the file and the record', () => {
    const png = testPng(5);
    const cut = png.subarray(0, png.length - 20);
    expect(() => decodePng(cut, { file: 'shard.tar', record: 'k1' })).toThrow(/^shard\.tar: record k1: corrupt PNG/);
    const flipped = Uint8Array.from(png);
    flipped[40] = flipped[40]! ^ 0xff; // inside IHDR/IDAT: CRC or zlib fails
    expect(() => decodePng(flipped, { file: 'shard.tar', record: 'k2' })).toThrow(/^shard\.tar: record k2: corrupt PNG/);
    expect(() => decodePng(Uint8Array.of(1, 2, 3), { file: 'f', record: 'r' })).toThrow(/bad signature/);
    expect(decodePng(png).width).toBe(16);
  });

  it('UTF-8 validation agrees with a strict TextDecoder on random bytes', () => {
    const rng = new Rng(7);
    const strict = new TextDecoder('utf-8', { fatal: true });
    for (let t = 0; t < 3000; t++) {
      const bytes = Uint8Array.from({ length: 1 + rng.int(8) }, () => (rng.chance(0.5) ? 0x80 + rng.int(0x80) : rng.int(0x100)));
      let ok = true;
      try {
        strict.decode(bytes);
      } catch {
        ok = false;
      }
      expect(firstInvalidUtf8(bytes) < 0).toBe(ok);
    }
  });
});
