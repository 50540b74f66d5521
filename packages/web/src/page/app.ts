/**
 * The page's model side, free of the DOM: open the page's GPU with the bundled kernels, fetch and
 * decode the run's artifacts, prepare a task (its class names) and classify images — through
 * the same ensembler code as `mode classify` in Node.
 */
import kernels from 'mode:kernels';
import { decodeSafetensors, init, toFloat32, type Engine, type SafetensorsFile } from '@mode/autograd';
import { decodePng, evalImage, tokenizerFromJSON, type AnyTokenizerJSON, type RgbaImage, type TextTokenizer } from '@mode/data';
import { concatRows, zeroShotTask, type TaskLogits, type ZeroShotTask } from '@mode/ensembler';
import { Gpu } from '@mode/gpu';
import { autotuner } from '@mode/kernels';
import { clipFromSafetensors, type CLIP } from '@mode/models';
import { MANIFEST_FORMAT, type SiteManifest } from '../manifest.js';

export class PageError extends Error {}

async function fetchBytes(url: string, what: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { cache: 'no-store' });
  } catch (e) {
    throw new PageError(`${url} (${what}) could not be fetched: ${(e as Error).message}. Fix: is \`mode serve\` still running?`);
  }
  if (!res.ok)
    throw new PageError(
      `${url} (${what}): HTTP ${res.status} ${res.statusText} — the run folder or exported site lacks it. Fix: finish the run (npx mode run --run RUN), then npx mode export --run RUN --out SITE again`,
    );
  return new Uint8Array(await res.arrayBuffer());
}

const safetensors = async (url: string, what: string): Promise<SafetensorsFile> => {
  const bytes = await fetchBytes(url, what);
  try {
    return decodeSafetensors(bytes, url);
  } catch (e) {
    throw new PageError(`${url} (${what}) is not a valid safetensors file: ${(e as Error).message}`);
  }
};

export interface Loaded {
  gpu: Gpu;
  engine: Engine;
  manifest: SiteManifest;
  experts: CLIP[];
  encoder: CLIP;
  clusters: { fine: Float32Array; fineToExpert: Uint32Array; experts: number };
  tokenizer: TextTokenizer;
  imageSize: number;
  /** Wall seconds of each loading step. */
  seconds: Record<string, number>;
}

export async function openGpu(): Promise<Gpu> {
  const gpu = await Gpu.open({ kernels });
  // Profiled only with timestamp queries: the CPU-clock fallback submits each dispatch alone, far too slow for a page.
  gpu.profiler.enabled = gpu.profiler.clock === 'gpu-timestamps';
  return gpu;
}

export async function load(gpu: Gpu, progress: (what: string) => void = () => {}): Promise<Loaded> {
  const seconds: Record<string, number> = {};
  let t = performance.now();
  const lap = (what: string) => {
    seconds[what] = (performance.now() - t) / 1000;
    t = performance.now();
  };
  progress('manifest');
  const text = new TextDecoder().decode(await fetchBytes('artifacts/manifest.json', 'the site manifest'));
  let manifest: SiteManifest;
  try {
    manifest = JSON.parse(text) as SiteManifest;
  } catch (e) {
    throw new PageError(`artifacts/manifest.json is not JSON (${(e as Error).message}). Fix: npx mode export again`);
  }
  if (manifest.format !== MANIFEST_FORMAT)
    throw new PageError(
      `artifacts/manifest.json: format "${manifest.format}", this page reads "${MANIFEST_FORMAT}". Fix: export the site again with this version`,
    );
  const engine = await init(gpu);
  progress(`${manifest.experts.length} experts`);
  const model = async (url: string, what: string) => {
    try {
      return clipFromSafetensors(await safetensors(url, what), url);
    } catch (e) {
      throw e instanceof PageError ? e : new PageError(`${url} (${what}): ${(e as Error).message}`);
    }
  };
  const experts: CLIP[] = [];
  for (const [k, url] of manifest.experts.entries()) experts.push(await model(url, `expert ${k}`));
  lap('experts');
  progress('the clustering encoder');
  const encoder = await model(manifest.encoder, 'the clustering text encoder');
  lap('encoder');
  progress('clusters and tokenizer');
  const fine: Float32Array[] = [];
  const fineToExpert: number[] = [];
  let offset = 0;
  for (const c of manifest.clusters) {
    const f = await safetensors(c.fine, 'fine centres');
    const m = await safetensors(c.coarse, 'coarse assignment');
    const centres = f.tensors.centres;
    const map = m.tensors.fine_to_expert;
    if (!centres || !map)
      throw new PageError(`${!centres ? `${c.fine} has no tensor "centres"` : `${c.coarse} has no tensor "fine_to_expert"`}. Fix: re-run mode cluster`);
    fine.push(toFloat32(centres, 'centres'));
    const ids = new Uint32Array(map.data.slice().buffer);
    if (ids.some((e) => e >= c.experts)) throw new PageError(`${c.coarse} maps a fine centre to an expert past its ${c.experts}. Fix: re-run mode cluster`);
    ids.forEach((e) => fineToExpert.push(e + offset)); // experts numbered one clustering after another, as mergeClusters does
    offset += c.experts;
  }
  if (offset !== experts.length) throw new PageError(`the clusters name ${offset} experts, the manifest ${experts.length}. Fix: npx mode export again`);
  const tokenizer = tokenizerFromJSON(JSON.parse(new TextDecoder().decode(await fetchBytes(manifest.tokenizer, 'the tokenizer'))) as AnyTokenizerJSON);
  lap('clusters + tokenizer');
  return {
    gpu,
    engine,
    manifest,
    experts,
    encoder,
    clusters: { fine: concatRows(fine), fineToExpert: Uint32Array.from(fineToExpert), experts: offset },
    tokenizer,
    imageSize: experts[0]!.config.vision.imageSize,
    seconds,
  };
}

