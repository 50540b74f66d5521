// Flash attention backward, dQ, for CPU-like adapters; head dim D ∈ {32, 64}. Same contract as
// attention_bwd_dq (layouts, also writes D_i = dO_i·O_i to `delta` for attention_bwd_dkv_sg), with
// rows read and written as vec4s: every layout's offset and strides must be multiples of 4.
//
// A subgroup of 8 lanes owns 16 query rows and walks the keys 32 at a time (4 per lane):
//   1. S = Q·Kᵀ and dP = dO·Vᵀ for 16 rows × 32 keys, Q's and dO's vec4s handed round with
//      subgroupShuffle (as in attention_fwd_sg);
//   2. dS = P ∘ (dP − D_i) with P = exp(scale·S − LSE_i) recomputed from the saved LSE;
//   3. dQ += dS·K, each lane owning D/32 vec4s of every row.
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

const TQ = 16u;
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
  o_layout: vec4u,
  d_o_layout: vec4u,
  d_q_layout: vec4u,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> d_o: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> d_q: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;

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
  let row0 = (wg.x * WG_Y + lid.y) * TQ;
  let k_base = row_at(p.k_layout, h, 0u) / 4u;
  let v_base = row_at(p.v_layout, h, 0u) / 4u;
  let k_sr = p.k_layout.w / 4u;
  let v_sr = p.v_layout.w / 4u;
  let mask_base = (h / p.heads) * p.lk;

  var qrow: array<u32, TQ>;
  var row_lse: array<f32, TQ>;
  var row_delta: array<f32, TQ>;
  for (var r = 0u; r < TQ; r++) {
    let row = min(row0 + r, p.lq - 1u);
    qrow[r] = row_at(p.q_layout, h, row) / 4u;
    // A row with no visible key has LSE = -inf; its P is 0 below, never exp(+inf).
    row_lse[r] = lse[h * p.lq + row];
    let g_at = row_at(p.d_o_layout, h, row) / 4u + lane * own;
    let o_at = row_at(p.o_layout, h, row) / 4u + lane * own;
    var part = 0.0;
    for (var e = 0u; e < own; e++) {
      part += dot(d_o[g_at + e], o[o_at + e]);
    }
    row_delta[r] = subgroupAdd(part);
  }
  var acc: array<vec4<f32>, TQ * MAX_OWN>;

  var end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, row0 + TQ);
  }
  for (var j0 = 0u; j0 < end; j0 += 32u) {
    let jl = j0 + 4u * lane;
    var krow: array<u32, 4>;
    var vrow: array<u32, 4>;
    var key_ok: vec4<bool>;
    for (var jj = 0u; jj < 4u; jj++) {
      let j = jl + jj;
      krow[jj] = k_base + min(j, p.lk - 1u) * k_sr;
      vrow[jj] = v_base + min(j, p.lk - 1u) * v_sr;
      var ok = j < p.lk;
      if (HAS_MASK) {
        ok = ok && mask[mask_base + min(j, p.lk - 1u)] != 0u;
      }
      key_ok[jj] = ok;
    }

    // 1. S and dP. (Initialised explicitly: a bare `var` in a loop body kept the previous
    // iteration's values on lavapipe.)
    var s = array<vec4<f32>, TQ>();
    var dp = array<vec4<f32>, TQ>();
    for (var c0 = 0u; c0 < d4; c0 += 8u) {
      var qv: array<vec4<f32>, TQ>;
      var gv: array<vec4<f32>, TQ>;
      for (var r = 0u; r < TQ; r++) {
        qv[r] = q[qrow[r] + c0 + lane];
        gv[r] = d_o[row_at(p.d_o_layout, h, min(row0 + r, p.lq - 1u)) / 4u + c0 + lane];
      }
      for (var t = 0u; t < 8u; t++) {
        let k0 = k[krow[0] + c0 + t];
        let k1 = k[krow[1] + c0 + t];
        let k2 = k[krow[2] + c0 + t];
        let k3 = k[krow[3] + c0 + t];
        let v0 = v[vrow[0] + c0 + t];
        let v1 = v[vrow[1] + c0 + t];
        let v2 = v[vrow[2] + c0 + t];
        let v3 = v[vrow[3] + c0 + t];
        for (var r = 0u; r < TQ; r++) {
          let a = subgroupShuffle(qv[r], t);
          let g = subgroupShuffle(gv[r], t);
          s[r] += vec4(dot(a, k0), dot(a, k1), dot(a, k2), dot(a, k3));
          dp[r] += vec4(dot(g, v0), dot(g, v1), dot(g, v2), dot(g, v3));
        }
      }
    }

    // 2. dS = P ∘ (dP − D).
    for (var r = 0u; r < TQ; r++) {
      var ok = key_ok;
      if (CAUSAL) {
        ok = ok & (vec4(jl) + vec4(0u, 1u, 2u, 3u) <= vec4(row0 + r));
      }
      let prob = select(vec4(0.0), exp(s[r] * p.scale - row_lse[r]), ok);
      s[r] = prob * (dp[r] - row_delta[r]);
    }

    // 3. dQ += dS·K.
    for (var src = 0u; src < 8u; src++) {
      var w: array<vec4<f32>, TQ>;
      for (var r = 0u; r < TQ; r++) {
        w[r] = subgroupShuffle(s[r], src);
      }
      for (var jj = 0u; jj < 4u; jj++) {
        let kr = k_base + min(j0 + 4u * src + jj, p.lk - 1u) * k_sr + lane * own;
        for (var e = 0u; e < own; e++) {
          let kk = k[kr + e];
          for (var r = 0u; r < TQ; r++) {
            acc[r * MAX_OWN + e] = fma(vec4(w[r][jj]), kk, acc[r * MAX_OWN + e]);
          }
        }
      }
    }
  }

  for (var r = 0u; r < TQ; r++) {
    let row = row0 + r;
    if (row < p.lq) {
      let dq_at = row_at(p.d_q_layout, h, row) / 4u + lane * own;
      for (var e = 0u; e < own; e++) {
        d_q[dq_at + e] = acc[r * MAX_OWN + e] * p.scale;
      }
      if (lane == 0u) {
        delta[h * p.lq + row] = row_delta[r];
      }
    }
  }
}
