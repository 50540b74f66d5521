// Embedding backward as a deterministic scatter-add, without atomics: the wrapper sorts the
// token positions by table row on the CPU (CSR: `rows` the distinct table rows, `starts` where
// each row's positions begin in `order`). One invocation per (distinct row, column) sums its
// positions in ascending order: d_table[rows[u], c] = Σ_k dy[order[k], c], k in starts[u]..starts[u+1].
// Rows no token uses are not written (the wrapper zero-fills d_table first).

struct Params {
  unique: u32,
  d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> d_table: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.unique * p.d) {
    return;
  }
  let u = i / p.d;
  let c = i % p.d;
  var s = 0.0;
  for (var k = starts[u]; k < starts[u + 1u]; k++) {
    s += dy[order[k] * p.d + c];
  }
  d_table[rows[u] * p.d + c] = s;
}
