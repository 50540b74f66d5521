// InfoNCE gradient for the rows of X over one chunk of columns [c0, c0 + cn) of Z, for CPU-like
// adapters (lavapipe); d % 64 == 0. Same g_ij as infonce_grad_sg; called once per chunk in order:
//   1. S = X·Yᵀ for 16 rows × 32 keys at a time, as infonce_lse_sg;
//   2. scale·G from S and the saved statistics, stored to g_out (nx × stride, column j at j − c0)
//      for infonce_dy_sg, which forms dY = scale·Gᵀ·X from it: the scores are computed once for
//      both gradients. The rows' shares of ∂L/∂scale add up across chunks.
//   3. after the chunk's G is stored (one storageBarrier per chunk): dX += scale·G·Y, one 64-column
//      slice of d at a time, each lane owning 2 vec4s of the slice in every row, G read back (each
//      lane its own 4 keys) and handed round with subgroupShuffle. dx is loaded and stored once per
//      chunk and slice: accumulating block by block (as infonce_grad_sg) measured ~7% slower.
// c0 and the stride are multiples of 32. Needs subgroup size 8. Deterministic.
enable subgroups;
// The loop bounds derive from uniforms and constants only, and every branch around a subgroup
// operation depends on local_invocation_id.y, which the 8 lanes of a subgroup share (workgroup
// 8 × WG_Y, subgroups of 8): the control flow is subgroup-uniform; the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

override WG_Y: u32 = 4;

const TR = 16u;
// vec4s per lane of each 64-column chunk of dX in phase 3.
const OWN = 2u;

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
  wx: f32,
  wy: f32,
  c0: u32,
  cn: u32,
  stride: u32,
  first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(9) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lse_x: array<f32>;
@group(0) @binding(4) var<storage, read> targets_x: array<u32>;
@group(0) @binding(5) var<storage, read> lse_y: array<f32>;
@group(0) @binding(6) var<storage, read> targets_y: array<u32>;
@group(0) @binding(7) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dscale_rows: array<f32>;
@group(0) @binding(10) var<storage, read_write> g_out: array<vec4<f32>>;

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  // d is a uniform, not an override: one pipeline serves every d (each compile takes seconds).
  let d4 = p.d / 4u;
  // 8, as a value the compiler cannot fold: unrolling the loops over it made lavapipe's shader
  // compile take about twice as long, for no measurable speed (d >= 64 here).
  let eight = min(8u, p.d);
  let scale = exp(logit_scale[0]);
  let row0 = (wg.x * WG_Y + lid.y) * TR;
  // Rows of this subgroup that exist (the rest are computed on clamped rows, never stored).
  let rows = min(TR, p.nx - min(row0, p.nx));

  var xrow: array<u32, TR>;
  var row_lse: array<f32, TR>;
  var tgt: array<u32, TR>;
  var dscale: array<f32, TR>;
  for (var r = 0u; r < TR; r++) {
    let row = min(row0 + r, p.nx - 1u);
    xrow[r] = row * d4;
    row_lse[r] = lse_x[row];
    tgt[r] = targets_x[row];
    // Per lane until the end: lane 0 carries the earlier chunks' total.
    dscale[r] = select(0.0, dscale_rows[row], p.first == 0u && lane == 0u);
  }

  for (var j0 = p.c0; j0 < p.c0 + p.cn; j0 += 32u) {
    // This lane's 4 keys, clamped for loading; validity decides their weight.
    let jl = j0 + 4u * lane;
    let keys = vec4(jl) + vec4(0u, 1u, 2u, 3u);
    let key_ok = keys < vec4(p.ny);
    let kc = min(keys, vec4(p.ny - 1u));
    let yrow = kc * d4;

    // 1. Scores. (Initialised explicitly: a bare `var` in a loop body kept the previous
    // iteration's values on lavapipe.)
    var s = array<vec4<f32>, TR>();
    for (var c0 = 0u; c0 < d4; c0 += 8u) {
      var xv = array<vec4<f32>, TR>();
      for (var r = 0u; r < TR; r++) {
        xv[r] = x[xrow[r] + c0 + lane];
      }
      for (var t = 0u; t < eight; t++) {
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

    // 2. G (s becomes scale·G, the weights of phase 3).
    var key_lse = vec4(0.0);
    var key_tgt = vec4(0u);
    if (p.wy != 0.0) {
      key_lse = vec4(lse_y[kc[0]], lse_y[kc[1]], lse_y[kc[2]], lse_y[kc[3]]);
      key_tgt = vec4(targets_y[kc[0]], targets_y[kc[1]], targets_y[kc[2]], targets_y[kc[3]]);
    }
    for (var r = 0u; r < TR; r++) {
      let z = s[r] * scale;
      var g = vec4(0.0);
      if (p.wx != 0.0) {
        g += p.wx * (exp(z - row_lse[r]) - select(vec4(0.0), vec4(1.0), keys == vec4(tgt[r])));
      }
      if (p.wy != 0.0) {
        g += p.wy * (exp(z - key_lse) - select(vec4(0.0), vec4(1.0), key_tgt == vec4(row0 + r)));
      }
      g = select(vec4(0.0), g, key_ok);
      dscale[r] += dot(g, s[r]);
      s[r] = g * scale;
      if (r < rows) {
        g_out[((row0 + r) * p.stride + j0 - p.c0) / 4u + lane] = s[r];
      }
    }
  }

  // 3. dX += scale·G·Y over the whole chunk, one 64-column chunk of d at a time: dx is loaded and
  // stored once per chunk. G comes back from g_out (this subgroup's own rows, each lane its keys).
  storageBarrier();
  for (var c0 = 0u; c0 < d4; c0 += 8u * OWN) {
    let col = c0 + lane * OWN;
    var acc = array<vec4<f32>, TR * OWN>();
    for (var r = 0u; r < TR; r++) {
      for (var e = 0u; e < OWN; e++) {
        acc[r * OWN + e] = select(vec4(0.0), dx[xrow[r] + col + e], p.first == 0u);
      }
    }
    for (var j0 = p.c0; j0 < p.c0 + p.cn; j0 += 32u) {
      var s = array<vec4<f32>, TR>();
      for (var r = 0u; r < TR; r++) {
        s[r] = g_out[(min(row0 + r, p.nx - 1u) * p.stride + j0 - p.c0) / 4u + lane];
      }
      for (var src = 0u; src < eight; src++) {
        var w = array<vec4<f32>, TR>();
        for (var r = 0u; r < TR; r++) {
          w[r] = subgroupShuffle(s[r], src);
        }
        for (var jj = 0u; jj < 4u; jj++) {
          let yr = min(j0 + 4u * src + jj, p.ny - 1u) * d4 + col;
          for (var e = 0u; e < OWN; e++) {
            let yv = y[yr + e];
            for (var r = 0u; r < TR; r++) {
              acc[r * OWN + e] = fma(vec4(w[r][jj]), yv, acc[r * OWN + e]);
            }
          }
        }
      }
    }
    for (var r = 0u; r < TR; r++) {
      for (var e = 0u; e < OWN; e++) {
        if (r < rows) {
          dx[(row0 + r) * d4 + col + e] = acc[r * OWN + e];
        }
      }
    }
  }

  for (var r = 0u; r < TR; r++) {
    let total = subgroupAdd(dscale[r]);
    if (r < rows && lane == 0u) {
      dscale_rows[row0 + r] = total;
    }
  }
}
