// k-means update, pass 4 of 4: per-cluster sums and new centres, bit-identical run to run.
//
// Float atomics would add each cluster's points in whatever order the threads ran. Instead,
// passes 1–3 (kmeans_update_hist, _scan, _scatter) list each cluster's points in increasing
// index (a stable counting sort; integer counts only), and here each invocation adds, for one
// cluster, its columns over that list in that order, starting from 0. With `accumulate` the
// chunk's sum is then added to the previous chunks' sums: the order is fixed by the chunking.
// centres[c] = sums[c] / counts[c] for clusters with points; empty clusters keep the value
// `centres` already holds (the caller re-seeds them: MoDE takes a random point).

struct Params {
  k: u32,
  d: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read> counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> centres: array<f32>;

// Layout: lanes lid.x = 0…7 (one SIMD row on lavapipe) share a cluster and a block of DB = 8·R
// columns; lane l adds the columns l, l + 8, …, so for each point the 8 lanes read DB contiguous
// values, R loads of 32 bytes back to back. The cluster's points are scattered through memory,
// and reading each row in a burst lets the cache misses overlap (1.3–1.5× over one column
// per lane, measured on lavapipe). lid.y picks one of 8 clusters. Each column still adds its
// points in index order, so the bits do not depend on the layout.
const R = 16u;
const DB = 128u;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x * 8u + lid.y;
  let q0 = wg.y * DB + lid.x;
  if (c >= p.k) {
    return;
  }
  var s = array<f32, R>();
  let end = offsets[c + 1u];
  for (var at = offsets[c]; at < end; at++) {
    let row = order[at] * p.d;
    for (var r = 0u; r < R; r++) {
      // Columns past d re-read column d − 1 and are not written.
      s[r] += points[row + min(q0 + 8u * r, p.d - 1u)];
    }
  }
  let count = counts[c];
  for (var r = 0u; r < R; r++) {
    let q = q0 + 8u * r;
    if (q < p.d) {
      let o = c * p.d + q;
      var v = s[r];
      if (p.accumulate != 0u) {
        v = sums[o] + v;
      }
      sums[o] = v;
      if (count > 0u) {
        centres[o] = v / f32(count);
      }
    }
  }
}