/** Class names from text: one per line, or comma-separated on one line. */
export function parseClasses(text: string): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.length === 1 ? lines[0]!.split(',') : lines).map((c) => c.trim()).filter(Boolean);
}

export async function prepareTask(m: Loaded, classes: string[], templates: string[]): Promise<ZeroShotTask> {
  if (classes.length === 0) throw new PageError('The class list is empty. Fix: type class names, one per line (or comma-separated), or pick a preset');
  return zeroShotTask({ experts: m.experts, encoder: m.encoder, clusters: m.clusters, tokenizer: m.tokenizer, classes, templates });
}

/** An image file's pixels: PNGs decoded by the same pngjs as Node (exact); other formats by the browser. */
export async function decodeImage(bytes: Uint8Array, name: string, type: string): Promise<RgbaImage> {
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  if (isPng) {
    try {
      return decodePng(bytes, { file: name, record: 0 });
    } catch (e) {
      throw new PageError(`${name}: ${(e as Error).message}. Fix: pick another image`);
    }
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type }), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    throw new PageError(`${name} is not an image this browser can decode (${type || 'unknown type'}). Fix: drop a PNG, JPEG, GIF or WebP`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  return { width: bitmap.width, height: bitmap.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export interface Classified extends TaskLogits {
  classes: readonly string[];
  weights: number[];
  /** Wall seconds per stage, and the kernels' time as the profiler measured it. */
  stages: { stage: string; seconds: number }[];
  kernels: { kernel: string; calls: number; totalMs: number }[];
  clock: string;
}

export async function classify(m: Loaded, task: ZeroShotTask, image: RgbaImage): Promise<Classified> {
  const t0 = performance.now();
  const pixels = evalImage(image, m.imageSize);
  const preprocess = (performance.now() - t0) / 1000;
  m.gpu.profiler.clear();
  const r = await task.classify(pixels, 1);
  const kernels = m.gpu.profiler.summary().map((k) => ({ kernel: k.kernel, calls: k.calls, totalMs: k.totalMs }));
  return {
    ...r,
    classes: task.classes,
    weights: [...task.weights.weights],
    stages: [
      { stage: 'class names → weights (clustering encoder)', seconds: task.prepareSeconds.weights },
      { stage: "class names → each expert's classifier", seconds: task.prepareSeconds.classifiers },
      { stage: 'image → pixels (decode, crop, resize)', seconds: preprocess },
      ...r.seconds.map((s, k) => ({ stage: `expert ${k}: image tower + logits`, seconds: s })),
    ],
    kernels,
    clock: m.gpu.profiler.clock,
  };
}

/**
 * The variant of each problem (tune key) this page has run: measured here (with why the other
 * variants cannot run on this adapter) or taken from the cache (measured earlier in this browser).
 */
export function variantChoices(): { key: string; variant: string; cached: boolean; skipped: string[] }[] {
  const measured = new Map(autotuner.log.filter((l) => !l.cached).map((l) => [l.key, l]));
  return Object.entries(autotuner.choicesMade()).map(([key, variant]) => ({
    key,
    variant,
    cached: !measured.has(key),
    skipped: measured.get(key)?.skipped ?? [],
  }));
}
