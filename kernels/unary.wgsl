// Elementwise unary ops and their backward, over n contiguous elements, chosen by OP.
// Forward (reads x):  0 alpha·x + beta, 1 exp, 2 log, 3 sqrt, 4 relu, 5 gelu (tanh form, as the
//   matmul epilogue), 6 tanh, 7 sigmoid, 8 clamp to [alpha, beta], 9 fill with beta,
//   10 exact gelu x·Φ(x) (erf form, PyTorch's default and OpenCLIP's), 11 quick gelu x·σ(1.702x)
//   (OpenAI's trained CLIPs, OpenCLIP's QuickGELU).
// Backward (reads dy and x = the tensor the forward saved): 16 exp: dy·y, 17 log: dy / x,
//   18 sqrt: dy / (2y), 19 relu: dy where y > 0, 20 gelu: dy·gelu'(x), 21 tanh: dy·(1 − y²),
//   22 sigmoid: dy·y·(1 − y), 24 clamp: dy where alpha ≤ x ≤ beta,
//   25 exact gelu: dy·(Φ(x) + x·φ(x)), 26 quick gelu: dy·(s + 1.702·x·s·(1 − s)), s = σ(1.702x).
// Forward ops never read dy (bind x there too).

override OP: u32 = 0;

struct Params {
  n: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const K0: f32 = 0.7978845608028654; // √(2/π)
const K1: f32 = 0.044715;

// tanh without overflow: e^(−2|x|) ≤ 1 for every x.
fn tanh_(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  return sign(v) * (1.0 - e) / (1.0 + e);
}

fn gelu(v: f32) -> f32 {
  return 0.5 * v * (1.0 + tanh_(K0 * (v + K1 * v * v * v)));
}

fn gelu_grad(v: f32) -> f32 {
  let t = tanh_(K0 * (v + K1 * v * v * v));
  return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * K0 * (1.0 + 3.0 * K1 * v * v);
}

// Φ(v), the standard normal CDF, = ½·erfc(−v/√2). WGSL has no erf: erfc(z) for z ≥ 0 by
// Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), taken at |z| so that the lower tail is
// computed directly rather than as 1 − (almost 1).
fn phi(v: f32) -> f32 {
  let z = abs(v) * 0.7071067811865476;
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let tail = 0.5 * poly * exp(-z * z);
  return select(1.0 - tail, tail, v < 0.0);
}

// d/dx [x·Φ(x)] = Φ(x) + x·φ(x), φ(x) = e^(−x²/2) / √(2π).
fn gelu_erf_grad(v: f32) -> f32 {
  return phi(v) + v * 0.3989422804014327 * exp(-0.5 * v * v);
}

const QUICK: f32 = 1.702;

fn quick_gelu_grad(v: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-QUICK * v));
  return s + QUICK * v * s * (1.0 - s);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.n) {
    return;
  }
  let v = x[i];
  var r = 0.0;
  switch OP {
    case 0u: { r = p.alpha * v + p.beta; }
    case 1u: { r = exp(v); }
    case 2u: { r = log(v); }
    case 3u: { r = sqrt(v); }
    case 4u: { r = max(v, 0.0); }
    case 5u: { r = gelu(v); }
    case 6u: { r = tanh_(v); }
    case 7u: { r = 1.0 / (1.0 + exp(-v)); }
    case 8u: { r = clamp(v, p.alpha, p.beta); }
    case 9u: { r = p.beta; }
    case 10u: { r = v * phi(v); }
    case 11u: { r = v / (1.0 + exp(-QUICK * v)); }
    case 16u: { r = dy[i] * v; }
    case 17u: { r = dy[i] / v; }
    case 18u: { r = dy[i] * 0.5 / v; }
    case 19u: { r = select(0.0, dy[i], v > 0.0); }
    case 20u: { r = dy[i] * gelu_grad(v); }
    case 21u: { r = dy[i] * (1.0 - v * v); }
    case 22u: { r = dy[i] * v * (1.0 - v); }
    case 25u: { r = dy[i] * gelu_erf_grad(v); }
    case 26u: { r = dy[i] * quick_gelu_grad(v); }
    default: { r = select(0.0, dy[i], v >= p.alpha && v <= p.beta); }
  }
  out[i] = r;
}
