// Squared L2 norm of each row of a rows×d matrix (row-major): the ‖c‖² term the k-means
// assignment kernels add to −2x·c. One invocation per row, summed in increasing column order
// (the same bits every run). Tiny next to the assignment: k·d against n·k·d.

struct Params {
  rows: u32,
  d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= p.rows) {
    return;
  }
  var s = 0.0;
  for (var j = 0u; j < p.d; j++) {
    let v = x[r * p.d + j];
    s = fma(v, v, s);
  }
  norms[r] = s;
}
