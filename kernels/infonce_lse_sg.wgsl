// InfoNCE statistics of the rows of Z = scale·X·Yᵀ for CPU-like adapters (lavapipe); same
// contract as infonce_lse: for each row i of X (nx × d) against every row of Y (ny × d), the
// log-sum-exp lse_i = log Σ_j exp(z_ij) and the target logit z_i,t(i). d % 32 == 0.
//
// A subgroup of 8 lanes owns 16 rows of X and walks the rows of Y 32 at a time (4 per lane), as
// phases 1–2 of attention_fwd_sg:
//   1. S = X·Yᵀ for 16 rows × 32 keys: lane i computes its own 4 keys; X's vec4s along d are
//      loaded 8 at a time (one per lane) and handed round with subgroupShuffle, chunk by chunk.
//   2. Online log-sum-exp: the row max over the 32 keys with subgroupMax; each lane keeps a
//      partial row sum (and the target logit if one of its keys is the target), added across
//      lanes at the end.
// Z is never stored. Needs subgroup size 8.
enable subgroups;
// The loop bounds derive from uniforms and constants only, and every branch around a subgroup
// operation depends on local_invocation_id.y, which the 8 lanes of a subgroup share (workgroup
// 8 × WG_Y, subgroups of 8): the control flow is subgroup-uniform; the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

override WG_Y: u32 = 4;

const TR = 16u;
const NEG = -3.0e38;

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(6) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> target_logit: array<f32>;

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  // d is a uniform, not an override: one pipeline serves every d (each compile takes seconds).
  let d4 = p.d / 4u;
  let scale = exp(logit_scale[0]);
  let row0 = (wg.x * WG_Y + lid.y) * TR;

  // Rows past nx are clamped for loading and never written.
  var xrow: array<u32, TR>;
  var tgt: array<u32, TR>;
  var m: array<f32, TR>;
  var l: array<f32, TR>;
  var zt: array<f32, TR>;
  for (var r = 0u; r < TR; r++) {
    let row = min(row0 + r, p.nx - 1u);
    xrow[r] = row * d4;
    tgt[r] = targets[row];
    m[r] = NEG;
    l[r] = 0.0;
    zt[r] = 0.0;
  }

  for (var j0 = 0u; j0 < p.ny; j0 += 32u) {
    // This lane's 4 keys, clamped for loading; validity decides their weight.
    let jl = j0 + 4u * lane;
    let keys = vec4(jl) + vec4(0u, 1u, 2u, 3u);
    let key_ok = keys < vec4(p.ny);
    let last = p.ny - 1u;
    let yrow = min(keys, vec4(last)) * d4;

    // 1. Scores. (Initialised explicitly: a bare `var` in a loop body kept the previous
    // iteration's values on lavapipe.)
    var s = array<vec4<f32>, TR>();
    for (var c0 = 0u; c0 < d4; c0 += 8u) {
      var xv = array<vec4<f32>, TR>();
      for (var r = 0u; r < TR; r++) {
        xv[r] = x[xrow[r] + c0 + lane];
      }
      for (var t = 0u; t < 8u; t++) {
        let y0 = y[yrow[0] + c0 + t];
        let y1 = y[yrow[1] + c0 + t];
        let y2 = y[yrow[2] + c0 + t];
        let y3 = y[yrow[3] + c0 + t];
        for (var r = 0u; r < TR; r++) {
          let a = subgroupShuffle(xv[r], t);
          s[r] += vec4(dot(a, y0), dot(a, y1), dot(a, y2), dot(a, y3));
        }
      }
    }

    // 2. Online log-sum-exp.
    for (var r = 0u; r < TR; r++) {
      let z = select(vec4(NEG), s[r] * scale, key_ok);
      zt[r] += dot(select(vec4(0.0), z, (keys == vec4(tgt[r])) & key_ok), vec4(1.0));
      let m_new = max(m[r], subgroupMax(max(max(z.x, z.y), max(z.z, z.w))));
      let w = select(vec4(0.0), exp(z - m_new), key_ok);
      l[r] = l[r] * exp(m[r] - m_new) + (w.x + w.y + w.z + w.w);
      m[r] = m_new;
    }
  }

  for (var r = 0u; r < TR; r++) {
    let total = subgroupAdd(l[r]);
    let zt_row = subgroupAdd(zt[r]);
    let row = row0 + r;
    if (row < p.nx && lane == 0u) {
      lse[row] = m[r] + log(total);
      target_logit[row] = zt_row;
    }
  }
}
