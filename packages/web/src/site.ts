/**
 * A run as a static site: the page (index.html, app.js), the kernel selftest (selftest.html,
 * selftest.js) and the run's artifacts under
 * artifacts/, each URL mapped to the file it is (or to bytes made here: the manifest, the
 * samples). `mode serve` serves this map; `mode export` writes it to a folder.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { datasetShards, readDatasetInfo, readShards, readTokenizer, toClass } from '@mode/data';
import { bundlePage, kernelSources } from './bundle.js';
import { MANIFEST_FORMAT, type SiteManifest } from './manifest.js';
import { pageHtml, selftestHtml } from './page-html.js';

/** A URL's content: a file on disk, or bytes. */
export type SiteFile = { path: string } | { bytes: Uint8Array; type?: string };

export interface Site {
  manifest: SiteManifest;
  files: Map<string, SiteFile>;
}

export class SiteError extends Error {
  readonly userFacing = true;
}

export interface SiteOptions {
  /** Where `mode data prepare` wrote (the tokenizer, the tasks' test sets). */
  dataDir: string;
  /** The tasks whose class names the page offers and whose test images it samples. */
  tasks: { name: string; dir: string; split: string }[];
  samplesPerTask?: number;
  debug?: boolean;
}

/** The run's experts, encoder and clusterings, each checked to exist, the fix named when one does not. */
export function runArtifacts(run: string): { experts: string[]; encoder: string; clusters: string[]; tokenizer?: string } {
  const dir = resolve(run);
  if (!existsSync(join(dir, 'run.json')))
    throw new SiteError(`${dir} is not a run folder (no run.json). Fix: point --run at a folder \`mode run\` wrote (default out/run)`);
  const need = (path: string, stage: string) => {
    if (!existsSync(path)) throw new SiteError(`${path} is missing: the run's ${stage} stage has not finished. Fix: npx mode run --run ${run} (it resumes)`);
    return path;
  };
  const options = (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { options?: { experts?: number; tokenizer?: string } }).options ?? {};
  const added = existsSync(join(dir, 'added.json')) ? (JSON.parse(readFileSync(join(dir, 'added.json'), 'utf8')) as { expert: number }[]) : [];
  const n = options.experts ?? 0;
  const ids = [...Array.from({ length: n }, (_, k) => k), ...added.map((a) => a.expert)];
  if (ids.length === 0) throw new SiteError(`${join(dir, 'run.json')} names no experts. Fix: re-run npx mode run --run ${run}`);
  for (const f of ['clusters.json', 'fine.safetensors', 'coarse.safetensors']) need(join(dir, 'clusters', f), 'cluster');
  for (const a of added)
    for (const f of ['clusters.json', 'fine.safetensors', 'coarse.safetensors']) need(join(dir, 'added', String(a.expert), 'clusters', f), 'added-cluster');
  return {
    experts: ids.map((k) => need(join(dir, 'experts', String(k), 'final.safetensors'), added.some((a) => a.expert === k) ? 'added-experts' : 'experts')),
    encoder: need(join(dir, 'seed', 'final.safetensors'), 'seed'),
    clusters: [join(dir, 'clusters'), ...added.map((a) => join(dir, 'added', String(a.expert), 'clusters'))],
    // A run with its own tokenizer (`mode run --tokenizer`, OpenAI's for an OpenCLIP seed); otherwise the data folder's.
    ...(options.tokenizer ? { tokenizer: tokenizerOf(options.tokenizer) } : {}),
  };
}

function tokenizerOf(path: string): string {
  if (!existsSync(path))
    throw new SiteError(
      `${resolve(path)} is missing: the run was made with --tokenizer ${path}. Fix: run this from the folder the run was started in, or put the file back`,
    );
  return resolve(path);
}

