// InfoNCE's scalars from the per-row statistics, in one workgroup with a fixed summation order
// (so the result does not depend on scheduling):
//   out[0] = loss = wx · Σ_i (lse_x(i) − zt_x(i)) + wy · Σ_j (lse_y(j) − zt_y(j))
//   out[1] = ∂loss/∂logit_scale = scale · Σ_r dscale_rows(r)
// (dscale_rows: the nd per-row shares written by either infonce_grad pass; nd = 0 gives 0.)

struct Params {
  nx: u32,
  ny: u32,
  nd: u32,
  wx: f32,
  wy: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> lse_x: array<f32>;
@group(0) @binding(2) var<storage, read> zt_x: array<f32>;
@group(0) @binding(3) var<storage, read> lse_y: array<f32>;
@group(0) @binding(4) var<storage, read> zt_y: array<f32>;
@group(0) @binding(5) var<storage, read> dscale_rows: array<f32>;
@group(0) @binding(6) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

var<workgroup> part_loss: array<f32, 256>;
var<workgroup> part_dscale: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var loss = 0.0;
  var dscale = 0.0;
  for (var i = li; i < p.nx; i += 256u) {
    loss += p.wx * (lse_x[i] - zt_x[i]);
  }
  for (var r = li; r < p.nd; r += 256u) {
    dscale += dscale_rows[r];
  }
  if (p.wy != 0.0) {
    for (var j = li; j < p.ny; j += 256u) {
      loss += p.wy * (lse_y[j] - zt_y[j]);
    }
  }
  part_loss[li] = loss;
  part_dscale[li] = dscale;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half /= 2u) {
    if (li < half) {
      part_loss[li] += part_loss[li + half];
      part_dscale[li] += part_dscale[li + half];
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    out[0] = part_loss[0];
    out[1] = part_dscale[0] * exp(logit_scale[0]);
  }
}
