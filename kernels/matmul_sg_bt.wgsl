// C = α·A·Bᵀ + β·C (+ bias per column, then GELU), batched by workgroup z.
// A is M×K, B is stored N×K (the layout of x·Wᵀ in a linear layer). Row-major; K % 4 == 0, N % 4 == 0.
//
// Like matmul_sg, for CPU-like adapters: a 32×4 block of C per invocation, A shared across
// the 8 lanes of a subgroup by subgroupShuffle. Both operands stream along contiguous k as
// vec4: lane i loads A[row, k0 + 4i … 4i+3], so one load per row serves 32 k-steps, and each
// lane reads its own 4 rows of B.
// Needs subgroup size 8.
// GELU_PRE: C = v·Φ(v) (or v·σ(1.702v)), the GELU of v = α·A·Bᵀ + β·C + bias, with v itself written to
// `pre` (what the backward needs): a transformer MLP's c_fc and its activation in one pass.
enable subgroups;

override HAS_BIAS: bool = false;
override GELU: bool = false;
override GELU_PRE: bool = false;
// QuickGELU (x·σ(1.702x), OpenAI's trained CLIPs) instead of the exact GELU in the saved-input epilogues.
override QUICK_GELU: bool = false;
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

fn row4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
  return vec4(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

// Four rows of A at k-chunk qc (zeros past K), from row `first`; rows past M re-read row M − 1.
fn load_a4(base: u32, first: u32, k4: u32, qc: u32, ok: bool) -> mat4x4<f32> {
  let z = vec4(0.0);
  return mat4x4(
    select(z, a[base + min(first, p.m - 1u) * k4 + qc], ok),
    select(z, a[base + min(first + 1u, p.m - 1u) * k4 + qc], ok),
    select(z, a[base + min(first + 2u, p.m - 1u) * k4 + qc], ok),
    select(z, a[base + min(first + 3u, p.m - 1u) * k4 + qc], ok),
  );
}

// acc's four rows += (lane s's A rows) · (this lane's four B rows), over one k-chunk of 4.
fn fma_a4(acc: mat4x4<f32>, av: mat4x4<f32>, s: u32, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(
    acc[0] + row4(subgroupShuffle(av[0], s), b0, b1, b2, b3),
    acc[1] + row4(subgroupShuffle(av[1], s), b0, b1, b2, b3),
    acc[2] + row4(subgroupShuffle(av[2], s), b0, b1, b2, b3),
    acc[3] + row4(subgroupShuffle(av[3], s), b0, b1, b2, b3),
  );
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
  if (GELU_PRE) {
    pre[at] = v;
    v *= gelu_gate4(v);
  }
  c[at] = v;
}

fn store4(acc: mat4x4<f32>, first: u32, c_base: u32, n4: u32, col4: u32) {
  store_row(acc[0], first, c_base, n4, col4);
  store_row(acc[1], first + 1u, c_base, n4, col4);
  store_row(acc[2], first + 2u, c_base, n4, col4);
  store_row(acc[3], first + 3u, c_base, n4, col4);
}

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let k4 = p.k / 4u;
  let n4 = p.n / 4u;
  let col4 = wg.x * 8u + lid.x;
  let row0 = (wg.y * WG_Y + lid.y) * TM;
  let a_base = wg.z * p.stride_a / 4u;
  let b_base = wg.z * p.stride_b / 4u;
  // Clamped so out-of-range lanes still load and broadcast: every lane must take part.
  let col = min(col4, n4 - 1u) * 4u;
  let brow0 = b_base + col * k4;
  let brow1 = brow0 + k4;
  let brow2 = brow1 + k4;
  let brow3 = brow2 + k4;

  // 32 rows as eight 4-row groups in named variables, not an array: llvmpipe keeps loop counters
  // as vectors, so an array indexed in a loop is gathered per lane; these stay in registers.
  let zero = mat4x4<f32>();
  var acc0 = zero;
  var acc1 = zero;
  var acc2 = zero;
  var acc3 = zero;
  var acc4 = zero;
  var acc5 = zero;
  var acc6 = zero;
  var acc7 = zero;
  for (var q0 = 0u; q0 < k4; q0 += 8u) {
    let ql = q0 + lane;
    let qc = min(ql, k4 - 1u);
    let ok = ql < k4;
    let av0 = load_a4(a_base, row0, k4, qc, ok);
    let av1 = load_a4(a_base, row0 + 4u, k4, qc, ok);
    let av2 = load_a4(a_base, row0 + 8u, k4, qc, ok);
    let av3 = load_a4(a_base, row0 + 12u, k4, qc, ok);
    let av4 = load_a4(a_base, row0 + 16u, k4, qc, ok);
    let av5 = load_a4(a_base, row0 + 20u, k4, qc, ok);
    let av6 = load_a4(a_base, row0 + 24u, k4, qc, ok);
    let av7 = load_a4(a_base, row0 + 28u, k4, qc, ok);
    for (var s = 0u; s < 8u; s++) {
      // Steps past K re-read B's last vec4 and multiply it by the zeros loaded above.
      let q = min(q0 + s, k4 - 1u);
      let b0 = b[brow0 + q];
      let b1 = b[brow1 + q];
      let b2 = b[brow2 + q];
      let b3 = b[brow3 + q];
      acc0 = fma_a4(acc0, av0, s, b0, b1, b2, b3);
      acc1 = fma_a4(acc1, av1, s, b0, b1, b2, b3);
      acc2 = fma_a4(acc2, av2, s, b0, b1, b2, b3);
      acc3 = fma_a4(acc3, av3, s, b0, b1, b2, b3);
      acc4 = fma_a4(acc4, av4, s, b0, b1, b2, b3);
      acc5 = fma_a4(acc5, av5, s, b0, b1, b2, b3);
      acc6 = fma_a4(acc6, av6, s, b0, b1, b2, b3);
      acc7 = fma_a4(acc7, av7, s, b0, b1, b2, b3);
    }
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
