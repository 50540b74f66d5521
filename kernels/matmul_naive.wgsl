// C = α·op(A)·op(B) + β·C (+ bias per column, then GELU), batched by workgroup z; op as in
// matmul_blocked (TRANS_A, TRANS_B). One invocation per output element.
// The plain baseline every faster matmul is measured against: it loads 2 floats per FMA.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn gelu(x: f32) -> f32 {
  // tanh approximation; the clamp keeps tanh finite in every backend.
  return 0.5 * x * (1.0 + tanh(clamp(0.7978845608 * (x + 0.044715 * x * x * x), -15.0, 15.0)));
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let row = gid.y;
  if (row >= p.m || col >= p.n) {
    return;
  }
  let a_base = gid.z * p.stride_a;
  let b_base = gid.z * p.stride_b;
  var acc = 0.0;
  for (var k = 0u; k < p.k; k++) {
    var x: f32;
    var y: f32;
    if (TRANS_A) {
      x = a[a_base + k * p.m + row];
    } else {
      x = a[a_base + row * p.k + k];
    }
    if (TRANS_B) {
      y = b[b_base + col * p.k + k];
    } else {
      y = b[b_base + k * p.n + col];
    }
    acc = fma(x, y, acc);
  }
  let at = gid.z * p.stride_c + row * p.n + col;
  var v = p.alpha * acc;
  if (p.beta != 0.0) {
    v += p.beta * c[at];
  }
  if (HAS_BIAS) {
    v += bias[col];
  }
  if (GELU) {
    v = gelu(v);
  }
  c[at] = v;
}
