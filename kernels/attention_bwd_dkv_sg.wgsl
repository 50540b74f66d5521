// Flash attention backward, dK and dV, for CPU-like adapters; head dim D ∈ {32, 64}. Same
// contract as attention_bwd_dkv (layouts, dK and dV through `d_kv`; reads D_i from `delta`, written
// by attention_bwd_dq_sg), with rows read and written as vec4s: every layout's offset and strides
// must be multiples of 4.
//
// The transpose of attention_bwd_dq_sg: a subgroup of 8 lanes owns 8 key rows and walks the
// queries that see them 32 at a time (4 per lane):
//   1. Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for 8 keys × 32 queries, K's and V's vec4s handed round with
//      subgroupShuffle;
//   2. Pᵀ = exp(scale·Sᵀ − LSE_i), dSᵀ = Pᵀ ∘ (dPᵀ − D_i);
//   3. dV += Pᵀ·dO and dK += dSᵀ·Q, each lane owning D/32 vec4s of every key row.
// Needs subgroup size 8. Deterministic: no atomics.
enable subgroups;
// Loop bounds derive from local_invocation_id.y, which a subgroup's 8 lanes share.
diagnostic(off, subgroup_uniformity);

override CAUSAL: bool = false;
override HAS_MASK: bool = false;
override D: u32 = 64;
// One subgroup per workgroup: at the trainer's short sequences (L = 32–64) 4 subgroups a workgroup
// left rows idle (half of them at L = 32); measured +20–60% there on lavapipe, the same at L = 1024.
override WG_Y: u32 = 1;

// 8 key rows, not the 16 query rows of the forward and dQ kernels: this kernel keeps two
// accumulators (dK, dV) per row, and at 16 rows they spill (measured on lavapipe at L = 1024,
// d = 64: 16 GFLOP/s with 16 rows, 22 with 8, 11 with 4).
const TK = 8u;
const MAX_OWN = 2u;

struct Params {
  bh: u32,
  heads: u32,
  lq: u32,
  lk: u32,
  d: u32,
  scale: f32,
  // (offset, batch stride, head stride, row stride), in floats.
  q_layout: vec4u,
  k_layout: vec4u,
  v_layout: vec4u,
  d_o_layout: vec4u,
  d_k_layout: vec4u,
  d_v_layout: vec4u,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> delta: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> d_o: array<vec4<f32>>;
// dK and dV in their layouts, through one binding (as in attention_bwd_dkv).
@group(0) @binding(8) var<storage, read_write> d_kv: array<vec4<f32>>;

// Float index of element (h, row, 0) of a tensor in layout l; here every offset and stride is a
// multiple of 4 (the wrapper checks), so a quarter of it indexes the vec4 arrays.
fn row_at(l: vec4u, h: u32, row: u32) -> u32 {
  return l.x + (h / p.heads) * l.y + (h % p.heads) * l.z + row * l.w;
}

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let d4 = D / 4u;
  let own = D / 32u;
  let h = wg.y;
  let col0 = (wg.x * WG_Y + lid.y) * TK;
  let q_base = row_at(p.q_layout, h, 0u) / 4u;
  let g_base = row_at(p.d_o_layout, h, 0u) / 4u;
  let q_sr = p.q_layout.w / 4u;
  let g_sr = p.d_o_layout.w / 4u;
  let mask_base = (h / p.heads) * p.lk;

  var key_ok: array<bool, TK>;
  for (var r = 0u; r < TK; r++) {
    let col = min(col0 + r, p.lk - 1u);
    key_ok[r] = col0 + r < p.lk && (!HAS_MASK || mask[mask_base + col] != 0u);
  }
  var dk: array<vec4<f32>, TK * MAX_OWN>;
  var dv: array<vec4<f32>, TK * MAX_OWN>;

