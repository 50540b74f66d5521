// k-means assignment: for each of n points (n×d, row-major) the nearest of k centres (k×d) in
// squared Euclidean distance, ‖x‖² − 2x·c + ‖c‖², as an index (u32) and a distance (f32, ≥ 0).
// The n×k distances are never stored: each invocation keeps a running minimum per point.
// ‖c‖² comes precomputed (kmeans_norms); ‖x‖² is added once per point at the end (it does not
// change the argmin). Ties: the lowest centre index wins (strict < in increasing index order,
// then the lowest index among the lanes holding the minimum).
//
// The variant for CPU-like adapters (lavapipe), built like matmul_sg_bt since points·centresᵀ
// is an A·Bᵀ product: a subgroup of 8 lanes owns 32 points; each lane owns 4 centres of each
// 32-centre slab and streams their rows along contiguous d as vec4, while the points' vec4s are
// loaded once per 8 d-steps and handed out by subgroupShuffle. 512 FMAs per 4 centre loads.
// 32 points a subgroup measured ~25% faster than matmul_sg_bt's 16 rows here (the centre loads
// are gathers from 32 rows); 48 or more spill and run 4× slower.
// Needs subgroup size 8, d % 4 == 0 and 32·d/4 texels within a texture row (d ≤ 1024 at 8192).
enable subgroups;

override WG_Y: u32 = 8;

const TM = 32u;
// Larger than any distance; WGSL constants cannot be infinite.
const BIG = 3.4028234e38;

struct Params {
  n: u32,
  k: u32,
  d: u32,
  // Index in `index`/`dist` of this chunk's first point.
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
  var best: array<f32, TM>;
  var besti: array<u32, TM>;
  for (var r = 0u; r < TM; r++) {
    best[r] = BIG;
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
    // Centres past k never win.
    let valid = vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u) < vec4(p.k);
    let cn = vec4(cnorm[jc.x], cnorm[jc.y], cnorm[jc.z], cnorm[jc.w]);
    for (var r = 0u; r < TM; r++) {
      let dv = select(vec4(BIG), cn - 2.0 * acc[r], valid);
      for (var t = 0u; t < 4u; t++) {
        let better = dv[t] < best[r];
        best[r] = select(best[r], dv[t], better);
        besti[r] = select(besti[r], j0 + t, better);
      }
    }
  }

  // Lane l writes points l, l + 8, … of the subgroup's TM.
  var mine: array<f32, TM / 8u>;
  var minei: array<u32, TM / 8u>;
  for (var r = 0u; r < TM; r++) {
    let m = subgroupMin(best[r]);
    let i = subgroupMin(select(0xffffffffu, besti[r], best[r] == m));
    if (r % 8u == lane) {
      mine[r / 8u] = m;
      minei[r / 8u] = i;
    }
  }
  for (var h = 0u; h < TM / 8u; h++) {
    let row = row0 + lane + 8u * h;
    if (row < p.n) {
      var xx = 0.0;
      for (var q = 0u; q < d4; q++) {
        let v = textureLoad(points, vec2(tx0 + (lane + 8u * h) * d4 + q, ty), 0);
        xx += dot(v, v);
      }
      index[p.first + row] = minei[h];
      dist[p.first + row] = max(xx + mine[h], 0.0);
    }
  }
}
