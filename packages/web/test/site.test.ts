import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundlePage, kernelSources, runArtifacts, serveSite, type Site } from '@mode/web';

const tmp = mkdtempSync(join(tmpdir(), 'mode-web-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the page bundle', () => {
  it('is one browser module: no Node import left, every kernel inlined, Node-only modules stubbed to throw by name', { timeout: 60_000 }, async () => {
    const kernels = kernelSources();
    expect(Object.keys(kernels).length).toBeGreaterThan(40);
    // Marker sources: each must reach the bundle as given (a debug build keeps strings as written).
    const marked = Object.fromEntries(Object.entries(kernels).map(([k, v]) => [k, `${v}\n// bundled:${k}`]));
    for (const page of ['app', 'selftest'] as const) {
      const { js } = await bundlePage(page, { kernels: marked, debug: true });
      // Booleans, not the bundle itself, in the assertions: a failure should not print megabytes.
      expect(/^\s*import\s.*from\s*["'](node:|fs|path|webgpu)/m.test(js), `${page}: a Node import is left`).toBe(false);
      expect(/\brequire\(["']node:/.test(js), `${page}: a Node require is left`).toBe(false);
      expect(Object.keys(kernels).filter((k) => !js.includes(`// bundled:${k}`))).toEqual([]);
      // The classifier reaches @mode/data's file readers (stubbed); the selftest reaches none.
      expect(js.includes('was called in the browser page: it exists only in Node')).toBe(page === 'app');
    }
    const { js, bytes } = await bundlePage('app');
    expect(bytes).toBe(Buffer.byteLength(js));
    expect(bytes).toBeLessThan(2 * 2 ** 20);
  });
});

describe('runArtifacts', () => {
  it('names the missing file, the stage that makes it and the fix', () => {
    expect(() => runArtifacts(join(tmp, 'nothing'))).toThrow(/is not a run folder \(no run\.json\)\. Fix: point --run at a folder `mode run` wrote/);
    const run = join(tmp, 'run');
    mkdirSync(join(run, 'clusters'), { recursive: true });
    writeFileSync(join(run, 'run.json'), JSON.stringify({ options: { experts: 2 } }));
    expect(() => runArtifacts(run)).toThrow(
      /clusters\/clusters\.json is missing: the run's cluster stage has not finished\. Fix: npx mode run --run .* \(it resumes\)/,
    );
    for (const f of ['clusters.json', 'fine.safetensors', 'coarse.safetensors']) writeFileSync(join(run, 'clusters', f), '');
    mkdirSync(join(run, 'experts', '0'), { recursive: true });
    writeFileSync(join(run, 'experts', '0', 'final.safetensors'), '');
    expect(() => runArtifacts(run)).toThrow(/experts\/1\/final\.safetensors is missing: the run's experts stage has not finished/);
    mkdirSync(join(run, 'experts', '1'), { recursive: true });
    writeFileSync(join(run, 'experts', '1', 'final.safetensors'), '');
    expect(() => runArtifacts(run)).toThrow(/seed\/final\.safetensors is missing: the run's seed stage/);
    mkdirSync(join(run, 'seed'));
    writeFileSync(join(run, 'seed', 'final.safetensors'), '');
    const a = runArtifacts(run);
    expect(a.experts).toEqual([0, 1].map((k) => join(run, 'experts', String(k), 'final.safetensors')));
    expect(a.clusters).toEqual([join(run, 'clusters')]);
    // An expert added later (mode run --add-expert): its own clustering, numbered after the run's.
    writeFileSync(join(run, 'added.json'), JSON.stringify([{ expert: 2, data: ['x'], fine: 2 }]));
    expect(() => runArtifacts(run)).toThrow(/added\/2\/clusters\/clusters\.json is missing: the run's added-cluster stage/);
    mkdirSync(join(run, 'added', '2', 'clusters'), { recursive: true });
    for (const f of ['clusters.json', 'fine.safetensors', 'coarse.safetensors']) writeFileSync(join(run, 'added', '2', 'clusters', f), '');
    expect(() => runArtifacts(run)).toThrow(/experts\/2\/final\.safetensors is missing: the run's added-experts stage/);
    mkdirSync(join(run, 'experts', '2'));
    writeFileSync(join(run, 'experts', '2', 'final.safetensors'), '');
    expect(runArtifacts(run).clusters).toEqual([join(run, 'clusters'), join(run, 'added', '2', 'clusters')]);
    expect(runArtifacts(run).experts).toHaveLength(3);
    expect(runArtifacts(run).tokenizer).toBeUndefined(); // the data folder's
    // A run made with its own tokenizer (mode run --tokenizer): the page gets that one.
    const bpe = join(tmp, 'bpe_simple_vocab_16e6.txt.gz');
    writeFileSync(join(run, 'run.json'), JSON.stringify({ options: { experts: 2, tokenizer: bpe } }));
    expect(() => runArtifacts(run)).toThrow(
      /bpe_simple_vocab_16e6\.txt\.gz is missing: the run was made with --tokenizer .*\. Fix: run this from the folder the run was started in/,
    );
    writeFileSync(bpe, '');
    expect(runArtifacts(run).tokenizer).toBe(bpe);
  });
});

describe('serveSite', () => {
  it('serves the map with content types, and says why a path is missing', async () => {
    const file = join(tmp, 'weights.safetensors');
    writeFileSync(file, 'abc');
    const site: Site = {
      manifest: {} as Site['manifest'],
      files: new Map([
        ['index.html', { bytes: new TextEncoder().encode('<p>hi</p>'), type: 'text/html' }],
        ['artifacts/experts/0.safetensors', { path: file }],
        ['artifacts/experts/1.safetensors', { path: join(tmp, 'gone.safetensors') }],
      ]),
    };
    const { server, url } = await serveSite(site, { port: 0 });
    try {
      const root = await fetch(url);
      expect(root.headers.get('content-type')).toBe('text/html');
      expect(await root.text()).toBe('<p>hi</p>');
      const w = await fetch(`${url}artifacts/experts/0.safetensors`);
      expect(w.headers.get('content-type')).toBe('application/octet-stream');
      expect(await w.text()).toBe('abc');
      const gone = await fetch(`${url}artifacts/experts/1.safetensors`);
      expect(gone.status).toBe(404);
      expect(await gone.text()).toMatch(/gone\.safetensors is gone from the run folder/);
      const none = await fetch(`${url}nope.js`);
      expect(none.status).toBe(404);
      expect(await none.text()).toBe('nope.js: not part of this site');
      expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    } finally {
      server.close();
    }
  });
});
