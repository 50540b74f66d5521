import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePng, defaultDataDir } from '@mode/data';
import { CHROMIUM, launchChromium } from './helpers/chromium.js';
import { tinyRunArgs } from './helpers/tiny-run.js';

// `mode run` with the tiny preset, as a process: the whole pipeline once uninterrupted, and once
// killed (SIGKILL to the run and its tasks) inside the experts stage and run again; the second
// picks up there and ends with the same experts, bit for bit. It reads the prepared data (the
// README's main command prepares it before the tests in CI).
// The runs' working folder: mode run must write nothing in it but its run folders under out/.
const dir = mkdtempSync(join(tmpdir(), 'mode-run-'));
const cache = mkdtempSync(join(tmpdir(), 'mode-run-tune-'));
const env = { ...process.env, MODE_TUNE_CACHE: join(cache, 'autotune.json') };
afterAll(() => [dir, cache].forEach((d) => rmSync(d, { recursive: true, force: true })));
const prepared = existsSync(join(defaultDataDir(), 'openmoji', 'dataset.json'));

const args = (run: string) => tinyRunArgs(run);
/** The report's sections, in order. */
const SECTIONS = [
  'Accuracy (zero-shot top-1)',
  'Linear probe',
  'Ensemble weights per task',
  'Training loss',
  'Clusters',
  'Where a training step goes',
  'Stages',
];
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe.skipIf(!prepared)('mode run (tiny)', () => {
  it('runs the whole pipeline; killed in the experts stage and rerun, it finishes with the same experts bit for bit', { timeout: 900_000 }, async () => {
    const w = spawnSync(process.execPath, args('out/whole'), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    const whole = join(dir, 'out', 'whole');
    expect(w.status, w.stderr.slice(-2000)).toBe(0);
    for (const stage of ['data', 'curate', 'seed', 'embed', 'cluster', 'experts', 'baseline', 'evaluate'])
      expect(w.stdout).toMatch(new RegExp(`stage \\d+/9 ${stage}`));
    const results = JSON.parse(readFileSync(join(whole, 'results.json'), 'utf8'));
    expect(results.map((r: { task: string }) => r.task)).toEqual(['mnist', 'openmoji']);
    expect(Object.keys(results[0].baselines)).toEqual(['seed', 'equal-compute']);
    expect(results[0].weights).toHaveLength(2);
    // The linear probe where the task has a train split (MNIST; OpenMoji has only test images).
    expect(Object.keys(results[0].probe.baselines)).toEqual(['seed', 'equal-compute']);
    expect(results[0].probe.concatenated).toBeGreaterThan(0.1);
    expect(results[1].probe).toBeUndefined();
    const html = readFileSync(join(whole, 'report.html'), 'utf8');
    for (const h of SECTIONS) expect(html).toContain(`<h2>${h}</h2>`);
    expect(html.match(/<svg /g)!.length).toBeGreaterThan(5);
    expect(
      readFileSync(join(whole, 'experts', '1', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean),
    ).toHaveLength(8);

    // Killed at expert 0's fifth step (its checkpoint at step 20 of the schedule is on disk).
    const cut = join(dir, 'out', 'cut');
    const child = spawn(process.execPath, args('out/cut'), { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let killed = false;
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (killed || !/\[expert 0\] step 2[1-3]\//.test(out)) return;
        killed = true;
        process.kill(-child.pid!, 'SIGKILL');
      });
      child.on('close', () => resolve());
    });
    expect(out).toMatch(/stage 6\/9 experts…/);
    expect(existsSync(join(cut, 'experts', '0', 'final.safetensors'))).toBe(false);
    const again = spawnSync(process.execPath, args('out/cut'), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    expect(again.status, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toMatch(/stage 3\/9 seed: already done/);
    expect(again.stdout).toMatch(/stage 5\/9 cluster: already done/);
    for (const k of ['0', '1']) expect(sha(join(cut, 'experts', k, 'final.safetensors'))).toBe(sha(join(whole, 'experts', k, 'final.safetensors')));
    expect(sha(join(cut, 'baseline', 'final.safetensors'))).toBe(sha(join(whole, 'baseline', 'final.safetensors')));
    expect(JSON.parse(readFileSync(join(cut, 'results.json'), 'utf8'))).toEqual(results);
    expect(readdirSync(dir)).toEqual(['out']);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['cut', 'whole']);
  });

  // MoDE from a pretrained seed: the first run's seed model stands in for one (an OpenCLIP hub
  // folder goes the same way, through mode model import).
  it('--seed-model: no seed training; experts and the baseline fine-tune it; evaluated and reported', { timeout: 900_000 }, () => {
    const seed = join(dir, 'out', 'whole', 'seed', 'final.safetensors');
    expect(existsSync(seed), 'the first test trains the seed').toBe(true);
    const r = spawnSync(process.execPath, tinyRunArgs('out/pre', '--seed-model', seed), { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    const pre = join(dir, 'out', 'pre');
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(existsSync(join(pre, 'seed', 'metrics.jsonl'))).toBe(false); // imported, not trained
    for (const k of ['0', '1']) {
      const m = readFileSync(join(pre, 'experts', k, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean);
      expect(m, `expert ${k}: its own schedule of --expert-steps`).toHaveLength(8);
      expect((JSON.parse(m[0]!) as { step: number }).step).toBe(1);
    }
    expect(
      readFileSync(join(pre, 'baseline', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean),
    ).toHaveLength(16); // the experts' total
    const results = JSON.parse(readFileSync(join(pre, 'results.json'), 'utf8')) as { weights: number[]; baselines: Record<string, number> }[];
    expect(results[0]!.weights).toHaveLength(2);
    expect(Object.keys(results[0]!.baselines)).toEqual(['seed', 'equal-compute']);
    expect(readFileSync(join(pre, 'report.html'), 'utf8')).toContain('<h2>Accuracy (zero-shot top-1)</h2>');
  });

  // The report as a browser sees it: parsed into a DOM, every section, table and plot there and
  // drawn, no script or resource errors; its screenshot beside it (report.png).
  it.skipIf(!CHROMIUM)('the report renders in headless Chromium: sections, tables, plots, a screenshot', async () => {
    const report = join(dir, 'out', 'whole', 'report.html');
    expect(existsSync(report), 'the first test writes the report').toBe(true);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('requestfailed', (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
      await page.goto(pathToFileURL(report).href);
      expect(await page.locator('h2').allTextContents()).toEqual(SECTIONS);
      // The accuracy table: one row per task, its image count, then chance and every model's top-1.
      const accuracy = page.locator('h2:text-is("Accuracy (zero-shot top-1)") + table');
      const rows = await accuracy.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      expect(rows.map((r) => r[0])).toEqual(['mnist', 'openmoji']);
      for (const r of rows) {
        expect(r[1]).toBe('64');
        for (const c of r.slice(2)) expect(c).toMatch(/^\d+(\.\d)?%/);
      }
      // Every plot is laid out with a size, and the loss plot has a curve per model trained.
      const boxes = await page.locator('svg').evaluateAll((svgs) => svgs.map((s) => s.getBoundingClientRect()).map((b) => [b.width, b.height]));
      expect(boxes.length).toBeGreaterThan(5);
      for (const [w, h] of boxes) expect(w! * h!).toBeGreaterThan(1000);
      const curves = await page.locator('h2:text-is("Training loss") + svg polyline.series').count();
      expect(curves).toBe(4); // seed, 2 experts, equal-compute baseline
      const png = await page.screenshot({ fullPage: true, path: join(dir, 'out', 'whole', 'report.png') });
      const { width, height, data } = decodePng(new Uint8Array(png));
      expect(width).toBe(1100);
      expect(height).toBeGreaterThan(900);
      const grey = new Set<number>();
      for (let i = 0; i < data.length; i += 4 * 97) grey.add(data[i]! + data[i + 1]! + data[i + 2]!);
      expect(grey.size, 'the screenshot is not blank').toBeGreaterThan(20);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
