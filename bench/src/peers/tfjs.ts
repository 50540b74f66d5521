import type { Gpu } from '@mode/gpu';
import type { Tensor } from '@tensorflow/tfjs';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { attentionInputs, causalBias, diagonal, infoNCEInputs, INFO_NCE_SCALE, kmeansInputs, matmulInputs } from './inputs.js';
import { concat, type Availability, type Layout, type OpOptions, type Peer, type PreparedOp } from './peer.js';
import { installNavigatorGpu } from './webgpu-globals.js';

type Tf = typeof import('@tensorflow/tfjs');

/** TensorFlow.js on its WebGPU backend, over the dawn.node instance `gpu` came from. */
export function tfjsPeer(gpu: Gpu | Promise<Gpu>): Peer {
  const opened = Promise.resolve(gpu);
  opened.catch(() => {}); // reported by available(), not as an unhandled rejection
  let state: Promise<{ tf: Tf; backend: WebGPUBackend; availability: Availability }> | null = null;

  const init = () =>
    (state ??= (async () => {
      await installNavigatorGpu(await opened);
      const tf = await import('@tensorflow/tfjs');
      await import('@tensorflow/tfjs-backend-webgpu');
      if (!tf.findBackendFactory('webgpu')) throw new Error('tfjs-backend-webgpu registered no backend: it was imported before navigator.gpu was set');
      // Small tensors would otherwise run on tfjs's CPU backend: every op must run on the GPU.
      tf.env().set('WEBGPU_CPU_FORWARD', false);
      if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed (see the warning above)');
      const backend = tf.backend() as WebGPUBackend;
      const availability: Availability = { ok: true, detail: `tfjs ${tf.version.tfjs} webgpu, WEBGPU_CPU_FORWARD=false` };
      return { tf, backend, availability };
    })());

  /** Wraps a computation over kept input tensors as a PreparedOp. */
  async function prepare(make: (tf: Tf) => { inputs: Tensor[]; compute: () => Tensor[] }): Promise<PreparedOp> {
    const { tf, backend } = await init();
    const { inputs, compute } = make(tf);
    // tfjs batches dispatches into one open encoder: close and submit it, then wait for the queue.
    const sync = async () => {
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.queue.onSubmittedWorkDone();
    };
    return {
      async run() {
        const outs = tf.tidy(compute);
        await sync();
        tf.dispose(outs);
      },
      async result() {
        const outs = tf.tidy(compute);
        const parts = await Promise.all(outs.map((t) => t.data()));
        tf.dispose(outs);
        return concat(parts);
      },
      async dispose() {
        tf.dispose(inputs);
      },
    };
  }

  return {
    name: 'tfjs-webgpu',
    onGpu: true,
    syncNote: 'flushes tfjs’s open command encoder (submitQueue) and awaits queue.onSubmittedWorkDone(); no readback',
    async available() {
      try {
        return (await init()).availability;
      } catch (e) {
        return { ok: false, reason: `tfjs-webgpu: ${(e as Error).message}` };
      }
    },

    matmul: (m: number, n: number, k: number, layout: Layout, batch = 1, options: OpOptions = {}) =>
      prepare((tf) => {
        const { a, b, shapes } = matmulInputs(m, n, k, layout, batch, options.seed);
        const A = tf.tensor(a, shapes.a);
        const B = tf.tensor(b, shapes.b);
        return { inputs: [A, B], compute: () => [tf.matMul(A, B, layout === 'AtB', layout === 'ABt')] };
      }),

    attention: (batchHeads: number, L: number, d: number, causal: boolean, options: OpOptions = {}) =>
      prepare((tf) => {
        const x = attentionInputs(batchHeads, L, d, options.seed);
        const [Q, K, V] = [x.q, x.k, x.v].map((t) => tf.tensor(t, [batchHeads, L, d]));
        const scale = tf.scalar(1 / Math.sqrt(d));
        const mask = tf.tensor(causalBias(L), [L, L]);
        return {
          inputs: [Q!, K!, V!, scale, mask],
          compute: () => {
            let s = tf.mul(tf.matMul(Q!, K!, false, true), scale);
            if (causal) s = tf.add(s, mask);
            return [tf.matMul(tf.softmax(s), V!)];
          },
        };
      }),

    kmeansAssign: (n: number, k: number, d: number, options: OpOptions = {}) =>
      prepare((tf) => {
        const { x, c } = kmeansInputs(n, k, d, options.seed);
        const X = tf.tensor(x, [n, d]);
        const C = tf.tensor(c, [k, d]);
        const two = tf.scalar(2);
        return {
          inputs: [X, C, two],
          compute: () => {
            const xx = tf.sum(tf.square(X), 1, true); // n × 1
            const cc = tf.sum(tf.square(C), 1); // k, broadcast over rows
            const dist = tf.add(tf.sub(xx, tf.mul(tf.matMul(X, C, false, true), two)), cc);
            return [tf.argMin(dist, 1)];
          },
        };
      }),

    infoNCE: (b: number, m: number, d: number, backward: boolean, options: OpOptions = {}) =>
      prepare((tf) => {
        const { img, txt } = infoNCEInputs(b, m, d, options.seed);
        const I = tf.tensor(img, [b, d]);
        const T = tf.tensor(txt, [m, d]);
        const scale = tf.scalar(INFO_NCE_SCALE);
        const eye = tf.tensor(diagonal(b, m), [b, m]); // positives: (i, i)
        const eyeT = tf.transpose(eye);
        const norm = tf.scalar(-1 / (2 * b));
        // logSoftmax only runs along the last axis in tfjs: the column direction goes through Sᵀ.
        const loss = (i: Tensor, t: Tensor) => {
          const s = tf.mul(tf.matMul(i, t, false, true), scale);
          const rows = tf.sum(tf.mul(tf.logSoftmax(s), eye));
          const cols = tf.sum(tf.mul(tf.logSoftmax(tf.transpose(s)), eyeT));
          return tf.mul(tf.add(rows, cols), norm);
        };
        const valueAndGrads = tf.valueAndGrads(loss);
        return {
          inputs: [I, T, scale, eye, eyeT, norm],
          compute: () => {
            if (!backward) return [loss(I, T)];
            const { value, grads } = valueAndGrads([I, T]);
            return [value, ...grads];
          },
        };
      }),
  };
}
