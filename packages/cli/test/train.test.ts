import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSeed } from '@mode/kernels';
import { makeDataDir } from '../../trainer/test/fixture.js';

// `mode train` as a process: killed with SIGKILL at a random step, or stopped by SIGTERM, then
// resumed, it ends with the same final weights as an uninterrupted run.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/mode.js');
const runs = mkdtempSync(join(tmpdir(), 'mode-cli-train-'));
// One autotune cache for the three processes compared bit for bit (the first run fills it).
const env = { ...process.env, MODE_TUNE_CACHE: join(runs, 'autotune.json') };
const seed = freshSeed();
console.log(`mode train tests: seed ${seed} (replay with MODE_SEED=${seed})`);
let dataDir: string;
beforeAll(async () => {
  dataDir = await makeDataDir(128);
});
afterAll(() => {
  rmSync(runs, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const STEPS = 16;
const args = (out: string) => [
  bin,
  'train',
  '--preset',
  'tiny',
  '--steps',
  String(STEPS),
  '--batch',
  '16',
  '--lr',
  '2e-3',
  '--seed',
  String(seed % 1000),
  '--data-dir',
  dataDir,
  '--data',
  join(dataDir, 'shapes'),
  `${join(dataDir, 'colours')}@0.5`,
  '--checkpoint-every',
  '3',
  '--workers',
  '1',
  '--out',
  out,
];
const run = (a: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, a, { cwd: root, encoding: 'utf8', timeout: 300_000, env: { ...env, ...extra } });
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const stepsDone = (out: string) =>
  existsSync(join(out, 'metrics.jsonl')) ? readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).length : 0;

/** Starts a run and sends `signal` once metrics.jsonl shows `at` steps; resolves with the exit. */
function interrupt(out: string, at: number, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args(out), { cwd: root, env });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const poll = setInterval(() => {
      if (stepsDone(out) >= at) {
        clearInterval(poll);
        child.kill(signal);
      }
    }, 20);
    child.on('exit', (code, sig) => {
      clearInterval(poll);
      resolve({ code, signal: sig, stdout });
    });
  });
}

describe('mode train', () => {
  let reference = '';
  it('trains a tiny model from the command line and prints its progress', () => {
    const out = join(runs, 'whole');
    const r = run(args(out));
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`step ${STEPS}/${STEPS}  loss [\\d.]+ \\(clip [\\d.]+\\)  lr [\\d.e+-]+  \\|g\\| [\\d.]+  scale [\\d.]+  [\\d.]+ pairs/s`),
    );
    expect(r.stdout).toContain(`trained ${STEPS} steps: ${join(out, 'final.safetensors')}`);
    reference = sha(join(out, 'final.safetensors'));
  });

  it('SIGKILL at a random step, then --resume: bit-identical final weights', async () => {
    const out = join(runs, 'killed');
    const at = 4 + (seed % (STEPS - 5)); // after the first checkpoint (step 3), before the last step
    const r = await interrupt(out, at, 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'final.safetensors'))).toBe(false);
    const resumed = run([...args(out), '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(sha(join(out, 'final.safetensors'))).toBe(reference);
    expect(stepsDone(out)).toBe(STEPS);
  });

  it('SIGTERM checkpoints the step under way and exits 130; --resume finishes the same run, with its kernels pinned', async () => {
    const out = join(runs, 'term');
    const r = await interrupt(out, 5, 'SIGTERM');
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/stopped at step \d+\/16; checkpoint in .*checkpoint \(continue with --resume\)/);
    // The autotune cache is lost before the resume: the checkpoint's pinned variants are used, nothing is re-measured.
    const lostCache = join(runs, 'lost-autotune.json');
    const resumed = run([...args(out), '--resume'], { MODE_TUNE_CACHE: lostCache });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(existsSync(lostCache)).toBe(false);
    expect(sha(join(out, 'final.safetensors'))).toBe(reference);
  });

  it('mode eval: zero-shot on a classification set folder; an unknown task names the valid ones', () => {
    const model = join(runs, 'whole', 'final.safetensors');
    const r = run([bin, 'eval', '--model', model, '--task', join(dataDir, 'colours'), '--data-dir', dataDir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout) as { task: string; classes: number; count: number; top1: number; chance: number }[];
    expect(res).toMatchObject({ task: 'colours', classes: 4, count: 48, chance: 0.25 });
    expect(res!.top1).toBeGreaterThanOrEqual(0);
    const text = run([bin, 'eval', '--model', model, '--task', join(dataDir, 'colours'), '--data-dir', dataDir]);
    expect(text.stdout).toMatch(/^colours\s+48 images, 4 classes × 2 templates {2}top-1 [\d.]+% {2}top-5 100\.0% {2}\(chance 25\.0%\)$/m);
    const bad = run([bin, 'eval', '--model', model, '--task', 'cifar', '--data-dir', dataDir]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(
      /unknown task "cifar": use one of fashion-mnist, mnist, openmoji, retrieval, or a folder: a classification data set, a CLIP_benchmark folder or a class-folder tree/,
    );
    const missing = run([bin, 'eval', '--model', join(runs, 'nope.safetensors'), '--task', 'mnist']);
    expect(missing.stderr).toMatch(/nope\.safetensors: cannot read \(ENOENT\)/);
  });

  it('refuses a resume with another --steps, and says which flag', () => {
    const r = run([...args(join(runs, 'whole')), '--resume', '--steps', '20']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--resume refused: these flags differ[\s\S]*--steps: 16 → 20/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('the NaN guard stops the run, naming the step and the term', () => {
    const r = run([...args(join(runs, 'nan')), '--inject-nan', '4:clip']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/step 4: the clip loss is NaN; the update was not applied\. The last good checkpoint is .*checkpoint/);
  });
});

it('mode model summary prints parameters and FLOPs of a preset', () => {
  const r = spawnSync(process.execPath, [bin, 'model', 'summary', '--preset', 'tiny', '--names'], { cwd: root, encoding: 'utf8', env });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^total\s+\d+\s+[\d,]+$/m);
  expect(r.stdout).toMatch(/training step ≈ [\d.]+ GFLOP/);
  expect(r.stdout).toMatch(/^visual\.transformer\.resblocks\.0\.attn\.in_proj_weight\s+\[192, 64\]$/m);
});
