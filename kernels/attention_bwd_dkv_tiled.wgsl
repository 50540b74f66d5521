// Flash attention backward, dK and dV, workgroup-memory tiled variant (for GPUs): the contract of
// attention_bwd_dkv (layouts, dK and dV through `d_kv`; reads D_i from `delta`; any d ≤ 256; no
// atomics), with the queries staged through workgroup memory: the 64 invocations of a workgroup
// own 64 key rows and load each tile of min(64, TILE_FLOATS / d) queries (Q, dO, their LSE and D)
// once, together.
//   P_ij = exp(scale·q_i·k_j − LSE_i),  dP_ij = dO_i·v_j
//   dV_j = Σ_i P_ij dO_i,   dK_j = scale · Σ_i P_ij (dP_ij − D_i) q_i
// Q and dO tiles of 1984 floats each plus 64 LSE and 64 D: 16 KiB, WebGPU's minimum
// maxComputeWorkgroupStorageSize.

override CAUSAL: bool = false;
override HAS_MASK: bool = false;

const MAX_D = 256u;
const TILE_FLOATS = 1984u;
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
@group(0) @binding(8) var<storage, read_write> d_kv: array<f32>;

// Float index of element (h, row, 0) of a tensor in layout l.
fn row_at(l: vec4u, h: u32, row: u32) -> u32 {
  return l.x + (h / p.heads) * l.y + (h % p.heads) * l.z + row * l.w;
}

var<workgroup> q_tile: array<f32, TILE_FLOATS>;
var<workgroup> do_tile: array<f32, TILE_FLOATS>;
var<workgroup> lse_tile: array<f32, ROWS>;
var<workgroup> delta_tile: array<f32, ROWS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let h = wg.y;
  let first = wg.x * ROWS;
  let col = first + lid.x;
  // Keys past Lk still load tiles and reach every barrier; they write nothing.
  let c_ = min(col, p.lk - 1u);
  let k_at = row_at(p.k_layout, h, c_);
  let v_at = row_at(p.v_layout, h, c_);
  let q_at = row_at(p.q_layout, h, 0u);
  let do_at = row_at(p.d_o_layout, h, 0u);
  let visible = col < p.lk && (!HAS_MASK || mask[(h / p.heads) * p.lk + c_] != 0u);
  let tq = min(ROWS, TILE_FLOATS / p.d);
  // Queries any key of this workgroup is seen by (uniform: the barriers sit inside this loop).
  var start = 0u;
  var row_start = 0u;
  if (CAUSAL) {
    start = first;
    row_start = col;
  }
  var dk: array<f32, MAX_D>;
  var dv: array<f32, MAX_D>;
  for (var i0 = start; i0 < p.lq; i0 += tq) {
    let rows = min(tq, p.lq - i0);
    for (var t = lid.x; t < rows * p.d; t += ROWS) {
      let i = i0 + t / p.d;
      q_tile[t] = q[q_at + i * p.q_layout.w + t % p.d];
      do_tile[t] = d_o[do_at + i * p.d_o_layout.w + t % p.d];
    }
    if (lid.x < rows) {
      lse_tile[lid.x] = lse[h * p.lq + i0 + lid.x];
      delta_tile[lid.x] = delta[h * p.lq + i0 + lid.x];
    }
    workgroupBarrier();
    if (visible) {
      for (var i = max(i0, row_start); i < i0 + rows; i++) {
        let at = (i - i0) * p.d;
        var s = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < p.d; c++) {
          s = fma(q_tile[at + c], k[k_at + c], s);
          dp = fma(do_tile[at + c], v[v_at + c], dp);
        }
        let prob = exp(s * p.scale - lse_tile[i - i0]);
        let ds = prob * (dp - delta_tile[i - i0]);
        for (var c = 0u; c < p.d; c++) {
          dv[c] = fma(prob, do_tile[at + c], dv[c]);
          dk[c] = fma(ds, q_tile[at + c], dk[c]);
        }
      }
    }
    workgroupBarrier();
  }
  if (col >= p.lk) {
    return;
  }
  let dk_at = row_at(p.d_k_layout, h, col);
  let dv_at = row_at(p.d_v_layout, h, col);
  for (var c = 0u; c < p.d; c++) {
    d_kv[dk_at + c] = dk[c] * p.scale;
    d_kv[dv_at + c] = dv[c];
  }
}
