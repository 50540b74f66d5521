// Reduction over the middle axis of an [outer, len, inner] view:
//   out[out_offset + o·inner + i] = alpha · reduce_j x[(o·len + j)·inner + i]
// OP: 0 sum, 1 max, 2 sum of squares. One workgroup per output; its 64 invocations take
// strided shares of the axis and combine them in a fixed tree: deterministic, no atomics.
// Workgroups form a 2-D grid so that outer·inner may exceed 65535.

override OP: u32 = 0;

struct Params {
  outer: u32,
  len: u32,
  inner: u32,
  out_offset: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, 64>;

fn combine(acc: f32, v: f32) -> f32 {
  switch OP {
    case 1u: { return max(acc, v); }
    case 2u: { return acc + v * v; }
    default: { return acc + v; }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * groups.x;
  if (o >= p.outer * p.inner) {
    return; // the same for the whole workgroup, so the barriers below stay uniform
  }
  let base = (o / p.inner) * p.len * p.inner + o % p.inner;
  // Max starts from the lowest finite float (WGSL has no infinite constants).
  var acc = select(0.0, -3.4028234e38, OP == 1u);
  for (var j = lid; j < p.len; j += 64u) {
    acc = combine(acc, x[base + j * p.inner]);
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) {
      // Partials are already squared: combine them by sum (or max).
      part[lid] = select(part[lid] + part[lid + s], max(part[lid], part[lid + s]), OP == 1u);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[p.out_offset + o] = p.alpha * part[0];
  }
}
