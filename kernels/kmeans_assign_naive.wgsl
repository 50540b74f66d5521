// k-means assignment, the plain baseline every faster variant is measured against: one
// invocation per point, looping over every centre and dimension with Σ (x − c)² directly
// (two loads per FMA, no blocking). Same outputs as kmeans_assign_sg: the nearest centre's
// index (lowest index on ties: strict < in increasing order) and its squared distance.
// Any n, k, d.

const BIG = 3.4028234e38;

struct Params {
  n: u32,
  k: u32,
  d: u32,
  first: u32,
  row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> centres: array<f32>;
@group(0) @binding(3) var<storage, read_write> index: array<u32>;
@group(0) @binding(4) var<storage, read_write> dist: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = p.row0 + gid.x;
  if (row >= p.n) {
    return;
  }
  var best = BIG;
  var besti = 0u;
  for (var j = 0u; j < p.k; j++) {
    var s = 0.0;
    for (var q = 0u; q < p.d; q++) {
      let t = points[row * p.d + q] - centres[j * p.d + q];
      s = fma(t, t, s);
    }
    if (s < best) {
      best = s;
      besti = j;
    }
  }
  index[p.first + row] = besti;
  dist[p.first + row] = best;
}
