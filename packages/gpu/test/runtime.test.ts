import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BindingError, DEFAULT_KERNELS_DIR, DeviceLostError, Gpu, KernelCompileError, type Kernel } from '../src/index.js';

// kernels/strided.wgsl (OP 0: out = a + b) stands in for any kernel: three storage bindings,
// a uniform struct of vectors, an override constant.
let gpu: Gpu;
let add: Kernel;
beforeAll(async () => {
  gpu = await Gpu.open();
  add = await gpu.kernel('strided', { OP: 0 });
});

/** strided's uniforms for out[i] = a[i] + b[i] over n contiguous elements. */
const flat = (n: number) => ({ shape: [1, 1, 1, n], stride_a: [0, 0, 0, 1], stride_b: [0, 0, 0, 1], stride_out: [0, 0, 0, 1], offset: [0, 0, 0, n] });
afterAll(() => gpu?.destroy());

describe('adapter', () => {
  it('reports name, features and limits', () => {
    expect(gpu.report.name.length).toBeGreaterThan(0);
    expect(gpu.report.limits.maxComputeWorkgroupSizeX).toBeGreaterThan(0);
    expect(gpu.report.enabledFeatures).toEqual(
      expect.arrayContaining(gpu.report.features.filter((f) => ['timestamp-query', 'subgroups', 'shader-f16'].includes(f))),
    );
    expect(process.env.LP_NUM_THREADS).toBe(gpu.report.threads?.LP_NUM_THREADS);
  });
});

