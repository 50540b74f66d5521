// InfoNCE statistics of Z = scale·X·Yᵀ in both directions from one pass over the scores, for
// CPU-like adapters (lavapipe); d % 32 == 0. Called once per chunk of columns [c0, c0 + cn)
// (c0 and the chunk stride multiples of 32), in order:
//   - rows: the online log-sum-exp of each row of X over the chunk's keys, merged into the
//     running (m, l) of the earlier chunks (kept in lse and row_l); the last chunk writes
//     lse_i = m + log l. The target logit z_i,t(i) is added up in target_logit.
//   - columns (COL_STATS): for each block of 16 rows and each key of the chunk, the block's max
//     of z_ij and Σ exp(z_ij − max), to part_m and part_l [block][j − c0] (row stride `stride`;
//     blocks past nx write nothing);
//     infonce_colstats merges the blocks into each column's log-sum-exp.
// The scores as in infonce_lse_sg: a subgroup of 8 lanes owns 16 rows of X and walks the chunk's
// keys 32 at a time (4 per lane); X's vec4s along d are handed round with subgroupShuffle. Each
// lane holds its own 4 keys' scores for all 16 rows, so the column statistics need no exchange
// between lanes. Z is never stored. Needs subgroup size 8.
enable subgroups;
// The loop bounds derive from uniforms and constants only, and every branch around a subgroup
// operation depends on local_invocation_id.y, which the 8 lanes of a subgroup share (workgroup
// 8 × WG_Y, subgroups of 8): the control flow is subgroup-uniform; the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

override WG_Y: u32 = 4;
override COL_STATS: bool = true;

const TR = 16u;
const NEG = -3.0e38;

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
  c0: u32,
  cn: u32,
  stride: u32,
  first: u32,
  last: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(2) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> targets: array<u32>;
// The running row max until the last chunk, then the row's log-sum-exp.
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> row_l: array<f32>;
@group(0) @binding(7) var<storage, read_write> target_logit: array<f32>;
@group(0) @binding(8) var<storage, read_write> part_m: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> part_l: array<vec4<f32>>;

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  // d is a uniform, not an override: one pipeline serves every d (each compile takes seconds).
  let d4 = p.d / 4u;
  let scale = exp(logit_scale[0]);
  let blk = wg.x * WG_Y + lid.y;
  let row0 = blk * TR;
  // Rows of this subgroup that exist (the rest are computed on clamped rows, never stored).
  let rows = min(TR, p.nx - min(row0, p.nx));

  var xrow: array<u32, TR>;
  var tgt: array<u32, TR>;
  var m: array<f32, TR>;
  var l: array<f32, TR>;
  var zt: array<f32, TR>;
  for (var r = 0u; r < TR; r++) {
    let row = min(row0 + r, p.nx - 1u);
    xrow[r] = row * d4;
    tgt[r] = targets[row];
    // The running sums are per lane until the end: lane 0 carries the earlier chunks' totals.
    let carry = p.first == 0u && lane == 0u;
    m[r] = select(NEG, lse[row], p.first == 0u);
    l[r] = select(0.0, row_l[row], carry);
    zt[r] = select(0.0, target_logit[row], carry);
  }

  for (var j0 = p.c0; j0 < p.c0 + p.cn; j0 += 32u) {
    // This lane's 4 keys, clamped for loading; validity decides their weight.
    let keys = vec4(j0 + 4u * lane) + vec4(0u, 1u, 2u, 3u);
    let key_ok = keys < vec4(p.ny);
    let yrow = min(keys, vec4(p.ny - 1u)) * d4;

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

    // 2. Row statistics (online log-sum-exp), and each key's max over the block's rows.
    var cm = vec4(NEG);
    for (var r = 0u; r < TR; r++) {
      let z = select(vec4(NEG), s[r] * scale, key_ok);
      s[r] = z;
      zt[r] += dot(select(vec4(0.0), z, (keys == vec4(tgt[r])) & key_ok), vec4(1.0));
      let m_new = max(m[r], subgroupMax(max(max(z.x, z.y), max(z.z, z.w))));
      let w = select(vec4(0.0), exp(z - m_new), key_ok);
      l[r] = l[r] * exp(m[r] - m_new) + (w.x + w.y + w.z + w.w);
      m[r] = m_new;
      if (r < rows) {
        cm = max(cm, z);
      }
    }

    // 3. Column statistics of the block: Σ over its rows of exp(z − max).
    if (COL_STATS && rows > 0u) {
      var cl = vec4(0.0);
      for (var r = 0u; r < TR; r++) {
        if (r < rows) {
          cl += exp(s[r] - cm);
        }
      }
      let at = (blk * p.stride + j0 - p.c0) / 4u + lane;
      part_m[at] = cm;
      part_l[at] = cl;
    }
  }

  for (var r = 0u; r < TR; r++) {
    let total = subgroupAdd(l[r]);
    let zt_row = subgroupAdd(zt[r]);
    let row = row0 + r;
    if (r < rows && lane == 0u) {
      if (p.last != 0u) {
        lse[row] = m[r] + log(total);
      } else {
        lse[row] = m[r];
        row_l[row] = total;
      }
      target_logit[row] = zt_row;
    }
  }
}
