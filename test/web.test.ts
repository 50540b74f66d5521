import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { defaultDataDir } from '@mode/data';
import { CHROMIUM, launchChromium } from './helpers/chromium.js';
import { bin, root, tinyRunArgs } from './helpers/tiny-run.js';

// The browser page on a tiny run's experts, in headless Chromium on its SwiftShader adapter: the
// page's logits equal `mode classify`'s (Node, lavapipe, other kernel variants) within 1e-4, with
// the variants the page's autotuner chose and with each matmul and attention variant forced; the
// kernel selftest passes there; bad input gets a message on the page. The screenshot lands in
// out/web/page.png (the README shows a copy, docs/web-page.png).
const dir = mkdtempSync(join(tmpdir(), 'mode-web-'));
const env = { ...process.env, MODE_TUNE_CACHE: join(dir, 'autotune.json') };
const run = join(dir, 'out', 'run');
const prepared = existsSync(join(defaultDataDir(), 'openmoji', 'dataset.json'));
const mode = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });

let browser: Browser;
let serve: ChildProcess | null = null;
let url = '';
const servers: Server[] = [];

/** A plain static file server for an exported site: what any web host does. */
function staticServer(folder: string): Promise<string> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.png': 'image/png' };
  const server = createServer((req, res) => {
    const path = join(folder, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1)) || 'index.html');
    if (!existsSync(path)) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)));
}

async function open(at: string, init?: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (init) await page.addInitScript(init);
  await page.goto(at);
  return { page, errors };
}

const state = (page: Page) =>
  page.evaluate(() => {
    const s = (globalThis as { modePage?: { busy: boolean; error: string | null; last: unknown } }).modePage!;
    return { busy: s.busy, error: s.error, hasResult: s.last !== null };
  });

async function classifySample(page: Page, i: number) {
  await page.evaluate(() => ((globalThis as { modePage?: { last: unknown } }).modePage!.last = null));
  await page.click(`button.sample[data-i="${i}"]`);
  await page.waitForFunction(
    () => {
      const s = (globalThis as { modePage?: { busy: boolean; error: string | null; last: unknown } }).modePage!;
      return !s.busy && (s.last !== null || s.error !== null);
    },
    null,
    { timeout: 300_000 },
  );
  return page.evaluate(() => {
    const r = (
      globalThis as {
        modePage?: {
          last: { classes: string[]; weights: number[]; ensemble: Float32Array; uniform: Float32Array; experts: Float32Array[] } | null;
          error: string | null;
        };
      }
    ).modePage!;
    if (!r.last) return { error: r.error };
    return {
      classes: r.last.classes,
      weights: r.last.weights,
      ensemble: [...r.last.ensemble],
      uniform: [...r.last.uniform],
      experts: r.last.experts.map((e) => [...e]),
    };
  });
}

interface NodeResult {
  classes: string[];
  weights: number[];
  logits: { ensemble: number[][]; uniform: number[][]; experts: number[][][] };
}
type PageResult = { classes: string[]; weights: number[]; ensemble: number[]; uniform: number[]; experts: number[][] };

/** The page's logits (one image) against `mode classify`'s: weights within 1e-6, logits within 1e-4 of the row's largest |logit|. */
function expectSame(got: PageResult, want: NodeResult, what: string): void {
  expect(got.classes, what).toEqual(want.classes);
  got.weights.forEach((w, k) => expect(Math.abs(w - want.weights[k]!), `${what}: weight ${k}`).toBeLessThan(1e-6));
  // Relative to the row's largest |logit|: cosines near 0 make an element-wise ratio meaningless.
  const close = (a: number[], b: number[], which: string) => {
    const scale = Math.max(...b.map(Math.abs));
    const worst = Math.max(...a.map((x, j) => Math.abs(x - b[j]!))) / scale;
    expect(worst, `${what} ${which}: page vs mode classify`).toBeLessThan(1e-4);
  };
  close(got.ensemble, want.logits.ensemble[0]!, 'ensemble');
  close(got.uniform, want.logits.uniform[0]!, 'uniform');
  got.experts.forEach((e, k) => close(e, want.logits.experts[k]![0]!, `expert ${k}`));
}

