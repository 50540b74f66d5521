import { pathToFileURL } from 'node:url';
import { formatTable, Gpu } from '@mode/gpu';
import { timeAsync } from '../timing.js';
import { createPeers } from './index.js';
import { FLOPS, type PreparedOp } from './peer.js';

interface Case {
  label: string;
  flops: number;
  prepare: (peer: ReturnType<typeof createPeers>[number]) => Promise<PreparedOp> | undefined;
}

const N = 1024;
const [HEADS, L, D] = [8, 1024, 64];
const CASES: Case[] = [
  { label: `matmul A·B ${N}³`, flops: FLOPS.matmul(N, N, N), prepare: (p) => p.matmul?.(N, N, N, 'AB') },
  { label: `matmul A·Bᵀ ${N}³`, flops: FLOPS.matmul(N, N, N), prepare: (p) => p.matmul?.(N, N, N, 'ABt') },
  { label: `attention ${HEADS}×${L}×${D}`, flops: FLOPS.attention(HEADS, L, D), prepare: (p) => p.attention?.(HEADS, L, D, false) },
];

/**
 * Each peer's GFLOP/s at the headline shapes, all in this one process: wall time per `run()`
 * (timeAsync), and for numpy also its own in-process median. A quick look at the peers' ceilings;
 * the benchmark suites proper put them beside the kernels. `node bench/dist/peers/measure.js`
 */
export async function measurePeers(maxTime = 2): Promise<string> {
  const gpu = Gpu.open();
  const peers = createPeers(gpu);
  const rows: string[][] = [];
  for (const peer of peers) {
    const availability = await peer.available();
    if (!availability.ok) {
      rows.push([peer.name, '(not available)', availability.reason, '', '', '']);
      continue;
    }
    console.error(`${peer.name}: ${availability.detail ?? ''}`);
    for (const c of CASES) {
      const op = await c.prepare(peer);
      if (!op) continue;
      try {
        const t = await timeAsync(() => op.run(), { maxTime, minSamples: 3 });
        const self = op.selfTimed ? await op.selfTimed({ maxTime, minSamples: 3 }) : null;
        rows.push([
          peer.name,
          c.label,
          (t.median * 1e3).toFixed(1),
          (c.flops / t.median / 1e9).toFixed(2),
          String(t.samples),
          self ? `${(c.flops / self.median / 1e9).toFixed(1)} (${(self.median * 1e3).toFixed(2)} ms)` : '',
        ]);
        console.error(rows[rows.length - 1]!.join('  '));
      } finally {
        await op.dispose();
      }
    }
  }
  (await gpu.catch(() => null))?.destroy();
  return formatTable(['peer', 'op', 'ms per run()', 'GFLOP/s', 'samples', 'self-timed GFLOP/s'], rows);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(await measurePeers());
  process.exit(0);
}
