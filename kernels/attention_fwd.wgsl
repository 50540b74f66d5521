// Flash attention forward, portable variant: O = softmax(scale·Q·Kᵀ + mask)·V per (batch·head),
// with the log-sum-exp of each row saved for the backward pass. Online softmax: the Lq×Lk score
// matrix is never stored; each invocation walks the keys of one query row keeping a running max m,
// a running sum l and the unnormalised output. Memory: O(L·d).
//
// Layout: heads are batch-major, h = b·heads + hd over BH = B·heads. Element (h, row, c) of X in
// {Q, K, V, O} is at X_layout.x + b·X_layout.y + hd·X_layout.z + row·X_layout.w + c (offset,
// batch, head and row strides in floats; c contiguous), so both contiguous [BH, L, d] tensors and
// the column blocks of a fused [B, L, 3·heads·d] projection (O: [B, L, heads·d]) are layouts;
// only O's elements are written. Rows of Q, O: Lq; of K, V: Lk. LSE [BH, Lq] contiguous; mask
// [B, Lk] (u32, 0 = padding key). CAUSAL: query i sees keys j ≤ i. Any d ≤ 256.
// A row with no visible key gets O = 0 and LSE = -inf.

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  let h = gid.y;
  if (row >= p.lq || h >= p.bh) {
    return;
  }
  let q_at = row_at(p.q_layout, h, row);
  let k_at = row_at(p.k_layout, h, 0u);
  let v_at = row_at(p.v_layout, h, 0u);
  let mask_at = (h / p.heads) * p.lk;
  var acc: array<f32, MAX_D>;
  var m = -3.0e38;
  var l = 0.0;
  var end = p.lk;
  if (CAUSAL) {
    end = min(p.lk, row + 1u);
  }
  for (var j = 0u; j < end; j++) {
    if (HAS_MASK && mask[mask_at + j] == 0u) {
      continue;
    }
    var s = 0.0;
    for (var c = 0u; c < p.d; c++) {
      s = fma(q[q_at + c], k[k_at + j * p.k_layout.w + c], s);
    }
    s *= p.scale;
    let m_new = max(m, s);
    let correction = exp(m - m_new);
    let weight = exp(s - m_new);
    l = l * correction + weight;
    for (var c = 0u; c < p.d; c++) {
      acc[c] = fma(acc[c], correction, weight * v[v_at + j * p.v_layout.w + c]);
    }
    m = m_new;
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
