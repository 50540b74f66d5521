import { Gpu } from '@mode/gpu';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  attentionInputs,
  cpuPeer,
  createPeers,
  infoNCEInputs,
  INFO_NCE_SCALE,
  kmeansInputs,
  matmulInputs,
  type Availability,
  type Layout,
  type Peer,
  type PreparedOp,
} from '../src/peers/index.js';
import { blasChildEnv, blasCoreFor, numpyPeer } from '../src/peers/numpy.js';
import { refAttention, refDistances, refInfoNCEWithGrad, refMatmul, relError } from './peers.reference.js';

// Small odd sizes: no peer can lean on multiples of 4 or 8, and every tail path runs.
const SEED = 917;
const TOL = 1e-4; // float32 against float64 at these sizes
console.log(`peers.test: inputs seeded with ${SEED}`);

const gpu = Gpu.open();
const peers = createPeers(gpu);

afterAll(async () => {
  (await gpu.catch(() => null))?.destroy();
});

/** Prepares an op, runs it once (the timed path), then reads its result. */
async function runAndRead(prepare: () => Promise<PreparedOp>): Promise<Float32Array> {
  const op = await prepare();
  try {
    await op.run();
    return await op.result();
  } finally {
    await op.dispose();
  }
}

describe.each(peers.map((p) => [p.name, p] as const))('%s', (_name, peer: Peer) => {
  let availability: Availability;
  beforeAll(async () => {
    availability = await peer.available();
    console.log(`${peer.name}: ${availability.ok ? `available (${availability.detail ?? ''})` : `NOT AVAILABLE: ${availability.reason}`}`);
  });
  const skipUnlessAvailable = (ctx: TestContext) => {
    if (!availability.ok) ctx.skip(availability.reason);
  };

  it('reports its availability, with a reason when it cannot run', () => {
    expect(availability.ok || availability.reason.length > 10).toBe(true);
  });

  for (const layout of ['AB', 'ABt', 'AtB'] as Layout[]) {
    for (const batch of [1, 3]) {
      it(`matmul ${layout} 33×17×7 batch ${batch}`, async (ctx) => {
        skipUnlessAvailable(ctx);
        const [m, n, k] = [33, 17, 7];
        const { a, b } = matmulInputs(m, n, k, layout, batch, SEED);
        const got = await runAndRead(() => peer.matmul!(m, n, k, layout, batch, { seed: SEED }));
        expect(relError(got, refMatmul(a, b, m, n, k, layout, batch))).toBeLessThan(TOL);
      });
    }
  }

  for (const causal of [false, true]) {
    it(`attention 3 heads, L 13, d 7, ${causal ? 'causal' : 'full'}`, async (ctx) => {
      skipUnlessAvailable(ctx);
      const [bh, L, d] = [3, 13, 7];
      const { q, k, v } = attentionInputs(bh, L, d, SEED);
      const got = await runAndRead(() => peer.attention!(bh, L, d, causal, { seed: SEED }));
      expect(relError(got, refAttention(q, k, v, bh, L, d, causal))).toBeLessThan(TOL);
    });
  }

  it('kmeansAssign n 33, k 5, d 7: each point goes to a nearest centroid', async (ctx) => {
    skipUnlessAvailable(ctx);
    const [n, k, d] = [33, 5, 7];
    const { x, c } = kmeansInputs(n, k, d, SEED);
    const got = await runAndRead(() => peer.kmeansAssign!(n, k, d, { seed: SEED }));
    const dist = refDistances(x, c, n, k, d);
    expect(got.length).toBe(n);
    for (let i = 0; i < n; i++) {
      const row = Array.from(dist.subarray(i * k, (i + 1) * k));
      expect(Number.isInteger(got[i]) && got[i] >= 0 && got[i] < k, `index ${got[i]} of point ${i}`).toBe(true);
      // A float32 near-tie may pick either centroid: the chosen one must be nearest to within rounding.
      expect(row[got[i]] - Math.min(...row), `point ${i}`).toBeLessThan(1e-4);
    }
  });

  for (const backward of [false, true]) {
    it(`infoNCE b 9, m 13, d 7 ${backward ? 'forward + backward' : 'forward'}`, async (ctx) => {
      skipUnlessAvailable(ctx);
      const [b, m, d] = [9, 13, 7];
      const { img, txt } = infoNCEInputs(b, m, d, SEED);
      const got = await runAndRead(() => peer.infoNCE!(b, m, d, backward, { seed: SEED }));
      const ref = refInfoNCEWithGrad(img, txt, b, m, d, INFO_NCE_SCALE);
      expect(relError(got, backward ? ref : ref.subarray(0, 1))).toBeLessThan(TOL);
    });
  }

  // Only the out-of-process peer times itself; the others are timed from JS around run().
  if (peer.name === 'numpy-openblas') {
    it('selfTimed reports a positive median over the samples asked for', async (ctx) => {
      skipUnlessAvailable(ctx);
      const op = await peer.matmul!(33, 17, 7, 'AB', 1, { seed: SEED });
      try {
        const t = await op.selfTimed!({ maxTime: 0.02, minSamples: 3 });
        expect(t.median).toBeGreaterThan(0);
        expect(t.samples).toBeGreaterThanOrEqual(3);
      } finally {
        await op.dispose();
      }
    });
  }
});

