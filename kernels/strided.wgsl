// out[o(i)] = op(a[a(i)], b[b(i)]) for every multi-index i of a rank-4 shape, where each operand
// has its own offset and strides (elements). Stride 0 broadcasts; strides that are not the
// contiguous ones permute, slice or place into a region. So one kernel does broadcasting
// binary ops, expand, permute/transpose, slice, concat (one call per input) and masks.
// OP: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 copy a, 7 a == b (1 or 0).
// The grid is 2-D so that n may exceed 65535 workgroups × 256 invocations.
//
// Each invocation does RUN consecutive elements of the last axis (RUN divides shape.w): the index
// arithmetic (integer divisions, which llvmpipe's SIMD lanes do one by one) is paid once per run.

override OP: u32 = 0;
override RUN: u32 = 1;
// Axes in use (1–4; the shape's leading 4 − RANK axes are 1).
override RANK: u32 = 4;

struct Params {
  shape: vec4u,
  stride_a: vec4u,
  stride_b: vec4u,
  stride_out: vec4u,
  // offsets of a, b and out, then the element count n (the product of shape)
  offset: vec4u,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn apply(x: f32, y: f32) -> f32 {
  switch OP {
    case 0u: { return x + y; }
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return max(x, y); }
    case 5u: { return min(x, y); }
    case 6u: { return x; }
    default: { return select(0.0, 1.0, x == y); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = (gid.x + gid.y * groups.x * 256u) * RUN;
  if (i >= p.offset.w) {
    return;
  }
  // Multi-index of the run's first element, last axis fastest. Leading axes past RANK have
  // length 1: skipping their divisions is most of the cost of a small-rank (e.g. contiguous) op.
  var idx = vec4u(0u, 0u, 0u, i);
  if (RANK >= 2u) {
    idx.w = i % p.shape.w;
    let r2 = i / p.shape.w;
    idx.z = r2;
    if (RANK >= 3u) {
      idx.z = r2 % p.shape.z;
      let r1 = r2 / p.shape.z;
      idx.y = r1;
      if (RANK == 4u) {
        idx.y = r1 % p.shape.y;
        idx.x = r1 / p.shape.y;
      }
    }
  }
  let ia = p.offset.x + dot(idx, p.stride_a);
  let ib = p.offset.y + dot(idx, p.stride_b);
  let io = p.offset.z + dot(idx, p.stride_out);
  for (var j = 0u; j < RUN; j++) {
    var y = 0.0;
    if (OP != 6u) {
      y = b[ib + j * p.stride_b.w]; // copy has no second operand
    }
    out[io + j * p.stride_out.w] = apply(a[ia + j * p.stride_a.w], y);
  }
}
