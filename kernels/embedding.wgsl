// Embedding gather: out[t, c] = table[idx[t], c] for n indices into a [vocab, d] table.
// An index ≥ vocab (the wrapper checks indices on the CPU first) reads as 0, never out of bounds.

struct Params {
  n: u32,
  d: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.n * p.d) {
    return;
  }
  let row = idx[i / p.d];
  out[i] = select(0.0, table[min(row, p.vocab - 1u) * p.d + i % p.d], row < p.vocab);
}