describe('the check itself (negative controls)', () => {
  const [m, n, k] = [33, 17, 7];
  const { a, b } = matmulInputs(m, n, k, 'ABt', 1, SEED);
  const ref = refMatmul(a, b, m, n, k, 'ABt', 1);

  it('rejects a peer that reads the layout wrong', async () => {
    const got = await runAndRead(() => cpuPeer().matmul!(m, n, k, 'ABt', 1, { seed: SEED }));
    expect(relError(got, ref)).toBeLessThan(TOL);
    // The same numbers read as A·B (B taken as k×n instead of n×k) must fail.
    expect(relError(got, refMatmul(a, b, m, n, k, 'AB', 1))).toBeGreaterThan(TOL);
  });

  it('rejects one wrong element, a NaN and a short result', async () => {
    const got = await runAndRead(() => cpuPeer().matmul!(m, n, k, 'ABt', 1, { seed: SEED }));
    const off = got.slice();
    off[100] += 1e-2;
    expect(relError(off, ref)).toBeGreaterThan(TOL);
    off[100] = NaN;
    expect(relError(off, ref)).toBe(Infinity);
    expect(relError(got.subarray(1), ref)).toBe(Infinity);
  });

  it('rejects an InfoNCE loss and gradient computed on other inputs', async () => {
    const [bb, mm, d] = [9, 13, 7];
    const { img, txt } = infoNCEInputs(bb, mm, d, SEED);
    const ref = refInfoNCEWithGrad(img, txt, bb, mm, d, INFO_NCE_SCALE);
    const right = await runAndRead(() => cpuPeer().infoNCE!(bb, mm, d, true, { seed: SEED }));
    const other = await runAndRead(() => cpuPeer().infoNCE!(bb, mm, d, true, { seed: SEED + 1 }));
    expect(relError(right, ref)).toBeLessThan(TOL);
    expect(relError(other, ref)).toBeGreaterThan(TOL);
  });
});

describe('BLAS peers run on the core the CPU supports', () => {
  it('picks OpenBLAS cores from CPU flags (AVX-512: SkylakeX, AVX2 + FMA: Haswell, else detection)', () => {
    expect(blasCoreFor(new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl']))).toBe('SkylakeX');
    expect(blasCoreFor(new Set(['avx2', 'fma', 'avx512f']))).toBe('Haswell');
    expect(blasCoreFor(new Set(['sse4_2']))).toBeNull();
  });

  it('the numpy child runs on that core, not a pinned or fallback one', async (ctx) => {
    const peer = createPeers(await gpu).find((p) => p.name === 'numpy-openblas') as ReturnType<typeof numpyPeer> | undefined;
    const info = await peer?.blas();
    if (!info) return ctx.skip();
    const want = blasChildEnv().OPENBLAS_CORETYPE;
    if (want) expect(info.core?.toLowerCase()).toBe(want.toLowerCase());
  });
});
