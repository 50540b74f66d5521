// InfoNCE gradient for the rows of X, portable variant. With z_ij = scale·x_i·y_j, the loss
//   L = wx · Σ_i [lse_x(i) − z_i,tx(i)]  +  wy · Σ_j [lse_y(j) − z_ty(j),j]
// (row cross-entropies of Z over Y, weighted wx; column cross-entropies over X, weighted wy; the
// means' 1/n folded into the weights) has
//   g_ij = ∂L/∂z_ij = wx·(exp(z_ij − lse_x(i)) − [j = tx(i)]) + wy·(exp(z_ij − lse_y(j)) − [i = ty(j)])
//   dX_i = scale · Σ_j g_ij y_j,     and row i's share of ∂L/∂scale: Σ_j g_ij z_ij / scale.
// The symmetric CLIP loss runs this twice (X = I, Y = T, then X = T, Y = I, statistics swapped).
// One invocation per row of X; any d. Z is recomputed, never stored. dX accumulates in place
// (a private array of d floats made lavapipe's shader compile take seconds).

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
  wx: f32,
  wy: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(9) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> lse_x: array<f32>;
@group(0) @binding(4) var<storage, read> targets_x: array<u32>;
@group(0) @binding(5) var<storage, read> lse_y: array<f32>;
@group(0) @binding(6) var<storage, read> targets_y: array<u32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dscale_rows: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let scale = exp(logit_scale[0]);
  if (i >= p.nx) {
    return;
  }
  for (var c = 0u; c < p.d; c++) {
    dx[i * p.d + c] = 0.0;
  }
  var dscale = 0.0;
  let row_lse = lse_x[i];
  let t = targets_x[i];
  for (var j = 0u; j < p.ny; j++) {
    var s = 0.0;
    for (var c = 0u; c < p.d; c++) {
      s = fma(x[i * p.d + c], y[j * p.d + c], s);
    }
    let z = s * scale;
    var g = 0.0;
    if (p.wx != 0.0) {
      g += p.wx * (exp(z - row_lse) - select(0.0, 1.0, j == t));
    }
    if (p.wy != 0.0) {
      g += p.wy * (exp(z - lse_y[j]) - select(0.0, 1.0, targets_y[j] == i));
    }
    dscale = fma(g, s, dscale);
    for (var c = 0u; c < p.d; c++) {
      dx[i * p.d + c] = fma(g * scale, y[j * p.d + c], dx[i * p.d + c]);
    }
  }
  dscale_rows[i] = dscale;
}
