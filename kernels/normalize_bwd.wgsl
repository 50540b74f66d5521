// Backward of normalize.wgsl for each line of the [outer, len, inner] view, from its output y:
// MODE 0: dx = rstd·(dy − mean(dy) − y·mean(dy·y))
// MODE 1: dx = r·(dy − y·Σ(dy·y)), or r·dy where the norm was clamped (flag in `mean`).
// AFFINE (with MODE 0 and inner = 1: layer norm with weight w and bias b, rows = outer, C = len):
//   `y` holds the forward's input x, and x̂ = (x − mean)·rstd is recomputed from it (never from
//   the output over w). With ĝ = dy·w: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), and the column
//   sums dw[j] = Σ_rows dy·x̂ and db[j] = Σ_rows dy.
// The grid's first p.row_groups workgroups take 64 lines each for dx (0: dx is not written);
// with AFFINE the next p.col_blocks workgroups take 8 columns each for dw and db (written where
// p.write_dw and p.write_db are set), their 64 invocations as 8 columns × 8 row slices combined
// in a fixed tree: deterministic, no atomics. Bindings a mode does not use are bound but never read.

override MODE: u32 = 0;
override AFFINE: bool = false;

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
  row_groups: u32,
  col_blocks: u32,
  write_dw: u32,
  write_db: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;
@group(0) @binding(8) var<storage, read_write> db: array<f32>;

var<workgroup> part_w: array<f32, 64>;
var<workgroup> part_b: array<f32, 64>;

fn line_dx(line: u32) {
  if (line >= p.outer * p.inner) {
    return;
  }
  let base = (line / p.inner) * p.len * p.inner + line % p.inner;
  let r = rstd[line];
  if (AFFINE) {
    let m = mean[line];
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = 0u; j < p.len; j++) {
      let g = dy[base + j] * w[j];
      sg += g;
      sgx += g * (y[base + j] - m) * r;
    }
    let c0 = sg / f32(p.len);
    let c1 = sgx / f32(p.len);
    for (var j = 0u; j < p.len; j++) {
      let at = base + j;
      dx[at] = r * (dy[at] * w[j] - c0 - (y[at] - m) * r * c1);
    }
    return;
  }
  var sg = 0.0;
  var sgy = 0.0;
  for (var j = 0u; j < p.len; j++) {
    let at = base + j * p.inner;
    sg += dy[at];
    sgy += dy[at] * y[at];
  }
  var c0 = 0.0;
  var c1 = 0.0;
  if (MODE == 0u) {
    c0 = sg / f32(p.len);
    c1 = sgy / f32(p.len);
  } else {
    c1 = select(sgy, 0.0, mean[line] != 0.0);
  }
  for (var j = 0u; j < p.len; j++) {
    let at = base + j * p.inner;
    dx[at] = r * (dy[at] - c0 - y[at] * c1);
  }
}

// Called in uniform control flow (it has barriers): `blk` is the same for the whole workgroup.
fn columns_dwb(blk: u32, lid: u32) {
  let col = blk * 8u + lid % 8u;
  var sw = 0.0;
  var sb = 0.0;
  if (col < p.len) {
    for (var row = lid / 8u; row < p.outer; row += 8u) {
      let at = row * p.len + col;
      let g = dy[at];
      sw += g * (y[at] - mean[row]) * rstd[row];
      sb += g;
    }
  }
  part_w[lid] = sw;
  part_b[lid] = sb;
  workgroupBarrier();
  for (var s = 32u; s >= 8u; s >>= 1u) {
    if (lid < s) {
      part_w[lid] += part_w[lid + s];
      part_b[lid] += part_b[lid + s];
    }
    workgroupBarrier();
  }
  if (lid < 8u && col < p.len) {
    if (p.write_dw != 0u) {
      dw[col] = part_w[lid];
    }
    if (p.write_db != 0u) {
      db[col] = part_b[lid];
    }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * groups.x;
  if (g < p.row_groups) {
    line_dx(g * 64u + lid);
    return;
  }
  if (AFFINE && g - p.row_groups < p.col_blocks) {
    columns_dwb(g - p.row_groups, lid);
  }
}
