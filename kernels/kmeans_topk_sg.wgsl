// k-means candidates: for each of n points (n×d, row-major) its T nearest of k centres (k×d) in
// squared Euclidean distance, sorted nearest first, as indices (u32) and distances (f32, ≥ 0),
// n×T each. Centres whose ‖c‖² is ≥ 1e38 are masked (the balanced assignment's full clusters);
// a point with fewer than T unmasked centres gets index 0xffffffff and distance 3.4e38 in the
// slots left. Ties: the lower centre index first, as in a scan of the centres in index order
// that inserts only strictly nearer ones.
//
// The loop is kmeans_assign_sg's (a subgroup of 8 lanes owns 32 points, each lane 4 centres of
// every 32-centre slab, the points' vec4s handed out by subgroupShuffle); instead of a running
// minimum each lane keeps, per point, the T nearest of the centres it saw, and the 8 lists are
// merged at the end. After the first slabs few centres beat a list's last entry, so the
// insertions cost little next to the distances.
// Needs subgroup size 8, d % 4 == 0 and 32·d/4 texels within a texture row (d ≤ 1024 at 8192).
enable subgroups;

override WG_Y: u32 = 8;

const TM = 32u;
const T = 8u;
const BIG = 3.4028234e38;
const MASKED = 1e38;
const NONE = 0xffffffffu;

struct Params {
  n: u32,
  k: u32,
  d: u32,
  // Row in `index`/`dist` of this chunk's first point.
  first: u32,
  // Points per texture row (a multiple of TM).
  per_row: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// The points as the wrapper stages them: per_row points to a texture row, each d/4 texels wide
// (texel = vec4). On llvmpipe a texel fetch at per-lane coordinates costs less than a storage
// load at per-lane addresses (which is a bounds-checked scalar load per lane and component):
// this kernel ran 1.3× faster with its points here than in a storage buffer.
@group(0) @binding(1) var points: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> centres: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> cnorm: array<f32>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<storage, read_write> dist: array<f32>;

fn row4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
  return vec4(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let d4 = p.d / 4u;
  let row0 = (wg.x * WG_Y + lid.y) * TM;
  // per_row is a multiple of TM, so the subgroup's points lie in one texture row, d4 texels apart.
  // Points past n read whatever the texture holds there (the fetch is clamped to its bounds):
  // every lane must take part in the shuffles, and their results are never written.
  let ty = row0 / p.per_row;
  let tx0 = (row0 % p.per_row) * d4;
  // This lane's T nearest per point (‖c‖² − 2x·c, ascending), and each list's last distance.
  var topd: array<f32, TM * T>;
  var topi: array<u32, TM * T>;
  var worst: array<f32, TM>;
  for (var e = 0u; e < TM * T; e++) {
    topd[e] = BIG;
    topi[e] = NONE;
  }
  for (var r = 0u; r < TM; r++) {
    worst[r] = BIG;
  }

  for (var c0 = 0u; c0 < p.k; c0 += 32u) {
    let j0 = c0 + 4u * lane;
    // Clamped so every lane takes part: lanes past k compute on the last centre and are masked below.
    let jc = min(vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u), vec4(p.k - 1u));
    let crow0 = jc.x * d4;
    let crow1 = jc.y * d4;
    let crow2 = jc.z * d4;
    let crow3 = jc.w * d4;
    // Initialised explicitly: a bare `var` inside a loop is not re-zeroed each iteration here (Dawn + lavapipe).
    var acc = array<vec4<f32>, TM>();
    for (var q0 = 0u; q0 < d4; q0 += 8u) {
      let ql = q0 + lane;
      let qc = min(ql, d4 - 1u);
      var av: array<vec4<f32>, TM>;
      for (var r = 0u; r < TM; r++) {
        av[r] = select(vec4(0.0), textureLoad(points, vec2(tx0 + r * d4 + qc, ty), 0), ql < d4);
      }
      for (var s = 0u; s < 8u; s++) {
        // Steps past d re-read the centres' last vec4 and multiply it by the zeros loaded above.
        let q = min(q0 + s, d4 - 1u);
        let b0 = centres[crow0 + q];
        let b1 = centres[crow1 + q];
        let b2 = centres[crow2 + q];
        let b3 = centres[crow3 + q];
        for (var r = 0u; r < TM; r++) { acc[r] += row4(subgroupShuffle(av[r], s), b0, b1, b2, b3); }
      }
    }
    let cn = vec4(cnorm[jc.x], cnorm[jc.y], cnorm[jc.z], cnorm[jc.w]);
    // Centres past k and masked centres never enter a list.
    let valid = (vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u) < vec4(p.k)) & (cn < vec4(MASKED));
    for (var r = 0u; r < TM; r++) {
      let dv = select(vec4(BIG), cn - 2.0 * acc[r], valid);
      // No candidate past the nearest of the lanes' last entries can reach the merged T (that
      // lane alone holds T nearer), so most lanes skip the insertion once the lists fill.
      // Equal to it may still win on index; inserting one that then loses costs nothing.
      let bound = subgroupMin(worst[r]);
      for (var t = 0u; t < 4u; t++) {
        // Branch-free sorted insertion at uniform positions (each lane's private list is one
        // SIMD row of memory: a uniform index is one vector access, a per-lane one a gather).
        // Lanes with nothing to insert carry BIG through it, which changes nothing.
        let v = select(BIG, dv[t], dv[t] < worst[r] && dv[t] <= bound);
        if (subgroupAny(v < BIG)) {
          let j = j0 + t;
          let e = r * T;
          for (var q = T - 1u; q > 0u; q--) {
            let prev = topd[e + q - 1u];
            let cur = topd[e + q];
            let shift = prev > v;
            let here = !shift && cur > v;
            topd[e + q] = select(select(cur, v, here), prev, shift);
            topi[e + q] = select(select(topi[e + q], j, here), topi[e + q - 1u], shift);
          }
          let first = topd[e] > v;
          topd[e] = select(topd[e], v, first);
          topi[e] = select(topi[e], j, first);
          worst[r] = topd[e + T - 1u];
        }
      }
    }
  }

  // Merge the 8 lanes' lists per point: T times, the nearest head (lowest index on ties) wins
  // and its lane moves on. Lane l keeps the result for points l, l + 8, … of the subgroup's TM.
  var outd: array<f32, TM / 8u * T>;
  var outi: array<u32, TM / 8u * T>;
  for (var r = 0u; r < TM; r++) {
    var h = 0u;
    for (var u = 0u; u < T; u++) {
      let hv = select(BIG, topd[r * T + min(h, T - 1u)], h < T);
      let hi = select(NONE, topi[r * T + min(h, T - 1u)], h < T);
      let m = subgroupMin(hv);
      let i = subgroupMin(select(NONE, hi, hv == m));
      if (hi == i && hi != NONE) {
        h++;
      }
      if (r % 8u == lane) {
        outd[r / 8u * T + u] = m;
        outi[r / 8u * T + u] = i;
      }
    }
  }
  for (var g = 0u; g < TM / 8u; g++) {
    let row = row0 + lane + 8u * g;
    if (row < p.n) {
      var xx = 0.0;
      for (var q = 0u; q < d4; q++) {
        let v = textureLoad(points, vec2(tx0 + (lane + 8u * g) * d4 + q, ty), 0);
        xx += dot(v, v);
      }
      for (var u = 0u; u < T; u++) {
        let i = outi[g * T + u];
        index[(p.first + row) * T + u] = i;
        dist[(p.first + row) * T + u] = select(BIG, max(xx + outd[g * T + u], 0.0), i != NONE);
      }
    }
  }
}
