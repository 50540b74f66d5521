// k-means update, pass 3 of 4: the stable scatter. Point i of cluster c in block b goes to
// order[offsets[c] + hist[c·blocks + b] + (points of c before i in block b)], so each cluster's
// points are listed in increasing index: the order, hence the sums of pass 4, never depends on
// scheduling. The rank within the block is counted by a scan of the block's earlier points
// (≤ 255 compares per point). Assignments ≥ k are skipped, as in pass 1.

const BLK = 256u;

struct Params {
  n: u32,
  k: u32,
  first: u32,
  blocks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> assign: array<u32>;
@group(0) @binding(2) var<storage, read> hist: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> order: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) {
    return;
  }
  let c = assign[p.first + i];
  if (c >= p.k) {
    return;
  }
  let b = i / BLK;
  var rank = 0u;
  for (var j = b * BLK; j < i; j++) {
    rank += select(0u, 1u, assign[p.first + j] == c);
  }
  order[offsets[c] + hist[c * p.blocks + b] + rank] = i;
}
