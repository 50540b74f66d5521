// f16 storage, f32 accumulation: C = α·op(A)·op(B) + β·C (+ bias per column, then GELU),
// batched by workgroup z; A, B, bias and C hold f16 (half the bytes of f32), every product and
// sum is f32 and C is rounded once. Needs the shader-f16 feature. Otherwise as matmul_blocked:
// op(A) is M×K: A stored M×K, or K×M with TRANS_A. op(B) is K×N: B stored K×N, or N×K with
// TRANS_B. Row-major, any M, N, K (1 and primes included).
//
// each invocation keeps a 4×4 block of C in registers; no subgroups, no workgroup memory.

enable f16;

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
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
@group(0) @binding(3) var<storage, read> bias: array<f16>;
@group(0) @binding(4) var<storage, read_write> c: array<f16>;

fn gelu(x: f32) -> f32 {
  // tanh approximation; the clamp keeps tanh finite in every backend.
  return 0.5 * x * (1.0 + tanh(clamp(0.7978845608 * (x + 0.044715 * x * x * x), -15.0, 15.0)));
}

fn a_at(base: u32, row: u32, k: u32) -> f32 {
  if (TRANS_A) {
    return f32(a[base + k * p.m + row]);
  }
  return f32(a[base + row * p.k + k]);
}

fn b_at(base: u32, k: u32, col: u32) -> f32 {
  if (TRANS_B) {
    return f32(b[base + col * p.k + k]);
  }
  return f32(b[base + k * p.n + col]);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  let a_base = gid.z * p.stride_a;
  let b_base = gid.z * p.stride_b;
  var rows: vec4<u32>;
  var cols: vec4<u32>;
  for (var i = 0u; i < 4u; i++) {
    rows[i] = min(row0 + i, p.m - 1u);
    cols[i] = min(col0 + i, p.n - 1u);
  }
  var acc: array<vec4<f32>, 4>;
  for (var k = 0u; k < p.k; k++) {
    let bv = vec4(b_at(b_base, k, cols.x), b_at(b_base, k, cols.y), b_at(b_base, k, cols.z), b_at(b_base, k, cols.w));
    for (var i = 0u; i < 4u; i++) {
      acc[i] = fma(vec4(a_at(a_base, rows[i], k)), bv, acc[i]);
    }
  }
  let c_base = gid.z * p.stride_c;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let row = row0 + i;
      let col = col0 + j;
      if (row < p.m && col < p.n) {
        let at = c_base + row * p.n + col;
        var v = p.alpha * acc[i][j];
        if (p.beta != 0.0) {
          v += p.beta * f32(c[at]);
        }
        if (HAS_BIAS) {
          v += f32(bias[col]);
        }
        if (GELU) {
          v = gelu(v);
        }
        c[at] = f16(v);
      }
    }
  }
}
