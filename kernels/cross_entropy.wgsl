// Cross-entropy per row of logits x [rows, n] against target classes t [rows] (u32):
//   loss_r = lse_r − x[r, t_r], lse_r = log Σ_j exp(x[r, j]); also writes lse for the backward.
// A target ≥ n (the wrapper uses 0xffffffff for an ignored row) gives loss 0 and valid 0 (else 1):
// the mean's count of counted rows is then a sum on the GPU, without reading the targets back.
// One invocation per row.

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> valid: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let r = gid.x + gid.y * groups.x * 64u;
  if (r >= p.rows) {
    return;
  }
  let at = r * p.n;
  var m = x[at];
  for (var j = 1u; j < p.n; j++) {
    m = max(m, x[at + j]);
  }
  var sum = 0.0;
  for (var j = 0u; j < p.n; j++) {
    sum += exp(x[at + j] - m);
  }
  let l = m + log(sum);
  lse[r] = l;
  let t = targets[r];
  loss[r] = select(0.0, l - x[at + min(t, p.n - 1u)], t < p.n);
  valid[r] = select(0.0, 1.0, t < p.n);
}
