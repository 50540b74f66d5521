// C = α·A·B + β·C (+ bias per column, then GELU), batched by workgroup z.
// A is M×K, B is K×N, row-major; K % 4 == 0 and N % 4 == 0.
//
// The variant for CPU-like adapters (lavapipe), where workgroup memory is slow and caches do
// the reuse: each invocation keeps a 16×4 block of C in registers. The 8 lanes of a subgroup
// share the same 16 rows: lane i loads A[row, k0 + 4i … 4i+3] (a vec4 along k) for each row,
// and subgroupShuffle hands every lane step s's vec4, so one A load serves 32 k-steps.
// B comes as vec4 along n. Needs subgroup size 8.
// (A shuffle with a uniform lane index measured faster on lavapipe than 8 unrolled
// subgroupBroadcasts: 28 against 24 GFLOP/s for A·Bᵀ at 1024³.)
// GELU_ERF_GRAD: C = v·(Φ(h) + h·φ(h)) with v = α·A·B + β·C + bias and h = pre (same layout
// as C): the gradient through an exact GELU whose input h the forward saved, e.g. an MLP's
// dh = (dy·W_proj) ⊙ GELU'(h) in one pass.
enable subgroups;

override HAS_BIAS: bool = false;
override GELU: bool = false;
override GELU_ERF_GRAD: bool = false;
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
@group(0) @binding(5) var<storage, read> pre: array<vec4<f32>>;

// acc + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: four k-steps of one row.
fn step4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, acc: vec4<f32>) -> vec4<f32> {
  return fma(vec4(a.w), b3, fma(vec4(a.z), b2, fma(vec4(a.y), b1, fma(vec4(a.x), b0, acc))));
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

  var rows: array<u32, TM>;
  for (var r = 0u; r < TM; r++) {
    rows[r] = min(row0 + r, p.m - 1u);
  }
  var acc: array<vec4<f32>, TM>;

  let k4 = p.k / 4u;
  let last = p.k - 1u;
  for (var q0 = 0u; q0 < k4; q0 += 8u) {
    let ql = q0 + lane;
    let qc = min(ql, k4 - 1u);
    var av: array<vec4<f32>, TM>;
    for (var r = 0u; r < TM; r++) {
      av[r] = select(vec4(0.0), a[a_base / 4u + rows[r] * k4 + qc], ql < k4);
    }
    for (var s = 0u; s < 8u; s++) {
      let k = (q0 + s) * 4u;
      let b0 = b[b_base + min(k, last) * n4 + bcol];
      let b1 = b[b_base + min(k + 1u, last) * n4 + bcol];
      let b2 = b[b_base + min(k + 2u, last) * n4 + bcol];
      let b3 = b[b_base + min(k + 3u, last) * n4 + bcol];
      for (var r = 0u; r < TM; r++) {
        acc[r] = step4(subgroupShuffle(av[r], s), b0, b1, b2, b3, acc[r]);
      }
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
    if (GELU_ERF_GRAD) {
      let h = pre[at];
      v *= phi4(h) + h * 0.3989422804014327 * exp(-0.5 * h * h);
    }
    c[at] = v;
  }
}
