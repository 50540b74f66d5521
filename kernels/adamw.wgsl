// One AdamW step in place over the n parameters at [at, at + n) of the buffers (decoupled weight decay, Loshchilov & Hutter), on
// the gradient times gscale (global-norm clipping's factor, applied here rather than by a pass
// over every gradient first):
//   g = gscale·grad;  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p·(1 − lr·wd) − lr·(m / bc1) / (√(v / bc2) + eps),  bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ
// `at` lets one dispatch update a run of parameters packed back to back (AdamW's flat moments).

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  wd: f32,
  bc1: f32,
  bc2: f32,
  gscale: f32,
  at: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let j = gid.x + gid.y * groups.x * 256u;
  if (j >= p.n) {
    return;
  }
  let i = p.at + j;
  let g = p.gscale * grad[i];
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  param[i] = param[i] * (1.0 - p.lr * p.wd) - p.lr * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
}
