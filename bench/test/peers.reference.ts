// Float64 references for the peers' ops, written from the definitions (naive loops, no shared
// code with the peers), so a peer that computes the wrong thing fails against them.
import type { Layout } from '../src/peers/index.js';

export function refMatmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, layout: Layout, batch: number): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const A = (i: number, p: number) => (layout === 'AtB' ? a[t * m * k + p * m + i] : a[t * m * k + i * k + p]);
    const B = (p: number, j: number) => (layout === 'ABt' ? b[t * k * n + j * k + p] : b[t * k * n + p * n + j]);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A(i, p) * B(p, j);
        out[t * m * n + i * n + j] = s;
      }
  }
  return out;
}

export function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, bh: number, L: number, d: number, causal: boolean): Float64Array {
  const out = new Float64Array(bh * L * d);
  for (let h = 0; h < bh; h++)
    for (let i = 0; i < L; i++) {
      const last = causal ? i : L - 1; // keys a query may see
      const w: number[] = [];
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(h * L + i) * d + c] * k[(h * L + j) * d + c];
        w.push(s / Math.sqrt(d));
      }
      const mx = Math.max(...w);
      const e = w.map((x) => Math.exp(x - mx));
      const z = e.reduce((x, y) => x + y, 0);
      for (let c = 0; c < d; c++) {
        let o = 0;
        for (let j = 0; j <= last; j++) o += (e[j] / z) * v[(h * L + j) * d + c];
        out[(h * L + i) * d + c] = o;
      }
    }
  return out;
}

/** Squared distances ‖xᵢ − cⱼ‖² (n × k), summed directly. */
export function refDistances(x: Float32Array, c: Float32Array, n: number, k: number, d: number): Float64Array {
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (x[i * d + t] - c[j * d + t]) ** 2;
      out[i * k + j] = s;
    }
  return out;
}

/** Symmetric CLIP loss: rows of I vs all texts, and the b positive columns vs all images. */
export function refInfoNCELoss(img: ArrayLike<number>, txt: ArrayLike<number>, b: number, m: number, d: number, scale: number): number {
  const s = (i: number, j: number) => {
    let v = 0;
    for (let t = 0; t < d; t++) v += img[i * d + t] * txt[j * d + t];
    return scale * v;
  };
  const lse = (xs: number[]) => {
    const mx = Math.max(...xs);
    return mx + Math.log(xs.reduce((z, x) => z + Math.exp(x - mx), 0));
  };
  let loss = 0;
  for (let i = 0; i < b; i++) {
    const row = Array.from({ length: m }, (_, j) => s(i, j));
    const col = Array.from({ length: b }, (_, r) => s(r, i));
    loss += -(row[i] - lse(row)) - (col[i] - lse(col));
  }
  return loss / (2 * b);
}

/** [loss, dI, dT] with the gradient by central differences (independent of any derivation). */
export function refInfoNCEWithGrad(img: Float32Array, txt: Float32Array, b: number, m: number, d: number, scale: number): Float64Array {
  const I = Float64Array.from(img);
  const T = Float64Array.from(txt);
  const loss = () => refInfoNCELoss(I, T, b, m, d, scale);
  const out = [loss()];
  const h = 1e-6;
  for (const x of [I, T])
    for (let i = 0; i < x.length; i++) {
      const keep = x[i];
      x[i] = keep + h;
      const up = loss();
      x[i] = keep - h;
      const down = loss();
      x[i] = keep;
      out.push((up - down) / (2 * h));
    }
  return Float64Array.from(out);
}

/** Largest |actual − expected| relative to max(1, max |expected|); NaN or a length mismatch is Infinity. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let err = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= err)) err = Number.isNaN(e) ? Infinity : e;
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return err / scale;
}
