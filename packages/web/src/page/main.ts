/** The page: wires app.ts to the DOM that page-html.ts lays out. Every failure ends as a message on the page. */
import type { RgbaImage } from '@mode/data';
import { topK, type ZeroShotTask } from '@mode/ensembler';
import { $, esc, messenger, NO_WEBGPU } from './dom.js';
import { classify, decodeImage, load, openGpu, PageError, parseClasses, prepareTask, variantChoices, type Classified, type Loaded } from './app.js';

/** For tests and the console: the loaded run, the last result, the last error. */
interface PageState {
  ready: Promise<boolean>;
  loaded: Loaded | null;
  last: Classified | null;
  error: string | null;
  busy: boolean;
  /** The kernel variant of each problem run so far. */
  variants: typeof variantChoices;
}
const state: PageState = { ready: Promise.resolve(false), loaded: null, last: null, error: null, busy: false, variants: variantChoices };
(globalThis as { modePage?: PageState }).modePage = state;

const say = messenger(state);

let image: { pixels: RgbaImage; name: string } | null = null;
let task: { key: string; task: ZeroShotTask } | null = null;

async function setImage(bytes: Uint8Array, name: string, type: string): Promise<void> {
  const pixels = await decodeImage(bytes, name, type);
  image = { pixels, name };
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: type || 'image/png' }));
  const img = $<HTMLImageElement>('preview');
  img.src = url;
  img.alt = name;
  $('image-name').textContent = `${name} (${pixels.width}×${pixels.height})`;
}

function topTable(title: string, r: Classified, logits: Float32Array, truth?: string): string {
  const C = r.classes.length;
  const rows = topK(logits, 0, C, Math.min(5, C))
    .map(
      (t, i) =>
        `<tr${r.classes[t.index] === truth ? ' class="truth"' : ''}><td>${i + 1}</td><td>${esc(r.classes[t.index]!)}</td><td>${t.logit.toFixed(4)}</td></tr>`,
    )
    .join('');
  return `<table class="top"><caption>${esc(title)}</caption><thead><tr><th>#</th><th>class</th><th>cosine</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function weightsChart(w: number[]): string {
  const W = 360;
  const bar = 22;
  const max = Math.max(...w, 1e-9);
  const rows = w
    .map((x, k) => {
      const len = Math.max(1, (x / max) * (W - 150));
      return `<text x="0" y="${k * (bar + 6) + 16}">expert ${k}</text><rect x="70" y="${k * (bar + 6)}" width="${len.toFixed(1)}" height="${bar}"/><text x="${(76 + len).toFixed(1)}" y="${k * (bar + 6) + 16}">${x.toFixed(4)}</text>`;
    })
    .join('');
  return `<svg id="weights-svg" width="${W}" height="${w.length * (bar + 6)}" role="img" aria-label="ensemble weight per expert">${rows}</svg>`;
}

function render(r: Classified, truth?: string): void {
  const tables = [
    topTable('ensemble (metadata weights)', r, r.ensemble, truth),
    topTable('uniform average', r, r.uniform, truth),
    ...r.experts.map((l, k) => topTable(`expert ${k}`, r, l, truth)),
  ];
  $('results').innerHTML = tables.join('');
  const uniformish =
    Math.max(...r.weights) - Math.min(...r.weights) < 0.05
      ? " The weights are near uniform: the class names sit about equally far from every expert's fine centres."
      : '';
  $('weights').innerHTML =
    `<h2>Ensemble weights</h2>${weightsChart(r.weights)}<p class="note">softmax(w̃ / 8) over the experts, from the ${r.classes.length} class names alone (MoDE §2 step 6).${uniformish}</p>`;
  const stageRows = r.stages.map((s) => `<tr><td>${esc(s.stage)}</td><td>${(1000 * s.seconds).toFixed(1)}</td></tr>`).join('');
  const kernelRows = [...r.kernels]
    .sort((a, b) => b.totalMs - a.totalMs)
    .map((k) => `<tr><td>${esc(k.kernel)}</td><td>${k.calls}</td><td>${k.totalMs.toFixed(2)}</td></tr>`)
    .join('');
  $('timing').innerHTML =
    `<h2>Time per stage</h2><p class="note">A task's first classification includes embedding its class names, and the first problem of each shape includes autotuning.</p><table><thead><tr><th>stage</th><th>ms (wall)</th></tr></thead><tbody>${stageRows}</tbody></table>` +
    (r.kernels.length
      ? `<h3>Kernels of the image towers (${r.clock === 'gpu-timestamps' ? 'GPU timestamps' : 'CPU wall clock per dispatch'})</h3><table><thead><tr><th>kernel</th><th>calls</th><th>ms</th></tr></thead><tbody>${kernelRows}</tbody></table>`
      : '<p class="note">No kernel times: this adapter lacks timestamp-query.</p>');
  renderVariants();
}

