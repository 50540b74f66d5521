// InfoNCE statistics of the rows of Z = scale·X·Yᵀ, portable variant: for each row i of X
// (nx × d) against every row of Y (ny × d), the log-sum-exp lse_i = log Σ_j exp(z_ij) and the
// target logit z_i,t(i) (t from `targets`). Online log-sum-exp: Z is never stored.
// One invocation per row of X. Row-major, any sizes.

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(6) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> target_logit: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let scale = exp(logit_scale[0]);
  if (i >= p.nx) {
    return;
  }
  let t = targets[i];
  var m = -3.0e38;
  var l = 0.0;
  var zt = 0.0;
  for (var j = 0u; j < p.ny; j++) {
    var s = 0.0;
    for (var c = 0u; c < p.d; c++) {
      s = fma(x[i * p.d + c], y[j * p.d + c], s);
    }
    let z = s * scale;
    if (j == t) {
      zt = z;
    }
    let m_new = max(m, z);
    l = l * exp(m - m_new) + exp(z - m_new);
    m = m_new;
  }
  lse[i] = m + log(l);
  target_logit[i] = zt;
}
