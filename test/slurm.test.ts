// `mode run --launcher slurm` on a real single-node SLURM cluster (scripts/slurm.sh: munged,
// slurmctld and slurmd from Debian's packages, under a temporary folder): the tiny pipeline
// through SLURM ends with the same models and results as the local launcher, bit for bit; an
// expert cancelled mid-way (scancel) is reported with its log, and a rerun finishes from what
// exists. The cluster is stopped afterwards and leaves no process behind.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDataDir } from '@mode/data';
import { root, tinyRunArgs } from './helpers/tiny-run.js';

const prepared = existsSync(join(defaultDataDir(), 'openmoji', 'dataset.json'));
const hasSlurm = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'scancel'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0);
const dir = mkdtempSync(join(tmpdir(), 'mode-slurm-'));
const cluster = join(dir, 'cluster');
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  MODE_TUNE_CACHE: join(dir, 'autotune.json'),
  SLURM_CONF: join(cluster, 'slurm.conf'),
};
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const daemons = () => ['munged', 'slurmctld', 'slurmd'].map((d) => Number(readFileSync(join(cluster, `${d}.pid`), 'utf8')));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
let pids: number[] = [];

describe.skipIf(!prepared || !hasSlurm)('mode run --launcher slurm (tiny, a real single-node cluster)', () => {
  beforeAll(() => {
    const up = spawnSync('bash', [join(root, 'scripts/slurm.sh'), 'start', cluster], { encoding: 'utf8', timeout: 60_000 });
    expect(up.status, up.stderr).toBe(0);
    pids = daemons();
    expect(pids.every(alive)).toBe(true);
  });
  afterAll(() => {
    spawnSync('bash', [join(root, 'scripts/slurm.sh'), 'stop', cluster], { encoding: 'utf8', timeout: 60_000 });
    const left = pids.filter(alive);
    rmSync(dir, { recursive: true, force: true });
    expect(left, 'daemons still running after stop').toEqual([]);
  });

  it('runs the pipeline as dependent jobs (the experts one array) with the local launcher’s results bit for bit', { timeout: 900_000 }, () => {
    const local = spawnSync(process.execPath, tinyRunArgs('out/local'), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    expect(local.status, local.stderr.slice(-2000)).toBe(0);
    const slurm = spawnSync(process.execPath, tinyRunArgs('out/slurm', '--launcher', 'slurm'), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    expect(slurm.status, slurm.stderr.slice(-2000)).toBe(0);
    // data is prepared already; curate → … → evaluate: one chain, each job after the one before.
    expect(slurm.stdout).toMatch(/stage 1\/9 data: already done/);
    // Curation as map → reduce → map, embedding and assignment as arrays over shards (--array-tasks 4).
    const jobs = [...slurm.stdout.matchAll(/\[slurm\] ([\w-]+): job (\d+)(?: \(array 0-(\d+)\))?(?:, after (\d+))?;/g)];
    const names = [
      'curate-plan',
      'curate-count',
      'curate-reduce',
      'curate-sample',
      'curate',
      'seed',
      'embed-parts',
      'embed',
      'cluster-fit',
      'cluster-assign',
      'cluster',
    ];
    expect(jobs.map((m) => m[1])).toEqual([...names, 'experts', 'baseline', 'evaluate']);
    for (let i = 1; i < jobs.length; i++) expect(jobs[i]![4]).toBe(jobs[i - 1]![2]);
    const arrays = Object.fromEntries(jobs.map((m) => [m[1], m[3]]));
    expect(arrays).toMatchObject({ 'curate-count': '3', 'curate-sample': '3', 'embed-parts': '3', 'cluster-assign': '3', experts: '1' });
    expect(slurm.stdout).toMatch(/\[expert 1\] trained 24 steps/);
    expect(slurm.stdout).toMatch(/\[slurm\] experts \(job \d+\): 2 COMPLETED/);
    for (const f of [
      'curate/curated/dataset.json',
      'seed/final.safetensors',
      'clusters/assignment.json',
      'experts/0/final.safetensors',
      'experts/1/final.safetensors',
      'baseline/final.safetensors',
    ])
      expect(sha(join(dir, 'out/slurm', f)), f).toBe(sha(join(dir, 'out/local', f)));
    for (const f of readdirSync(join(dir, 'out/local/curate/curated')))
      expect(sha(join(dir, 'out/slurm/curate/curated', f)), f).toBe(sha(join(dir, 'out/local/curate/curated', f)));
    expect(JSON.parse(readFileSync(join(dir, 'out/slurm/results.json'), 'utf8'))).toEqual(
      JSON.parse(readFileSync(join(dir, 'out/local/results.json'), 'utf8')),
    );
    expect(existsSync(join(dir, 'out/slurm/report.html'))).toBe(true);
  });

  it(
    '--add-expert trains one more expert for new data from the same seed and redoes only the ensemble, the same through SLURM as locally',
    { timeout: 900_000 },
    () => {
      const add = ['--add-expert', `${join(defaultDataDir(), 'mnist')}@0.01`];
      const before = ['experts/0/final.safetensors', 'experts/1/final.safetensors', 'baseline/final.safetensors'].map((f) => sha(join(dir, 'out/slurm', f)));
      const slurm = spawnSync(process.execPath, tinyRunArgs('out/slurm', '--launcher', 'slurm', ...add), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
      expect(slurm.status, slurm.stderr.slice(-2000)).toBe(0);
      expect(slurm.stdout).toMatch(/adding expert 2 for .*mnist@0\.01 \(~600 pairs, 1 fine centres\)/);
      expect([...slurm.stdout.matchAll(/\[slurm\] ([\w-]+): job \d+/g)].map((m) => m[1])).toEqual([
        'added-embed',
        'added-cluster',
        'added-experts',
        'evaluate',
      ]);
      expect(['experts/0/final.safetensors', 'experts/1/final.safetensors', 'baseline/final.safetensors'].map((f) => sha(join(dir, 'out/slurm', f)))).toEqual(
        before,
      );
      const results = JSON.parse(readFileSync(join(dir, 'out/slurm/results.json'), 'utf8')) as { weights: number[] }[];
      expect(results.map((r) => r.weights.length)).toEqual([3, 3]);
      const local = spawnSync(process.execPath, tinyRunArgs('out/local', ...add), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
      expect(local.status, local.stderr.slice(-2000)).toBe(0);
      expect(sha(join(dir, 'out/slurm/experts/2/final.safetensors'))).toBe(sha(join(dir, 'out/local/experts/2/final.safetensors')));
      expect(results).toEqual(JSON.parse(readFileSync(join(dir, 'out/local/results.json'), 'utf8')));
      // Run again: the expert is there, nothing is redone.
      const again = spawnSync(process.execPath, tinyRunArgs('out/local', ...add), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
      expect(again.status, again.stderr.slice(-2000)).toBe(0);
      expect(again.stdout).not.toMatch(/adding expert/);
      expect(again.stdout).toMatch(/stage 11\/12 evaluate: already done/);
    },
  );

  it('an expert cancelled mid-way is reported with its log; the rerun submits only what is missing and ends the same', { timeout: 900_000 }, async () => {
    const child = spawn(process.execPath, tinyRunArgs('out/cancel', '--launcher', 'slurm'), { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let cancelled = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        // As soon as an expert runs (its start-up takes seconds): inside the experts stage.
        const job = /\[slurm\] experts \(job (\d+)\): [^\n]*RUNNING/.exec(out)?.[1];
        if (cancelled || !job) return;
        cancelled = job;
        spawnSync('scancel', [job], { env });
      });
      child.on('close', resolve);
    });
    expect(cancelled, out.slice(-2000)).not.toBe('');
    expect(code).not.toBe(0);
    expect(err).toMatch(new RegExp(`expert \\d \\(SLURM job ${cancelled}_\\d\\) CANCELLED; its log .*expert-\\d\\.log ends:`));
    expect(err).toMatch(/run the same mode run --launcher slurm again: it submits only what has no valid output/);
    expect(existsSync(join(dir, 'out/cancel/baseline'))).toBe(false); // the jobs after it were cancelled

    const again = spawnSync(process.execPath, tinyRunArgs('out/cancel', '--launcher', 'slurm'), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    expect(again.status, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toMatch(/stage 5\/9 cluster: already done/);
    expect([...again.stdout.matchAll(/\[slurm\] ([\w-]+): job \d+/g)].map((m) => m[1])).toEqual(['experts', 'baseline', 'evaluate']);
    for (const f of ['experts/0/final.safetensors', 'experts/1/final.safetensors', 'baseline/final.safetensors'])
      expect(sha(join(dir, 'out/cancel', f)), f).toBe(sha(join(dir, 'out/local', f)));
  });
});
