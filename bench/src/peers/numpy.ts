import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { attentionInputs, infoNCEInputs, INFO_NCE_SCALE, kmeansInputs, matmulInputs } from './inputs.js';
import type { Availability, Layout, OpOptions, Peer, PreparedOp, SelfTiming, TimingOptions } from './peer.js';

/** Debian's python (with python3-numpy), not a pyenv one on PATH. */
export const PYTHON = '/usr/bin/python3';
const INSTALL = 'apt-get install -y python3-numpy libopenblas0-pthread';
// Same relative path from bench/src/peers and bench/dist/peers: tsc does not copy .py files.
const SCRIPT = fileURLToPath(new URL('../../src/peers/numpy_peer.py', import.meta.url));

/**
 * The environment of a BLAS peer's child (numpy, torch). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE may
 * be set on this machine and pin OpenBLAS to a slower core: unset. And OpenBLAS 0.3.21 does not
 * recognise a CPU that a VM names only "Intel(R) Xeon(R) Processor": it falls back to its Prescott
 * (SSE3) kernels, a third of the speed. So the core is chosen from the CPU's flags (AVX-512:
 * SkylakeX; AVX2 + FMA: Haswell), as detection would on a named CPU: the peer runs at the CPU's
 * real ceiling.
 */
export function blasChildEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const core = blasCoreFor(cpuFlags());
  if (core) env.OPENBLAS_CORETYPE = core;
  return env;
}

export function blasCoreFor(flags: Set<string>): string | null {
  if (flags.has('avx512f') && flags.has('avx512bw') && flags.has('avx512vl')) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

interface BlasInfo {
  library: string;
  version?: string;
  core: string | null;
  threads?: number;
  via: string;
}

/**
 * numpy + OpenBLAS float32 in a `/usr/bin/python3` child process, one per prepared op (shape). The
 * child times the op itself (`selfTimed`, median of perf_counter samples): report that number.
 * `run()` works too, but each call adds a pipe round-trip and event-loop hops (1–3 ms measured at 1024³ here).
 */
export function numpyPeer(): Peer & { blas(): Promise<BlasInfo | null> } {
  let info: Promise<{ availability: Availability; blas: BlasInfo | null }> | null = null;

  const probe = () =>
    (info ??= (async () => {
      if (!existsSync(PYTHON)) return { availability: { ok: false, reason: `numpy-openblas: ${PYTHON} not found; install with \`${INSTALL}\`` }, blas: null };
      try {
        const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, '--info'], { env: blasChildEnv(), timeout: 30_000 });
        const { numpy, blas } = JSON.parse(stdout) as { numpy: string; blas: BlasInfo };
        if (blas.library !== 'openblas') {
          return {
            availability: { ok: false, reason: `numpy-openblas: numpy ${numpy} runs on BLAS "${blas.library}", not OpenBLAS; install with \`${INSTALL}\`` },
            blas,
          };
        }
        const detail = `numpy ${numpy}, OpenBLAS core ${blas.core ?? 'unknown'}, ${blas.threads ?? '?'} threads (core ${blasChildEnv().OPENBLAS_CORETYPE ? `set from the CPU's flags: OPENBLAS_CORETYPE=${blasChildEnv().OPENBLAS_CORETYPE}` : 'as OpenBLAS detects it'}; via ${blas.via})`;
        return { availability: { ok: true, detail } as Availability, blas };
      } catch (e) {
        const msg = ((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').pop();
        return { availability: { ok: false, reason: `numpy-openblas: ${PYTHON} cannot run numpy (${msg}); install with \`${INSTALL}\`` }, blas: null };
      }
    })());

  return {
    name: 'numpy-openblas',
    onGpu: false,
    syncNote: 'numpy runs in a python child: run() is a pipe round-trip (op done when it answers); selfTimed() times the op inside python, without the IPC',
    available: async () => (await probe()).availability,
    blas: async () => (await probe()).blas,

    matmul(m: number, n: number, k: number, layout: Layout, batch = 1, options: OpOptions = {}) {
      const { a, b, shapes } = matmulInputs(m, n, k, layout, batch, options.seed);
      return pythonOp({ op: 'matmul', layout }, { a: [a, shapes.a], b: [b, shapes.b] });
    },
    attention(batchHeads: number, L: number, d: number, causal: boolean, options: OpOptions = {}) {
      const { q, k, v } = attentionInputs(batchHeads, L, d, options.seed);
      const shape = [batchHeads, L, d];
      return pythonOp({ op: 'attention', causal }, { q: [q, shape], k: [k, shape], v: [v, shape] });
    },
    kmeansAssign(n: number, k: number, d: number, options: OpOptions = {}) {
      const { x, c } = kmeansInputs(n, k, d, options.seed);
      return pythonOp({ op: 'kmeansAssign' }, { x: [x, [n, d]], c: [c, [k, d]] });
    },
    infoNCE(b: number, m: number, d: number, backward: boolean, options: OpOptions = {}) {
      const { img, txt } = infoNCEInputs(b, m, d, options.seed);
      return pythonOp({ op: 'infoNCE', backward, scale: INFO_NCE_SCALE }, { img: [img, [b, d]], txt: [txt, [m, d]] });
    },
  };
}

/** Starts the child for one op: inputs go through raw float32 files in a temporary folder. */
async function pythonOp(spec: Record<string, unknown>, inputs: Record<string, [Float32Array, number[]]>): Promise<PreparedOp> {
  const dir = mkdtempSync(join(tmpdir(), 'mode-numpy-peer-'));
  const files: Record<string, [string, number[]]> = {};
  for (const [name, [data, shape]] of Object.entries(inputs)) {
    files[name] = [join(dir, `${name}.f32`), shape];
    writeFileSync(files[name][0], data);
  }
  const child = spawn(PYTHON, [SCRIPT], { env: blasChildEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  // A failed spawn or a child that died surfaces as the next answer missing (see request).
  const exited = new Promise<number | string | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', (e) => resolve(e.message));
  });
  child.stdin.on('error', () => {});
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let queue: Promise<unknown> = Promise.resolve();

  // One request at a time: each answer is the next line.
  const request = <T>(msg: object): Promise<T> => {
    const answer = queue.then(async () => {
      child.stdin.write(JSON.stringify(msg) + '\n');
      const line = await lines.next();
      if (line.done) throw new Error(`numpy peer: python exited (code ${await exited}): ${stderr.trim() || 'no output'}`);
      const reply = JSON.parse(line.value) as T & { error?: string };
      if (reply.error) throw new Error(`numpy peer (${String(spec.op)}): ${reply.error}`);
      return reply;
    });
    queue = answer.catch(() => {});
    return answer;
  };

  const dispose = async () => {
    child.stdin.end(); // the child leaves its loop at end of input
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await request({ ...spec, inputs: files });
  } catch (e) {
    await dispose();
    throw e;
  }
  return {
    async run() {
      await request({ cmd: 'run' });
    },
    async result() {
      const path = join(dir, 'out.f32');
      await request({ cmd: 'result', path });
      return new Float32Array(new Uint8Array(readFileSync(path)).buffer);
    },
    selfTimed: (options: TimingOptions = {}) => request<SelfTiming>({ cmd: 'time', maxTime: options.maxTime ?? 2, minSamples: options.minSamples ?? 5 }),
    dispose,
  };
}
