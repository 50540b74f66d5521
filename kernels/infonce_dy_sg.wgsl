// dY for one chunk of rows of Y from the chunk's G (written by infonce_grad_chunk_sg), for
// CPU-like adapters (lavapipe); d % 64 == 0:
//   dY_(c0 + j) = Σ_i g[i][j] · x_i   for j < cn,   g = scale·∂L/∂Z (nx × stride, stride % 32 == 0)
// A plain Gᵀ·X product: the scores are not recomputed. A subgroup of 8 lanes owns 16 rows of dY
// and, for one 64-column slice of d at a time (2 vec4s per lane in every row, the accumulator in
// registers), walks a tile of TILE rows of X 32 at a time: each lane loads G for its 4 rows and
// the 16 columns (4 vec4s a row) and hands them round with subgroupShuffle as infonce_grad_sg
// does. Tiles keep x in cache across the slices (+10–20% over walking all nx rows per slice at
// nx = 4096). Needs subgroup size 8. Deterministic.
enable subgroups;
// The loop bounds derive from uniforms and constants only, and every branch around a subgroup
// operation depends on local_invocation_id.y, which the 8 lanes of a subgroup share (workgroup
// 8 × WG_Y, subgroups of 8): the control flow is subgroup-uniform; the analysis cannot see that.
diagnostic(off, subgroup_uniformity);

override WG_Y: u32 = 4;

const TR = 16u;
const OWN = 2u;
// Rows of X per tile (a multiple of 32).
const TILE = 512u;

struct Params {
  nx: u32,
  d: u32,
  c0: u32,
  cn: u32,
  stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dy: array<vec4<f32>>;

@compute @workgroup_size(8, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let d4 = p.d / 4u;
  // 8, as a value the compiler cannot fold: unrolling the loops over it made lavapipe's shader
  // compile take about twice as long (d >= 64 here).
  let eight = min(8u, p.d);
  let j0 = (wg.x * WG_Y + lid.y) * TR;
  let cols = min(TR, p.cn - min(j0, p.cn));
  // Subgroups past the chunk read inside G's rows and store nothing.
  let gcol = min(j0, p.stride - TR) / 4u;

  // Rows of X in tiles of TILE, so that a tile of x (TILE × d) stays in cache while every
  // 64-column slice of d walks it; dy is loaded and stored once per tile and slice.
  let last_row = p.c0 + min(p.cn, j0 + TR) - 1u;
  for (var t0 = 0u; t0 < p.nx; t0 += TILE) {
    let t1 = min(t0 + TILE, p.nx);
    for (var c0 = 0u; c0 < d4; c0 += 8u * OWN) {
      let col = c0 + lane * OWN;
      var acc = array<vec4<f32>, TR * OWN>();
      for (var r = 0u; r < TR; r++) {
        for (var e = 0u; e < OWN; e++) {
          acc[r * OWN + e] = select(vec4(0.0), dy[min(p.c0 + j0 + r, last_row) * d4 + col + e], t0 > 0u);
        }
      }
      for (var i0 = t0; i0 < t1; i0 += 32u) {
        // w[r][ii] = g[i0 + 4·lane + ii][j0 + r]; rows past nx weigh 0.
        var w = array<vec4<f32>, TR>();
        for (var ii = 0u; ii < 4u; ii++) {
          let i = i0 + 4u * lane + ii;
          let base = min(i, p.nx - 1u) * (p.stride / 4u) + gcol;
          for (var q = 0u; q < 4u; q++) {
            let gv = select(vec4(0.0), g[base + q], i < p.nx);
            w[4u * q][ii] = gv.x;
            w[4u * q + 1u][ii] = gv.y;
            w[4u * q + 2u][ii] = gv.z;
            w[4u * q + 3u][ii] = gv.w;
          }
        }
        for (var src = 0u; src < eight; src++) {
          var ws = array<vec4<f32>, TR>();
          for (var r = 0u; r < TR; r++) {
            ws[r] = subgroupShuffle(w[r], src);
          }
          for (var ii = 0u; ii < 4u; ii++) {
            let xr = min(i0 + 4u * src + ii, p.nx - 1u) * d4 + col;
            for (var e = 0u; e < OWN; e++) {
              let xv = x[xr + e];
              for (var r = 0u; r < TR; r++) {
                acc[r * OWN + e] = fma(vec4(ws[r][ii]), xv, acc[r * OWN + e]);
              }
            }
          }
        }
      }
      for (var r = 0u; r < TR; r++) {
        for (var e = 0u; e < OWN; e++) {
          if (r < cols) {
            dy[(p.c0 + j0 + r) * d4 + col + e] = acc[r * OWN + e];
          }
        }
      }
    }
  }
}
