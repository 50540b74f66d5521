// k-means update, pass 1 of 4 (a stable counting sort of the points by cluster, then a fixed-order
// sum per cluster: see kmeans_update.wgsl). Histogram of the clusters in each block of 256
// consecutive points: hist[c·blocks + b] = #{i in block b : assign[i] = c}. Counts are integers,
// so the workgroup's atomics give the same result in any order. Workgroup (b, y) counts clusters
// y·CHUNK … y·CHUNK + CHUNK − 1 (every entry written, zeros included). Assignments ≥ k are ignored.

const BLK = 256u;
const CHUNK = 4096u;

struct Params {
  n: u32,
  k: u32,
  // Index in `assign` of this chunk's first point.
  first: u32,
  blocks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> assign: array<u32>;
@group(0) @binding(2) var<storage, read_write> hist: array<u32>;

var<workgroup> bins: array<atomic<u32>, CHUNK>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let b = wg.x;
  let c0 = wg.y * CHUNK;
  for (var c = lid.x; c < CHUNK; c += 256u) {
    atomicStore(&bins[c], 0u);
  }
  workgroupBarrier();
  let i = b * BLK + lid.x;
  if (i < p.n) {
    let c = assign[p.first + i];
    if (c >= c0 && c < min(c0 + CHUNK, p.k)) {
      atomicAdd(&bins[c - c0], 1u);
    }
  }
  workgroupBarrier();
  for (var c = lid.x; c < CHUNK; c += 256u) {
    if (c0 + c < p.k) {
      hist[(c0 + c) * p.blocks + b] = atomicLoad(&bins[c]);
    }
  }
}
