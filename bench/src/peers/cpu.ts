import { attentionInputs, infoNCEInputs, INFO_NCE_SCALE, kmeansInputs, matmulInputs } from './inputs.js';
import { concat, type Layout, type OpOptions, type Peer, type PreparedOp } from './peer.js';

/** Rows of B (k-slices) kept hot in cache per pass: 64 rows × 1024 floats = 256 KiB. */
const BLOCK = 64;

/**
 * C (m×n, at cOff) = op(A)·op(B) for one matrix of a batch, float32 storage throughout.
 * A·B and Aᵀ·B: blocked i-k-j (the inner loop streams a row of B into a row of C).
 * A·Bᵀ: rows of A and B are both contiguous along k, so dot products, blocked over rows of B.
 */
export function matmulF32(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  n: number,
  k: number,
  layout: Layout,
  aOff = 0,
  bOff = 0,
  cOff = 0,
): void {
  if (layout === 'ABt') {
    for (let j0 = 0; j0 < n; j0 += BLOCK) {
      const j1 = Math.min(n, j0 + BLOCK);
      for (let i = 0; i < m; i++) {
        const ai = aOff + i * k;
        for (let j = j0; j < j1; j++) {
          const bj = bOff + j * k;
          let s = 0;
          for (let p = 0; p < k; p++) s += a[ai + p] * b[bj + p];
          c[cOff + i * n + j] = s;
        }
      }
    }
    return;
  }
  c.fill(0, cOff, cOff + m * n);
  const at = layout === 'AtB'; // A stored k×m
  for (let p0 = 0; p0 < k; p0 += BLOCK) {
    const p1 = Math.min(k, p0 + BLOCK);
    for (let i = 0; i < m; i++) {
      const ci = cOff + i * n;
      for (let p = p0; p < p1; p++) {
        const aip = at ? a[aOff + p * m + i] : a[aOff + i * k + p];
        const bp = bOff + p * n;
        for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
      }
    }
  }
}

/** Row-wise softmax (log-softmax when `log`) of a rows×cols matrix, in place. */
function rowSoftmax(s: Float32Array, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) mx = Math.max(mx, s[o + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(s[o + j] - mx);
    const lse = mx + Math.log(sum);
    for (let j = 0; j < cols; j++) s[o + j] = log ? s[o + j] - lse : Math.exp(s[o + j] - lse);
  }
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j];
  return out;
}

/** A synchronous op as a PreparedOp: `compute` allocates its outputs and returns them. */
function prepared(compute: () => Float32Array[]): PreparedOp {
  return {
    async run() {
      compute();
    },
    async result() {
      return concat(compute());
    },
    async dispose() {},
  };
}

/** Plain TypeScript float32 loops for every op: the "plain TypeScript CPU version". */
export function cpuPeer(): Peer {
  return {
    name: 'cpu-ts',
    onGpu: false,
    syncNote: 'synchronous JS on the main thread: done when run() returns',
    available: async () => ({ ok: true, detail: 'plain TypeScript, Float32Array storage, one thread' }),

    async matmul(m: number, n: number, k: number, layout: Layout, batch = 1, options: OpOptions = {}) {
      const { a, b } = matmulInputs(m, n, k, layout, batch, options.seed);
      return prepared(() => {
        const c = new Float32Array(batch * m * n);
        for (let t = 0; t < batch; t++) matmulF32(a, b, c, m, n, k, layout, t * m * k, t * k * n, t * m * n);
        return [c];
      });
    },

    async attention(batchHeads: number, L: number, d: number, causal: boolean, options: OpOptions = {}) {
      const { q, k, v } = attentionInputs(batchHeads, L, d, options.seed);
      const scale = 1 / Math.sqrt(d);
      return prepared(() => {
        const out = new Float32Array(batchHeads * L * d);
        const s = new Float32Array(L * L);
        for (let h = 0; h < batchHeads; h++) {
          const off = h * L * d;
          matmulF32(q, k, s, L, L, d, 'ABt', off, off, 0);
          for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) s[i * L + j] = causal && j > i ? -Infinity : s[i * L + j] * scale;
          rowSoftmax(s, L, L, false);
          matmulF32(s, v, out, L, d, L, 'AB', 0, off, off);
        }
        return [out];
      });
    },

    async kmeansAssign(n: number, k: number, d: number, options: OpOptions = {}) {
      const { x, c } = kmeansInputs(n, k, d, options.seed);
      const sq = (v: Float32Array, rows: number) => {
        const out = new Float32Array(rows);
        for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) out[r] += v[r * d + j] * v[r * d + j];
        return out;
      };
      return prepared(() => {
        const xx = sq(x, n);
        const cc = sq(c, k);
        const xc = new Float32Array(n * k);
        matmulF32(x, c, xc, n, k, d, 'ABt');
        const idx = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          let best = Infinity;
          for (let j = 0; j < k; j++) {
            const dist = xx[i] - 2 * xc[i * k + j] + cc[j];
            if (dist < best) [best, idx[i]] = [dist, j];
          }
        }
        return [idx];
      });
    },

    async infoNCE(b: number, m: number, d: number, backward: boolean, options: OpOptions = {}) {
      const { img, txt } = infoNCEInputs(b, m, d, options.seed);
      return prepared(() => {
        const s = new Float32Array(b * m);
        matmulF32(img, txt, s, b, m, d, 'ABt');
        for (let i = 0; i < s.length; i++) s[i] *= INFO_NCE_SCALE;
        const rows = s.slice();
        rowSoftmax(rows, b, m, true);
        const cols = transpose(s, b, m); // m × b: column j of S is row j here
        rowSoftmax(cols, m, b, true);
        let sum = 0;
        for (let i = 0; i < b; i++) sum += rows[i * m + i] + cols[i * b + i];
        const loss = Float32Array.of(-sum / (2 * b));
        if (!backward) return [loss];
        // dLoss/dS = [(softmax_row − E) + (softmax_col − E) on the b positive columns] / 2b; S carries the scale.
        const g = new Float32Array(b * m);
        const w = INFO_NCE_SCALE / (2 * b);
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < m; j++) {
            let v = Math.exp(rows[i * m + j]) - (i === j ? 1 : 0);
            if (j < b) v += Math.exp(cols[j * b + i]) - (i === j ? 1 : 0);
            g[i * m + j] = v * w;
          }
        }
        const dImg = new Float32Array(b * d);
        const dTxt = new Float32Array(m * d);
        matmulF32(g, txt, dImg, b, d, m, 'AB');
        matmulF32(g, img, dTxt, m, d, b, 'AtB');
        return [loss, dImg, dTxt];
      });
    },
  };
}
