// C = α·Aᵀ·B + β·C (+ bias per column, then GELU), batched by workgroup z.
// A is stored K×M (so op(A) = Aᵀ is M×K: the layout of weight gradients, xᵀ·dy), B is K×N,
// row-major; M % 4 == 0 and N % 4 == 0.
//
// For CPU-like adapters, as matmul_sg: a 32×4 block of C per invocation. At one k, the
// block's 32 rows of op(A) are 8 contiguous vec4s of A; lane i loads those of k0 + i and
// subgroupShuffle shares them, so 8 loads serve 8 k-steps. Needs subgroup size 8.
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

const TM = 32u;

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

// acc's four rows += x (their op(A) values at one k, lane s's) times B's row at that k.
fn fma_at4(acc: mat4x4<f32>, x: vec4<f32>, bv: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(fma(vec4(x.x), bv, acc[0]), fma(vec4(x.y), bv, acc[1]), fma(vec4(x.z), bv, acc[2]), fma(vec4(x.w), bv, acc[3]));
}

fn store_row(acc: vec4<f32>, row: u32, c_base: u32, n4: u32, col4: u32) {
  if (row >= p.m) {
    return;
  }
  let at = c_base + row * n4 + col4;
  var v = p.alpha * acc;
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

fn store4(acc: mat4x4<f32>, first: u32, c_base: u32, n4: u32, col4: u32) {
  store_row(acc[0], first, c_base, n4, col4);
  store_row(acc[1], first + 1u, c_base, n4, col4);
  store_row(acc[2], first + 2u, c_base, n4, col4);
  store_row(acc[3], first + 3u, c_base, n4, col4);
}

// Row sums of one vec4 of rows (4 rows) across the subgroup, written by the first column of
// workgroups; vec4s clamped past M are duplicates, not written.
fn store_sums(s: vec4<f32>, r4: u32, m4: u32, z: u32, lane: u32, first_col: bool) {
  let t = subgroupAdd(s);
  if (first_col && lane == 0u && r4 < m4) {
    rowsum[z * m4 + r4] = t;
  }
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

  // A is stored K×M: the block's 32 rows at one k are 8 contiguous vec4s.
  // Vec4s past M are clamped to the last one: their rows are computed but never stored.
  let m4 = p.m / 4u;
  let r4 = row0 / 4u;
  let c0 = min(r4, m4 - 1u);
  let c1 = min(r4 + 1u, m4 - 1u);
  let c2 = min(r4 + 2u, m4 - 1u);
  let c3 = min(r4 + 3u, m4 - 1u);
  let c4 = min(r4 + 4u, m4 - 1u);
  let c5 = min(r4 + 5u, m4 - 1u);
  let c6 = min(r4 + 6u, m4 - 1u);
  let c7 = min(r4 + 7u, m4 - 1u);
  let last = p.k - 1u;
  // Eight 4-row groups in named variables, not an array: llvmpipe keeps loop counters as
  // vectors, so an array indexed in a loop is gathered per lane; these stay in registers.
  let zero = mat4x4<f32>();
  var acc0 = zero;
  var acc1 = zero;
  var acc2 = zero;
  var acc3 = zero;
  var acc4 = zero;
  var acc5 = zero;
  var acc6 = zero;
  var acc7 = zero;
  var sum0 = vec4(0.0);
  var sum1 = vec4(0.0);
  var sum2 = vec4(0.0);
  var sum3 = vec4(0.0);
  var sum4 = vec4(0.0);
  var sum5 = vec4(0.0);
  var sum6 = vec4(0.0);
  var sum7 = vec4(0.0);
  for (var k0 = 0u; k0 < p.k; k0 += 8u) {
    let kl = k0 + lane;
    let at = a_base / 4u + min(kl, last) * m4;
    let live = kl < p.k;
    let a0 = select(vec4(0.0), a[at + c0], live);
    let a1 = select(vec4(0.0), a[at + c1], live);
    let a2 = select(vec4(0.0), a[at + c2], live);
    let a3 = select(vec4(0.0), a[at + c3], live);
    let a4 = select(vec4(0.0), a[at + c4], live);
    let a5 = select(vec4(0.0), a[at + c5], live);
    let a6 = select(vec4(0.0), a[at + c6], live);
    let a7 = select(vec4(0.0), a[at + c7], live);
    if (ROW_SUMS) {
      sum0 += a0;
      sum1 += a1;
      sum2 += a2;
      sum3 += a3;
      sum4 += a4;
      sum5 += a5;
      sum6 += a6;
      sum7 += a7;
    }
    for (var s = 0u; s < 8u; s++) {
      let bv = b[b_base + min(k0 + s, last) * n4 + bcol];
      acc0 = fma_at4(acc0, subgroupShuffle(a0, s), bv);
      acc1 = fma_at4(acc1, subgroupShuffle(a1, s), bv);
      acc2 = fma_at4(acc2, subgroupShuffle(a2, s), bv);
      acc3 = fma_at4(acc3, subgroupShuffle(a3, s), bv);
      acc4 = fma_at4(acc4, subgroupShuffle(a4, s), bv);
      acc5 = fma_at4(acc5, subgroupShuffle(a5, s), bv);
      acc6 = fma_at4(acc6, subgroupShuffle(a6, s), bv);
      acc7 = fma_at4(acc7, subgroupShuffle(a7, s), bv);
    }
  }

  if (ROW_SUMS) {
    // Each lane summed the k ≡ lane (mod 8).
    store_sums(sum0, r4, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum1, r4 + 1u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum2, r4 + 2u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum3, r4 + 3u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum4, r4 + 4u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum5, r4 + 5u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum6, r4 + 6u, m4, wg.z, lane, wg.x == 0u);
    store_sums(sum7, r4 + 7u, m4, wg.z, lane, wg.x == 0u);
  }
  if (col4 >= n4) {
    return;
  }
  let c_base = wg.z * p.stride_c / 4u;
  store4(acc0, row0, c_base, n4, col4);
  store4(acc1, row0 + 4u, c_base, n4, col4);
  store4(acc2, row0 + 8u, c_base, n4, col4);
  store4(acc3, row0 + 12u, c_base, n4, col4);
  store4(acc4, row0 + 16u, c_base, n4, col4);
  store4(acc5, row0 + 20u, c_base, n4, col4);
  store4(acc6, row0 + 24u, c_base, n4, col4);
  store4(acc7, row0 + 28u, c_base, n4, col4);
}
