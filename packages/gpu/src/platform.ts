/**
 * What the runtime needs from Node, in one file: dawn.node, llvmpipe's thread count, the kernels'
 * WGSL files and why no adapter opened. A browser bundle swaps this file for platform.browser.ts
 * (the package's "browser" field), so nothing above gpu.ts knows which it runs on.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Platform } from './platform-types.js';

// Dawn's instance must outlive every adapter, device and buffer made from it: if V8 collects
// it, Dawn frees it under a live device (segfaults, futex errors, hangs). Keep each one here.
const instances: Map<string, GPU> = ((globalThis as { __modeDawnInstances?: Map<string, GPU> }).__modeDawnInstances ??= new Map());

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

const LAVAPIPE_FIX =
  'bash scripts/setup.sh   (as root; installs Mesa lavapipe from bookworm-backports: ' +
  'add a deb822 source for suite bookworm-backports, then apt-get install -y -t bookworm-backports mesa-vulkan-drivers)';

export const platform: Platform = {
  name: 'node',
  // $MODE_KERNELS_DIR: kernels read from elsewhere (the device bundle, which has no package tree around it).
  defaultKernelsDir: process.env.MODE_KERNELS_DIR ?? fileURLToPath(new URL('../../../kernels/', import.meta.url)),
  defaultBackend: { linux: 'vulkan', darwin: 'metal', win32: 'd3d12' }[process.platform as string] ?? 'default',

  async webgpu(flags) {
    const key = flags.join(' ');
    let gpu = instances.get(key);
    if (!gpu) {
      const { create, globals } = await import('webgpu');
      // Buffer usage flags and the like live on these globals (GPUBufferUsage, …).
      for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
      gpu = create(flags);
      instances.set(key, gpu);
    }
    return gpu;
  },

  lavapipeThreads() {
    // llvmpipe reads this once when the driver loads: it must be set before the first adapter.
    // Twice the core count measured +20% over its default (one thread per core) on 2 cores.
    if (process.env.LP_NUM_THREADS) return { LP_NUM_THREADS: process.env.LP_NUM_THREADS, setBy: 'user' };
    process.env.LP_NUM_THREADS = String(2 * availableParallelism());
    return { LP_NUM_THREADS: process.env.LP_NUM_THREADS, setBy: 'mode' };
  },

  readKernel(dir, name) {
    const path = join(resolve(dir), `${name}.wgsl`);
    if (!existsSync(path)) return null;
    return { source: readFileSync(path, 'utf8'), file: relative(dirname(resolve(dir)), path) || basename(path) };
  },

  async adapterNotes<T>(request: () => Promise<T>, quirk: RegExp): Promise<{ value: T; notes: string[] }> {
    const run = async () => {
      const restore = redirectStderr();
      if (!restore) return { value: await request(), notes: [] };
      let value: T | undefined;
      let failure: { error: unknown } | null = null;
      try {
        value = await request();
      } catch (error) {
        failure = { error };
      }
      const lines = restore().split('\n').filter(Boolean);
      const others = lines.filter((l) => failure || !quirk.test(l));
      if (others.length) process.stderr.write(others.join('\n') + '\n');
      if (failure) throw failure.error;
      return { value: value as T, notes: lines.filter((l) => quirk.test(l)) };
    };
    // One redirection at a time: fd 2 is the whole process's.
    const next = stderrLock.then(run, run);
    stderrLock = next.catch(() => undefined);
    return next;
  },

  noAdapter: () => ({ why: diagnoseNoAdapter(), fix: LAVAPIPE_FIX }),
};

let stderrLock: Promise<unknown> = Promise.resolve();

/**
 * Points fd 2 at a temporary file (Dawn writes its notes with fprintf(stderr), below Node's
 * process.stderr; what Node writes meanwhile lands there too and is passed on) and returns the
 * function that points it back and gives what was written. Null where that cannot be done safely:
 * not Linux, fd 0 or 1 closed (fd 2 would not be the descriptor reused), or stderr not reopenable
 * through /proc (a socket).
 */
function redirectStderr(): (() => string) | null {
  if (process.platform !== 'linux') return null;
  let saved: number;
  try {
    fstatSync(0);
    fstatSync(1);
    saved = openSync('/proc/self/fd/2', 'a');
  } catch {
    return null;
  }
  const back = () => {
    openSync(`/proc/self/fd/${saved}`, 'a'); // the lowest free descriptor: 2
    closeSync(saved);
  };
  const path = join(tmpdir(), `mode-dawn-notes-${process.pid}-${Date.now()}.log`);
  closeSync(2);
  let fd: number;
  try {
    fd = openSync(path, 'w+', 0o600); // the lowest free descriptor: 2
  } catch {
    back();
    return null;
  }
  return () => {
    closeSync(fd);
    back();
    const text = readFileSync(path, 'utf8');
    rmSync(path, { force: true });
    return text;
  };
}

/** Why no adapter opened, as far as the machine shows it; used only to word the error. */
function diagnoseNoAdapter(): string {
  if (process.platform !== 'linux') return 'no adapter reported by Dawn on this platform';
  let loader = false;
  try {
    loader = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    loader = existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1');
  }
  if (!loader) return 'the Vulkan loader (libvulkan.so.1) is not installed';
  for (const v of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) {
    const files = process.env[v];
    if (files && !files.split(':').every(existsSync))
      return `${v}=${files} points the Vulkan loader at driver file(s) that do not exist (unset it to use the installed drivers)`;
  }
  const icds = ICD_DIRS.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.json')));
  if (icds.length === 0) return `no Vulkan driver is installed (no ICD file in ${ICD_DIRS.join(', ')})`;
  let mesa = '';
  try {
    mesa = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
  } catch {
    /* not a Debian machine, or the package is absent */
  }
  if (mesa && Number(mesa.split(/[.:]/)[0]) < 24) return `Mesa's Vulkan drivers are version ${mesa}, which Dawn refuses (it needs Mesa 24 or newer)`;
  return `Vulkan drivers are present (${icds.join(', ')}) but none offered an adapter Dawn accepts`;
}
