// The SLURM launcher's pieces that need no cluster: the batch script (run here by bash as a job
// would run it), scontrol's records, array ranges, resources from flags and config files.
// test/slurm.test.ts runs the launcher on a real cluster.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchScript, expandRange, parseJobRecords, readSlurmConfig, resourceFlags } from '../src/run/slurm.js';

const dir = mkdtempSync(join(tmpdir(), 'mode-slurm-unit-'));

describe('SLURM launcher', () => {
  it('array task i runs task i’s command line verbatim (quotes, spaces, $) and appends to its log', () => {
    const tasks = [0, 1].map((i) => ({ name: `t${i}`, args: ['train', '--out', `a dir/${i}`, `it's $HOME "x"`], log: join(dir, `logs/t${i}.log`) }));
    const script = join(dir, 'stage.sh');
    writeFileSync(script, batchScript({ name: 'stage', tasks }, '/usr/bin/printf', '%s|'));
    for (const i of [1, 0]) {
      const r = spawnSync('bash', [script], { env: { ...process.env, SLURM_ARRAY_TASK_ID: String(i), SLURM_JOB_ID: '42' }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const log = readFileSync(tasks[i]!.log, 'utf8');
      expect(log).toContain(`$ mode train --out a dir/${i} it's $HOME "x"  (SLURM job 42 on `);
      expect(log.trimEnd().split('\n').at(-1)).toBe(`train|--out|a dir/${i}|it's $HOME "x"|`);
    }
    const bad = spawnSync('bash', [script], { env: { ...process.env, SLURM_ARRAY_TASK_ID: '2' }, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no task 2/);
  });

  it('reads scontrol -o records and array ranges', () => {
    const recs = parseJobRecords(
      [
        'JobId=12 ArrayJobId=12 ArrayTaskId=2-3%2 JobName=mode-experts JobState=PENDING Reason=JobArrayTaskLimit Dependency=(null)',
        'JobId=13 ArrayJobId=12 ArrayTaskId=1 JobName=mode-experts JobState=RUNNING Reason=None',
        'JobId=14 ArrayJobId=12 ArrayTaskId=0 JobName=mode-experts JobState=COMPLETED Reason=None ExitCode=0:0',
      ].join('\n'),
    );
    expect(recs.map((r) => [r.ArrayTaskId, r.JobState])).toEqual([
      ['2-3%2', 'PENDING'],
      ['1', 'RUNNING'],
      ['0', 'COMPLETED'],
    ]);
    expect(expandRange('2-3%2')).toEqual([2, 3]);
    expect(expandRange('0,2-4,7')).toEqual([0, 2, 3, 4, 7]);
  });

  it('resources from flags and a config file; a bad config is named with the fix', () => {
    expect(resourceFlags({ partition: 'gpu', time: '1:00:00', cpusPerTask: 4, mem: '8G', gres: 'gpu:1', extra: ['--exclusive'] })).toEqual([
      '--partition=gpu',
      '--time=1:00:00',
      '--cpus-per-task=4',
      '--mem=8G',
      '--gres=gpu:1',
      '--exclusive',
    ]);
    const good = join(dir, 'slurm.json');
    writeFileSync(good, JSON.stringify({ partition: 'p', stages: { experts: { gres: 'gpu:1' } } }));
    expect(readSlurmConfig(good)).toEqual({ partition: 'p', stages: { experts: { gres: 'gpu:1' } } });
    const typo = join(dir, 'typo.json');
    writeFileSync(typo, JSON.stringify({ partitoin: 'p' }));
    expect(() => readSlurmConfig(typo)).toThrow(/unknown key "partitoin"/);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"partition": ');
    expect(() => readSlurmConfig(broken)).toThrow(/broken\.json: .*Fix: a JSON object like/);
  });
});