describe("Dawn's notes on the adapter", () => {
  // A process of its own: what reaches its fd 2 is what a user's terminal shows.
  it('are held back from stderr into the report; what else is written to stderr still shows, in order', () => {
    const gpuIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      import { writeSync } from 'node:fs';
      const { Gpu } = await import(${JSON.stringify(gpuIndex)});
      console.error('before');
      const gpu = await Gpu.open();
      const again = await Gpu.open();
      console.error('after');
      writeSync(2, 'native-level write\\n');
      console.log(JSON.stringify(gpu.report.driverNotes));
      gpu.destroy();
      again.destroy();`;
    // stderr a file, as `2> log` makes it (a terminal or a pipe goes the same way; a socket, which
    // Node's own child pipes are, cannot be reopened, so there the notes stay on stderr).
    const log = join(mkdtempSync(join(tmpdir(), 'mode-notes-')), 'stderr.log');
    const err = openSync(log, 'w');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', err], encoding: 'utf8', timeout: 120_000 });
    closeSync(err);
    const stderr = readFileSync(log, 'utf8');
    expect(r.status, stderr).toBe(0);
    expect(stderr).toBe('before\nafter\nnative-level write\n');
    const notes = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    // lavapipe's two clamped limits; another adapter may have nothing to say.
    if (gpu.report.name.includes('llvmpipe'))
      expect(notes).toEqual([
        expect.stringMatching(/maxDynamicUniformBuffersPerPipelineLayout artificially reduced/),
        expect.stringMatching(/maxDynamicStorageBuffersPerPipelineLayout artificially reduced/),
      ]);
  });
});

describe('kernel loader', () => {
  it('reports a WGSL syntax error as file:line:col', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mode-')), 'kernels');
    mkdirSync(dir);
    writeFileSync(join(dir, 'broken.wgsl'), '// a kernel with a typo\n@compute @workgroup_size(1)\nfn main( {\n}\n');
    const other = await Gpu.open({ kernelsDir: dir });
    try {
      const err = await other.kernel('broken').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KernelCompileError);
      expect((err as Error).message).toMatch(/^kernels\/broken\.wgsl:3:\d+ error: /);
      expect((err as KernelCompileError).diagnostics[0]!.line).toBe(3);
    } finally {
      other.destroy();
    }
  });

  it('compiles kernels given as sources (as a browser page bundles them), their diagnostics naming kernels/<name>.wgsl', async () => {
    const source = readFileSync(join(DEFAULT_KERNELS_DIR, 'strided.wgsl'), 'utf8');
    const bundled = await Gpu.open({ kernels: { strided: source, broken: '@compute @workgroup_size(1)\nfn main( {\n}\n' } });
    try {
      expect(bundled.kernelSource('strided')).toEqual({ source, file: 'kernels/strided.wgsl' });
      expect((await bundled.kernel('strided', { OP: 0 })).info.name).toBe('strided');
      await expect(bundled.kernel('broken')).rejects.toThrow(/^kernels\/broken\.wgsl:2:\d+ error: /);
      await expect(bundled.kernel('unary')).rejects.toThrow('No kernel "unary" among the 2 bundled kernels');
    } finally {
      bundled.destroy();
    }
  });

  it('names an unknown kernel and an unknown override', async () => {
    await expect(gpu.kernel('no_such_kernel')).rejects.toThrow(/No kernel "no_such_kernel".*no_such_kernel\.wgsl does not exist/);
    await expect(gpu.kernel('strided', { TILE: 4 })).rejects.toThrow(/kernels\/strided\.wgsl: no override constant\(s\) TILE; it declares: OP: u32/);
  });

  it('caches pipelines by kernel and override values', async () => {
    expect(await gpu.kernel('strided', { OP: 0 })).toBe(add);
    expect(await gpu.kernel('strided', { OP: 2 })).not.toBe(add);
  });
});

describe('dispatch counts', () => {
  it('counts the dispatches recorded per kernel file', async () => {
    const g = await Gpu.open();
    try {
      const n = 4;
      const [a, out] = [g.upload(new Float32Array(n).fill(1)), g.buffer(4 * n)];
      expect(g.dispatchCounts.size).toBe(0);
      const k = await g.kernel('strided', { OP: 2 });
      expect(g.dispatchCounts.size).toBe(0); // compiled, not dispatched
      g.dispatch(k, { bindings: { a, b: a, out }, uniforms: flat(n), workgroups: 1 });
      g.dispatch(await g.kernel('strided', { OP: 0 }), { bindings: { a, b: a, out }, uniforms: flat(n), workgroups: 1 });
      expect([...g.dispatchCounts]).toEqual([['strided', 2]]);
      expect([...(await g.read(out))]).toEqual([2, 2, 2, 2]);
    } finally {
      g.destroy();
    }
  });
});

describe('dispatch checks', () => {
  const n = 10;
  const args = () => ({ bindings: { a: gpu.buffer(4 * n), b: gpu.buffer(4 * n), out: gpu.buffer(4 * n) }, uniforms: flat(n), workgroups: 1 });

  it('rejects a binding name the kernel does not declare', () => {
    const a = args();
    expect(() => gpu.dispatch(add, { ...a, bindings: { ...a.bindings, x: a.bindings.a } })).toThrow(BindingError);
    expect(() => gpu.dispatch(add, { ...a, bindings: { ...a.bindings, x: a.bindings.a } })).toThrow(
      "kernel strided: no binding named 'x'; it declares storage and texture bindings: a, b, out",
    );
  });

  it('rejects a missing binding, a typed array, a small buffer, a wrong usage', () => {
    const a = args();
    const { out, ...noOut } = a.bindings;
    expect(() => gpu.dispatch(add, { ...a, bindings: noOut as never })).toThrow(
      "kernel strided: binding 'out' (@group(0) @binding(3), var<storage, read_write>) was not passed",
    );
    expect(() => gpu.dispatch(add, { ...a, bindings: { ...a.bindings, b: new Float32Array(n) as never } })).toThrow(
      /binding 'b' .* expects a GPUBuffer or \{ buffer, offset\?, size\? \}; got a Float32Array \(upload it with gpu.upload\(\) first\)/,
    );
    const mapRead = gpu.device.createBuffer({ size: 64, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'staging' });
    expect(() => gpu.dispatch(add, { ...a, bindings: { ...a.bindings, a: mapRead } })).toThrow(
      /binding 'a' .* needs a buffer with STORAGE usage; buffer "staging" has usage 0x9/,
    );
    mapRead.destroy();
    expect(out).toBeDefined();
  });

  it('rejects a buffer written by the kernel and also bound for reading', () => {
    const a = args();
    expect(() => gpu.dispatch(add, { ...a, bindings: { ...a.bindings, out: a.bindings.a } })).toThrow(
      /binding 'out' .* is written, and the same buffer is also bound to binding 'a'/,
    );
  });

  it('rejects missing, extra and ill-typed uniform fields', () => {
    const a = args();
    expect(() => gpu.dispatch(add, { ...a, uniforms: {} })).toThrow('kernel strided: uniform field p.shape: vec4u was not given');
    expect(() => gpu.dispatch(add, { ...a, uniforms: { ...flat(n), m: 1 } })).toThrow(
      'uniform p has no field m; its fields: shape, stride_a, stride_b, stride_out, offset',
    );
    expect(() => gpu.dispatch(add, { ...a, uniforms: { ...flat(n), offset: [0, 0, 0, -1] } })).toThrow('p.offset: vec4u = -1 is not a u32');
    expect(() => gpu.dispatch(add, { ...a, uniforms: { ...flat(n), offset: n } })).toThrow('p.offset: vec4u takes 4 value(s), got 1');
    expect(() => gpu.dispatch(add, { ...a, workgroups: 1e6 })).toThrow(/workgroup count \[1000000, 1, 1\] invalid/);
  });
});

describe('texture bindings', () => {
  // Each invocation copies texel (i % w, i / w) of a w-wide texture_2d<f32> to out[i].
  const SOURCE = `
struct Params { w: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var t: texture_2d<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { out[g.x] = textureLoad(t, vec2(g.x % p.w, g.x / p.w), 0); }
}`;
  let texGpu: Gpu;
  let fetch: Kernel;
  beforeAll(async () => {
    texGpu = await Gpu.open({ kernels: { fetch: SOURCE } });
    fetch = await texGpu.kernel('fetch');
  });
  afterAll(() => texGpu?.destroy());
  const texture = (usage: number) =>
    texGpu.device.createTexture({ size: [8, 3], format: 'rgba32float', usage: usage | GPUTextureUsage.COPY_DST, label: 'texels' });

  it('reads texels copied from a buffer range, the copy ordered between dispatches', async () => {
    // Two 8×3 images of texels at byte 512 of one buffer (rows 128 bytes, padded to 256): the
    // second copy, recorded after the first dispatch, must not reach it.
    const img = (base: number) => {
      const x = new Float32Array(128 + 3 * 64).fill(NaN);
      for (let y = 0; y < 3; y++) for (let i = 0; i < 32; i++) x[128 + 64 * y + i] = base + 32 * y + i;
      return x;
    };
    const [src1, src2] = [texGpu.upload(img(0)), texGpu.upload(img(1000))];
    const t = texture(GPUTextureUsage.TEXTURE_BINDING);
    const [out1, out2] = [texGpu.upload(new Float32Array(96).fill(NaN)), texGpu.upload(new Float32Array(96).fill(NaN))];
    for (const [src, out] of [
      [src1, out1],
      [src2, out2],
    ] as const) {
      texGpu.copyBufferToTexture({ buffer: src, offset: 512, bytesPerRow: 256, rowsPerImage: 3 }, { texture: t }, [8, 3]);
      texGpu.dispatch(fetch, { bindings: { t, out }, uniforms: { w: 8, n: 24 }, workgroups: 1 });
    }
    expect([...(await texGpu.read(out1))]).toEqual(Array.from({ length: 96 }, (_, i) => i));
    expect([...(await texGpu.read(out2))]).toEqual(Array.from({ length: 96 }, (_, i) => 1000 + i));
    t.destroy();
  });

  it('rejects a buffer for a texture binding and a texture without TEXTURE_BINDING usage', () => {
    const out = texGpu.buffer(4 * 96);
    expect(() => texGpu.dispatch(fetch, { bindings: { t: out, out }, uniforms: { w: 8, n: 24 }, workgroups: 1 })).toThrow(
      /kernel fetch: binding 't' \(@group\(0\) @binding\(1\), texture_2d<f32>\) expects a GPUTexture; got a GPUBuffer/,
    );
    const copyOnly = texture(0);
    expect(() => texGpu.dispatch(fetch, { bindings: { t: copyOnly, out }, uniforms: { w: 8, n: 24 }, workgroups: 1 })).toThrow(
      /binding 't' .* needs a 2d texture with TEXTURE_BINDING usage; texture "texels" is 2d with usage 0x2/,
    );
    copyOnly.destroy();
  });
});

describe('buffer copies and clears', () => {
  it('are ordered like dispatches: a copy after a dispatch sees its output, a dispatch after a copy reads what was copied', async () => {
    const n = 37;
    const a = gpu.upload(Float32Array.from({ length: n }, (_, i) => i));
    const b = gpu.upload(Float32Array.from({ length: n }, (_, i) => 100 * i));
    const sum = gpu.upload(new Float32Array(n).fill(NaN));
    const packed = gpu.upload(new Float32Array(2 * n + 3).fill(NaN));
    gpu.dispatch(add, { bindings: { a, b, out: sum }, uniforms: flat(n), workgroups: 1 });
    gpu.copyBuffer(sum, 4, packed, 8, 4 * (n - 1)); // sum[1..] to packed[2..]
    gpu.clearBuffer(packed, 4 * (n + 1), 4 * (n + 2)); // packed[n+1..] to 0
    gpu.copyBuffer(packed, 8, a, 0, 4 * 4); // a[0..3] = sum[1..4]: the next dispatch must read these
    gpu.dispatch(add, { bindings: { a, b, out: sum }, uniforms: flat(n), workgroups: 1 });
    const p = [...(await gpu.read(packed))];
    expect(p.slice(0, 2).every(Number.isNaN)).toBe(true);
    expect(p.slice(2, n + 1)).toEqual(Array.from({ length: n - 1 }, (_, i) => 101 * (i + 1)));
    expect(p.slice(n + 1)).toEqual(new Array(n + 2).fill(0));
    const s = [...(await gpu.read(sum))];
    expect(s.slice(0, 4)).toEqual([0, 1, 2, 3].map((i) => 101 * (i + 1) + 100 * i));
    expect(s.slice(4)).toEqual(Array.from({ length: n - 4 }, (_, i) => 101 * (i + 4)));
    [a, b, sum, packed].forEach((x) => gpu.release(x));
  });

  it('refuses a range past a buffer end, naming the buffers', () => {
    const x = gpu.buffer(64, 'small');
    const y = gpu.buffer(1024, 'big');
    expect(() => gpu.copyBuffer(y, 0, x, 0, 128)).toThrow(
      /copyBuffer: 128 bytes from "big" at 0 \(1024 bytes\) to "small" at 0 \(\d+ bytes\) run past a buffer's end/,
    );
    expect(() => gpu.clearBuffer(x, x.size - 4, 8)).toThrow(/clearBuffer: 8 bytes at \d+ run past the end of "small"/);
    [x, y].forEach((z) => gpu.release(z));
  });
});

describe('binding a range of a buffer', () => {
  it('reads and writes only the bound bytes', async () => {
    // a and b live at byte 256 and 512 of one buffer; out at byte 256 of another, poisoned around it.
    const n = 37;
    const whole = new Float32Array(256).fill(NaN);
    const a = Float32Array.from({ length: n }, (_, i) => i);
    const b = Float32Array.from({ length: n }, (_, i) => 1000 * i);
    whole.set(a, 64);
    whole.set(b, 128);
    const src = gpu.upload(whole, 'range src');
    const dst = gpu.upload(new Float32Array(192).fill(NaN), 'range dst');
    gpu.dispatch(add, {
      bindings: { a: { buffer: src, offset: 256, size: 4 * n }, b: { buffer: src, offset: 512 }, out: { buffer: dst, offset: 256, size: 4 * n } },
      uniforms: flat(n),
      workgroups: 1,
    });
    const got = await gpu.read(dst);
    expect([...got.subarray(64, 64 + n)]).toEqual([...a].map((x, i) => x + b[i]!));
    expect([...got.subarray(0, 64), ...got.subarray(64 + n)].every(Number.isNaN)).toBe(true);
    [src, dst].forEach((x) => gpu.release(x));
  });

  it('names the binding and the fix for a misaligned, out-of-bounds or short range', () => {
    const n = 16;
    const big = gpu.buffer(4096);
    const out = gpu.buffer(4 * n);
    const bind = (a: unknown) => () => gpu.dispatch(add, { bindings: { a: a as GPUBuffer, b: big, out }, uniforms: flat(n), workgroups: 1 });
    const align = gpu.report.limits.minStorageBufferOffsetAlignment ?? 256;
    expect(bind({ buffer: big, offset: 4 })).toThrow(
      `binding 'a' (@group(0) @binding(1), var<storage, read>): offset 4 must be a non-negative multiple of ${align}`,
    );
    expect(bind({ buffer: big, offset: 3840, size: 512 })).toThrow(
      /binding 'a' .*from byte 3840, 512 bytes is not a range of whole 4-byte words inside the buffer/,
    );
    expect(bind({ buffer: big, offset: 0, size: 6 })).toThrow(/not a range of whole 4-byte words/);
    expect(bind({ buffer: new Float32Array(4) })).toThrow(/expects a GPUBuffer or \{ buffer, offset\?, size\? \}; got/);
    [big, out].forEach((x) => gpu.release(x));
  });

  it("rejects a range past the adapter's largest binding, saying how to split it", () => {
    const max = gpu.report.limits.maxStorageBufferBindingSize!;
    const n = 16;
    const [b, out] = [gpu.buffer(4 * n), gpu.buffer(4 * n)];
    // Checked before any GPU work, so a buffer that large is never needed: fake one by its size and usage.
    const huge = { size: max + 256, usage: GPUBufferUsage.STORAGE, label: 'huge' } as GPUBuffer;
    expect(() => gpu.dispatch(add, { bindings: { a: huge, b, out }, uniforms: flat(n), workgroups: 1 })).toThrow(
      `over this adapter's maxStorageBufferBindingSize (${max} bytes); bind it in ranges of at most that`,
    );
    [b, out].forEach((x) => gpu.release(x));
  });
});

