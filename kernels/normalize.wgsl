// Normalises each line along the middle axis of an [outer, len, inner] view, one invocation per
// line (outer·inner lines): layer norm is [rows, C, 1], batch norm [1, N, C].
// MODE 0 standardise: y = (x − mean)·rstd, rstd = 1/√(var + eps) (biased variance);
//   writes mean and rstd per line.
// MODE 1 L2: y = x·r, r = 1/max(‖x‖, eps); writes r to rstd, and to mean 1 where the norm was
//   clamped to eps (the backward then has no projection term), else 0.
// AFFINE (with MODE 0 and inner = 1: layer norm with its weight and bias fused), per element j
//   along the line: y = (x − mean)·rstd·w[j] + b[j]; w and b hold len floats. Without AFFINE
//   they are bound (to any buffer) but never read.

override MODE: u32 = 0;
override AFFINE: bool = false;

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read> b: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let line = gid.x + gid.y * groups.x * 64u;
  if (line >= p.outer * p.inner) {
    return;
  }
  let base = (line / p.inner) * p.len * p.inner + line % p.inner;
  var m = 0.0;
  if (MODE == 0u) {
    for (var j = 0u; j < p.len; j++) {
      m += x[base + j * p.inner];
    }
    m /= f32(p.len);
  }
  var ss = 0.0;
  for (var j = 0u; j < p.len; j++) {
    let d = x[base + j * p.inner] - m;
    ss += d * d;
  }
  var r = 0.0;
  var flag = 0.0;
  if (MODE == 0u) {
    r = inverseSqrt(ss / f32(p.len) + p.eps);
    flag = m;
  } else {
    let norm = sqrt(ss);
    flag = select(0.0, 1.0, norm <= p.eps);
    r = 1.0 / max(norm, p.eps);
  }
  for (var j = 0u; j < p.len; j++) {
    let at = base + j * p.inner;
    var v = (x[at] - m) * r;
    if (AFFINE) {
      v = v * w[j] + b[j];
    }
    y[at] = v;
  }
  mean[line] = flag;
  rstd[line] = r;
}
