import { describe, expect, it } from 'vitest';
import { summarize } from '../src/kernels.js';
import type { SuiteResults } from '../src/results.js';

type Row = SuiteResults['rows'][number];
// Every suite's rows state their clock; these are wall time unless a test says otherwise.
const part = (suite: string, rows: Row[]): SuiteResults => ({
  suite,
  adapter: 'test',
  date: '',
  method: '',
  columns: [],
  rows: rows.map((r) => ({ clock: 'wall', ...r })),
});

const matmul = part('matmul', [
  { case: 'ABt 1024³', variant: 'sg_bt', 'GFLOP/s': 25, '× naive': 12, '× tfjs-webgpu': 7, '× jax-js': 4 },
  { case: 'AB 1024³', variant: 'sg', 'GFLOP/s': 16, '× naive': 10, '× tfjs-webgpu': 3, '× jax-js': 2.6 },
  { case: 'AtB 1024³', variant: 'sg_at', 'GFLOP/s': 24 },
  { case: 'ABt ViT mlp fwd 4096×768×192', variant: 'sg_bt', 'GFLOP/s': 18 },
  { case: 'AB ViT mlp dX 4096×192×768', variant: 'sg', 'GFLOP/s': 12.5 },
]);
const byCase = (rows: Row[]) => Object.fromEntries(rows.map((r) => [`${r.kernel} ${r.case}`, r]));

describe('mode bench kernels: summary rows against issue 11', () => {
  it('judges matmul at 1024³ by its absolute bar and the fastest peer, trainer shapes by their layout', () => {
    const s = byCase(summarize([matmul]));
    expect(s['matmul ABt 1024³']).toMatchObject({ met: 'yes', '÷ matmul A·Bᵀ 1024³': 1, '× jax-js': 4 });
    // 16 < 17 GFLOP/s: one failed part of a bar fails the row.
    expect(s['matmul AB 1024³']).toMatchObject({ met: 'NO' });
    expect(s['matmul AtB 1024³']!['bar (issue 11)']).toBeNull();
    // 18 / 25 = 72% of A·Bᵀ 1024³ < 75%; 12.5 / 16 = 78% of A·B 1024³.
    expect(s['matmul ABt ViT mlp fwd 4096×768×192']).toMatchObject({ met: 'NO', 'bar (issue 11)': '≥ 75% of ABt 1024³' });
    expect(s['matmul AB ViT mlp dX 4096×192×768']).toMatchObject({ met: 'yes' });
  });

  it('holds the other kernels to half the A·Bᵀ matmul of the same run, and says when a ratio is missing', () => {
    const rows = summarize([
      matmul,
      part('attention', [
        { case: 'fwd 8×1024×64', variant: 'sg', 'GFLOP/s': 13, '× naive': 9, '× tfjs-webgpu': 6, '× jax-js': 2.4 },
        { case: 'fwd+bwd 8×1024×64', variant: 'sg', 'GFLOP/s': 12.5, '× naive': 8 },
      ]),
      part('kmeans', [
        { case: 'n=1e+5 k=256 d=64', variant: 'sg', 'GFLOP/s': 5 },
        { case: 'n=1e+6 k=1024 d=256', variant: 'sg', 'GFLOP/s': 12.4, '× naive': 7, '× tfjs-webgpu': 'skipped' },
      ]),
      part('infonce', [
        { case: 'fwd B=1024 d=512', variant: 'sg', 'GFLOP/s (as done)': 30 },
        { case: 'fwd B=8192 d=512', variant: 'sg_chunk', 'GFLOP/s (as done)': 13.8, '× portable': 'skipped (slow)' },
        { case: 'fwd+bwd B=8192 d=512', variant: 'sg_chunk', 'GFLOP/s (as done)': 22.8 },
      ]),
    ]);
    const s = byCase(rows);
    // 13 / 25 ≥ ½ but 2.4× jax-js < 2.5×.
    expect(s['attention fwd 8×1024×64']).toMatchObject({ met: 'NO', '÷ matmul A·Bᵀ 1024³': 13 / 25 });
    expect(s['attention fwd+bwd 8×1024×64']).toMatchObject({ met: 'yes', 'bar (issue 11)': '≥ ½ matmul A·Bᵀ 1024³' });
    // 12.4 / 25 < ½; a peer skipped is carried as its text.
    expect(s['kmeans n=1e+6 k=1024 d=256']).toMatchObject({ met: 'NO', '× tfjs-webgpu': 'skipped' });
    // Bars hold at the largest bench size only: a smaller case is listed, not judged.
    expect(s['kmeans n=1e+5 k=256 d=64']).toMatchObject({ met: null, 'bar (issue 11)': null, 'GFLOP/s': 5 });
    // InfoNCE: the largest B only; the forward alone has no bar; the portable ratio is its naive.
    expect(rows.filter((r) => r.kernel === 'infonce').map((r) => r.case)).toEqual(['fwd B=8192 d=512', 'fwd+bwd B=8192 d=512']);
    expect(s['infonce fwd B=8192 d=512']).toMatchObject({ met: null, '× naive': 'skipped (slow)' });
    expect(s['infonce fwd+bwd B=8192 d=512']).toMatchObject({ met: 'yes' });
  });

  it('refuses to divide rates of different clocks (or of an unstated one), and then judges nothing on them', () => {
    const rows = summarize([
      matmul,
      part('kmeans', [{ case: 'n=1e+6 k=1024 d=256', variant: 'sg', clock: 'gpu-timestamps', 'GFLOP/s': 20 }]),
      part('infonce', [{ case: 'fwd+bwd B=8192 d=512', variant: 'sg_chunk', clock: null, 'GFLOP/s (as done)': 22.8 }]),
    ]);
    const s = byCase(rows);
    expect(s['kmeans n=1e+6 k=1024 d=256']).toMatchObject({
      clock: 'gpu-timestamps',
      '÷ matmul A·Bᵀ 1024³': 'n/a (clocks differ: gpu-timestamps vs wall)',
      met: 'not measured',
    });
    expect(s['infonce fwd+bwd B=8192 d=512']).toMatchObject({ '÷ matmul A·Bᵀ 1024³': 'n/a (clock not stated: ? vs wall)', met: 'not measured' });
    // Within matmul too: a trainer shape is judged against its layout's 1024³ row only on one clock.
    const mixed = part('matmul', [...matmul.rows, { case: 'AB text mlp dX 2048×256×1024', variant: 'sg', clock: 'gpu-timestamps', 'GFLOP/s': 15 }]);
    expect(byCase(summarize([mixed]))['matmul AB text mlp dX 2048×256×1024']).toMatchObject({ met: 'not measured' });
  });

  it('marks a bar it cannot judge as not measured rather than met', () => {
    const s = byCase(summarize([part('matmul', [{ case: 'ABt 1024³', variant: 'sg_bt', 'GFLOP/s': 25, '× tfjs-webgpu': 'n/a', '× jax-js': 'n/a' }])]));
    expect(s['matmul ABt 1024³']).toMatchObject({ met: 'not measured' });
  });
});
