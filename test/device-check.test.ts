import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers/tiny-run.js';

// scripts/device-check.sh as a lent GPU machine runs it, here on lavapipe: packed by
// scripts/device-pack.sh, run with a PATH that holds no Node (only the shell tools the script
// names) and an empty home, so it can only use what .device carries. --smoke: info, selftest and
// the peak (the kernels and train benches alone take longer than the script's ten minutes on
// lavapipe; on a GPU they take seconds).
describe('scripts/device-check.sh', () => {
  it('runs info, selftest and the peak bench from the packed Node and bundle, and leaves their results', { timeout: 900_000 }, () => {
    const pack = spawnSync('bash', ['scripts/device-pack.sh'], { cwd: root, encoding: 'utf8', timeout: 300_000 });
    expect(pack.status, pack.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'mode-device-'));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['bash', 'xz', 'cp', 'mkdir', 'chmod', 'mktemp', 'rm', 'tee', 'timeout', 'ls', 'uname', 'grep', 'cat', 'dirname']) {
      const where = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      symlinkSync(where, join(bin, tool));
    }
    const out = join(dir, 'out');
    const r = spawnSync(join(bin, 'bash'), ['scripts/device-check.sh', '--smoke'], {
      cwd: root,
      env: { PATH: bin, HOME: join(dir, 'home'), OUT: out },
      encoding: 'utf8',
      timeout: 660_000,
    });
    const log = readFileSync(join(out, 'device-check.log'), 'utf8');
    expect(r.status, log.slice(-3000)).toBe(0);
    expect(log).toMatch(/^== node v\d+\.\d+\.\d+ from \/\S+\/node;/m); // the carried one: no node on PATH
    expect(log).toMatch(/\d+ of \d+ checks passed, 0 failed/);
    const info = JSON.parse(readFileSync(join(out, 'info.json'), 'utf8')) as { name: string; peak: { measured: unknown } };
    expect(info.name.length).toBeGreaterThan(0);
    const files = readdirSync(out).sort();
    expect(files.filter((f) => f.startsWith('peak-')).map((f) => f.replace(/^peak-.*\./, 'peak-*.'))).toEqual(['peak-*.json', 'peak-*.md']);
    expect(files.length).toBeLessThanOrEqual(8); // what the device tool brings back
    expect(log).toContain('f32 arithmetic, multiply + add');
    expect(log).toContain('== mode bench kernels, mode bench train: skipped (--smoke)');
  });
});
