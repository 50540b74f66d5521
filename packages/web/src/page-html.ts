/** The page's HTML and CSS; main.ts fills it in. A message is always showing, so the page is never blank. */
import { esc } from './page/dom.js';

const STYLE = `<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 16px 24px; color: #1d232a; }
  h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 16px; margin: 18px 0 6px; } h3 { font-size: 14px; margin: 12px 0 4px; }
  .sub { color: #5b6570; margin: 0 0 10px; }
  #message { padding: 8px 12px; border-radius: 6px; background: #eef3f8; margin: 10px 0; min-height: 20px; }
  #message.error { background: #fde8e8; color: #8a1c1c; font-weight: 600; } #message.done { background: #e7f5ea; }
  .grid { display: grid; grid-template-columns: 330px 1fr; gap: 20px; }
  #drop { border: 2px dashed #9aa7b3; border-radius: 8px; padding: 12px; text-align: center; }
  #drop.over { background: #eef3f8; border-color: #3a6ea5; }
  #preview { width: 128px; height: 128px; image-rendering: pixelated; object-fit: contain; background: #fafafa; border: 1px solid #ddd; display: block; margin: 8px auto; }
  #samples { display: flex; flex-wrap: wrap; gap: 4px; } .sample { padding: 2px; border: 1px solid #ccd; background: #fff; cursor: pointer; border-radius: 4px; }
  .sample img { width: 40px; height: 40px; image-rendering: pixelated; display: block; }
  textarea { width: 100%; box-sizing: border-box; height: 150px; font: 13px ui-monospace, monospace; }
  select, button#go { font-size: 14px; margin: 4px 0; } button#go { padding: 6px 18px; }
  #results { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
  table { border-collapse: collapse; } td, th { border-bottom: 1px solid #e3e7ea; padding: 2px 8px; text-align: left; }
  table.top caption { font-weight: 600; text-align: left; padding: 2px 0; } tr.truth td { background: #e7f5ea; font-weight: 600; }
  #weights-svg rect { fill: #3a6ea5; } #weights-svg text { font-size: 12px; }
  .note { color: #5b6570; font-size: 12.5px; } code { font-size: 12px; } .error { color: #8a1c1c; }
  tr.failed td { background: #fde8e8; } tr.skipped td { color: #8a949e; }
  details summary { cursor: pointer; }
</style>`;

function shell(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
${STYLE}
</head>
<body>
${body}
<noscript><p class="error">This page needs JavaScript (and WebGPU).</p></noscript>
<script type="module" src="${script}"></script>
</body>
</html>
`;
}

export function pageHtml(run: string): string {
  return shell(
    `mode · ${run} · data experts in the browser`,
    `<h1>mode · data experts in the browser</h1>
<p class="sub">Zero-shot classification with a MoDE ensemble, on this page's GPU, with the project's own WGSL kernels. <span id="run"></span> <a href="selftest.html">Kernel selftest on this GPU</a></p>
<p class="sub" id="adapter">No GPU opened yet.</p>
<div id="message" role="status">Loading the page's script…</div>
<div class="grid">
  <div>
    <h2>Image</h2>
    <div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*">
      <img id="preview" alt="no image yet"><div id="image-name" class="note">no image yet</div></div>
    <h3>Samples from the test sets</h3>
    <div id="samples"></div>
    <h2>Class names</h2>
    <select id="preset"></select>
    <textarea id="classes" spellcheck="false" placeholder="one class name per line"></textarea>
    <button id="go" disabled>Classify</button>
  </div>
  <div>
    <h2>Top-5</h2>
    <div id="results"><p class="note">Results appear here.</p></div>
    <div id="weights"></div>
    <div id="timing"></div>
    <div id="variants"></div>
  </div>
</div>`,
    'app.js',
  );
}

export function selftestHtml(): string {
  return shell(
    'mode · kernel selftest on this GPU',
    `<h1>mode · kernel selftest on this GPU</h1>
<p class="sub">Each WGSL kernel variant this adapter can run, on fresh random inputs (odd sizes included, outputs poisoned with NaN), against its CPU float64 reference: what <code>mode selftest</code> does in Node. <a href="index.html">Back to the classifier</a></p>
<p class="sub" id="adapter">No GPU opened yet.</p>
<div id="message" role="status">Loading the page's script…</div>
<table><thead><tr><th>kernel</th><th>case</th><th>rel. error</th><th>tolerance</th><th>ms</th><th>result</th></tr></thead><tbody id="rows"></tbody></table>`,
    'selftest.js',
  );
}
