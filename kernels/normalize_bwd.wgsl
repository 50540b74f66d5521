// Backward of normalize.wgsl for each line of the [outer, len, inner] view, from its output y:
// MODE 0: dx = rstd·(dy − mean(dy) − y·mean(dy·y))
// MODE 1: dx = r·(dy − y·Σ(dy·y)), or r·dy where the norm was clamped (flag in `mean`).

override MODE: u32 = 0;

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let line = gid.x + gid.y * groups.x * 64u;
  if (line >= p.outer * p.inner) {
    return;
  }
  let base = (line / p.inner) * p.len * p.inner + line % p.inner;
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
  let r = rstd[line];
  for (var j = 0u; j < p.len; j++) {
    let at = base + j * p.inner;
    dx[at] = r * (dy[at] - c0 - y[at] * c1);
  }
}
