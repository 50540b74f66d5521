// The log-sum-exp of each column of one chunk of Z from the per-block statistics that
// infonce_stats_sg wrote (block b of 16 rows: part_m = its max of column j, part_l = Σ exp(z − max)):
//   lse_y(c0 + j) = M + log Σ_b part_l[b][j]·exp(part_m[b][j] − M),   M = max_b part_m[b][j],
// for j < cn, blocks in order (deterministic). One invocation per column; any adapter.

struct Params {
  nblk: u32,
  c0: u32,
  cn: u32,
  stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part_m: array<f32>;
@group(0) @binding(2) var<storage, read> part_l: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse_y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= p.cn) {
    return;
  }
  var mx = -3.0e38;
  for (var b = 0u; b < p.nblk; b++) {
    mx = max(mx, part_m[b * p.stride + j]);
  }
  var sum = 0.0;
  for (var b = 0u; b < p.nblk; b++) {
    sum += part_l[b * p.stride + j] * exp(part_m[b * p.stride + j] - mx);
  }
  lse_y[p.c0 + j] = mx + log(sum);
}
