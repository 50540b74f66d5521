// C = α·A·Bᵀ + β·C (+ bias per column, then GELU), with B (stored N×K) read through a 64 KiB
// uniform-buffer window: a linear layer's forward x·Wᵀ, and (B transposed first, by matmul.ts)
// its input gradient dy·W. A is M×K, C is M×N, row-major; K % 4 == 0, N % 4 == 0, K ≤ 512.
//
// Why a uniform buffer: on lavapipe (Mesa 25.0) a storage load whose address differs per lane
// is a per-lane loop with a bounds-check branch for every component (~12 instructions a
// float), while a uniform-buffer load with per-lane addresses is a branch-free gather (~3).
// The operand all 8 lanes load cooperatively and share by subgroupShuffle (matmul_sg_bt's A)
// is the costlier one, so here it is B, the weight: small enough for a few windows, one
// dispatch each (matmul.ts). The window holds B rows first … first + rows − 1 (whole rows of
// K), so each dispatch writes those columns of C complete, epilogue included. The lanes own 4
// rows of A (tokens) each and stream them from storage along k, as matmul_sg_bt's B; each
// invocation keeps a 32×4 block of Cᵀ (32 columns of C for its 4 rows) in registers.
// GELU_PRE: as matmul_sg_bt (v written to `pre`, C = GELU(v)); GELU_GRAD: as matmul_sg
// (C = v·GELU'(h), h read from `pre`). Needs subgroup size 8.
enable subgroups;

// 64 columns of C a workgroup (WIDE) instead of 32: the shared window rows cost little, so more
// of them per streamed A load measured +8–27% on lavapipe; needs K ≤ 256 (64 rows of K in 64 KiB).
override WIDE: bool = false;
override HAS_BIAS: bool = false;
override GELU: bool = false;
override GELU_PRE: bool = false;
override GELU_GRAD: bool = false;
// QuickGELU (x·σ(1.702x), OpenAI's trained CLIPs) instead of the exact GELU in the saved-input epilogues.
override QUICK_GELU: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  // The window: its first row of B (a column of C) and its row count.
  first: u32,
  rows: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
// 64 KiB, the least maxUniformBufferBindingSize WebGPU allows; matmul.ts pads a short last window.
@group(0) @binding(2) var<uniform> w: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> pre: array<vec4<f32>>;

fn gelu(x: vec4<f32>) -> vec4<f32> {
  // tanh approximation; the clamp keeps tanh finite in every backend.
  let inner = 0.7978845608 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(inner, vec4(-15.0), vec4(15.0))));
}

// Φ(v), the standard normal CDF, as unary.wgsl's phi (Abramowitz & Stegun 7.1.26 at |v|/√2,
// absolute error ≤ 1.5e-7; the lower tail computed directly), four lanes at once.
fn phi4(v: vec4<f32>) -> vec4<f32> {
  let z = abs(v) * 0.7071067811865476;
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let tail = 0.5 * poly * exp(-z * z);
  return select(1.0 - tail, tail, v < vec4(0.0));
}

// The saved-input GELU's gate g(v), with GELU(v) = v·g(v): Φ(v) for the exact GELU, σ(1.702v)
// for QuickGELU (QUICK_GELU); and GELU'(h) for the backward. As unary.wgsl's ops 10/11, 25/26.
fn gelu_gate4(v: vec4<f32>) -> vec4<f32> {
  if (QUICK_GELU) {
    return 1.0 / (1.0 + exp(-1.702 * v));
  }
  return phi4(v);
}

fn gelu_grad4(h: vec4<f32>) -> vec4<f32> {
  if (QUICK_GELU) {
    let s = 1.0 / (1.0 + exp(-1.702 * h));
    return s + 1.702 * h * s * (1.0 - s);
  }
  return phi4(h) + h * 0.3989422804014327 * exp(-0.5 * h * h);
}

