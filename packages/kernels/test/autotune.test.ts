import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KERNELS_DIR, Gpu } from '@mode/gpu';
import { Autotuner, chooseMatmul, pow2Class, tuneKey, type Candidate } from '../src/index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mode-tune-'));
const fixed = (name: string, seconds: number, unsupported: string | null = null): Candidate => ({ name, unsupported, time: async () => seconds });

describe('tune key', () => {
  it('rounds dimensions up to powers of two and keeps layout and dtype', () => {
    expect([1, 2, 3, 1000, 1024, 1025].map(pow2Class)).toEqual([1, 2, 4, 1024, 1024, 2048]);
    expect(tuneKey('matmul', { m: 1000, n: 33, k: 7 }, 'ABt')).toBe('matmul|m1024.n64.k8|ABt|f32');
  });
});

describe('Autotuner', () => {
  it('picks the fastest supported candidate and caches it', async () => {
    const path = join(tmp(), 'cache.json');
    const tuner = new Autotuner(path);
    const pick = await tuner.pick('adapter', 'fam', 'sum1', 'key', [fixed('slow', 2), fixed('fast', 1), fixed('fastest', 0.5, 'needs subgroups')]);
    expect(pick).toBe('fast');
    expect(tuner.log.at(-1)).toMatchObject({ variant: 'fast', cached: false, skipped: ['fastest: needs subgroups'] });
    // A new process (new tuner) reads the choice without measuring.
    const again = new Autotuner(path);
    let measured = false;
    const spy: Candidate = { name: 'slow', unsupported: null, time: async () => ((measured = true), 0.1) };
    expect(await again.pick('adapter', 'fam', 'sum1', 'key', [spy, fixed('fast', 1)])).toBe('fast');
    expect(measured).toBe(false);
  });

  it('a pinned choice wins over the cache and measuring; choicesMade() lists what was handed out', async () => {
    const path = join(tmp(), 'cache.json');
    await new Autotuner(path).pick('adapter', 'fam', 'sum1', 'k1', [fixed('slow', 2), fixed('fast', 1)]);
    const tuner = new Autotuner(path);
    expect(tuner.lookup('adapter', 'fam', 'sum1', 'k1')).toBe('fast');
    tuner.pin({ k1: 'slow', k2: 'slow' });
    expect(tuner.lookup('adapter', 'fam', 'sum1', 'k1')).toBe('slow');
    let measured = false;
    const spy: Candidate = { name: 'fast', unsupported: null, time: async () => ((measured = true), 0.1) };
    expect(await tuner.pick('adapter', 'fam', 'sum1', 'k2', [spy, fixed('slow', 2)])).toBe('slow');
    expect(measured).toBe(false);
    expect(tuner.choicesMade()).toEqual({ k1: 'slow', k2: 'slow' });
    await expect(tuner.pick('adapter', 'fam', 'sum1', 'k2', [fixed('slow', 1, 'needs f16'), fixed('fast', 1)])).rejects.toThrow(
      'autotune k2: the pinned variant slow cannot run here (slow: needs f16)',
    );
    const fresh = new Autotuner(path);
    fresh.lookup('adapter', 'fam', 'sum1', 'k1');
    expect(fresh.choicesMade()).toEqual({ k1: 'fast' });
  });

  it('a changed candidate set (checksum) invalidates the entry', async () => {
    const path = join(tmp(), 'cache.json');
    await new Autotuner(path).pick('adapter', 'fam', 'sum1', 'key', [fixed('a', 1), fixed('b', 2)]);
    const tuner = new Autotuner(path);
    expect(tuner.lookup('adapter', 'fam', 'sum1', 'key')).toBe('a');
    expect(tuner.lookup('adapter', 'fam', 'sum2', 'key')).toBeNull();
    expect(await tuner.pick('adapter', 'fam', 'sum2', 'key', [fixed('a', 3), fixed('b', 2)])).toBe('b');
    expect(tuner.log.at(-1)!.cached).toBe(false);
  });

  it('a corrupt cache file is rebuilt with a warning, not a crash', async () => {
    const path = join(tmp(), 'cache.json');
    writeFileSync(path, '{"version": 1, "adapters": {"x": ');
    const warnings: string[] = [];
    const tuner = new Autotuner(path, (m) => warnings.push(m));
    expect(await tuner.pick('adapter', 'fam', 'sum', 'key', [fixed('a', 1)])).toBe('a');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cache\.json is corrupt .*; rebuilding it/);
    expect(JSON.parse(readFileSync(path, 'utf8')).adapters.adapter.fam.choices.key.variant).toBe('a');
  });

  it('stops timing a candidate whose first timed run is already 8× the best, but keeps timing a close one', async () => {
    const calls: Record<string, number> = { fast: 0, close: 0, hopeless: 0 };
    const counted = (name: string, seconds: number): Candidate => ({ name, unsupported: null, time: async () => (calls[name]!++, seconds) });
    const tuner = new Autotuner(join(tmp(), 'c.json'));
    expect(await tuner.pick('a', 'f', 's', 'k', [counted('fast', 1), counted('close', 7.9), counted('hopeless', 8.1)])).toBe('fast');
    // Each: one untimed warm-up, then one timed run, then two more unless hopeless.
    expect(calls).toEqual({ fast: 4, close: 4, hopeless: 2 });
  });

  it('times the candidates in interleaved rounds, so a slow spell costs each one run, not all of one candidate’s', async () => {
    // Calls 1–3 (counting every candidate's) run 10× slow. Timed back to back, all three of
    // `fast`'s timed runs would fall in the spell and `slower` would win.
    let call = 0;
    const spell = (name: string, seconds: number): Candidate => ({
      name,
      unsupported: null,
      time: async () => (call++ >= 1 && call <= 4 ? 10 * seconds : seconds),
    });
    const tuner = new Autotuner(join(tmp(), 'c.json'));
    expect(await tuner.pick('a', 'f', 's', 'k', [spell('fast', 1), spell('slower', 1.2)])).toBe('fast');
    expect(call).toBe(8);
  });

  it('does not count a candidate’s compile: one slow to compile but fast after wins', async () => {
    // `compiled` was compiled before (say, by an earlier shape); `slowCompile`'s first call compiles for 20 s.
    let first = true;
    const slowCompile: Candidate = { name: 'slowCompile', unsupported: null, time: async () => (first ? ((first = false), 20) : 1) };
    const tuner = new Autotuner(join(tmp(), 'c.json'));
    expect(await tuner.pick('a', 'f', 's', 'k', [fixed('compiled', 2), slowCompile])).toBe('slowCompile');
    expect(tuner.log.at(-1)).toMatchObject({ variant: 'slowCompile' });
    expect(JSON.parse(readFileSync(tuner.path, 'utf8')).adapters.a.f.choices.k.seconds).toEqual({ compiled: 2, slowCompile: 1 });
  });

  it('with nothing supported, says why for each candidate', async () => {
    await expect(new Autotuner(join(tmp(), 'c.json')).pick('a', 'f', 's', 'k', [fixed('x', 1, 'needs f16')])).rejects.toThrow(
      'no variant can run this problem here (x: needs f16)',
    );
  });
});

