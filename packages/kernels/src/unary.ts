import type { Gpu } from '@mode/gpu';
import { grid } from './grid.js';

/**
 * Ops of kernels/unary.wgsl. Forward ops read x; the `*_bwd` ops read dy and the tensor the
 * forward saved (the output y for exp, sqrt, relu, tanh, sigmoid; the input x for log, gelu,
 * gelu_erf, quick_gelu, clamp). `gelu` is the tanh approximation, `gelu_erf` the exact x·Φ(x),
 * `quick_gelu` OpenAI's x·σ(1.702x).
 */
export const UNARY_OPS = {
  affine: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  relu: 4,
  gelu: 5,
  tanh: 6,
  sigmoid: 7,
  clamp: 8,
  fill: 9,
  gelu_erf: 10,
  quick_gelu: 11,
  exp_bwd: 16,
  log_bwd: 17,
  sqrt_bwd: 18,
  relu_bwd: 19,
  gelu_bwd: 20,
  tanh_bwd: 21,
  sigmoid_bwd: 22,
  clamp_bwd: 24,
  gelu_erf_bwd: 25,
  quick_gelu_bwd: 26,
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;

/** alpha, beta: affine's scale and shift, clamp's bounds, fill's value (beta). */
export interface UnaryParams {
  alpha?: number;
  beta?: number;
}

/** Records out[i] = op(x[i]) (or op's backward from dy[i] and x[i]) for i < n. */
export async function unary(gpu: Gpu, op: UnaryOp, x: GPUBuffer, out: GPUBuffer, n: number, params: UnaryParams = {}, dy: GPUBuffer = x): Promise<void> {
  const kernel = await gpu.kernel('unary', { OP: UNARY_OPS[op] });
  gpu.dispatch(kernel, {
    bindings: { x, dy, out },
    uniforms: { n, alpha: params.alpha ?? 1, beta: params.beta ?? 0 },
    workgroups: grid(n, 256),
    work: { flops: n, bytes: 8 * n },
    label: `unary ${op} n=${n}`,
  });
}

const K0 = Math.sqrt(2 / Math.PI);
const K1 = 0.044715;
export const geluReference = (v: number) => 0.5 * v * (1 + Math.tanh(K0 * (v + K1 * v ** 3)));
const geluGrad = (v: number) => {
  const t = Math.tanh(K0 * (v + K1 * v ** 3));
  return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K0 * (1 + 3 * K1 * v * v);
};

/**
 * erf in float64 to ~1e-15: its Maclaurin series below |x| = 3 (terms peak near e^(x²), so at most
 * about 4 digits cancel), and above, erfc's continued fraction (Abramowitz & Stegun 7.1.14).
 */
export function erfReference(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let [term, sum] = [z, z];
    for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = z; // erfc(z) = e^(−z²)/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated from the tail
    for (let k = 60; k >= 1; k--) f = z + k / 2 / f;
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}
/** Exact GELU, x·Φ(x) = ½·x·(1 + erf(x/√2)). */
export const geluErfReference = (v: number) => 0.5 * v * (1 + erfReference(v / Math.SQRT2));
export const geluErfGradReference = (v: number) => 0.5 * (1 + erfReference(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);

/** OpenAI's QuickGELU, x·σ(1.702x), and its derivative. */
export const quickGeluReference = (v: number) => v / (1 + Math.exp(-1.702 * v));
export const quickGeluGradReference = (v: number) => {
  const s = 1 / (1 + Math.exp(-1.702 * v));
  return s + 1.702 * v * s * (1 - s);
};

/** CPU float64 reference. */
export function unaryReference(op: UnaryOp, x: ArrayLike<number>, params: UnaryParams = {}, dy: ArrayLike<number> = x): Float64Array {
  const a = params.alpha ?? 1;
  const b = params.beta ?? 0;
  const f: Record<UnaryOp, (v: number, g: number) => number> = {
    affine: (v) => a * v + b,
    exp: Math.exp,
    log: Math.log,
    sqrt: Math.sqrt,
    relu: (v) => Math.max(v, 0),
    gelu: geluReference,
    tanh: Math.tanh,
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    clamp: (v) => Math.min(Math.max(v, a), b),
    fill: () => b,
    gelu_erf: geluErfReference,
    quick_gelu: quickGeluReference,
    exp_bwd: (v, g) => g * v,
    log_bwd: (v, g) => g / v,
    sqrt_bwd: (v, g) => (g * 0.5) / v,
    relu_bwd: (v, g) => (v > 0 ? g : 0),
    gelu_bwd: (v, g) => g * geluGrad(v),
    tanh_bwd: (v, g) => g * (1 - v * v),
    sigmoid_bwd: (v, g) => g * v * (1 - v),
    clamp_bwd: (v, g) => (v >= a && v <= b ? g : 0),
    gelu_erf_bwd: (v, g) => g * geluErfGradReference(v),
    quick_gelu_bwd: (v, g) => g * quickGeluGradReference(v),
  };
  return Float64Array.from({ length: x.length }, (_, i) => f[op](x[i]!, dy[i]!));
}

// fill reads neither x nor dy, but both must be bound, and not to the buffer it writes.
const dummies = new WeakMap<Gpu, GPUBuffer>();

/** Records out[i] = value for i < n. */
export async function fill(gpu: Gpu, out: GPUBuffer, n: number, value: number): Promise<void> {
  let dummy = dummies.get(gpu);
  if (!dummy) dummies.set(gpu, (dummy = gpu.buffer(16, 'fill dummy input')));
  await unary(gpu, 'fill', dummy, out, n, { beta: value }, dummy);
}
