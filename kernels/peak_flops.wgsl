// The adapter's arithmetic ceiling (`mode bench peak`): every invocation runs CHAINS independent
// vec4 chains x ← x·a + b for `iters` steps and writes their sum, so no step is dead code. Each
// chain step is 8 FLOPs (4 lanes, a multiply and an add), done as a multiply then an add (what
// the kernels' dot products compile to) or as WGSL's fma() (FMA). The chains are independent so
// that their latency hides: the sweep over CHAINS (4, 8, 12 or 16) and WG finds how many it takes.
// With a = 1 − 2⁻⁸ and b small, x settles near b / (1 − a): finite for any number of steps.
override CHAINS: u32 = 8;
override FMA: bool = false;
override WG: u32 = 64;

struct Params {
  iters: u32,
  // Invocations that write (the last workgroup may run past them).
  n: u32,
  a: f32,
  b: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

fn step1(x: vec4<f32>) -> vec4<f32> {
  if (FMA) {
    return fma(x, vec4(p.a), vec4(p.b));
  }
  return x * p.a + p.b;
}

// Four chains in one matrix: its columns.
fn step4(m: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4(step1(m[0]), step1(m[1]), step1(m[2]), step1(m[3]));
}

// Chain c of invocation i starts at (i mod 7)/100 + c/1000 + (0, 0.1, 0.2, 0.3).
fn start4(i: u32, first: u32) -> mat4x4<f32> {
  let base = vec4(f32(i % 7u) * 0.01) + vec4(0.0, 0.1, 0.2, 0.3);
  return mat4x4(base + f32(first) * 0.001, base + f32(first + 1u) * 0.001, base + f32(first + 2u) * 0.001, base + f32(first + 3u) * 0.001);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  var m0 = start4(i, 0u);
  var m1 = start4(i, 4u);
  var m2 = start4(i, 8u);
  var m3 = start4(i, 12u);
  for (var t = 0u; t < p.iters; t++) {
    m0 = step4(m0);
    if (CHAINS > 4u) {
      m1 = step4(m1);
    }
    if (CHAINS > 8u) {
      m2 = step4(m2);
    }
    if (CHAINS > 12u) {
      m3 = step4(m3);
    }
  }
  var s = m0[0] + m0[1] + m0[2] + m0[3];
  if (CHAINS > 4u) {
    s += m1[0] + m1[1] + m1[2] + m1[3];
  }
  if (CHAINS > 8u) {
    s += m2[0] + m2[1] + m2[2] + m2[3];
  }
  if (CHAINS > 12u) {
    s += m3[0] + m3[1] + m3[2] + m3[3];
  }
  if (i < p.n) {
    out[i] = s;
  }
}
