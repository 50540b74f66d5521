/**
 * Peers: the other side of each benchmark row. Every peer runs in the benchmark's own process
 * (the GPU ones on the same dawn.node `GPU` instance that `@mode/gpu` opened, so the same
 * llvmpipe threads and `LP_NUM_THREADS`), and every op gets the same seeded inputs
 * (`inputs.ts`), so ratios compare like with like.
 *
 * | peer             | what                                                                   | `run()` waits by                                      |
 * | ---------------- | ---------------------------------------------------------------------- | ----------------------------------------------------- |
 * | `tfjs-webgpu`    | `@tensorflow/tfjs` 4.22 + `tfjs-backend-webgpu`, CPU forwarding off    | flushing its encoder, then `queue.onSubmittedWorkDone` |
 * | `jax-js`         | `@jax-js/jax` 0.1.25 on WebGPU, every op under `jit`                   | `blockUntilReady` (a 0-byte copy + map: no readback)   |
 * | `numpy-openblas` | numpy + OpenBLAS float32 in a `/usr/bin/python3` child, one per shape | a pipe round-trip; time it with `selfTimed()` instead  |
 * | `cpu-ts`         | plain TypeScript float32 loops (blocked matmul), synchronous           | nothing to wait for                                    |
 *
 * Ops (each returns a `PreparedOp` holding its inputs on the peer's own device/memory):
 * - `matmul(m, n, k, layout, batch)`: C = A·B, A m×k, B k×n; `ABt` stores B as n×k, `AtB` stores
 *   A as k×m; batch > 1 stacks batch-major. Result: batch × m × n.
 * - `attention(batchHeads, L, d, causal)`: softmax(Q·Kᵀ/√d [+ causal mask])·V from the peer's own
 *   matmul and softmax (unfused). Q, K, V, result: batchHeads × L × d.
 * - `kmeansAssign(n, k, d)`: argminⱼ ‖xᵢ − cⱼ‖² computed as ‖x‖² − 2x·cᵀ + ‖c‖², then argmin.
 *   Result: the n indices (as floats).
 * - `infoNCE(b, m, d, backward)`: symmetric CLIP loss on L2-normalised image rows I (b × d) and
 *   text rows T (m × d, m ≥ b; row i's positive is text i, the extra texts are negatives):
 *   S = s·I·Tᵀ with s = 1/0.07, loss = ½[−mean_i log softmax_row(S)[i,i] − mean_{j<b} log softmax_col(S)[j,j]].
 *   With `backward`, also dI and dT (through the peer's gradient API where it has one:
 *   tf.valueAndGrads, jax valueAndGrad; written out by hand in numpy and cpu-ts).
 *   Result: [loss] or [loss, dI…, dT…].
 *
 * Timing: `run()` performs the op once and resolves when the work is finished (GPU queue
 * drained), without reading the result back unless `syncNote` says otherwise; time it with
 * `timeAsync`. A peer whose work happens in another process (numpy) also offers `selfTimed()`,
 * the median it measured itself, which is the number to report for it. `result()` reads the
 * output back (tests check it against a float64 reference); never call it inside a timed loop.
 * A peer that cannot run says why in `available()`: report it, never drop it silently.
 */

export type Layout = 'AB' | 'ABt' | 'AtB';

export type Availability = { ok: true; detail?: string } | { ok: false; reason: string };

export interface SelfTiming {
  /** Median seconds per op, measured inside the peer (no IPC in it). */
  median: number;
  samples: number;
}

export interface TimingOptions {
  /** Seconds to keep sampling (after one warm-up call). Default 2. */
  maxTime?: number;
  /** At least this many samples. Default 5. */
  minSamples?: number;
}

export interface PreparedOp {
  /** Performs the op once and waits for completion. */
  run(): Promise<void>;
  /** Runs the op once and reads its output back as float32 (layouts in the op's doc above). */
  result(): Promise<Float32Array>;
  /** For peers whose work runs elsewhere (another process): the op timed where it runs. */
  selfTimed?(options?: TimingOptions): Promise<SelfTiming>;
  /** Frees the inputs and whatever else the op holds. */
  dispose(): Promise<void>;
}

export interface OpOptions {
  /** Seed for the inputs (`inputs.ts`). Default DEFAULT_SEED. */
  seed?: number;
}

export interface Peer {
  readonly name: string;
  /** How `run()` knows the work is done, and what that costs. */
  readonly syncNote: string;
  /** Runs its ops on the GPU adapter (so its intermediates must fit the adapter's storage binding limit). */
  readonly onGpu: boolean;
  /** Whether the peer can run here (memoised); the reason names the fix when it cannot. */
  available(): Promise<Availability>;
  matmul?(m: number, n: number, k: number, layout: Layout, batch?: number, options?: OpOptions): Promise<PreparedOp>;
  attention?(batchHeads: number, L: number, d: number, causal: boolean, options?: OpOptions): Promise<PreparedOp>;
  kmeansAssign?(n: number, k: number, d: number, options?: OpOptions): Promise<PreparedOp>;
  infoNCE?(b: number, m: number, d: number, backward: boolean, options?: OpOptions): Promise<PreparedOp>;
}

export type OpName = 'matmul' | 'attention' | 'kmeansAssign' | 'infoNCE';

/** FLOPs as the benchmark tables count them (multiply-adds × 2; softmax and the like not counted). */
export const FLOPS = {
  matmul: (m: number, n: number, k: number, batch = 1) => 2 * batch * m * n * k,
  /** Both matmuls over the full L × L scores, causal or not (the peers compute them all). */
  attention: (batchHeads: number, L: number, d: number) => 4 * batchHeads * L * L * d,
  kmeansAssign: (n: number, k: number, d: number) => 2 * n * k * d,
  /** Forward is one b×m×d matmul; backward adds two more. */
  infoNCE: (b: number, m: number, d: number, backward: boolean) => (backward ? 3 : 1) * 2 * b * m * d,
};

/** Concatenates typed arrays (argmin gives Int32Array) into one Float32Array. */
export function concat(parts: ArrayLike<number>[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
