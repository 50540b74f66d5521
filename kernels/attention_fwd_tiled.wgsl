// Flash attention forward, workgroup-memory tiled variant (for GPUs): the contract of
// attention_fwd (layouts, masks, causality, O and LSE, any d ≤ 256), with the keys and values
// staged through workgroup memory. The 64 invocations of a workgroup own 64 query rows; they load
// each tile of keys and values once, together, and every row reads it from there: a GPU's
// shared memory serves the 64 rows instead of 64 trips to global memory. (On lavapipe workgroup
// memory is no faster than the cache: there the subgroup variant wins.)
//
// A tile holds TILE_FLOATS floats of K and as many of V (16 KiB together, WebGPU's minimum
// maxComputeWorkgroupStorageSize): min(64, TILE_FLOATS / d) keys.

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

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
  let k_at = row_at(p.k_layout, h, 0u);
  let v_at = row_at(p.v_layout, h, 0u);
  let mask_at = (h / p.heads) * p.lk;
  let tk = min(64u, TILE_FLOATS / p.d);
  // Keys any row of this workgroup sees (uniform: the barriers sit inside this loop), and this row's.
  var end = p.lk;
  var row_end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, min(first + ROWS, p.lq));
    row_end = min(p.lk, r + 1u);
  }
  var acc: array<f32, MAX_D>;
  var m = -3.0e38;
  var l = 0.0;
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
      for (var c = 0u; c < p.d; c++) {
        s = fma(q[q_at + c], k_tile[at + c], s);
      }
      s *= p.scale;
      let m_new = max(m, s);
      let correction = exp(m - m_new);
      let weight = exp(s - m_new);
      l = l * correction + weight;
      for (var c = 0u; c < p.d; c++) {
        acc[c] = fma(acc[c], correction, weight * v_tile[at + c]);
      }
      m = m_new;
    }
    workgroupBarrier();
  }
  if (row >= p.lq) {
    return;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let o_at = row_at(p.o_layout, h, row);
  for (var c = 0u; c < p.d; c++) {
    o[o_at + c] = acc[c] * inv;
  }
  // -inf must come from a runtime value: WGSL rejects an infinite constant.
  let neg_inf = bitcast<f32>(0xff800000u | (row & 0u));
  lse[h * p.lq + row] = select(neg_inf, m + log(l), l > 0.0);
}
