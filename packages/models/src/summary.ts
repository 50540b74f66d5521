import type { ClipConfig } from './config.js';
import { visionTokens } from './config.js';
import type { CLIP } from './clip.js';

/** Parameter counts by top-level part, and the total. */
export function parameterCounts(model: CLIP): { part: string; tensors: number; params: number }[] {
  const parts = new Map<string, { tensors: number; params: number }>();
  for (const [name, t] of model.namedParameters()) {
    const part = name.startsWith('visual.') ? 'visual' : name === 'logit_scale' ? 'logit_scale' : 'text';
    const p = parts.get(part) ?? { tensors: 0, params: 0 };
    p.tensors++;
    p.params += t.size;
    parts.set(part, p);
  }
  const rows = [...parts].map(([part, p]) => ({ part, ...p }));
  return [...rows, { part: 'total', tensors: rows.reduce((a, r) => a + r.tensors, 0), params: rows.reduce((a, r) => a + r.params, 0) }];
}

/**
 * Matmul and attention FLOPs of one forward pass over `batch` pairs (2 per multiply-add; the
 * elementwise ops, norms and the loss are left out, well under 1% here), by tower. A training
 * step is about 3× the forward (backward: dX and dW per matmul; attention's backward recomputes
 * its scores: 2.5× its forward).
 */
export function forwardFlops(c: ClipConfig, batch: number): { vision: number; text: number; total: number; step: number } {
  const tower = (tokens: number, w: number, layers: number, mlpRatio: number, causal: boolean) => {
    const n = batch * tokens;
    const hidden = Math.round(w * mlpRatio);
    const attn = 2 * 2 * batch * tokens * tokens * w * (causal ? 0.5 : 1);
    return { mm: layers * (2 * n * w * 3 * w + 2 * n * w * w + 2 * 2 * n * w * hidden), attn: layers * attn };
  };
  const v = c.vision;
  const T = visionTokens(v);
  const vt = tower(T, v.width, v.layers, v.mlpRatio, false);
  const patch = 2 * batch * (v.imageSize / v.patchSize) ** 2 * 3 * v.patchSize ** 2 * v.width;
  const vision = vt.mm + vt.attn + patch + 2 * batch * v.width * c.embedDim;
  const t = c.text;
  const tt = tower(t.contextLength, t.width, t.layers, t.mlpRatio, true);
  const text = tt.mm + tt.attn + 2 * batch * t.width * c.embedDim;
  const step = 3 * (vt.mm + patch + tt.mm) + 3.5 * (vt.attn + tt.attn);
  return { vision, text, total: vision + text, step };
}

/** `mode model summary`: the config, parameters by part, FLOPs per forward and per training step. */
export function summaryTable(model: CLIP, batch: number): string {
  const c = model.config;
  const f = forwardFlops(c, batch);
  const fmt = (n: number) => n.toLocaleString('en-US');
  const g = (x: number) => `${(x / 1e9).toFixed(2)} GFLOP`;
  const lines = [
    `vision  ${c.vision.imageSize} px, ${c.vision.patchSize}-px patches (${visionTokens(c.vision)} tokens, pool ${c.vision.pool}), width ${c.vision.width}, ${c.vision.layers} layers, ${c.vision.heads} heads`,
    `text    context ${c.text.contextLength}, vocabulary ${fmt(c.text.vocabSize)}, width ${c.text.width}, ${c.text.layers} layers, ${c.text.heads} heads (causal)`,
    `embed   ${c.embedDim}, GELU ${{ none: 'exact (erf)', tanh: 'tanh approximation', quick: 'QuickGELU x·σ(1.702x)' }[c.gelu]}`,
    '',
    'part          tensors   parameters',
    ...parameterCounts(model).map((r) => `${r.part.padEnd(12)} ${String(r.tensors).padStart(8)} ${fmt(r.params).padStart(12)}`),
    '',
    `FLOPs at batch ${batch}: forward ${g(f.total)} (vision ${g(f.vision)}, text ${g(f.text)}); training step ≈ ${g(f.step)}`,
  ];
  return lines.join('\n');
}