function renderVariants(): void {
  const log = variantChoices();
  // Per family: how often each variant won, and (once) why the others cannot run on this adapter.
  const families = new Map<string, { wins: Map<string, number>; skipped: Set<string>; measured: number }>();
  for (const l of log) {
    const name = l.key.split('|')[0]!;
    const f = families.get(name) ?? { wins: new Map(), skipped: new Set(), measured: 0 };
    f.wins.set(l.variant, (f.wins.get(l.variant) ?? 0) + 1);
    l.skipped.forEach((s) => f.skipped.add(s));
    if (!l.cached) f.measured++;
    families.set(name, f);
  }
  const summary = [...families]
    .map(
      ([name, f]) =>
        `<tr><td>${esc(name)}</td><td>${[...f.wins].map(([v, n]) => `${esc(v)} ×${n}`).join(', ')}</td><td>${f.measured} measured here, ${[...f.wins.values()].reduce((a, b) => a + b, 0) - f.measured} from the cache</td><td>${esc([...f.skipped].join('; ') || '–')}</td></tr>`,
    )
    .join('');
  const rows = log
    .map((l) => `<tr><td><code>${esc(l.key)}</code></td><td>${esc(l.variant)}</td><td>${l.cached ? 'cached' : 'measured here'}</td></tr>`)
    .join('');
  $('variants').innerHTML = `<h2>Kernel variants on this adapter</h2>${
    log.length
      ? `<table><thead><tr><th>family</th><th>chosen (problems)</th><th>how</th><th>not run here, and why</th></tr></thead><tbody>${summary}</tbody></table>
<details><summary>every problem (${log.length})</summary><table><thead><tr><th>tune key</th><th>chosen</th><th>how</th></tr></thead><tbody>${rows}</tbody></table></details>
<p class="note">The autotuner times each variant that can run here on the first problem of its shape class and keeps the fastest in this browser's localStorage; later visits take it from there (reasons are listed where a choice was measured on this visit).</p>`
      : '<p class="note">No autotuned kernel ran yet.</p>'
  }`;
}

async function run(truth?: string): Promise<void> {
  if (!state.loaded) return;
  if (state.busy) return;
  state.busy = true;
  $<HTMLButtonElement>('go').disabled = true;
  try {
    if (!image) throw new PageError('No image yet. Fix: drop an image, choose a file, or click a sample');
    const classes = parseClasses($<HTMLTextAreaElement>('classes').value);
    const preset = state.loaded.manifest.tasks.find((t) => t.name === $<HTMLSelectElement>('preset').value);
    const same = preset && preset.classes.join('\n') === classes.join('\n');
    const templates = same ? preset.templates : ['a photo of a {}.'];
    const key = JSON.stringify([classes, templates]);
    if (task?.key !== key) {
      task?.task.dispose();
      task = null;
      say(`Embedding ${classes.length} class names with ${state.loaded.experts.length} experts and the clustering encoder…`);
      task = { key, task: await prepareTask(state.loaded, classes, templates) };
    }
    say(`Classifying ${image.name}…`);
    const r = await classify(state.loaded, task.task, image.pixels);
    state.last = r;
    state.error = null;
    render(r, truth);
    const best = topK(r.ensemble, 0, r.classes.length, 1)[0]!;
    say(`${image.name}: the ensemble says "${r.classes[best.index]}"${truth ? ` (truth: "${truth}")` : ''}.`, 'done');
  } catch (e) {
    say(e instanceof PageError ? e.message : `Error: ${(e as Error).message}`, 'error');
  } finally {
    state.busy = false;
    $<HTMLButtonElement>('go').disabled = false;
  }
}

function setPreset(name: string): void {
  const t = state.loaded?.manifest.tasks.find((x) => x.name === name);
  if (t) $<HTMLTextAreaElement>('classes').value = t.classes.join('\n');
}

async function start(): Promise<boolean> {
  say('Opening the GPU…');
  if (!navigator.gpu) throw new PageError(NO_WEBGPU);
  const gpu = await openGpu();
  const r = gpu.report;
  $('adapter').textContent =
    `${r.name} · features: ${r.enabledFeatures.filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)).join(', ') || 'none of shader-f16, subgroups, timestamp-query'}${r.subgroupSize ? ` · subgroups of ${r.subgroupSize.min}–${r.subgroupSize.max}` : ''} · ≤ ${r.limits.maxComputeInvocationsPerWorkgroup} invocations per workgroup`;
  const loaded = await load(gpu, (what) => say(`Loading ${what}…`));
  state.loaded = loaded;
  const m = loaded.manifest;
  $('run').textContent = `run ${m.run}: ${loaded.experts.length} experts, ${loaded.clusters.fineToExpert.length} fine centres, ${loaded.imageSize}-px images`;
  const preset = $<HTMLSelectElement>('preset');
  preset.innerHTML =
    m.tasks.map((t) => `<option value="${esc(t.name)}">${esc(t.name)} (${t.classes.length} classes)</option>`).join('') + '<option value="">your own</option>';
  preset.onchange = () => setPreset(preset.value);
  setPreset(m.tasks[0]?.name ?? '');
  $('samples').innerHTML = m.samples
    .map((s, i) => {
      const label = m.tasks.find((t) => t.name === s.task)?.classes[s.label] ?? String(s.label);
      return `<button class="sample" data-i="${i}" title="${esc(`${s.task}: ${label}`)}"><img src="${esc(s.url)}" alt="${esc(label)}"></button>`;
    })
    .join('');
  for (const b of document.querySelectorAll<HTMLButtonElement>('button.sample')) {
    b.onclick = async () => {
      const s = m.samples[Number(b.dataset.i)]!;
      const t = m.tasks.find((x) => x.name === s.task);
      try {
        const res = await fetch(s.url);
        if (!res.ok) throw new PageError(`${s.url}: HTTP ${res.status}. Fix: npx mode export again`);
        await setImage(new Uint8Array(await res.arrayBuffer()), `${s.task} sample ${s.key}`, 'image/png');
        if (t && preset.value !== t.name) {
          preset.value = t.name;
          setPreset(t.name);
        }
        await run(t?.classes[s.label]);
      } catch (e) {
        say((e as Error).message, 'error');
      }
    };
  }
  const file = $<HTMLInputElement>('file');
  const take = async (f: File | undefined) => {
    if (!f) return;
    try {
      await setImage(new Uint8Array(await f.arrayBuffer()), f.name, f.type);
      await run();
    } catch (e) {
      say((e as Error).message, 'error');
    }
  };
  file.onchange = () => void take(file.files?.[0]);
  const drop = $('drop');
  drop.ondragover = (e) => (e.preventDefault(), drop.classList.add('over'));
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void take(e.dataTransfer?.files[0]);
  };
  $<HTMLButtonElement>('go').onclick = () => void run();
  $<HTMLButtonElement>('go').disabled = false;
  renderVariants();
  const s = loaded.seconds;
  say(
    `Ready: loaded in ${Object.values(s)
      .reduce((a, b) => a + b, 0)
      .toFixed(1)} s. Pick a sample or drop an image.`,
    'done',
  );
  return true;
}

state.ready = start().catch((e: unknown) => {
  say(e instanceof PageError ? e.message : `The page could not start: ${(e as Error).message}`, 'error');
  return false;
});
