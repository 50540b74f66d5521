// k-means update, pass 2 of 4. One workgroup. Phase 1: invocation t takes clusters t, t + 256, …
// and turns its row of hist into exclusive prefix sums over blocks (hist[c·blocks + b] becomes
// the number of points of cluster c in blocks before b), writes the cluster's count in this chunk
// to offsets[c + 1] and adds it to counts[c] (or sets it, when not accumulating over chunks).
// Phase 2: invocation 0 turns offsets into exclusive prefix sums over clusters (offsets[c] is
// where cluster c starts in the sorted order, offsets[k] = points counted). All integer sums.

struct Params {
  k: u32,
  blocks: u32,
  // 1: add this chunk's counts to `counts` (a later chunk of the same points); 0: overwrite.
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  for (var c = li; c < p.k; c += 256u) {
    var run = 0u;
    for (var b = 0u; b < p.blocks; b++) {
      let at = c * p.blocks + b;
      let h = hist[at];
      hist[at] = run;
      run += h;
    }
    offsets[c + 1u] = run;
    counts[c] = select(0u, counts[c], p.accumulate != 0u) + run;
  }
  storageBarrier();
  workgroupBarrier();
  if (li == 0u) {
    offsets[0] = 0u;
    for (var c = 1u; c <= p.k; c++) {
      offsets[c] += offsets[c - 1u];
    }
  }
}
