// out[i] = op(a[i], b[i]) over n elements, op chosen by the override OP:
// 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min.
// The grid is 2-D so that n may exceed 65535 workgroups × 256 invocations.

override OP: u32 = 0;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= params.n) {
    return;
  }
  let x = a[i];
  let y = b[i];
  switch OP {
    case 0u: { out[i] = x + y; }
    case 1u: { out[i] = x - y; }
    case 2u: { out[i] = x * y; }
    case 3u: { out[i] = x / y; }
    case 4u: { out[i] = max(x, y); }
    default: { out[i] = min(x, y); }
  }
}