describe.skipIf(!prepared || !CHROMIUM)('the browser page (headless Chromium, SwiftShader WebGPU)', () => {
  beforeAll(async () => {
    const r = spawnSync(process.execPath, tinyRunArgs('out/run', '--seed-steps', '8', '--expert-steps', '4'), {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    browser = await launchChromium();
    serve = spawn(process.execPath, [bin, 'serve', '--run', run, '--port', '0', '--samples', '2'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      serve!.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /serving (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      serve!.on('exit', (code) => reject(new Error(`mode serve exited (${code}): ${out}`)));
    });
  }, 900_000);
  afterAll(async () => {
    serve?.kill();
    servers.forEach((s) => s.close());
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    "classifies samples of each task with the ensemble, the page's logits equal to mode classify's within 1e-4, on every variant",
    { timeout: 900_000 },
    async () => {
      const { page, errors } = await open(url);
      expect(await page.evaluate(() => (globalThis as { modePage?: { ready: Promise<boolean> } }).modePage!.ready)).toBe(true);
      expect(await page.textContent('#adapter')).toMatch(/swiftshader/);
      const manifest = JSON.parse(await (await fetch(`${url}artifacts/manifest.json`)).text()) as { samples: { url: string; task: string }[] };
      const byTask = new Map<string, number>();
      manifest.samples.forEach((s, i) => byTask.has(s.task) || byTask.set(s.task, i));
      expect([...byTask.keys()]).toEqual(['fashion-mnist', 'mnist', 'openmoji']);
      const nodeLogits = new Map<string, NodeResult>();
      for (const [task, i] of byTask) {
        const got = await classifySample(page, i);
        expect(got.error ?? null).toBeNull();
        const png = join(dir, `${task}.png`);
        writeFileSync(png, Buffer.from(await (await fetch(url + manifest.samples[i]!.url)).arrayBuffer()));
        const c = mode('classify', '--run', run, '--image', png, '--task', task, '--out', join(dir, `${task}.json`));
        expect(c.status, c.stderr.slice(-2000)).toBe(0);
        nodeLogits.set(task, JSON.parse(readFileSync(join(dir, `${task}.json`), 'utf8')) as NodeResult);
        expectSame(got as PageResult, nodeLogits.get(task)!, task);
      }
      // What the page shows: the top-5 tables, the weights chart, the stage times, the variants it chose and why.
      expect(await page.locator('table.top').count()).toBe(2 + 2);
      expect(await page.locator('#weights-svg rect').count()).toBe(2);
      expect(await page.textContent('#timing')).toMatch(/expert 1: image tower \+ logits/);
      expect(await page.textContent('#variants')).toMatch(/matmul.*needs subgroup size 8, adapter has 4–4/s);
      expect(errors).toEqual([]);
      mkdirSync(join(root, 'out', 'web'), { recursive: true });
      await page.screenshot({ path: join(root, 'out', 'web', 'page.png'), fullPage: true });

      // Every variant this adapter runs, not only the ones the autotuner chose: the page's cache
      // rewritten so each pass takes one matmul and one attention variant everywhere; each reload
      // must still give Node's logits.
      const fashion = byTask.get('fashion-mnist')!;
      for (const force of [
        { matmul: 'naive', attention: 'tiled' },
        { matmul: 'tiled', attention: 'portable' },
        { matmul: 'blocked', attention: 'tiled' },
      ]) {
        await page.evaluate((force: Record<string, string>) => {
          const cache = JSON.parse(localStorage.getItem('mode-autotune')!) as {
            adapters: Record<string, Record<string, { choices: Record<string, { variant: string }> }>>;
          };
          for (const families of Object.values(cache.adapters))
            for (const [family, entry] of Object.entries(families)) if (force[family]) for (const c of Object.values(entry.choices)) c.variant = force[family]!;
          localStorage.setItem('mode-autotune', JSON.stringify(cache));
        }, force);
        await page.reload();
        expect(await page.evaluate(() => (globalThis as { modePage?: { ready: Promise<boolean> } }).modePage!.ready)).toBe(true);
        expectSame((await classifySample(page, fashion)) as PageResult, nodeLogits.get('fashion-mnist')!, `fashion-mnist, ${JSON.stringify(force)}`);
        const used = await page.evaluate(() => (globalThis as { modePage?: { variants: () => { key: string; variant: string }[] } }).modePage!.variants());
        for (const family of ['matmul', 'attention'] as const) {
          const of = used.filter((u) => u.key.startsWith(`${family}|`));
          expect(of.length, family).toBeGreaterThan(0);
          expect(new Set(of.map((u) => u.variant)), family).toEqual(new Set([force[family]]));
        }
      }
      expect(errors).toEqual([]);
      await page.close();
    },
  );

  it('runs the kernel selftest on the page: every check passes or is skipped with its reason', { timeout: 600_000 }, async () => {
    const { page, errors } = await open(`${url}selftest.html?seed=7`);
    const results = (await page.evaluate(() => (globalThis as { modeSelftest?: { done: Promise<unknown> } }).modeSelftest!.done)) as
      { kernel: string; status: string; reason?: string }[] | null;
    expect(results, await page.textContent('#message')).not.toBeNull();
    expect(results!.filter((r) => r.status === 'failed')).toEqual([]);
    expect(results!.filter((r) => r.status === 'passed').length).toBeGreaterThan(50);
    for (const r of results!.filter((x) => x.status === 'skipped')) expect(r.reason).toMatch(/subgroup size 8|shader-f16/);
    expect(await page.textContent('#message')).toMatch(/seed 7/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it(
    'takes a dropped image; says what is wrong on the page: a non-image file, an empty class list, a missing run file, no WebGPU',
    { timeout: 600_000 },
    async () => {
      const { page } = await open(url);
      expect(await page.evaluate(() => (globalThis as { modePage?: { ready: Promise<boolean> } }).modePage!.ready)).toBe(true);
      await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
      await page.waitForFunction(() => (globalThis as { modePage?: { error: string | null } }).modePage!.error !== null);
      expect(await page.textContent('#message')).toMatch(/notes\.txt is not an image this browser can decode.*Fix: drop a PNG/);
      expect(await page.getAttribute('#message', 'class')).toBe('error');
      // A dropped file is classified like a chosen one.
      await page.evaluate(() => ((globalThis as { modePage?: { last: unknown } }).modePage!.last = null));
      const drop = await page.evaluateHandle(async (sample: string) => {
        const t = new DataTransfer();
        t.items.add(new File([await (await fetch(sample)).blob()], 'dropped.png', { type: 'image/png' }));
        return t;
      }, `${url}artifacts/samples/mnist-0.png`);
      await page.dispatchEvent('#drop', 'drop', { dataTransfer: drop });
      await page.waitForFunction(() => (globalThis as { modePage?: { last: unknown } }).modePage!.last !== null, null, { timeout: 300_000 });
      expect(await page.textContent('#message')).toMatch(/^dropped\.png: the ensemble says "/);
      expect(await page.textContent('#image-name')).toBe('dropped.png (28×28)');
      await page.fill('#classes', '  \n ');
      await page.click('#go');
      await page.waitForFunction(() => /class list is empty/.test(document.getElementById('message')!.textContent ?? ''));
      expect(await page.textContent('#message')).toMatch(/The class list is empty\. Fix: type class names/);
      await page.close();

      // An exported site missing an expert's weights, on a plain static server.
      const site = join(dir, 'site');
      const e = mode('export', '--run', run, '--out', site, '--samples', '1');
      expect(e.status, e.stderr.slice(-2000)).toBe(0);
      for (const f of ['index.html', 'app.js', 'selftest.html', 'selftest.js', 'artifacts/manifest.json', 'artifacts/tokenizer.json'])
        expect(existsSync(join(site, f))).toBe(true);
      rmSync(join(site, 'artifacts', 'experts', '1.safetensors'));
      const broken = await open(await staticServer(site));
      expect(await broken.page.evaluate(() => (globalThis as { modePage?: { ready: Promise<boolean> } }).modePage!.ready)).toBe(false);
      expect(await broken.page.textContent('#message')).toMatch(/artifacts\/experts\/1\.safetensors \(expert 1\): HTTP 404.*Fix: finish the run/);
      await broken.page.close();

      // A browser without WebGPU.
      const bare = await open(url, 'Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined });');
      expect(await bare.page.evaluate(() => (globalThis as { modePage?: { ready: Promise<boolean> } }).modePage!.ready)).toBe(false);
      expect(await bare.page.textContent('#message')).toMatch(/This browser has no WebGPU.*Fix: use Chrome or Edge 113\+/);
      await bare.page.close();
    },
  );
});
