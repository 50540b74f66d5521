// InfoNCE gradient for the rows of X, workgroup-memory tiled variant (for GPUs): the contract of
// infonce_grad (dX = scale · G·Y and each row's share of ∂L/∂scale, Z and G recomputed, never
// stored; any d), with Y and its per-row statistics staged through workgroup memory: the 64
// invocations of a workgroup own 64 rows of X and load each tile of min(64, TILE_FLOATS / d) rows
// of Y (with their LSE and targets) once, together: 16 KiB, WebGPU's minimum
// maxComputeWorkgroupStorageSize. dX accumulates in place, as in infonce_grad.
//   g_ij = wx·(exp(z_ij − lse_x(i)) − [j = tx(i)]) + wy·(exp(z_ij − lse_y(j)) − [i = ty(j)])

const TILE_FLOATS = 3968u;
const ROWS = 64u;

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
  wx: f32,
  wy: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(9) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> lse_x: array<f32>;
@group(0) @binding(4) var<storage, read> targets_x: array<u32>;
@group(0) @binding(5) var<storage, read> lse_y: array<f32>;
@group(0) @binding(6) var<storage, read> targets_y: array<u32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dscale_rows: array<f32>;

var<workgroup> y_tile: array<f32, TILE_FLOATS>;
var<workgroup> lse_y_tile: array<f32, ROWS>;
var<workgroup> targets_y_tile: array<u32, ROWS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.x * ROWS + lid.x;
  let live = row < p.nx;
  // Rows past nx still load tiles and reach every barrier; they write nothing.
  let i = min(row, p.nx - 1u);
  let scale = exp(logit_scale[0]);
  if (live) {
    for (var c = 0u; c < p.d; c++) {
      dx[i * p.d + c] = 0.0;
    }
  }
  var dscale = 0.0;
  let row_lse = lse_x[i];
  let t = targets_x[i];
  let tj = min(ROWS, TILE_FLOATS / p.d);
  for (var j0 = 0u; j0 < p.ny; j0 += tj) {
    let rows = min(tj, p.ny - j0);
    for (var e = lid.x; e < rows * p.d; e += ROWS) {
      y_tile[e] = y[j0 * p.d + e];
    }
    if (lid.x < rows) {
      lse_y_tile[lid.x] = lse_y[j0 + lid.x];
      targets_y_tile[lid.x] = targets_y[j0 + lid.x];
    }
    workgroupBarrier();
    if (live) {
      for (var jj = 0u; jj < rows; jj++) {
        var s = 0.0;
        for (var c = 0u; c < p.d; c++) {
          s = fma(x[i * p.d + c], y_tile[jj * p.d + c], s);
        }
        let z = s * scale;
        var g = 0.0;
        if (p.wx != 0.0) {
          g += p.wx * (exp(z - row_lse) - select(0.0, 1.0, j0 + jj == t));
        }
        if (p.wy != 0.0) {
          g += p.wy * (exp(z - lse_y_tile[jj]) - select(0.0, 1.0, targets_y_tile[jj] == i));
        }
        dscale = fma(g, s, dscale);
        for (var c = 0u; c < p.d; c++) {
          dx[i * p.d + c] = fma(g * scale, y_tile[jj * p.d + c], dx[i * p.d + c]);
        }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    dscale_rows[row] = dscale;
  }
}
