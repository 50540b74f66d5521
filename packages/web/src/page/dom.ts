/** What both pages share: HTML escaping, elements by id, and the status line every failure ends on (never a blank page). */
export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export const NO_WEBGPU =
  'This browser has no WebGPU (navigator.gpu is missing). Fix: use Chrome or Edge 113+, Safari 26+ or Firefox 141+; headless Chromium needs --enable-unsafe-webgpu';

/** Writes #message; an error is also kept in `state.error` (what tests and the console read). */
export const messenger =
  (state: { error: string | null }) =>
  (text: string, kind: 'info' | 'error' | 'done' = 'info'): void => {
    const m = $('message');
    m.textContent = text;
    m.className = kind;
    if (kind === 'error') state.error = text;
  };