export async function buildSite(run: string, o: SiteOptions): Promise<Site> {
  const a = runArtifacts(run);
  const files = new Map<string, SiteFile>();
  const tokenizer = join(o.dataDir, 'tokenizer.json');
  if (!a.tokenizer && !existsSync(tokenizer)) throw new SiteError(`${tokenizer} is missing. Fix: npx mode data prepare --out ${o.dataDir}`);
  a.experts.forEach((p, k) => files.set(`artifacts/experts/${k}.safetensors`, { path: p }));
  files.set('artifacts/encoder.safetensors', { path: a.encoder });
  a.clusters.forEach((c, i) => {
    files.set(`artifacts/clusters/${i}/fine.safetensors`, { path: join(c, 'fine.safetensors') });
    files.set(`artifacts/clusters/${i}/coarse.safetensors`, { path: join(c, 'coarse.safetensors') });
  });
  // The page reads either vocabulary from its JSON; OpenAI's merges file (gzipped text) is converted.
  files.set(
    'artifacts/tokenizer.json',
    a.tokenizer ? { bytes: new TextEncoder().encode(JSON.stringify(readTokenizer(a.tokenizer).toJSON())), type: 'application/json' } : { path: tokenizer },
  );
  const manifest: SiteManifest = {
    format: MANIFEST_FORMAT,
    run: basename(resolve(run)),
    created: new Date().toISOString(),
    experts: a.experts.map((_, k) => `artifacts/experts/${k}.safetensors`),
    encoder: 'artifacts/encoder.safetensors',
    clusters: a.clusters.map((c, i) => ({
      fine: `artifacts/clusters/${i}/fine.safetensors`,
      coarse: `artifacts/clusters/${i}/coarse.safetensors`,
      // An added expert's clustering has the one expert; the run's, as many as it was fitted with.
      experts: (JSON.parse(readFileSync(join(c, 'clusters.json'), 'utf8')) as { experts: number }).experts,
    })),
    tokenizer: 'artifacts/tokenizer.json',
    tasks: [],
    samples: [],
  };
  for (const t of o.tasks) {
    const dir = join(o.dataDir, t.dir);
    const info = readDatasetInfo(dir);
    if (!info.classes) throw new SiteError(`${dir} is not a classification set (no classes in dataset.json)`);
    manifest.tasks.push({ name: t.name, classes: info.classes, templates: info.templates ?? ['a photo of a {}.'] });
    let i = 0;
    for await (const raw of readShards(datasetShards(dir, t.split))) {
      if (i >= (o.samplesPerTask ?? 6)) break;
      const r = toClass(raw, info.classes.length);
      const url = `artifacts/samples/${t.name}-${i}.png`;
      files.set(url, { bytes: r.image, type: 'image/png' }); // the prepared sets' images are PNGs
      manifest.samples.push({ url, task: t.name, label: r.label, key: r.key });
      i++;
    }
  }
  const json = (x: unknown) => new TextEncoder().encode(JSON.stringify(x, null, 1) + '\n');
  files.set('artifacts/manifest.json', { bytes: json(manifest), type: 'application/json' });
  const text = (t: string) => new TextEncoder().encode(t);
  const kernels = kernelSources();
  for (const page of ['app', 'selftest'] as const)
    files.set(`${page}.js`, { bytes: text((await bundlePage(page, { kernels, debug: !!o.debug })).js), type: 'text/javascript' });
  files.set('index.html', { bytes: text(pageHtml(manifest.run)), type: 'text/html' });
  files.set('selftest.html', { bytes: text(selftestHtml()), type: 'text/html' });
  return { manifest, files };
}

/** Writes the site to `out` (replacing what was there), whole or not at all: built beside it, then renamed. */
export function exportSite(site: Site, out: string): { files: number; bytes: number } {
  const target = resolve(out);
  const tmp = `${target}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  let bytes = 0;
  for (const [url, f] of site.files) {
    const path = join(tmp, url);
    mkdirSync(dirname(path), { recursive: true });
    if ('path' in f) copyFileSync(f.path, path);
    else writeFileSync(path, f.bytes);
    bytes += 'path' in f ? statSync(path).size : f.bytes.byteLength;
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
  return { files: site.files.size, bytes };
}
