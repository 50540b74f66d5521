import type { Gpu } from '@mode/gpu';
import type { Array as JaxArray } from '@jax-js/jax';
import { attentionInputs, causalBias, diagonal, infoNCEInputs, INFO_NCE_SCALE, kmeansInputs, matmulInputs } from './inputs.js';
import { concat, type Availability, type Layout, type OpOptions, type Peer, type PreparedOp } from './peer.js';
import { installNavigatorGpu } from './webgpu-globals.js';

type Jax = typeof import('@jax-js/jax');
type Tree = JaxArray | Tree[];

/**
 * jax-js on its WebGPU backend, over the dawn.node instance `gpu` came from. Every op is one
 * `jit`-compiled function (jax-js fuses elementwise work into its kernels). jax-js arrays are
 * reference-counted: each call passes `.ref` of the kept inputs, and outputs are disposed.
 */
export function jaxPeer(gpu: Gpu | Promise<Gpu>): Peer {
  const opened = Promise.resolve(gpu);
  opened.catch(() => {}); // reported by available(), not as an unhandled rejection
  let state: Promise<{ jax: Jax; availability: Availability }> | null = null;

  const init = () =>
    (state ??= (async () => {
      await installNavigatorGpu(await opened);
      const jax = await import('@jax-js/jax');
      const devices = await jax.init('webgpu');
      if (!devices.includes('webgpu')) throw new Error('jax.init("webgpu") found no WebGPU adapter on navigator.gpu');
      jax.defaultDevice('webgpu');
      return { jax, availability: { ok: true, detail: 'jax-js 0.1.25 webgpu, jit' } as Availability };
    })());

  /** `fn` jit-compiled over the kept inputs (given as data and shape). */
  async function prepare(inputs: [Float32Array, number[]][], fn: (...args: JaxArray[]) => Tree): Promise<PreparedOp> {
    const { jax } = await init();
    const kept = inputs.map(([data, shape]) => jax.numpy.array(data, { shape }));
    const f = jax.jit(fn);
    const call = () => f(...kept.map((x) => x.ref)) as Tree;
    return {
      async run() {
        const out = call();
        await jax.blockUntilReady(out);
        jax.tree.dispose(out);
      },
      async result() {
        // data() reads back and releases each output.
        return concat(await Promise.all(jax.tree.leaves(call()).map((x) => x.data())));
      },
      async dispose() {
        for (const x of kept) x.dispose();
        f.dispose();
      },
    };
  }

  const np = async () => (await init()).jax.numpy;

  return {
    name: 'jax-js',
    onGpu: true,
    syncNote: 'jax.blockUntilReady(out): submits the pending kernels, then maps a 0-byte staging copy (waits for the queue; no readback)',
    async available() {
      try {
        return (await init()).availability;
      } catch (e) {
        return { ok: false, reason: `jax-js: ${(e as Error).message}` };
      }
    },

    async matmul(m: number, n: number, k: number, layout: Layout, batch = 1, options: OpOptions = {}) {
      const { a, b, shapes } = matmulInputs(m, n, k, layout, batch, options.seed);
      const { matmul, matrixTranspose: t } = await np();
      return prepare(
        [
          [a, shapes.a],
          [b, shapes.b],
        ],
        (A, B) => matmul(layout === 'AtB' ? t(A!) : A!, layout === 'ABt' ? t(B!) : B!),
      );
    },

    async attention(batchHeads: number, L: number, d: number, causal: boolean, options: OpOptions = {}) {
      const { q, k, v } = attentionInputs(batchHeads, L, d, options.seed);
      const { jax } = await init();
      const { matmul, matrixTranspose: t } = jax.numpy;
      const shape = [batchHeads, L, d];
      const inputs: [Float32Array, number[]][] = [
        [q, shape],
        [k, shape],
        [v, shape],
      ];
      if (causal) inputs.push([causalBias(L), [L, L]]);
      return prepare(inputs, (Q, K, V, mask) => {
        const s = matmul(Q!, t(K!)).mul(1 / Math.sqrt(d));
        return matmul(jax.nn.softmax(mask ? s.add(mask) : s, -1), V!);
      });
    },

    async kmeansAssign(n: number, k: number, d: number, options: OpOptions = {}) {
      const { x, c } = kmeansInputs(n, k, d, options.seed);
      const { argmin, matmul, matrixTranspose: t, square, sum } = await np();
      return prepare(
        [
          [x, [n, d]],
          [c, [k, d]],
        ],
        (X, C) => {
          const xx = sum(square(X!.ref), 1, { keepdims: true }); // n × 1
          const cc = sum(square(C!.ref), 1); // k, broadcast over rows
          return argmin(xx.sub(matmul(X!, t(C!)).mul(2)).add(cc), 1);
        },
      );
    },

    async infoNCE(b: number, m: number, d: number, backward: boolean, options: OpOptions = {}) {
      const { img, txt } = infoNCEInputs(b, m, d, options.seed);
      const { jax } = await init();
      const { matmul, matrixTranspose: t, sum } = jax.numpy;
      const loss = (I: JaxArray, T: JaxArray, eye: JaxArray) => {
        const s = matmul(I, t(T)).mul(INFO_NCE_SCALE);
        const rows = sum(jax.nn.logSoftmax(s.ref, 1).mul(eye.ref));
        const cols = sum(jax.nn.logSoftmax(s, 0).mul(eye));
        return rows.add(cols).mul(-1 / (2 * b));
      };
      const withGrads = jax.valueAndGrad(loss, { argnums: [0, 1] });
      return prepare(
        [
          [img, [b, d]],
          [txt, [m, d]],
          [diagonal(b, m), [b, m]],
        ],
        backward
          ? (I, T, eye) => {
              const [value, [dI, dT]] = withGrads(I!, T!, eye!);
              return [value, dI, dT];
            }
          : (I, T, eye) => loss(I!, T!, eye!),
      );
    },
  };
}
