// C (M×N) = A (M×K) · B (K×N), row-major, one invocation per output element.
// The plain baseline every faster matmul is measured against: it loads 2 floats per FMA.

struct Params {
  m: u32,
  n: u32,
  k: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let row = gid.y;
  if (row >= params.m || col >= params.n) {
    return;
  }
  var acc = 0.0;
  for (var i = 0u; i < params.k; i++) {
    acc = fma(a[row * params.k + i], b[i * params.n + col], acc);
  }
  c[row * params.n + col] = acc;
}
