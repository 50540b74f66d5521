// Flash attention backward, dQ, portable variant (one invocation per query row). Recomputes the
// probabilities from the saved log-sum-exp instead of storing them:
//   P_ij = exp(scale·q_i·k_j − LSE_i),  dP_ij = dO_i·v_j,  D_i = dO_i·O_i
//   dQ_i = scale · Σ_j P_ij (dP_ij − D_i) k_j
// Writes D_i to `delta` for attention_bwd_dkv, which runs after it.
// Layouts (each of Q, K, V, O, dO, dQ its own; only dQ's elements are written), masks and
// causality as attention_fwd; delta [BH, Lq] contiguous. Any d ≤ 256. Deterministic: no atomics.

override CAUSAL: bool = false;
override HAS_MASK: bool = false;

const MAX_D = 256u;

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
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> o: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> d_o: array<f32>;
@group(0) @binding(8) var<storage, read_write> d_q: array<f32>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;

// Float index of element (h, row, 0) of a tensor in layout l.
fn row_at(l: vec4u, h: u32, row: u32) -> u32 {
  return l.x + (h / p.heads) * l.y + (h % p.heads) * l.z + row * l.w;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  let h = gid.y;
  if (row >= p.lq || h >= p.bh) {
    return;
  }
  let q_at = row_at(p.q_layout, h, row);
  let o_at = row_at(p.o_layout, h, row);
  let do_at = row_at(p.d_o_layout, h, row);
  let k_at = row_at(p.k_layout, h, 0u);
  let v_at = row_at(p.v_layout, h, 0u);
  let mask_at = (h / p.heads) * p.lk;
  let row_lse = lse[h * p.lq + row];
  var big_d = 0.0;
  for (var c = 0u; c < p.d; c++) {
    big_d = fma(d_o[do_at + c], o[o_at + c], big_d);
  }
  delta[h * p.lq + row] = big_d;
  var acc: array<f32, MAX_D>;
  var end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, row + 1u);
  }
  for (var j = 0u; j < end; j++) {
    if (HAS_MASK && mask[mask_at + j] == 0u) {
      continue;
    }
    var s = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < p.d; c++) {
      s = fma(q[q_at + c], k[k_at + j * p.k_layout.w + c], s);
      dp = fma(d_o[do_at + c], v[v_at + j * p.v_layout.w + c], dp);
    }
    let ds = exp(s * p.scale - row_lse) * (dp - big_d);
    for (var c = 0u; c < p.d; c++) {
      acc[c] = fma(ds, k[k_at + j * p.k_layout.w + c], acc[c]);
    }
  }
  let dq_at = row_at(p.d_q_layout, h, row);
  for (var c = 0u; c < p.d; c++) {
    d_q[dq_at + c] = acc[c] * p.scale;
  }
}