  var start = 0u;
  if (CAUSAL) {
    start = col0;
  }
  for (var i0 = start; i0 < p.lq; i0 += 32u) {
    // This lane's 4 queries, clamped for loading.
    let il = i0 + 4u * lane;
    var qrow: array<u32, 4>;
    var grow: array<u32, 4>;
    var q_ok: vec4<bool>;
    var q_lse: vec4<f32>;
    var q_delta: vec4<f32>;
    for (var ii = 0u; ii < 4u; ii++) {
      let i = min(il + ii, p.lq - 1u);
      qrow[ii] = q_base + i * q_sr;
      grow[ii] = g_base + i * g_sr;
      q_ok[ii] = il + ii < p.lq;
      q_lse[ii] = lse[h * p.lq + i];
      q_delta[ii] = delta[h * p.lq + i];
    }

    // 1. Sᵀ and dPᵀ. (Initialised explicitly: a bare `var` in a loop body kept the previous
    // iteration's values on lavapipe.)
    var s = array<vec4<f32>, TK>();
    var dp = array<vec4<f32>, TK>();
    for (var c0 = 0u; c0 < d4; c0 += 8u) {
      var kv: array<vec4<f32>, TK>;
      var vv: array<vec4<f32>, TK>;
      for (var r = 0u; r < TK; r++) {
        let col = min(col0 + r, p.lk - 1u);
        kv[r] = k[row_at(p.k_layout, h, col) / 4u + c0 + lane];
        vv[r] = v[row_at(p.v_layout, h, col) / 4u + c0 + lane];
      }
      for (var t = 0u; t < 8u; t++) {
        let q0 = q[qrow[0] + c0 + t];
        let q1 = q[qrow[1] + c0 + t];
        let q2 = q[qrow[2] + c0 + t];
        let q3 = q[qrow[3] + c0 + t];
        let g0 = d_o[grow[0] + c0 + t];
        let g1 = d_o[grow[1] + c0 + t];
        let g2 = d_o[grow[2] + c0 + t];
        let g3 = d_o[grow[3] + c0 + t];
        for (var r = 0u; r < TK; r++) {
          let a = subgroupShuffle(kv[r], t);
          let b = subgroupShuffle(vv[r], t);
          s[r] += vec4(dot(a, q0), dot(a, q1), dot(a, q2), dot(a, q3));
          dp[r] += vec4(dot(b, g0), dot(b, g1), dot(b, g2), dot(b, g3));
        }
      }
    }

    // 2. Pᵀ and dSᵀ (s keeps Pᵀ, dp becomes dSᵀ).
    for (var r = 0u; r < TK; r++) {
      var ok = q_ok & vec4(key_ok[r]);
      if (CAUSAL) {
        ok = ok & (vec4(il) + vec4(0u, 1u, 2u, 3u) >= vec4(col0 + r));
      }
      let prob = select(vec4(0.0), exp(s[r] * p.scale - q_lse), ok);
      s[r] = prob;
      dp[r] = prob * (dp[r] - q_delta);
    }

    // 3. dV += Pᵀ·dO, dK += dSᵀ·Q.
    for (var src = 0u; src < 8u; src++) {
      var wp: array<vec4<f32>, TK>;
      var ws: array<vec4<f32>, TK>;
      for (var r = 0u; r < TK; r++) {
        wp[r] = subgroupShuffle(s[r], src);
        ws[r] = subgroupShuffle(dp[r], src);
      }
      for (var ii = 0u; ii < 4u; ii++) {
        let i = min(i0 + 4u * src + ii, p.lq - 1u);
        let qr = q_base + i * q_sr + lane * own;
        let gr = g_base + i * g_sr + lane * own;
        for (var e = 0u; e < own; e++) {
          let g = d_o[gr + e];
          let qq = q[qr + e];
          for (var r = 0u; r < TK; r++) {
            dv[r * MAX_OWN + e] = fma(vec4(wp[r][ii]), g, dv[r * MAX_OWN + e]);
            dk[r * MAX_OWN + e] = fma(vec4(ws[r][ii]), qq, dk[r * MAX_OWN + e]);
          }
        }
      }
    }
  }

  for (var r = 0u; r < TK; r++) {
    let col = col0 + r;
    if (col < p.lk) {
      let dk_at = row_at(p.d_k_layout, h, col) / 4u + lane * own;
      let dv_at = row_at(p.d_v_layout, h, col) / 4u + lane * own;
      for (var e = 0u; e < own; e++) {
        d_kv[dk_at + e] = dk[r * MAX_OWN + e] * p.scale;
        d_kv[dv_at + e] = dv[r * MAX_OWN + e];
      }
    }
  }
}
