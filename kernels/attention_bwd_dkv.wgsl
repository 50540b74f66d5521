// Flash attention backward, dK and dV, portable variant (one invocation per key row). Walks the
// queries that see key j, recomputing each probability from the saved log-sum-exp:
//   P_ij = exp(scale·q_i·k_j − LSE_i),  dP_ij = dO_i·v_j,  D_i = dO_i·O_i
//   dV_j = Σ_i P_ij dO_i,   dK_j = scale · Σ_i P_ij (dP_ij − D_i) q_i
// D_i comes from attention_bwd_dq (`delta`). Layout, masks and causality as attention_fwd. Any d ≤ 256. Deterministic: no atomics.

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> delta: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> d_o: array<f32>;
@group(0) @binding(8) var<storage, read_write> d_k: array<f32>;
@group(0) @binding(9) var<storage, read_write> d_v: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let h = gid.y;
  if (col >= p.lk || h >= p.bh) {
    return;
  }
  let kv_at = (h * p.lk + col) * p.d;
  var dk: array<f32, MAX_D>;
  var dv: array<f32, MAX_D>;
  let visible = !HAS_MASK || mask[(h / p.heads) * p.lk + col] != 0u;
  var start = 0u;
  if (CAUSAL) {
    start = col;
  }
  if (visible) {
    for (var i = start; i < p.lq; i++) {
      let q_at = (h * p.lq + i) * p.d;
      var s = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < p.d; c++) {
        s = fma(q[q_at + c], k[kv_at + c], s);
        dp = fma(d_o[q_at + c], v[kv_at + c], dp);
      }
      let prob = exp(s * p.scale - lse[h * p.lq + i]);
      let ds = prob * (dp - delta[h * p.lq + i]);
      for (var c = 0u; c < p.d; c++) {
        dv[c] = fma(prob, d_o[q_at + c], dv[c]);
        dk[c] = fma(ds, q[q_at + c], dk[c]);
      }
    }
  }
  for (var c = 0u; c < p.d; c++) {
    d_k[kv_at + c] = dk[c] * p.scale;
    d_v[kv_at + c] = dv[c];
  }
}
