import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSeed, rng } from '@mode/kernels';
import * as ag from '../src/index.js';

const seed = freshSeed();
console.log(`safetensors tests: seed ${seed} (replay with MODE_SEED=${seed})`);
const random = rng(seed);
let engine: ag.Engine;
const dir = mkdtempSync(join(tmpdir(), 'mode-safetensors-'));
beforeAll(async () => {
  engine = await ag.init();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await engine?.destroy();
});

/** A file by hand: header JSON exactly as given (with its padding), then the bytes. */
function handBuilt(header: string, data: Uint8Array): Uint8Array {
  const head = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

describe('safetensors', () => {
  it('a file written here reads back bit-identical, and its header parses as plain JSON', async () => {
    // Special values too: NaN with a payload, −0, ±Infinity, a subnormal.
    const bits = Uint32Array.from({ length: 37 }, () => (random() * 2 ** 32) >>> 0);
    bits.set([0x7fc12345, 0x80000000, 0x7f800000, 0xff800000, 0x00000001]);
    const values = new Float32Array(bits.buffer);
    const t = { 'visual.proj': ag.tensor(values, [37]), token_ids: ag.tensor([3, 1, 4], [3], { dtype: 'u32' }), logit_scale: ag.full([], Math.log(1 / 0.07)) };
    const a = join(dir, 'a.safetensors');
    await ag.saveSafetensors(a, t, { note: 'written by @mode/autograd' });
    const bytes = readFileSync(a);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    expect(header.__metadata__).toEqual({ note: 'written by @mode/autograd' });
    expect(header['visual.proj']).toEqual({ dtype: 'F32', shape: [37], data_offsets: [16, 164] }); // after logit_scale (4 bytes) and token_ids (12): names sorted
    expect(header.logit_scale.shape).toEqual([]);
    const loaded = ag.fromSafetensors(a);
    expect(new Uint32Array((await loaded['visual.proj']!.read()).buffer)).toEqual(bits);
    expect([...(await loaded.token_ids!.readU32())]).toEqual([3, 1, 4]);
    const b = join(dir, 'b.safetensors');
    await ag.saveSafetensors(b, loaded, { note: 'written by @mode/autograd' });
    expect(Buffer.compare(readFileSync(b), bytes)).toBe(0);
  });

  it('reads a hand-built file (F16, BF16, U8, metadata, offsets not in name order)', async () => {
    const data = new Uint8Array(2 * 3 + 2 * 2 + 8);
    const dv = new DataView(data.buffer);
    [0x3c00, 0xc000, 0x3800].forEach((h, i) => dv.setUint16(10 + 2 * i, h, true)); // f16 1, −2, 0.5 at bytes 10..16
    [0x3f80, 0x4040].forEach((h, i) => dv.setUint16(6 + 2 * i, h, true)); // bf16 1, 3 at bytes 6..10
    [7, 0, 255, 1, 2, 3].forEach((v, i) => dv.setUint8(i, v)); // u8 at bytes 0..6
    const header =
      '{"__metadata__":{"format":"pt"},"half":{"dtype":"F16","shape":[3],"data_offsets":[10,16]},' +
      '"brain":{"dtype":"BF16","shape":[1,2],"data_offsets":[6,10]},"count":{"dtype":"U8","shape":[6],"data_offsets":[0,6]}}  ';
    const f = join(dir, 'hand.safetensors');
    writeFileSync(f, handBuilt(header, data.subarray(0, 16)));
    const t = ag.fromSafetensors(f);
    expect([...(await t.half!.read())]).toEqual([1, -2, 0.5]);
    expect(t.brain!.shape).toEqual([1, 2]);
    expect([...(await t.brain!.read())]).toEqual([1, 3]);
    expect([...(await t.count!.read())]).toEqual([7, 0, 255, 1, 2, 3]);
    expect(ag.readSafetensorsFile(f).metadata).toEqual({ format: 'pt' });
  });

  it('bad files give errors naming the file, the tensor and the fix', () => {
    const f = join(dir, 'bad.safetensors');
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(3), /too short/],
      [handBuilt('{"a": ', new Uint8Array(0)), /not valid JSON/],
      [handBuilt('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(4)), /tensor "w": data_offsets \[0,8\] are not/],
      [handBuilt('{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8)), /tensor "w": unknown dtype "Q4"/],
      [handBuilt('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), /needs 12 bytes/],
      [handBuilt('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), /overlaps/],
    ];
    for (const [bytes, re] of cases) {
      writeFileSync(f, bytes);
      expect(() => ag.readSafetensorsFile(f)).toThrow(re);
      expect(() => ag.readSafetensorsFile(f)).toThrow(new RegExp(`${f.replace(/[.]/g, '\\.')}.*Fix:`));
    }
    expect(() => ag.readSafetensorsFile(join(dir, 'missing.safetensors'))).toThrow(/cannot read \(ENOENT\)/);
  });

  it('a module saves under its parameter names and loads back into another instance', async () => {
    const a = new ag.MLP([3, 5, 2], { seed: 1 });
    const b = new ag.MLP([3, 5, 2], { seed: 2 });
    const f = join(dir, 'mlp.safetensors');
    await ag.saveModule(a, f);
    expect(Object.keys(ag.readSafetensorsFile(f).tensors)).toEqual(['c_fc.bias', 'c_fc.weight', 'c_proj.bias', 'c_proj.weight']);
    const x = ag.randn([4, 3]);
    expect(await ag.noGrad(() => b.forward(x)).read()).not.toEqual(await ag.noGrad(() => a.forward(x)).read());
    ag.loadModule(b, f);
    expect(await ag.noGrad(() => b.forward(x)).read()).toEqual(await ag.noGrad(() => a.forward(x)).read());
    // negative control: another architecture is refused, naming what is missing
    expect(() => ag.loadModule(new ag.MLP([3, 5, 5, 2]), f)).toThrow(/missing layers\.0\.bias.*Fix/);
  });
});
