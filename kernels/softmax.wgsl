// Row softmax: y[r, :] = exp(x[r, :] − max) / Σ exp(x[r, :] − max), for rows of length n,
// optionally with the causal mask of attention (row r of each square block of `n` rows keeps
// columns ≤ r mod n). One invocation per row: rows are long and many in every use here
// (attention scores, classifier logits).

override CAUSAL: bool = false;

struct Params {
  rows: u32,
  n: u32,
  scale: f32,
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
  var end = p.n;
  if (CAUSAL) {
    end = r % p.n + 1u;
  }
  var m = -3.0e38;
  for (var j = 0u; j < end; j++) {
    m = max(m, x[at + j] * p.scale);
  }
  var sum = 0.0;
  for (var j = 0u; j < end; j++) {
    sum += exp(x[at + j] * p.scale - m);
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j < p.n; j++) {
    y[at + j] = select(0.0, exp(x[at + j] * p.scale - m) * inv, j < end);
  }
}
