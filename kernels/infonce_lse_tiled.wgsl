// InfoNCE statistics of the rows of Z = scale·X·Yᵀ, workgroup-memory tiled variant (for GPUs):
// the contract of infonce_lse (per row i of X: lse_i = log Σ_j exp(z_ij) and the target logit
// z_i,t(i); Z never stored; any sizes), with Y staged through workgroup memory: the 64
// invocations of a workgroup own 64 rows of X and load each tile of min(64, TILE_FLOATS / d) rows
// of Y once, together (16 KiB, WebGPU's minimum maxComputeWorkgroupStorageSize).

const TILE_FLOATS = 4096u;
const ROWS = 64u;

struct Params {
  nx: u32,
  ny: u32,
  d: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// OpenCLIP's logit_scale: the log of the scale, so that it stays positive while trained.
@group(0) @binding(6) var<storage, read> logit_scale: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> target_logit: array<f32>;

var<workgroup> y_tile: array<f32, TILE_FLOATS>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.x * ROWS + lid.x;
  // Rows past nx still load tiles and reach every barrier; they write nothing.
  let i = min(row, p.nx - 1u);
  let scale = exp(logit_scale[0]);
  let t = targets[i];
  let tj = min(ROWS, TILE_FLOATS / p.d);
  var m = -3.0e38;
  var l = 0.0;
  var zt = 0.0;
  for (var j0 = 0u; j0 < p.ny; j0 += tj) {
    let rows = min(tj, p.ny - j0);
    for (var e = lid.x; e < rows * p.d; e += ROWS) {
      y_tile[e] = y[j0 * p.d + e];
    }
    workgroupBarrier();
    for (var jj = 0u; jj < rows; jj++) {
      var s = 0.0;
      for (var c = 0u; c < p.d; c++) {
        s = fma(x[i * p.d + c], y_tile[jj * p.d + c], s);
      }
      let z = s * scale;
      if (j0 + jj == t) {
        zt = z;
      }
      let m_new = max(m, z);
      l = l * exp(m - m_new) + exp(z - m_new);
      m = m_new;
    }
    workgroupBarrier();
  }
  if (row < p.nx) {
    lse[row] = m + log(l);
    target_logit[row] = zt;
  }
}