fn row4(wr: vec4<f32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> vec4<f32> {
  return vec4(dot(wr, x0), dot(wr, x1), dot(wr, x2), dot(wr, x3));
}

// Four window rows (C columns) at k-chunk qc, zeros past K; rows past the window
// re-read its last row (computed, never stored).
fn load_nk4(first: u32, k4: u32, qc: u32, ok: bool) -> mat4x4<f32> {
  let z = vec4(0.0);
  let last = p.rows - 1u;
  return mat4x4(
    select(z, w[min(first, last) * k4 + qc], ok),
    select(z, w[min(first + 1u, last) * k4 + qc], ok),
    select(z, w[min(first + 2u, last) * k4 + qc], ok),
    select(z, w[min(first + 3u, last) * k4 + qc], ok),
  );
}

// acc's four C columns (as rows of Cᵀ) += lane s's window rows · this lane's four A rows, over
// one k-chunk of 4.
fn fma_nk(acc: mat4x4<f32>, wv: mat4x4<f32>, s: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(
    acc[0] + row4(subgroupShuffle(wv[0], s), x0, x1, x2, x3),
    acc[1] + row4(subgroupShuffle(wv[1], s), x0, x1, x2, x3),
    acc[2] + row4(subgroupShuffle(wv[2], s), x0, x1, x2, x3),
    acc[3] + row4(subgroupShuffle(wv[3], s), x0, x1, x2, x3),
  );
}

// One vec4 of C (row `row`, columns 4·col4 … 4·col4 + 3) through the epilogue.
fn store_at(v0: vec4<f32>, row: u32, col4: u32) {
  let at = row * (p.n / 4u) + col4;
  var v = p.alpha * v0;
  if (p.beta != 0.0) {
    v += p.beta * c[at];
  }
  if (HAS_BIAS) {
    v += bias[col4];
  }
  if (GELU) {
    v = gelu(v);
  }
  if (GELU_PRE) {
    pre[at] = v;
    v *= gelu_gate4(v);
  }
  if (GELU_GRAD) {
    let h = pre[at];
    v *= gelu_grad4(h);
  }
  c[at] = v;
}

// acc holds C columns 4·col4 … 4·col4 + 3 (its rows) of A rows row0 … row0 + 3 (its columns).
fn store4(acc: mat4x4<f32>, row0: u32, col4: u32, live: bool) {
  if (!live) {
    return;
  }
  let t = transpose(acc);
  if (row0 < p.m) {
    store_at(t[0], row0, col4);
  }
  if (row0 + 1u < p.m) {
    store_at(t[1], row0 + 1u, col4);
  }
  if (row0 + 2u < p.m) {
    store_at(t[2], row0 + 2u, col4);
  }
  if (row0 + 3u < p.m) {
    store_at(t[3], row0 + 3u, col4);
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let k4 = p.k / 4u;
  // This lane's four rows of A (clamped: out-of-range lanes still load and shuffle).
  let row0 = (wg.x * 8u + lane) * 4u;
  let ar0 = min(row0, p.m - 1u) * k4;
  let ar1 = min(row0 + 1u, p.m - 1u) * k4;
  let ar2 = min(row0 + 2u, p.m - 1u) * k4;
  let ar3 = min(row0 + 3u, p.m - 1u) * k4;
  // The workgroup's 32 (64 if WIDE) columns of C: window rows wr0 ….
  let wr0 = wg.y * select(32u, 64u, WIDE);

  // Eight (sixteen) 4-column groups in named variables, not an array (llvmpipe gathers an array
  // indexed in a loop per lane).
  let zero = mat4x4<f32>();
  var acc0 = zero;
  var acc1 = zero;
  var acc2 = zero;
  var acc3 = zero;
  var acc4 = zero;
  var acc5 = zero;
  var acc6 = zero;
  var acc7 = zero;
  var acc8 = zero;
  var acc9 = zero;
  var acc10 = zero;
  var acc11 = zero;
  var acc12 = zero;
  var acc13 = zero;
  var acc14 = zero;
  var acc15 = zero;
  for (var q0 = 0u; q0 < k4; q0 += 8u) {
    let ql = q0 + lane;
    let qc = min(ql, k4 - 1u);
    let ok = ql < k4;
    let wv0 = load_nk4(wr0, k4, qc, ok);
    let wv1 = load_nk4(wr0 + 4u, k4, qc, ok);
    let wv2 = load_nk4(wr0 + 8u, k4, qc, ok);
    let wv3 = load_nk4(wr0 + 12u, k4, qc, ok);
    let wv4 = load_nk4(wr0 + 16u, k4, qc, ok);
    let wv5 = load_nk4(wr0 + 20u, k4, qc, ok);
    let wv6 = load_nk4(wr0 + 24u, k4, qc, ok);
    let wv7 = load_nk4(wr0 + 28u, k4, qc, ok);
    var wv8 = zero;
    var wv9 = zero;
    var wv10 = zero;
    var wv11 = zero;
    var wv12 = zero;
    var wv13 = zero;
    var wv14 = zero;
    var wv15 = zero;
    if (WIDE) {
      wv8 = load_nk4(wr0 + 32u, k4, qc, ok);
      wv9 = load_nk4(wr0 + 36u, k4, qc, ok);
      wv10 = load_nk4(wr0 + 40u, k4, qc, ok);
      wv11 = load_nk4(wr0 + 44u, k4, qc, ok);
      wv12 = load_nk4(wr0 + 48u, k4, qc, ok);
      wv13 = load_nk4(wr0 + 52u, k4, qc, ok);
      wv14 = load_nk4(wr0 + 56u, k4, qc, ok);
      wv15 = load_nk4(wr0 + 60u, k4, qc, ok);
    }
    for (var s = 0u; s < 8u; s++) {
      // Steps past K re-read A's last vec4 and multiply it by the zeros loaded above.
      let q = min(q0 + s, k4 - 1u);
      let x0 = a[ar0 + q];
      let x1 = a[ar1 + q];
      let x2 = a[ar2 + q];
      let x3 = a[ar3 + q];
      acc0 = fma_nk(acc0, wv0, s, x0, x1, x2, x3);
      acc1 = fma_nk(acc1, wv1, s, x0, x1, x2, x3);
      acc2 = fma_nk(acc2, wv2, s, x0, x1, x2, x3);
      acc3 = fma_nk(acc3, wv3, s, x0, x1, x2, x3);
      acc4 = fma_nk(acc4, wv4, s, x0, x1, x2, x3);
      acc5 = fma_nk(acc5, wv5, s, x0, x1, x2, x3);
      acc6 = fma_nk(acc6, wv6, s, x0, x1, x2, x3);
      acc7 = fma_nk(acc7, wv7, s, x0, x1, x2, x3);
      if (WIDE) {
        acc8 = fma_nk(acc8, wv8, s, x0, x1, x2, x3);
        acc9 = fma_nk(acc9, wv9, s, x0, x1, x2, x3);
        acc10 = fma_nk(acc10, wv10, s, x0, x1, x2, x3);
        acc11 = fma_nk(acc11, wv11, s, x0, x1, x2, x3);
        acc12 = fma_nk(acc12, wv12, s, x0, x1, x2, x3);
        acc13 = fma_nk(acc13, wv13, s, x0, x1, x2, x3);
        acc14 = fma_nk(acc14, wv14, s, x0, x1, x2, x3);
        acc15 = fma_nk(acc15, wv15, s, x0, x1, x2, x3);
      }
    }
  }
  let c4 = (p.first + wr0) / 4u;
  let r4 = p.rows / 4u;
  let g4 = wr0 / 4u;
  store4(acc0, row0, c4, g4 < r4);
  store4(acc1, row0, c4 + 1u, g4 + 1u < r4);
  store4(acc2, row0, c4 + 2u, g4 + 2u < r4);
  store4(acc3, row0, c4 + 3u, g4 + 3u < r4);
  store4(acc4, row0, c4 + 4u, g4 + 4u < r4);
  store4(acc5, row0, c4 + 5u, g4 + 5u < r4);
  store4(acc6, row0, c4 + 6u, g4 + 6u < r4);
  store4(acc7, row0, c4 + 7u, g4 + 7u < r4);
  if (WIDE) {
    store4(acc8, row0, c4 + 8u, g4 + 8u < r4);
    store4(acc9, row0, c4 + 9u, g4 + 9u < r4);
    store4(acc10, row0, c4 + 10u, g4 + 10u < r4);
    store4(acc11, row0, c4 + 11u, g4 + 11u < r4);
    store4(acc12, row0, c4 + 12u, g4 + 12u < r4);
    store4(acc13, row0, c4 + 13u, g4 + 13u < r4);
    store4(acc14, row0, c4 + 14u, g4 + 14u < r4);
    store4(acc15, row0, c4 + 15u, g4 + 15u < r4);
  }
}
