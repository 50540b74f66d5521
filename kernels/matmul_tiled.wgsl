// C = α·op(A)·op(B) + β·C (+ bias per column, then GELU), batched by workgroup z.
// op(A) is M×K: A stored M×K, or K×M with TRANS_A. op(B) is K×N: B stored K×N, or N×K with
// TRANS_B. Row-major, any M, N, K.
//
// The variant for GPUs: a 64×64 tile of C per workgroup of 256 invocations, each keeping a 4×4
// block in registers; the A and B panels (64×16 each) are staged in workgroup memory so each
// element read from device memory serves 64 FMAs. (On lavapipe this is 3–6× slower than the
// register-blocked variants: the autotuner decides per adapter.)

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;

const BM = 64u;
const BN = 64u;
const BK = 16u;

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

// Panels stored k-major: [kk][row] and [kk][col], so the inner loop reads 4 adjacent values.
var<workgroup> a_panel: array<f32, 1024>;
var<workgroup> b_panel: array<f32, 1024>;

fn gelu(x: f32) -> f32 {
  // tanh approximation; the clamp keeps tanh finite in every backend.
  return 0.5 * x * (1.0 + tanh(clamp(0.7978845608 * (x + 0.044715 * x * x * x), -15.0, 15.0)));
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  let a_base = wg.z * p.stride_a;
  let b_base = wg.z * p.stride_b;
  var acc: array<vec4<f32>, 4>;

  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    // 1024 elements per panel, 4 per invocation; consecutive invocations read consecutive
    // addresses of the stored layout. Zeros outside the matrix.
    for (var t = 0u; t < 4u; t++) {
      let e = li + 256u * t;
      var kk: u32;
      var r: u32;
      if (TRANS_A) {
        kk = e / BM;
        r = e % BM;
      } else {
        kk = e % BK;
        r = e / BK;
      }
      let row = row0 + r;
      let k = k0 + kk;
      var v = 0.0;
      if (row < p.m && k < p.k) {
        if (TRANS_A) {
          v = a[a_base + k * p.m + row];
        } else {
          v = a[a_base + row * p.k + k];
        }
      }
      a_panel[kk * BM + r] = v;

      var cc: u32;
      if (TRANS_B) {
        kk = e % BK;
        cc = e / BK;
      } else {
        kk = e / BN;
        cc = e % BN;
      }
      let col = col0 + cc;
      let kb = k0 + kk;
      var w = 0.0;
      if (col < p.n && kb < p.k) {
        if (TRANS_B) {
          w = b[b_base + col * p.k + kb];
        } else {
          w = b[b_base + kb * p.n + col];
        }
      }
      b_panel[kk * BN + cc] = w;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let ai = kk * BM + lid.y * 4u;
      let bi = kk * BN + lid.x * 4u;
      let bv = vec4(b_panel[bi], b_panel[bi + 1u], b_panel[bi + 2u], b_panel[bi + 3u]);
      acc[0] = fma(vec4(a_panel[ai]), bv, acc[0]);
      acc[1] = fma(vec4(a_panel[ai + 1u]), bv, acc[1]);
      acc[2] = fma(vec4(a_panel[ai + 2u]), bv, acc[2]);
      acc[3] = fma(vec4(a_panel[ai + 3u]), bv, acc[3]);
    }
    workgroupBarrier();
  }

  let c_base = wg.z * p.stride_c;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let row = row0 + lid.y * 4u + i;
      let col = col0 + lid.x * 4u + j;
      if (row < p.m && col < p.n) {
        let at = c_base + row * p.n + col;
        var v = p.alpha * acc[i][j];
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
    }
  }
}
