// Flash attention backward, dQ, workgroup-memory tiled variant (for GPUs): the contract of
// attention_bwd_dq (layouts; writes dQ and D_i = dO_i·O_i to `delta`; any d ≤ 256; no atomics),
// with the keys and values staged through workgroup memory as in attention_fwd_tiled: 64 query
// rows per workgroup share each tile of min(64, TILE_FLOATS / d) keys.
//   P_ij = exp(scale·q_i·k_j − LSE_i),  dP_ij = dO_i·v_j,  dQ_i = scale · Σ_j P_ij (dP_ij − D_i) k_j

override CAUSAL: bool = false;
override HAS_MASK: bool = false;

const MAX_D = 256u;
const TILE_FLOATS = 2048u;
const ROWS = 64u;

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

var<workgroup> k_tile: array<f32, TILE_FLOATS>;
var<workgroup> v_tile: array<f32, TILE_FLOATS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let h = wg.y;
  let first = wg.x * ROWS;
  let row = first + lid.x;
  // Rows past Lq still load tiles and reach every barrier; they write nothing.
  let r = min(row, p.lq - 1u);
  let q_at = row_at(p.q_layout, h, r);
  let do_at = row_at(p.d_o_layout, h, r);
  let o_at = row_at(p.o_layout, h, r);
  let k_at = row_at(p.k_layout, h, 0u);
  let v_at = row_at(p.v_layout, h, 0u);
  let mask_at = (h / p.heads) * p.lk;
  let row_lse = lse[h * p.lq + r];
  var big_d = 0.0;
  for (var c = 0u; c < p.d; c++) {
    big_d = fma(d_o[do_at + c], o[o_at + c], big_d);
  }
  let tk = min(64u, TILE_FLOATS / p.d);
  var end = p.lk;
  var row_end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, min(first + ROWS, p.lq));
    row_end = min(p.lk, r + 1u);
  }
  var acc: array<f32, MAX_D>;
  for (var j0 = 0u; j0 < end; j0 += tk) {
    let n = min(tk, p.lk - j0) * p.d;
    for (var t = lid.x; t < n; t += ROWS) {
      let j = j0 + t / p.d;
      k_tile[t] = k[k_at + j * p.k_layout.w + t % p.d];
      v_tile[t] = v[v_at + j * p.v_layout.w + t % p.d];
    }
    workgroupBarrier();
    let j_end = min(j0 + tk, row_end);
    for (var j = j0; j < j_end; j++) {
      if (HAS_MASK && mask[mask_at + j] == 0u) {
        continue;
      }
      let at = (j - j0) * p.d;
      var s = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < p.d; c++) {
        s = fma(q[q_at + c], k_tile[at + c], s);
        dp = fma(d_o[do_at + c], v_tile[at + c], dp);
      }
      let ds = exp(s * p.scale - row_lse) * (dp - big_d);
      for (var c = 0u; c < p.d; c++) {
        acc[c] = fma(ds, k_tile[at + c], acc[c]);
      }
    }
    workgroupBarrier();
  }
  if (row >= p.lq) {
    return;
  }
  delta[h * p.lq + row] = big_d;
  let dq_at = row_at(p.d_q_layout, h, row);
  for (var c = 0u; c < p.d; c++) {
    d_q[dq_at + c] = acc[c] * p.scale;
  }
}
