// Dropout with a counter-based generator: element i is kept when hash(i, seed) ≥ threshold
// (threshold = p·2³²), and kept elements are scaled by 1/(1 − p). The mask is never stored:
// the backward runs this same kernel on dy with the same seed.
// hash: the PCG output permutation (Jarzynski & Olano, "Hash Functions for GPU Rendering",
// JCGT 2020) applied twice, to the index and then mixed with the seed.

struct Params {
  n: u32,
  seed: u32,
  threshold: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.n) {
    return;
  }
  let h = pcg(pcg(i) ^ p.seed);
  y[i] = select(0.0, x[i] * p.scale, h >= p.threshold);
}