describe('matmul autotuning on the adapter', () => {
  let gpu: Gpu;
  let kernelsDir: string;
  beforeAll(async () => {
    // A private copy of the kernels, so the test can change a candidate's source.
    kernelsDir = join(tmp(), 'kernels');
    cpSync(DEFAULT_KERNELS_DIR, kernelsDir, { recursive: true });
    gpu = await Gpu.open({ kernelsDir });
  });
  afterAll(() => gpu?.destroy());

  it('measures once per shape class, and again after a kernel source changes', async () => {
    const tuner = new Autotuner(join(tmp(), 'cache.json'));
    const p = { m: 40, n: 36, k: 20 };
    const first = await chooseMatmul(gpu, p, tuner);
    expect(tuner.log).toHaveLength(1);
    expect(await chooseMatmul(gpu, { m: 36, n: 40, k: 24 }, tuner)).toBe(first); // same class: no new measurement
    expect(tuner.log).toHaveLength(1);
    const file = join(kernelsDir, 'matmul_blocked.wgsl');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// changed\n`);
    const fresh = await Gpu.open({ kernelsDir });
    try {
      await chooseMatmul(fresh, p, tuner);
      expect(tuner.log).toHaveLength(2);
      expect(tuner.log[1]!.cached).toBe(false);
    } finally {
      fresh.destroy();
    }
  });
});
