/**
 * selftest.html: every kernel check of `mode selftest` on this page's GPU — each variant the
 * adapter can run against its CPU float64 reference, outputs poisoned with NaN first — row by
 * row as they finish. `?seed=N` replays a run.
 */
import kernels from 'mode:kernels';
import { Gpu } from '@mode/gpu';
import { selftest, selftestSummary, SELFTEST_CHECKS, type SelftestResult } from '@mode/kernels';
import { $, esc, messenger, NO_WEBGPU } from './dom.js';

interface SelftestState {
  done: Promise<SelftestResult[] | null>;
  seed: number;
  error: string | null;
}
const given = new URLSearchParams(location.search).get('seed');
const seed = given !== null && /^\d+$/.test(given) ? Number(given) : (Math.random() * 2 ** 32) >>> 0;
const state: SelftestState = { done: Promise.resolve(null), seed, error: null };
(globalThis as { modeSelftest?: SelftestState }).modeSelftest = state;

const say = messenger(state);

async function main(): Promise<SelftestResult[]> {
  if (!navigator.gpu) throw new Error(NO_WEBGPU);
  const gpu = await Gpu.open({ kernels });
  const r = gpu.report;
  $('adapter').textContent =
    `${r.name} · ${r.enabledFeatures.join(', ')}${r.subgroupSize ? ` · subgroups of ${r.subgroupSize.min}–${r.subgroupSize.max}` : ''}`;
  say(`Running ${SELFTEST_CHECKS.length} checks (seed ${seed}: add ?seed=${seed} to replay)…`);
  const body = $('rows');
  const results = await selftest(gpu, seed, {
    onCheck: (x, i, n) => {
      const result = x.status === 'skipped' ? `skipped: ${x.reason}` : x.status === 'passed' ? 'ok' : `FAIL${x.reason ? `: ${x.reason}` : ''}`;
      body.insertAdjacentHTML(
        'beforeend',
        `<tr class="${x.status}"><td>${esc(x.kernel)}</td><td>${esc(x.case)}</td><td>${x.relativeError === null ? '–' : x.relativeError.toExponential(2)}</td><td>${x.tolerance ? x.tolerance.toExponential(0) : '0'}</td><td>${x.status === 'skipped' ? '–' : x.ms.toFixed(1)}</td><td>${esc(result)}</td></tr>`,
      );
      say(`Check ${i + 1} of ${n} done (seed ${seed})…`);
    },
  });
  const failed = results.some((x) => x.status === 'failed');
  say(`${selftestSummary(results)} — seed ${seed}.`, failed ? 'error' : 'done');
  gpu.destroy();
  return results;
}

state.done = main().catch((e: unknown) => {
  say(`The selftest could not run: ${(e as Error).message}`, 'error');
  return null;
});