describe('a uniform-array binding (ubo): a window the caller binds', () => {
  const SOURCE = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> w: array<vec4<f32>, 16>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { out[g.x] = w[15u - g.x]; }
}`;
  let uGpu: Gpu;
  let reverse: Kernel;
  beforeAll(async () => {
    uGpu = await Gpu.open({ kernels: { reverse: SOURCE } });
    reverse = await uGpu.kernel('reverse');
  });
  afterAll(() => uGpu?.destroy());

  it('reads the bound range of a pool buffer, per-lane addresses included', async () => {
    const values = Float32Array.from({ length: 128 }, (_, i) => i);
    const src = uGpu.upload(values, 'window src');
    const out = uGpu.upload(new Float32Array(64).fill(NaN), 'window out');
    uGpu.dispatch(reverse, { bindings: { w: { buffer: src, offset: 256, size: 256 }, out }, uniforms: { n: 16 }, workgroups: 2 });
    const got = await uGpu.read(out);
    // Window vec4 j is values[64 + 4j …]; out[i] = window[15 − i].
    expect([...got]).toEqual(Array.from({ length: 64 }, (_, x) => 64 + 4 * (15 - Math.floor(x / 4)) + (x % 4)));
    [src, out].forEach((x) => uGpu.release(x));
  });

  it('names the binding and the fix for a buffer without UNIFORM usage, a misaligned offset, a window over the limit', () => {
    const out = uGpu.buffer(256);
    const bind = (w: unknown) => () => uGpu.dispatch(reverse, { bindings: { w: w as GPUBuffer, out }, uniforms: { n: 16 }, workgroups: 1 });
    const storageOnly = uGpu.device.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE, label: 'storage only' });
    expect(bind(storageOnly)).toThrow(/binding 'w' \(@group\(0\) @binding\(1\), var<uniform>\) needs a buffer with UNIFORM usage; buffer "storage only"/);
    const big = uGpu.buffer(4096);
    expect(bind({ buffer: big, offset: 16 })).toThrow(/offset 16 must be a non-negative multiple of \d+ \(minUniformBufferOffsetAlignment\)/);
    const max = uGpu.report.limits.maxUniformBufferBindingSize!;
    const huge = { size: max + 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE, label: 'huge' } as GPUBuffer;
    expect(bind(huge)).toThrow(`over this adapter's maxUniformBufferBindingSize (${max} bytes); bind it in ranges of at most that`);
    storageOnly.destroy();
    [big, out].forEach((x) => uGpu.release(x));
  });
});

