// C = α·Aᵀ·B + β·C (+ bias per column, then GELU), batched by workgroup z.
// A is stored K×M (so op(A) = Aᵀ is M×K: the layout of weight gradients, xᵀ·dy), B is K×N,
// row-major; M % 4 == 0 and N % 4 == 0.
//
// For CPU-like adapters, as matmul_sg: a 16×4 block of C per invocation. At one k, the
// block's 16 rows of op(A) are 4 contiguous vec4s of A; lane i loads those of k0 + i and
// subgroupShuffle shares them, so 4 loads serve 8 k-steps. Needs subgroup size 8.
// ROW_SUMS: also rowsum[z·M + i] = Σ_k op(A)[i, k], from the A values already loaded (a linear
// layer's bias gradient, Σ over rows of dy, beside its weight gradient dyᵀ·x, with no extra
// loads); the first column of workgroups writes it. α, β, bias and GELU do not apply to it.
enable subgroups;

override HAS_BIAS: bool = false;
override GELU: bool = false;
override ROW_SUMS: bool = false;
// One subgroup per workgroup: measured equal or faster than 2–8 at every bench shape on lavapipe
// (+20–35% for Aᵀ·B with small M and for small batched matrices, where fewer rows go to waste).
override WG_Y: u32 = 1;

const TM = 16u;

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
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> rowsum: array<vec4<f32>>;

fn gelu(x: vec4<f32>) -> vec4<f32> {
  // tanh approximation; the clamp keeps tanh finite in every backend.
  let inner = 0.7978845608 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(inner, vec4(-15.0), vec4(15.0))));
}

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let n4 = p.n / 4u;
  let col4 = wg.x * 8u + lid.x;
  let row0 = (wg.y * WG_Y + lid.y) * TM;
  let a_base = wg.z * p.stride_a;
  let b_base = wg.z * p.stride_b / 4u;
  // Out-of-range lanes still load (clamped) and broadcast: every lane must take part.
  let bcol = min(col4, n4 - 1u);

  // A is stored K×M: the block's 16 rows at one k are 4 contiguous vec4s.
  // Vec4s past M are clamped to the last one: their rows are computed but never stored.
  let m4 = p.m / 4u;
  let r4 = row0 / 4u;
  let c0 = min(r4, m4 - 1u);
  let c1 = min(r4 + 1u, m4 - 1u);
  let c2 = min(r4 + 2u, m4 - 1u);
  let c3 = min(r4 + 3u, m4 - 1u);
  let last = p.k - 1u;
  var acc: array<vec4<f32>, TM>;
  var sums = array(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
  for (var k0 = 0u; k0 < p.k; k0 += 8u) {
    let kl = k0 + lane;
    let at = a_base / 4u + min(kl, last) * m4;
    let live = kl < p.k;
    let a0 = select(vec4(0.0), a[at + c0], live);
    let a1 = select(vec4(0.0), a[at + c1], live);
    let a2 = select(vec4(0.0), a[at + c2], live);
    let a3 = select(vec4(0.0), a[at + c3], live);
    if (ROW_SUMS) {
      sums[0] += a0;
      sums[1] += a1;
      sums[2] += a2;
      sums[3] += a3;
    }
    for (var s = 0u; s < 8u; s++) {
      let bv = b[b_base + min(k0 + s, last) * n4 + bcol];
      let x = array(subgroupShuffle(a0, s), subgroupShuffle(a1, s), subgroupShuffle(a2, s), subgroupShuffle(a3, s));
      for (var j = 0u; j < 4u; j++) {
        acc[4u * j] = fma(vec4(x[j].x), bv, acc[4u * j]);
        acc[4u * j + 1u] = fma(vec4(x[j].y), bv, acc[4u * j + 1u]);
        acc[4u * j + 2u] = fma(vec4(x[j].z), bv, acc[4u * j + 2u]);
        acc[4u * j + 3u] = fma(vec4(x[j].w), bv, acc[4u * j + 3u]);
      }
    }
  }

  if (ROW_SUMS && wg.x == 0u) {
    // Each lane summed the k ≡ lane (mod 8); vec4s clamped past M are duplicates, not written.
    let t = array(subgroupAdd(sums[0]), subgroupAdd(sums[1]), subgroupAdd(sums[2]), subgroupAdd(sums[3]));
    if (lane < 4u && r4 + lane < m4) {
      rowsum[wg.z * m4 + r4 + lane] = t[lane];
    }
  }
  if (col4 >= n4) {
    return;
  }
  let c_base = wg.z * p.stride_c / 4u;
  for (var r = 0u; r < TM; r++) {
    let row = row0 + r;
    if (row >= p.m) {
      break;
    }
    let at = c_base + row * n4 + col4;
    var v = p.alpha * acc[r];
    if (p.beta != 0.0) {
      v += p.beta * c[at];
    }
    if (HAS_BIAS) {
      v += bias[col4];
    }
    if (GELU) {
      v = gelu(v);
    }
    c[at] = v;
  }
}
