// k-means assignment (outputs and tie rule as in kmeans_assign_sg): the variant for GPUs.
// A workgroup of 256 invocations owns 64 points and walks the centres 64 at a time; for each
// such tile the 64×16 panels of points and centres are staged in workgroup memory so each value
// read from device memory serves 64 FMAs, and each invocation keeps a 4 points × 4 centres block
// in registers plus a running minimum for its 4 points. At the end the 16 invocations sharing a
// point compare their minima through workgroup memory (lowest index on equal distances).
// ‖c‖² comes from kmeans_norms; ‖x‖² is added at the end. Any n, k, d.
// (On lavapipe, like matmul_tiled, this is several times slower than the register-blocked
// variants: workgroup memory and barriers are slow there. The autotuner decides per adapter.)

const BP = 64u;
const BC = 64u;
const BK = 16u;
const BIG = 3.4028234e38;

struct Params {
  n: u32,
  k: u32,
  d: u32,
  first: u32,
  row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> centres: array<f32>;
@group(0) @binding(3) var<storage, read> cnorm: array<f32>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<storage, read_write> dist: array<f32>;

// Panels stored d-major ([kk][point], [kk][centre]) so the inner loop reads 4 adjacent values;
// xp is reused for the final reduction (64 points × 16 candidates each), with ci for indices.
var<workgroup> xp: array<f32, 1024>;
var<workgroup> cp: array<f32, 1024>;
var<workgroup> ci: array<u32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let p0 = p.row0 + wg.x * BP;
  var best = vec4(BIG);
  var besti = vec4(0u);

  for (var c0 = 0u; c0 < p.k; c0 += BC) {
    // acc[i][t]: point lid.y·4 + i, centre c0 + lid.x·4 + t. Initialised explicitly: a bare
    // `var` inside a loop is not re-zeroed each iteration here (Dawn + lavapipe).
    var acc = array<vec4<f32>, 4>();
    for (var k0 = 0u; k0 < p.d; k0 += BK) {
      // 1024 values per panel, 4 per invocation; consecutive invocations read consecutive
      // addresses of the row-major inputs. Zeros outside.
      for (var u = 0u; u < 4u; u++) {
        let e = li + 256u * u;
        let kk = e % BK;
        let r = e / BK;
        let q = k0 + kk;
        let row = p0 + r;
        let j = c0 + r;
        xp[kk * BP + r] = select(0.0, points[min(row, p.n - 1u) * p.d + min(q, p.d - 1u)], row < p.n && q < p.d);
        cp[kk * BC + r] = select(0.0, centres[min(j, p.k - 1u) * p.d + min(q, p.d - 1u)], j < p.k && q < p.d);
      }
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        let ai = kk * BP + lid.y * 4u;
        let bi = kk * BC + lid.x * 4u;
        let cv = vec4(cp[bi], cp[bi + 1u], cp[bi + 2u], cp[bi + 3u]);
        acc[0] = fma(vec4(xp[ai]), cv, acc[0]);
        acc[1] = fma(vec4(xp[ai + 1u]), cv, acc[1]);
        acc[2] = fma(vec4(xp[ai + 2u]), cv, acc[2]);
        acc[3] = fma(vec4(xp[ai + 3u]), cv, acc[3]);
      }
      workgroupBarrier();
    }
    let j0 = c0 + lid.x * 4u;
    let jv = vec4(j0, j0 + 1u, j0 + 2u, j0 + 3u);
    let jc = min(jv, vec4(p.k - 1u));
    let cn = vec4(cnorm[jc.x], cnorm[jc.y], cnorm[jc.z], cnorm[jc.w]);
    for (var i = 0u; i < 4u; i++) {
      // Centres past k never win.
      let dv = select(vec4(BIG), cn - 2.0 * acc[i], jv < vec4(p.k));
      for (var t = 0u; t < 4u; t++) {
        let better = dv[t] < best[i];
        best[i] = select(best[i], dv[t], better);
        besti[i] = select(besti[i], j0 + t, better);
      }
    }
  }

  // Candidates per point: [point][lid.x]. Indices interleave across lid.x, so ties compare them.
  for (var i = 0u; i < 4u; i++) {
    let at = (lid.y * 4u + i) * 16u + lid.x;
    xp[at] = best[i];
    ci[at] = besti[i];
  }
  workgroupBarrier();
  let row = p0 + li;
  if (li < BP && row < p.n) {
    var m = BIG;
    var mi = 0u;
    for (var x = 0u; x < 16u; x++) {
      let v = xp[li * 16u + x];
      let vi = ci[li * 16u + x];
      if (v < m || (v == m && vi < mi)) {
        m = v;
        mi = vi;
      }
    }
    var xx = 0.0;
    for (var q = 0u; q < p.d; q++) {
      let v = points[row * p.d + q];
      xx = fma(v, v, xx);
    }
    index[p.first + row] = mi;
    dist[p.first + row] = max(xx + m, 0.0);
  }
}
