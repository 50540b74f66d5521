import { spawn, spawnSync } from 'node:child_process';
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
    // The measured ceilings (mode bench peak), or how to measure them.
    expect(report.peak.cache).toMatch(/peak\.json$/);
    expect(text.stdout).toMatch(
      report.peak.measured ? /^peak {10}[\d.]+ GFLOP\/s f32, [\d.]+ GB\/s streaming/m : /^peak {10}not measured on this adapter yet: mode bench peak/m,
    );
    // Dawn's notes on the adapter are shown here, once, not on every command.
    for (const note of report.driverNotes as string[]) expect(text.stdout).toContain(`dawn note     ${note.replace(/^Warning: /, '')}`);
    if (report.isCpu) expect(`${report.name} ${report.description}`).toMatch(/llvmpipe/);
  });

  it('selftest prints each check as it finishes, passes every check, exits by itself and writes a trace', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mode-')), 'trace.json');
    // Spawned asynchronously so that the output is seen as it arrives: one chunk per read.
    const child = spawn(process.execPath, [join(root, 'packages/cli/bin/mode.js'), 'selftest', '--trace', file, '--profile'], { cwd: root });
    const chunks: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    child.stderr.resume();
    const killer = setTimeout(() => child.kill(), 280_000); // a hang fails the test, it does not hold it
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(killer);
    const stdout = chunks.join('');
    expect(status).toBe(0);
    expect(stdout).toMatch(/seed \d+/);
    const total = Number(/: (\d+) checks\n/.exec(stdout)![1]);
    const summary = /^(\d+) of (\d+) checks passed, (\d+) failed, (\d+) skipped/m.exec(stdout)!;
    expect(Number(summary[2])).toBe(total);
    expect(Number(summary[3])).toBe(0);
    expect(Number(summary[1]) + Number(summary[4])).toBe(total);
    // One row per check, each ending in its result; a skipped one says so and why, never `ok`.
    const rows = stdout.split('\n').filter((l) => / (ok|FAIL.*|skipped: .+)$/.test(l));
    expect(rows).toHaveLength(total);
    expect(rows.filter((l) => l.includes('skipped: ')).every((l) => !/ ok$/.test(l) && / – /.test(l))).toBe(true);
    expect(stdout).not.toContain('FAIL');
    // Printed as they finish: the first row arrives in an earlier chunk than the last row and the summary.
    const chunkOf = (pattern: RegExp) => chunks.findIndex((c) => pattern.test(c));
    const firstRow = chunkOf(/ (ok|FAIL.*|skipped: .+)$/m);
    expect(firstRow).toBeGreaterThanOrEqual(0);
    expect(firstRow).toBeLessThan(chunkOf(new RegExp(`${rows.at(-1)!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm')));
    expect(firstRow).toBeLessThan(chunkOf(/checks passed/));

    const events = JSON.parse(readFileSync(file, 'utf8')).traceEvents.filter((e: { ph: string }) => e.ph === 'X');
    // Every check dispatches at least once (some several: k-means also computes norms); the
    // one-event-per-dispatch rule itself is tested in packages/gpu/test/profiler.test.ts.
    expect(events.length).toBeGreaterThanOrEqual(Number(summary[1]));
    expect(events.every((e: { name: string; dur: number }) => e.name && e.dur >= 0)).toBe(true);
    expect(stdout).toMatch(/profile \(GPU timestamps|CPU wall clock/);
    expect(stdout).toMatch(/matmul_naive +1 /);
  }, 300_000);

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
    expect(r.stdout).toContain('Last kernel dispatched: strided');
  });
});
