// Flash attention backward, dK and dV, portable variant (one invocation per key row). Walks the
// queries that see key j, recomputing each probability from the saved log-sum-exp:
//   P_ij = exp(scale·q_i·k_j − LSE_i),  dP_ij = dO_i·v_j,  D_i = dO_i·O_i
//   dV_j = Σ_i P_ij dO_i,   dK_j = scale · Σ_i P_ij (dP_ij − D_i) q_i
// D_i comes from attention_bwd_dq (`delta`). Layouts (each of Q, K, V, dO, dK, dV its own; dK and
// dV share the buffer `d_kv`, of which only their elements are written), masks and causality as
// attention_fwd. Any d ≤ 256. Deterministic: no atomics.

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
  d_o_layout: vec4u,
  d_k_layout: vec4u,
  d_v_layout: vec4u,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> delta: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> d_o: array<f32>;
// dK and dV in their layouts, through one binding: WebGPU allows no second binding of a written
// buffer, and the fused layout puts both (with dQ) in one.
@group(0) @binding(8) var<storage, read_write> d_kv: array<f32>;

// Float index of element (h, row, 0) of a tensor in layout l.
fn row_at(l: vec4u, h: u32, row: u32) -> u32 {
  return l.x + (h / p.heads) * l.y + (h % p.heads) * l.z + row * l.w;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let h = gid.y;
  if (col >= p.lk || h >= p.bh) {
    return;
  }
  let k_at = row_at(p.k_layout, h, col);
  let v_at = row_at(p.v_layout, h, col);
  let q_at = row_at(p.q_layout, h, 0u);
  let do_at = row_at(p.d_o_layout, h, 0u);
  var dk: array<f32, MAX_D>;
  var dv: array<f32, MAX_D>;
  let visible = !HAS_MASK || mask[(h / p.heads) * p.lk + col] != 0u;
  var start = 0u;
  if (CAUSAL) {
    start = col;
  }
  if (visible) {
    for (var i = start; i < p.lq; i++) {
      let qi = q_at + i * p.q_layout.w;
      let gi = do_at + i * p.d_o_layout.w;
      var s = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < p.d; c++) {
        s = fma(q[qi + c], k[k_at + c], s);
        dp = fma(d_o[gi + c], v[v_at + c], dp);
      }
      let prob = exp(s * p.scale - lse[h * p.lq + i]);
      let ds = prob * (dp - delta[h * p.lq + i]);
      for (var c = 0u; c < p.d; c++) {
        dv[c] = fma(prob, d_o[gi + c], dv[c]);
        dk[c] = fma(ds, q[qi + c], dk[c]);
      }
    }
  }
  let dk_at = row_at(p.d_k_layout, h, col);
  let dv_at = row_at(p.d_v_layout, h, col);
  for (var c = 0u; c < p.d; c++) {
    d_kv[dk_at + c] = dk[c] * p.scale;
    d_kv[dv_at + c] = dv[c];
  }
}
