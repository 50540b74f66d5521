// k-means assignment (outputs and tie rule as in kmeans_assign_sg): the fallback for adapters
// without subgroups. Each invocation owns 4 points and walks every centre 4 at a time, keeping a
// 4×4 block of dot products in registers (16 FMAs per 8 loads) and a running minimum per point;
// ‖c‖² comes from kmeans_norms, ‖x‖² is added at the end. Scalar loads: any n, k, d.

const TP = 4u;
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
@group(0) @binding(3) var<storage, read> cnorm: array<f32>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<storage, read_write> dist: array<f32>;

// Keeps, per point, the smaller distance (the earlier centre on equal ones: strict <).
fn update(best: ptr<function, vec4<f32>>, besti: ptr<function, vec4<u32>>, dv: vec4<f32>, j: u32) {
  let better = dv < *best;
  *best = select(*best, dv, better);
  *besti = select(*besti, vec4(j), better);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = p.row0 + gid.x * TP;
  if (row0 >= p.n) {
    return;
  }
  // Rows past n repeat the last point; they are not written.
  let pr = min(vec4(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4(p.n - 1u)) * p.d;
  var best = vec4(BIG);
  var besti = vec4(0u);
  for (var j0 = 0u; j0 < p.k; j0 += 4u) {
    let jc = min(vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u), vec4(p.k - 1u));
    let cr = jc * p.d;
    // acc[t] holds the dot products of the 4 points with centre j0 + t.
    // Initialised explicitly: a bare `var` inside a loop is not re-zeroed each iteration here (Dawn + lavapipe).
    var acc = array<vec4<f32>, 4>();
    for (var q = 0u; q < p.d; q++) {
      let x = vec4(points[pr.x + q], points[pr.y + q], points[pr.z + q], points[pr.w + q]);
      acc[0] = fma(x, vec4(centres[cr.x + q]), acc[0]);
      acc[1] = fma(x, vec4(centres[cr.y + q]), acc[1]);
      acc[2] = fma(x, vec4(centres[cr.z + q]), acc[2]);
      acc[3] = fma(x, vec4(centres[cr.w + q]), acc[3]);
    }
    // Unrolled: one centre at a time, in increasing index (the tie rule).
    let cn = vec4(cnorm[jc.x], cnorm[jc.y], cnorm[jc.z], cnorm[jc.w]);
    let valid = vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u) < vec4(p.k);
    update(&best, &besti, select(vec4(BIG), cn.x - 2.0 * acc[0], valid.x), j0);
    update(&best, &besti, select(vec4(BIG), cn.y - 2.0 * acc[1], valid.y), j0 + 1u);
    update(&best, &besti, select(vec4(BIG), cn.z - 2.0 * acc[2], valid.z), j0 + 2u);
    update(&best, &besti, select(vec4(BIG), cn.w - 2.0 * acc[3], valid.w), j0 + 3u);
  }
  for (var i = 0u; i < TP; i++) {
    let row = row0 + i;
    if (row < p.n) {
      var xx = 0.0;
      for (var q = 0u; q < p.d; q++) {
        let v = points[row * p.d + q];
        xx = fma(v, v, xx);
      }
      index[p.first + row] = besti[i];
      dist[p.first + row] = max(xx + best[i], 0.0);
    }
  }
}
