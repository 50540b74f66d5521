// The adapter's memory ceilings (`mode bench peak`), over n vec4s of storage:
//   OP 0 read:    each invocation sums the vec4s it visits of `src` into dst[i]
//   OP 1 write:   dst[k] = (k mod 8) · value
//   OP 2 copy:    dst[k] = src[k]
//   OP 3 uniform: each invocation sums `reps` vec4s of the 64 KiB uniform window `win`, from its
//                 own index on, into dst[i]: the loads matmul_sg_w streams B through
//   OP 4 gather:  dst[k] = src[idx[k]], each lane at its own address
//   OP 5 texture: dst[k] = the texel (k mod width, k / width) of `tex` (rgba32float): the loads
//                 the k-means kernels take their points with
// `threads` invocations share the n elements: BLOCKED gives each a contiguous run (what a CPU's
// caches and prefetchers like), otherwise a grid stride (neighbouring lanes, neighbouring vec4s:
// what a GPU's coalescing likes). n = 0 is the empty dispatch the fixed costs are measured with.
override OP: u32 = 0;
override BLOCKED: bool = false;
override WG: u32 = 256;

struct Params {
  n: u32,
  threads: u32,
  reps: u32,
  value: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<uniform> win: array<vec4<f32>, 4096>;
@group(0) @binding(5) var tex: texture_2d<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.threads) {
    return;
  }
  if (OP == 3u) {
    var s = vec4(0.0);
    for (var r = 0u; r < p.reps; r++) {
      s += win[(i + r) % 4096u];
    }
    dst[i] = s;
    return;
  }
  // This invocation's elements: [first, last) by `step`.
  let per = (p.n + p.threads - 1u) / p.threads;
  let first = select(i, i * per, BLOCKED);
  let last = select(p.n, min(p.n, first + per), BLOCKED);
  let step = select(p.threads, 1u, BLOCKED);
  let width = textureDimensions(tex).x;
  var s = vec4(0.0);
  for (var k = first; k < last; k += step) {
    switch OP {
      case 0u: { s += src[k]; }
      case 1u: { dst[k] = vec4(f32(k % 8u) * p.value); }
      case 2u: { dst[k] = src[k]; }
      case 4u: { dst[k] = src[idx[k]]; }
      default: { dst[k] = textureLoad(tex, vec2u(k % width, k / width), 0); }
    }
  }
  if (OP == 0u) {
    dst[i] = s;
  }
}
