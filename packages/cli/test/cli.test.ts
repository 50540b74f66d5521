import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// These run the built CLI (`npm run build`, which scripts/setup.sh does), as a user would.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const mode = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(root, 'packages/cli/bin/mode.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });

describe('mode CLI', () => {
  it('info names the adapter and its features', () => {
    const json = mode(['info', '--json']);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout);
    const text = mode(['info']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`adapter       ${report.name}`);
    expect(text.stdout).toMatch(/LP_NUM_THREADS=\d+/);
    expect(text.stdout).toContain('maxComputeWorkgroupStorageSize');
    expect(text.stdout).toMatch(/^autotune {6}\S+autotune\.json/m);
    expect(report.autotune.cache).toMatch(/autotune\.json$/);
    if (report.isCpu) expect(`${report.name} ${report.description}`).toMatch(/llvmpipe/);
  });

  it('selftest passes every check and exits by itself', () => {
    const r = mode(['selftest']);
    expect(r.error).toBeUndefined(); // a hang would be killed by the timeout and set error
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/seed \d+/);
    expect(r.stdout).toMatch(/(\d+) of \1 checks passed/);
    expect(r.stdout).not.toContain('FAIL');
  });

  it('selftest --trace writes Chrome trace JSON with one event per dispatch', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mode-')), 'trace.json');
    const r = mode(['selftest', '--trace', file, '--profile']);
    expect(r.status).toBe(0);
    const checks = Number(r.stdout.match(/(\d+) of \d+ checks passed/)![1]);
    const events = JSON.parse(readFileSync(file, 'utf8')).traceEvents.filter((e: { ph: string }) => e.ph === 'X');
    // Every check dispatches at least once (some several: k-means also computes norms); the
    // one-event-per-dispatch rule itself is tested in packages/gpu/test/profiler.test.ts.
    expect(events.length).toBeGreaterThanOrEqual(checks);
    expect(events.every((e: { name: string; dur: number }) => e.name && e.dur >= 0)).toBe(true);
    expect(r.stdout).toMatch(/profile \(GPU timestamps|CPU wall clock/);
    expect(r.stdout).toMatch(/matmul_naive +1 /);
  });

  it('without a driver: one error that says why and how to fix it, no stack trace', () => {
    const r = mode(['info'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'mode: NoAdapterError: No WebGPU adapter: VK_ICD_FILENAMES=/nonexistent/icd.json points the Vulkan loader at driver file(s) that do not exist',
    );
    expect(r.stderr).toContain('Fix: bash scripts/setup.sh');
    expect(r.stderr).not.toMatch(/at Gpu\.open|at async/);
  });

  it('after device loss the process reports the error and exits', () => {
    const r = spawnSync(process.execPath, [join(root, 'packages/cli/test/fixtures/device-lost.mjs')], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('reported: DeviceLostError: GPU device lost (destroyed)');
    expect(r.stdout).toContain('Last kernel dispatched: elementwise');
  });
});
