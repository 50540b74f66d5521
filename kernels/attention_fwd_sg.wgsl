// Flash attention forward for CPU-like adapters (lavapipe), head dim D ∈ {32, 64}; same contract
// as attention_fwd (layouts, masks, causality, LSE; a row with no visible key gets O = 0, LSE = -inf),
// with rows read and written as vec4s: every layout's offset and strides must be multiples of 4.
//
// A subgroup of 8 lanes owns 16 query rows and walks the keys 32 at a time, in three steps that
// are each shaped like the register-blocked matmul (kernels/matmul_sg_bt.wgsl):
//   1. S = scale·Q·Kᵀ for 16 rows × 32 keys: lane i computes its own 4 keys; Q's vec4s along d
//      are loaded once per lane and handed round with subgroupShuffle.
//   2. Online softmax: the row max over the 32 keys with subgroupMax; each lane keeps a partial
//      row sum, added across lanes at the end.
//   3. O += P·V: lane i owns D/32 vec4s of every output row; each lane's 4 probabilities per row
//      are handed round with subgroupShuffle.
// The 16×32 score block lives in registers only. Needs subgroup size 8.
enable subgroups;
// The loop bounds derive from local_invocation_id.y, which the 8 lanes of a subgroup share
// (workgroup 8 × WG_Y, subgroups of 8), so the shuffles inside them are in subgroup-uniform
// control flow; the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

override CAUSAL: bool = false;
override HAS_MASK: bool = false;
override D: u32 = 64;
// One subgroup per workgroup: at the trainer's short sequences (L = 32–64) 4 subgroups a workgroup
// left rows idle (half of them at L = 32); measured +20–60% there on lavapipe, the same at L = 1024.
override WG_Y: u32 = 1;

const TQ = 16u;
// vec4s of each output row per lane: D / 32 (so at most 2).
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

// Float index of element (h, row, 0) of a tensor in layout l; here every offset and stride is a
// multiple of 4 (the wrapper checks), so a quarter of it indexes the vec4 arrays.
fn row_at(l: vec4u, h: u32, row: u32) -> u32 {
  return l.x + (h / p.heads) * l.y + (h % p.heads) * l.z + row * l.w;
}

const NEG = -3.0e38;

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
  for (var r = 0u; r < TQ; r++) {
    qrow[r] = row_at(p.q_layout, h, min(row0 + r, p.lq - 1u)) / 4u;
  }
  var m: array<f32, TQ>;
  var l: array<f32, TQ>;
  for (var r = 0u; r < TQ; r++) {
    m[r] = NEG;
  }
  var acc: array<vec4<f32>, TQ * MAX_OWN>;

  var end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, row0 + TQ);
  }
  for (var j0 = 0u; j0 < end; j0 += 32u) {
    // This lane's 4 keys, clamped for loading; validity decides their weight.
    let jl = j0 + 4u * lane;
    var krow: array<u32, 4>;
    var key_ok: vec4<bool>;
    for (var jj = 0u; jj < 4u; jj++) {
      let j = jl + jj;
      krow[jj] = k_base + min(j, p.lk - 1u) * k_sr;
      var ok = j < p.lk;
      if (HAS_MASK) {
        ok = ok && mask[mask_base + min(j, p.lk - 1u)] != 0u;
      }
      key_ok[jj] = ok;
    }

    // 1. Scores. (Initialised explicitly: a bare `var` in a loop body kept the previous
    // iteration's values on lavapipe.)
    var s = array<vec4<f32>, TQ>();
    for (var c0 = 0u; c0 < d4; c0 += 8u) {
      var qv: array<vec4<f32>, TQ>;
      for (var r = 0u; r < TQ; r++) {
        qv[r] = q[qrow[r] + c0 + lane];
      }
      for (var t = 0u; t < 8u; t++) {
        let k0 = k[krow[0] + c0 + t];
        let k1 = k[krow[1] + c0 + t];
        let k2 = k[krow[2] + c0 + t];
        let k3 = k[krow[3] + c0 + t];
        for (var r = 0u; r < TQ; r++) {
          let a = subgroupShuffle(qv[r], t);
          s[r] += vec4(dot(a, k0), dot(a, k1), dot(a, k2), dot(a, k3));
        }
      }
    }

    // 2. Online softmax.
    for (var r = 0u; r < TQ; r++) {
      var ok = key_ok;
      if (CAUSAL) {
        ok = ok & (vec4(jl) + vec4(0u, 1u, 2u, 3u) <= vec4(row0 + r));
      }
      let x = select(vec4(NEG), s[r] * p.scale, ok);
      let m_new = max(m[r], subgroupMax(max(max(x.x, x.y), max(x.z, x.w))));
      let correction = exp(m[r] - m_new);
      let w = select(vec4(0.0), exp(x - m_new), ok);
      l[r] = l[r] * correction + (w.x + w.y + w.z + w.w);
      m[r] = m_new;
      for (var e = 0u; e < own; e++) {
        acc[r * MAX_OWN + e] *= correction;
      }
      s[r] = w;
    }

    // 3. O += P·V, 4 keys of one lane at a time.
    for (var src = 0u; src < 8u; src++) {
      var w: array<vec4<f32>, TQ>;
      for (var r = 0u; r < TQ; r++) {
        w[r] = subgroupShuffle(s[r], src);
      }
      for (var jj = 0u; jj < 4u; jj++) {
        let vrow = v_base + min(j0 + 4u * src + jj, p.lk - 1u) * v_sr + lane * own;
        for (var e = 0u; e < own; e++) {
          let vv = v[vrow + e];
          for (var r = 0u; r < TQ; r++) {
            acc[r * MAX_OWN + e] = fma(vec4(w[r][jj]), vv, acc[r * MAX_OWN + e]);
          }
        }
      }
    }
  }

  let neg_inf = bitcast<f32>(0xff800000u | (lane & 0u)); // runtime value: WGSL rejects an infinite constant
  for (var r = 0u; r < TQ; r++) {
    let total = subgroupAdd(l[r]);
    let row = row0 + r;
    if (row < p.lq) {
      let inv = select(0.0, 1.0 / total, total > 0.0);
      let o_at = row_at(p.o_layout, h, row) / 4u + lane * own;
      for (var e = 0u; e < own; e++) {
        o[o_at + e] = acc[r * MAX_OWN + e] * inv;
      }
      if (lane == 0u) {
        lse[h * p.lq + row] = select(neg_inf, m[r] + log(total), total > 0.0);
      }
    }
  }
}
