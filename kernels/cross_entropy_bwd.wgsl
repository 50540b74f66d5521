// Backward of cross_entropy.wgsl: dx[r, j] = (exp(x[r, j] − lse_r) − [j = t_r])·dloss[r];
// rows whose target is ignored (≥ n) get 0. One invocation per element.

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dloss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.rows * p.n) {
    return;
  }
  let r = i / p.n;
  let j = i % p.n;
  let t = targets[r];
  let g = exp(x[i] - lse[r]) - select(0.0, 1.0, j == t);
  dx[i] = select(0.0, g * dloss[r], t < p.n);
}
