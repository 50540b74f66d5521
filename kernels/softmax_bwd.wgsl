// Backward of the row softmax (LOG = false) or log-softmax (LOG = true), from the output y:
// softmax:     dx = y·(dy − Σ_j dy·y)
// log-softmax: dx = dy − exp(y)·Σ_j dy
// One invocation per row (rows of length n).

override LOG: bool = false;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let r = gid.x + gid.y * groups.x * 64u;
  if (r >= p.rows) {
    return;
  }
  let at = r * p.n;
  var s = 0.0;
  for (var j = 0u; j < p.n; j++) {
    s += select(dy[at + j] * y[at + j], dy[at + j], LOG);
  }
  for (var j = 0u; j < p.n; j++) {
    let v = y[at + j];
    dx[at + j] = select(v * (dy[at + j] - s), dy[at + j] - exp(v) * s, LOG);
  }
}