describe('buffer pool', () => {
  it('a second identical run allocates nothing new', async () => {
    const run = async () => {
      const n = 4097;
      const a = gpu.upload(new Float32Array(n).fill(1));
      const b = gpu.upload(new Float32Array(n).fill(2));
      const out = gpu.buffer(4 * n);
      gpu.dispatch(add, { bindings: { a, b, out }, uniforms: flat(n), workgroups: Math.ceil(n / 256) });
      const result = await gpu.read(out);
      [a, b, out].forEach((x) => gpu.release(x));
      return result;
    };
    const first = await run();
    expect(first.length).toBe(4097);
    expect(first.every((x) => x === 3)).toBe(true);
    const before = gpu.pool.stats();
    await run();
    const after = gpu.pool.stats();
    expect(after.allocations).toBe(before.allocations);
    expect(after.poolHits).toBeGreaterThan(before.poolHits);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

  it('orders a write after dispatches already recorded', async () => {
    const n = 8;
    const a = gpu.upload(new Float32Array(n).fill(1));
    const b = gpu.upload(new Float32Array(n).fill(1));
    const out = gpu.buffer(4 * n);
    gpu.dispatch(add, { bindings: { a, b, out }, uniforms: flat(n), workgroups: 1 });
    gpu.write(a, new Float32Array(n).fill(100)); // must not reach the dispatch above
    expect([...(await gpu.read(out))]).toEqual(new Array(n).fill(2));
    expect([...(await gpu.read(a))]).toEqual(new Array(n).fill(100));
    [a, b, out].forEach((x) => gpu.release(x));
  });
});

describe('device loss', () => {
  it('surfaces as DeviceLostError naming the last kernel', async () => {
    const g = await Gpu.open();
    const k = await g.kernel('strided');
    const n = 4;
    const bindings = { a: g.buffer(16), b: g.buffer(16), out: g.buffer(16) };
    g.dispatch(k, { bindings, uniforms: flat(n), workgroups: 1 });
    await g.sync();
    g.device.destroy(); // as a driver reset would
    await new Promise((r) => setTimeout(r, 50));
    expect(() => g.dispatch(k, { bindings, uniforms: flat(n), workgroups: 1 })).toThrow(DeviceLostError);
    expect(() => g.buffer(16)).toThrow(/GPU device lost \(destroyed\).*Last kernel dispatched: strided/);
    g.destroy(); // still safe
  });
});
