// Reduction over the middle axis of an [outer, len, inner] view, one invocation per output:
//   out[out_offset + o·inner + i] = alpha · reduce_j x[(o·len + j)·inner + i], j in increasing order.
// The variant for many outputs (bias gradients: column sums of [rows, width]; pooling over a
// short axis): no workgroup memory and no barriers, which cost llvmpipe a coroutine switch each,
// and neighbouring invocations read neighbouring columns. kernels/reduce.wgsl's tree is for few
// outputs over a long axis. Sequential, so deterministic; OP as there: 0 sum, 1 max, 2 sumsq.

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let o = gid.x + gid.y * groups.x * 64u;
  if (o >= p.outer * p.inner) {
    return;
  }
  let base = (o / p.inner) * p.len * p.inner + o % p.inner;
  // Max starts from the lowest finite float (WGSL has no infinite constants).
  var acc = select(0.0, -3.4028234e38, OP == 1u);
  for (var j = 0u; j < p.len; j++) {
    let v = x[base + j * p.inner];
    switch OP {
      case 1u: { acc = max(acc, v); }
      case 2u: { acc += v * v; }
      default: { acc += v; }
    }
  }
  out[p.out_offset + o] = p.alpha * acc;
}
