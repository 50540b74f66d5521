// Row log-softmax: y[r, j] = x[r, j] − lse_r, lse_r = m + log Σ_j exp(x[r, j] − m), m the row max.
// One invocation per row (rows of length n).

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

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
  let lse = m + log(sum);
  for (var j = 0u; j < p.n; j++) {
    y[at + j] = x[at + j] - lse;
  }
}
