import { BindingError, DeviceLostError, GpuError, KernelCompileError, NoAdapterError } from './errors.js';
import { platform } from './platform.js';
import { BufferPool } from './pool.js';
import { Profiler, type ProfileClock, type Work } from './profiler.js';
import { reflectKernel, workgroupSizeOf, type KernelInfo } from './reflect.js';

/** Features the runtime asks for whenever the adapter has them; kernels pick variants by them. */
export const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

/** The repository's `kernels/` (Node); '' in a browser, where the kernels come bundled. */
export const DEFAULT_KERNELS_DIR = platform.defaultKernelsDir;

// UNIFORM too, so any buffer can also be bound as a `var<uniform>` window (see reflect.ts's 'ubo').
export const STORAGE = 0x80 | 0x40 | 0x4 | 0x8; // STORAGE | UNIFORM | COPY_SRC | COPY_DST
const UNIFORM = 0x40 | 0x8; // UNIFORM | COPY_DST

/** What a buffer bound to a storage or a caller-bound uniform ('ubo') binding must meet: limits (with WebGPU's defaults) and usage. */
const BINDING_RULES = {
  storage: {
    align: 'minStorageBufferOffsetAlignment',
    alignDefault: 256,
    max: 'maxStorageBufferBindingSize',
    maxDefault: 134217728,
    usage: 0x80,
    usageName: 'STORAGE',
  },
  ubo: {
    align: 'minUniformBufferOffsetAlignment',
    alignDefault: 256,
    max: 'maxUniformBufferBindingSize',
    maxDefault: 65536,
    usage: 0x40,
    usageName: 'UNIFORM',
  },
} as const;
const MAP_READ = 0x1 | 0x8; // MAP_READ | COPY_DST
const QUERY_RESOLVE = 0x200 | 0x4; // QUERY_RESOLVE | COPY_SRC
const QUERY_CAPACITY = 2048; // timestamps per resolve: two per dispatch
// Dispatches per early submission: a long batch (a training step records ~500) starts running
// while the rest is still recorded, instead of idling the adapter until sync(). On lavapipe a
// dispatch costs ~0.14 ms to record, which the adapter otherwise waits out.
const EARLY_SUBMIT = 32;

export interface OpenOptions {
  /** Dawn backend: `vulkan`, `metal`, `d3d12`, `opengl`, `opengles`, `null`. Default: the platform's. */
  backend?: string;
  /** Require an adapter whose name contains this string (e.g. `llvmpipe`). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Features to require. Default: those of OPTIONAL_FEATURES the adapter has. */
  features?: GPUFeatureName[];
  /** Turn the profiler on from the start; `'cpu-wall'` forces CPU timing even with timestamp-query. */
  profile?: boolean | ProfileClock;
  /** Folder holding the `.wgsl` files. Default: the repository's `kernels/`. */
  kernelsDir?: string;
  /**
   * The kernels' WGSL by name (`matmul_tiled` → its source), instead of files: how a browser
   * page gets them (bundled). Default in Node: read from `kernelsDir`.
   */
  kernels?: Readonly<Record<string, string>>;
  /** A WebGPU entry point to use instead of the platform's (dawn.node in Node, navigator.gpu in a browser). */
  webgpu?: GPU;
}

export interface AdapterReport {
  name: string;
  vendor: string;
  architecture: string;
  description: string;
  backend: string;
  /** True for Mesa's software Vulkan (llvmpipe), where shaders run on the CPU. */
  isCpu: boolean;
  features: string[];
  enabledFeatures: string[];
  limits: Record<string, number>;
  subgroupSize: { min: number; max: number } | null;
  /** llvmpipe's thread count and who chose it (null in a browser). */
  threads: { LP_NUM_THREADS: string; setBy: 'user' | 'mode' } | null;
  /** What Dawn printed about the adapter when it opened (lavapipe: limits it clamps), held back from the terminal; `mode info` shows them. */
  driverNotes: string[];
}

/** A compiled kernel: its reflected interface plus the pipeline for one set of override values. */
export interface Kernel {
  readonly info: KernelInfo;
  readonly overrides: Readonly<Record<string, number | boolean>>;
  readonly workgroupSize: [number, number, number];
  readonly pipeline: GPUComputePipeline;
  readonly layouts: GPUBindGroupLayout[];
}

/** Part of a buffer bound to one storage binding: `size` bytes from `offset` (default: to the end). */
export interface BufferRange {
  buffer: GPUBuffer;
  /** A multiple of the adapter's minStorageBufferOffsetAlignment (256 on most). Default 0. */
  offset?: number;
  size?: number;
}

export interface DispatchArgs {
  /** Storage buffers (whole, or a range of one) and textures (for `texture_2d<f32>`) by their WGSL variable name. */
  bindings: Record<string, GPUBuffer | BufferRange | GPUTexture>;
  /** The uniform struct's fields by name; every field must be given. */
  uniforms?: Record<string, number | number[]>;
  /** Workgroup counts (x, y, z). */
  workgroups: number | [number, number?, number?];
  /** Work done, for the profiler's GFLOP/s and GB/s columns. */
  work?: Work;
  label?: string;
}

interface Pending {
  kernel: string;
  label: string;
  work: Work;
}

export class Gpu {
  readonly pool: BufferPool;
  readonly profiler: Profiler;
  /**
   * Dispatches recorded per kernel (its file's name, `kernels/<name>.wgsl`) since the device
   * opened: which kernels a piece of code actually ran (the selftest checks its coverage by it).
   */
  readonly dispatchCounts = new Map<string, number>();
  private readonly kernelInfos = new Map<string, { info: KernelInfo; module: GPUShaderModule }>();
  private readonly pipelines = new Map<string, Promise<Kernel>>();
  private encoder: GPUCommandEncoder | null = null;
  private commandBuffers: { cb: GPUCommandBuffer; timed?: Pending }[] = [];
  /** Dispatches recorded since the last submission, and whether work was submitted before sync(). */
  private recorded = 0;
  private inFlight = false;
  private pending: Pending[] = [];
  private transient: GPUBuffer[] = [];
  private stagingToDestroy: GPUBuffer[] = [];
  private querySet: GPUQuerySet | null = null;
  private queryResolve: GPUBuffer | null = null;
  private queryReadbacks: { buffer: GPUBuffer; dispatches: Pending[] }[] = [];
  private lastKernel = '(none)';
  private uncaptured: GPUError | null = null;
  private lost: { reason: string; message: string } | null = null;

  private constructor(
    readonly instance: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly report: AdapterReport,
    readonly kernelsDir: string,
    private readonly sources: Readonly<Record<string, string>> | undefined,
    clock: ProfileClock,
    profile: boolean,
  ) {
    this.pool = new BufferPool(device);
    this.profiler = new Profiler(clock, profile);
    device.onuncapturederror = (e) => {
      this.uncaptured ??= e.error;
    };
    void device.lost.then((info) => {
      this.lost ??= { reason: info.reason, message: info.message };
    });
  }

  static async open(options: OpenOptions = {}): Promise<Gpu> {
    const threads = options.webgpu ? null : platform.lavapipeThreads();
    const flags = ['disable-dawn-features=timestamp_quantization'];
    if (options.backend) flags.push(`backend=${options.backend}`);
    if (options.adapter) flags.push(`adapter=${options.adapter}`);
    const noAdapter = (why: string, fix: string) => {
      const wanted = [options.backend && `backend ${options.backend}`, options.adapter && `adapter "${options.adapter}"`].filter(Boolean).join(', ');
      return new NoAdapterError(`No WebGPU adapter${wanted ? ` (${wanted})` : ''}: ${why}.\nFix: ${fix}`);
    };
    let instance: GPU;
    try {
      instance = options.webgpu ?? (await platform.webgpu(flags));
    } catch (e) {
      const { fix } = platform.noAdapter();
      throw noAdapter((e as Error).message, fix);
    }
    // Dawn's notes on the adapter's limits (lavapipe: two "…artificially reduced from 1000000 to
    // 16…" lines on every adapter request) go in the report for `mode info`, not on every terminal.
    const { value: adapter, notes } = await platform.adapterNotes(
      () => instance.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : undefined),
      /artificially reduced from/,
    );
    if (!adapter) {
      const { why, fix } = platform.noAdapter();
      throw noAdapter(why, fix);
    }
    if (platform.name === 'browser' && !options.kernels && !options.kernelsDir)
      throw new GpuError(
        "Gpu.open in a browser needs the kernels' WGSL as `kernels` (name → source): there are no files to read. Fix: bundle kernels/*.wgsl (the web package does)",
      );
    const info = adapter.info;
    // Browsers leave `device` empty and say only the vendor and architecture (e.g. "google", "swiftshader").
    const name = info.device || info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
    if (options.adapter && !`${name} ${info.description}`.includes(options.adapter)) {
      throw new NoAdapterError(
        `No WebGPU adapter named "${options.adapter}": the one found is "${name}". Fix: leave --adapter out, or install the driver for "${options.adapter}".`,
      );
    }
    const available = [...adapter.features] as GPUFeatureName[];
    const requested = options.features ?? OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
    const missing = requested.filter((f) => !adapter.features.has(f));
    if (missing.length) throw new GpuError(`Adapter "${name}" lacks feature(s) ${missing.join(', ')}; it has: ${available.join(', ')}`);
    // Ask for the adapter's own limits: the defaults cap storage buffers at 128 MiB.
    const requiredLimits: Record<string, number> = {};
    for (const key of [
      'maxStorageBufferBindingSize',
      'maxBufferSize',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupSizeY',
      'maxStorageBuffersPerShaderStage',
    ] as const) {
      requiredLimits[key] = adapter.limits[key];
    }
    const device = await adapter.requestDevice({ requiredFeatures: requested, requiredLimits, label: 'mode' });
    const limits: Record<string, number> = {};
    for (const key in device.limits) limits[key] = Number(device.limits[key as keyof GPUSupportedLimits]);
    const isCpu = /llvmpipe|lavapipe|swiftshader/i.test(`${name} ${info.description} ${info.architecture}`);
    const report: AdapterReport = {
      name,
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      backend: options.backend ?? platform.defaultBackend,
      isCpu,
      features: available.sort(),
      enabledFeatures: [...device.features].sort(),
      limits,
      subgroupSize: info.subgroupMinSize ? { min: info.subgroupMinSize, max: info.subgroupMaxSize ?? info.subgroupMinSize } : null,
      threads,
      driverNotes: notes,
    };
    const hasTimestamps = device.features.has('timestamp-query');
    const clock: ProfileClock = options.profile === 'cpu-wall' || !hasTimestamps ? 'cpu-wall' : 'gpu-timestamps';
    return new Gpu(instance, adapter, device, report, options.kernelsDir ?? DEFAULT_KERNELS_DIR, options.kernels, clock, !!options.profile);
  }

  /** The kernel in `kernels/<name>.wgsl`, compiled once per set of override values. */
  kernel(name: string, overrides: Record<string, number | boolean> = {}): Promise<Kernel> {
    const key = `${name}|${Object.keys(overrides)
      .sort()
      .map((k) => `${k}=${overrides[k]}`)
      .join(',')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(name, overrides);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  /** A kernel's reflected interface (bindings, uniform layout, overrides) without building a pipeline. */
  async kernelInfo(name: string): Promise<KernelInfo> {
    return (await this.load(name)).info;
  }

  /** A kernel's WGSL as this Gpu compiles it (bundled, or read from `kernelsDir`), and the file name its diagnostics give. */
  kernelSource(name: string): { source: string; file: string } {
    if (this.sources) {
      const source = this.sources[name];
      if (source === undefined) throw new GpuError(`No kernel "${name}" among the ${Object.keys(this.sources).length} bundled kernels`);
      return { source, file: `kernels/${name}.wgsl` };
    }
    const found = platform.readKernel(this.kernelsDir, name);
    if (!found) throw new GpuError(`No kernel "${name}": ${this.kernelsDir}/${name}.wgsl does not exist`);
    return found;
  }

  private async load(name: string): Promise<{ info: KernelInfo; module: GPUShaderModule }> {
    const cached = this.kernelInfos.get(name);
    if (cached) return cached;
    const { source, file } = this.kernelSource(name);
    this.check();
    // Compile first: Dawn's diagnostics are exact, and reflection assumes valid WGSL.
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: source, label: file });
    const messages = (await module.getCompilationInfo()).messages;
    await this.device.popErrorScope();
    if (messages.some((m) => m.type === 'error')) {
      // The notes after an error say why (e.g. which value made control flow non-uniform): keep them.
      const diagnostics = messages.map((m) => ({ file, line: m.lineNum, column: m.linePos, severity: m.type, message: m.message }));
      const text = diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.severity === 'info' ? 'note' : d.severity}: ${d.message}`).join('\n');
      throw new KernelCompileError(text, diagnostics);
    }
    const entry = { info: reflectKernel(name, file, source), module };
    this.kernelInfos.set(name, entry);
    return entry;
  }

  private async compile(name: string, overrides: Record<string, number | boolean>): Promise<Kernel> {
    const { info, module } = await this.load(name);
    const unknown = Object.keys(overrides).filter((k) => !info.overrides.some((o) => o.name === k));
    if (unknown.length) {
      throw new GpuError(
        `${info.file}: no override constant(s) ${unknown.join(', ')}; it declares: ${info.overrides.map((o) => `${o.name}: ${o.type}`).join(', ') || 'none'}`,
      );
    }
    const groups = Math.max(-1, ...info.bindings.map((b) => b.group)) + 1;
    const layouts = Array.from({ length: groups }, (_, g) =>
      this.device.createBindGroupLayout({
        label: `${name} group ${g}`,
        entries: info.bindings
          .filter((b) => b.group === g)
          .map((b) => ({
            binding: b.binding,
            visibility: 0x4, // GPUShaderStage.COMPUTE
            ...(b.kind === 'texture'
              ? // unfilterable: rgba32float (what kernels here read) is filterable only with float32-filterable.
                { texture: { sampleType: 'unfilterable-float' as const, viewDimension: '2d' as const } }
              : {
                  buffer: {
                    type:
                      b.kind === 'uniform' || b.kind === 'ubo'
                        ? ('uniform' as const)
                        : b.access === 'read'
                          ? ('read-only-storage' as const)
                          : ('storage' as const),
                  },
                }),
          })),
      }),
    );
    const constants = Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, Number(v)]));
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label: name,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: layouts, label: name }),
        compute: { module, entryPoint: info.entryPoint, constants },
      });
    } catch (e) {
      throw new GpuError(`${info.file}: pipeline creation failed with overrides ${JSON.stringify(overrides)}: ${(e as Error).message}`);
    }
    return { info, overrides: { ...overrides }, workgroupSize: workgroupSizeOf(info, overrides), pipeline, layouts };
  }

  /** Records one dispatch; it runs at the next `sync()` (or `read()`). */
  dispatch(kernel: Kernel, args: DispatchArgs): void {
    this.check();
    const { info } = kernel;
    const bindGroups = this.bindGroups(kernel, args);
    const wg = typeof args.workgroups === 'number' ? [args.workgroups, 1, 1] : [args.workgroups[0], args.workgroups[1] ?? 1, args.workgroups[2] ?? 1];
    const maxWg = this.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    for (const n of wg) {
      if (!Number.isInteger(n) || n! < 0 || n! > maxWg) {
        throw new BindingError(`kernel ${info.name}: workgroup count [${wg.join(', ')}] invalid; each must be an integer in 0..${maxWg}`);
      }
    }
    const encoder = this.openEncoder();
    const meta: Pending = { kernel: info.name, label: args.label ?? info.name, work: args.work ?? {} };
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    const timestamps = this.profiler.enabled && this.profiler.clock === 'gpu-timestamps';
    if (timestamps) {
      if (this.pending.length * 2 + 2 > QUERY_CAPACITY) this.resolveQueries(encoder);
      this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY, label: 'profiler' });
      const i = this.pending.length * 2;
      timestampWrites = { querySet: this.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 };
      this.pending.push(meta);
    }
    const pass = encoder.beginComputePass({ label: meta.label, ...(timestampWrites ? { timestampWrites } : {}) });
    pass.setPipeline(kernel.pipeline);
    bindGroups.forEach((g, i) => pass.setBindGroup(i, g));
    pass.dispatchWorkgroups(wg[0]!, wg[1]!, wg[2]!);
    pass.end();
    this.lastKernel = info.name;
    this.dispatchCounts.set(info.name, (this.dispatchCounts.get(info.name) ?? 0) + 1);
    // Without timestamps, each profiled dispatch is its own submission, timed on the CPU.
    if (this.profiler.enabled && !timestamps) this.cut(meta);
    else if (!this.profiler.enabled && ++this.recorded >= EARLY_SUBMIT) this.submitEarly();
  }

  /** Submits what is recorded so far (queue order is recording order); sync() still waits for it and reports its errors. */
  private submitEarly(): void {
    this.cut();
    this.device.queue.submit(this.commandBuffers.map((b) => b.cb));
    this.commandBuffers = [];
    this.recorded = 0;
    this.inFlight = true;
  }

  private bindGroups(kernel: Kernel, args: DispatchArgs): GPUBindGroup[] {
    const { info } = kernel;
    const where = (b: KernelInfo['bindings'][number]) =>
      `binding '${b.name}' (@group(${b.group}) @binding(${b.binding}), ${b.kind === 'texture' ? 'texture_2d<f32>' : `var<${b.kind === 'uniform' || b.kind === 'ubo' ? 'uniform' : `storage, ${b.access}`}>`})`;
    const declared = info.bindings.filter((b) => b.kind !== 'uniform').map((b) => b.name);
    const extra = Object.keys(args.bindings).filter((n) => !declared.includes(n));
    if (extra.length)
      throw new BindingError(
        `kernel ${info.name}: no binding named ${extra.map((n) => `'${n}'`).join(', ')}; it declares storage and texture bindings: ${declared.join(', ')}`,
      );
    const ranges = new Map<string, Required<BufferRange>>();
    const views = new Map<string, GPUTextureView>();
    const isBuffer = (x: unknown): x is GPUBuffer => typeof x === 'object' && x !== null && typeof (x as GPUBuffer).usage === 'number';
    const limits = this.report.limits;
    for (const b of info.bindings) {
      if (b.kind === 'uniform') {
        const buffer = this.uniformBuffer(kernel, args.uniforms);
        ranges.set(b.name, { buffer, offset: 0, size: buffer.size });
        continue;
      }
      const arg = args.bindings[b.name] as unknown;
      if (arg === undefined) throw new BindingError(`kernel ${info.name}: ${where(b)} was not passed`);
      if (b.kind === 'texture') {
        const t = arg as GPUTexture;
        if (typeof t?.createView !== 'function') throw new BindingError(`kernel ${info.name}: ${where(b)} expects a GPUTexture; got ${describe(arg)}`);
        if (!(t.usage & 0x04) || t.dimension !== '2d')
          throw new BindingError(
            `kernel ${info.name}: ${where(b)} needs a 2d texture with TEXTURE_BINDING usage; texture "${t.label}" is ${t.dimension} with usage 0x${t.usage.toString(16)}`,
          );
        views.set(b.name, t.createView({ label: t.label }));
        continue;
      }
      const rule = BINDING_RULES[b.kind === 'ubo' ? 'ubo' : 'storage'];
      const align = limits[rule.align] ?? rule.alignDefault;
      const maxBinding = limits[rule.max] ?? rule.maxDefault;
      const whole = isBuffer(arg);
      const given: Partial<BufferRange> = whole ? { buffer: arg } : ((arg as BufferRange | null) ?? {});
      const g = given.buffer;
      if (!isBuffer(g)) throw new BindingError(`kernel ${info.name}: ${where(b)} expects a GPUBuffer or { buffer, offset?, size? }; got ${describe(arg)}`);
      const offset = given.offset ?? 0;
      const size = given.size ?? g.size - offset;
      const range = `buffer "${g.label}" (${g.size} bytes)${whole ? '' : ` from byte ${offset}, ${size} bytes`}`;
      if (!(g.usage & rule.usage))
        throw new BindingError(
          `kernel ${info.name}: ${where(b)} needs a buffer with ${rule.usageName} usage; buffer "${g.label}" has usage 0x${g.usage.toString(16)}`,
        );
      if (!Number.isInteger(offset) || offset < 0 || offset % align !== 0)
        throw new BindingError(`kernel ${info.name}: ${where(b)}: offset ${offset} must be a non-negative multiple of ${align} (${rule.align})`);
      if (!Number.isInteger(size) || size <= 0 || size % 4 !== 0 || offset + size > g.size)
        throw new BindingError(`kernel ${info.name}: ${where(b)}: ${range} is not a range of whole 4-byte words inside the buffer`);
      if (size < b.minBytes) throw new BindingError(`kernel ${info.name}: ${where(b)} needs at least ${b.minBytes} bytes; ${range} has ${size}`);
      if (size > maxBinding)
        throw new BindingError(
          `kernel ${info.name}: ${where(b)}: ${range} is over this adapter's ${rule.max} (${maxBinding} bytes); bind it in ranges of at most that`,
        );
      ranges.set(b.name, { buffer: g, offset, size });
    }
    // A buffer written by the kernel must not also be bound elsewhere in the same dispatch (WebGPU
    // forbids a writable binding beside any other of the same buffer, overlapping or not).
    for (const b of info.bindings.filter((x) => x.access === 'read_write' && x.kind === 'storage')) {
      const other = info.bindings.find((x) => x !== b && ranges.get(x.name)?.buffer === ranges.get(b.name)!.buffer);
      if (other)
        throw new BindingError(`kernel ${info.name}: ${where(b)} is written, and the same buffer is also bound to ${where(other)}; pass a separate buffer`);
    }
    return kernel.layouts.map((layout, group) =>
      this.device.createBindGroup({
        layout,
        label: `${info.name} group ${group}`,
        entries: info.bindings.filter((b) => b.group === group).map((b) => ({ binding: b.binding, resource: views.get(b.name) ?? ranges.get(b.name)! })),
      }),
    );
  }

  private uniformBuffer(kernel: Kernel, values: DispatchArgs['uniforms']): GPUBuffer {
    const { info } = kernel;
    const u = info.uniform!;
    const given = values ?? {};
    const names = u.fields.map((f) => f.name);
    const extra = Object.keys(given).filter((k) => !names.includes(k));
    if (extra.length)
      throw new BindingError(`kernel ${info.name}: uniform ${u.binding.name} has no field ${extra.join(', ')}; its fields: ${names.join(', ')}`);
    const data = new DataView(new ArrayBuffer(u.size));
    for (const f of u.fields) {
      const v = given[f.name];
      if (v === undefined) throw new BindingError(`kernel ${info.name}: uniform field ${u.binding.name}.${f.name}: ${f.type} was not given`);
      const xs = typeof v === 'number' ? [v] : v;
      if (xs.length !== f.count)
        throw new BindingError(`kernel ${info.name}: uniform field ${u.binding.name}.${f.name}: ${f.type} takes ${f.count} value(s), got ${xs.length}`);
      xs.forEach((x, i) => {
        const at = f.offset + 4 * i;
        const bad = (why: string) => new BindingError(`kernel ${info.name}: uniform field ${u.binding.name}.${f.name}: ${f.type} = ${x} ${why}`);
        if (f.scalar === 'f32') {
          if (!Number.isFinite(x)) throw bad('is not finite');
          data.setFloat32(at, x, true);
        } else if (f.scalar === 'u32') {
          if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw bad('is not a u32');
          data.setUint32(at, x, true);
        } else if (f.scalar === 'i32') {
          if (!Number.isInteger(x) || x < -0x80000000 || x > 0x7fffffff) throw bad('is not an i32');
          data.setInt32(at, x, true);
        } else throw bad('cannot be set: f16 uniforms are not supported, use f32');
      });
    }
    const buffer = this.pool.acquire(u.size, UNIFORM, `${info.name} uniforms`);
    this.device.queue.writeBuffer(buffer, 0, data.buffer);
    this.transient.push(buffer); // released once the GPU is done with it, in sync()
    return buffer;
  }

  /** A storage buffer from the pool (STORAGE | COPY_SRC | COPY_DST), contents undefined. */
  buffer(bytes: number, label?: string): GPUBuffer {
    this.check();
    return this.pool.acquire(bytes, STORAGE, label);
  }

  /** A storage buffer from the pool holding `data`. */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    const buffer = this.buffer(data.byteLength, label);
    this.write(buffer, data);
    return buffer;
  }

  /** Records a copy of buffer bytes into a texture, ordered like dispatches (after those already recorded, before later ones). */
  copyBufferToTexture(source: GPUTexelCopyBufferInfo, destination: GPUTexelCopyTextureInfo, size: GPUExtent3DStrict): void {
    this.check();
    this.openEncoder().copyBufferToTexture(source, destination, size);
  }

  /** Records a copy of `bytes` bytes between buffers, ordered like dispatches; offsets and size are multiples of 4. */
  copyBuffer(source: GPUBuffer, sourceOffset: number, destination: GPUBuffer, destinationOffset: number, bytes: number): void {
    this.check();
    if (sourceOffset + bytes > source.size || destinationOffset + bytes > destination.size)
      throw new GpuError(
        `copyBuffer: ${bytes} bytes from "${source.label}" at ${sourceOffset} (${source.size} bytes) to "${destination.label}" at ${destinationOffset} (${destination.size} bytes) run past a buffer's end`,
      );
    if (bytes > 0) this.openEncoder().copyBufferToBuffer(source, sourceOffset, destination, destinationOffset, bytes);
  }

  /** Records zeroing `bytes` bytes of a buffer from `offset`, ordered like dispatches; both multiples of 4. */
  clearBuffer(buffer: GPUBuffer, offset: number, bytes: number): void {
    this.check();
    if (offset + bytes > buffer.size)
      throw new GpuError(`clearBuffer: ${bytes} bytes at ${offset} run past the end of "${buffer.label}" (${buffer.size} bytes)`);
    if (bytes > 0) this.openEncoder().clearBuffer(buffer, offset, bytes);
  }

  /** Writes `data` at `offset`, ordered after every dispatch already recorded. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.check();
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      // WebGPU copies whole 4-byte words (e.g. an odd number of f16 values): pad with zeros.
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (offset + bytes.byteLength > buffer.size)
      throw new GpuError(`write: ${data.byteLength} bytes at offset ${offset} do not fit buffer "${buffer.label}" (${buffer.size} bytes)`);
    if (!this.encoder && this.commandBuffers.length === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes);
      return;
    }
    // queue.writeBuffer would land before the recorded dispatches run: copy inside the encoder.
    const size = bytes.byteLength;
    const staging = this.device.createBuffer({ size, usage: 0x4, mappedAtCreation: true, label: 'staging' });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.openEncoder().copyBufferToBuffer(staging, 0, buffer, offset, size);
    this.stagingToDestroy.push(staging);
  }

  /** Hands a buffer back to the pool; work already recorded that uses it still runs. */
  release(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** Runs everything recorded, waits for it, and reports errors and profiler times. */
  async sync(): Promise<void> {
    this.check();
    if (this.encoder) {
      if (this.pending.length) this.resolveQueries(this.encoder);
      this.cut();
    }
    const buffers = this.commandBuffers;
    this.commandBuffers = [];
    this.recorded = 0;
    if (buffers.length || this.inFlight) {
      this.inFlight = false;
      if (buffers.some((b) => b.timed)) {
        for (const { cb, timed } of buffers) {
          const t0 = performance.now();
          this.device.queue.submit([cb]);
          await this.done();
          if (timed) this.profiler.record(timed.kernel, timed.label, t0 * 1e6, performance.now() * 1e6, timed.work);
        }
      } else {
        if (buffers.length) this.device.queue.submit(buffers.map((b) => b.cb));
        await this.done();
      }
      const oom = await this.device.popErrorScope();
      const validation = await this.device.popErrorScope();
      const error = validation ?? oom;
      for (const b of this.transient) this.pool.release(b);
      this.transient = [];
      for (const b of this.stagingToDestroy) b.destroy();
      this.stagingToDestroy = [];
      if (error) throw new GpuError(`GPU ${oom ? 'out of memory' : 'validation error'} in batch ending with kernel ${this.lastKernel}: ${error.message}`);
      await this.readTimestamps();
    }
    this.check();
  }

  /** Copies a buffer back to the CPU after running everything recorded; by default the bytes asked for when it was made. */
  async read<T extends Float32Array | Uint32Array | Int32Array | Uint16Array | Uint8Array = Float32Array>(
    buffer: GPUBuffer,
    type: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number } = Float32Array as never,
    length?: number,
  ): Promise<T> {
    const bytes = length === undefined ? (this.pool.requestedBytes(buffer) ?? buffer.size) : length * type.BYTES_PER_ELEMENT;
    if (bytes > buffer.size) throw new GpuError(`read: asked for ${bytes} bytes of buffer "${buffer.label}", which has ${buffer.size}`);
    const staging = this.pool.acquire(bytes, MAP_READ, 'readback');
    this.openEncoder().copyBufferToBuffer(buffer, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    await this.sync();
    await this.mapRead(staging);
    const out = new type(staging.getMappedRange(0, staging.size).slice(0, bytes));
    staging.unmap();
    this.pool.release(staging);
    return out;
  }

  /** Frees the device: afterwards the process can exit (dawn.node keeps it alive otherwise). */
  destroy(): void {
    if (this.lost?.reason !== 'destroyed') {
      this.pool.trim();
      this.querySet?.destroy();
      this.device.destroy();
      this.lost = { reason: 'destroyed', message: 'Gpu.destroy() was called' };
    }
  }

  private openEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      if (this.commandBuffers.length === 0 && !this.inFlight) {
        // One error scope pair per batch (early submissions included); sync() pops them and names the kernel.
        this.device.pushErrorScope('validation');
        this.device.pushErrorScope('out-of-memory');
      }
      this.encoder = this.device.createCommandEncoder({ label: 'mode batch' });
    }
    return this.encoder;
  }

  private cut(timed?: Pending): void {
    if (!this.encoder) return;
    this.commandBuffers.push({ cb: this.encoder.finish(), ...(timed ? { timed } : {}) });
    this.encoder = null;
  }

  private resolveQueries(encoder: GPUCommandEncoder): void {
    const n = this.pending.length * 2;
    this.queryResolve ??= this.device.createBuffer({ size: QUERY_CAPACITY * 8, usage: QUERY_RESOLVE, label: 'profiler resolve' });
    const readback = this.pool.acquire(n * 8, MAP_READ, 'profiler readback');
    encoder.resolveQuerySet(this.querySet!, 0, n, this.queryResolve, 0);
    encoder.copyBufferToBuffer(this.queryResolve, 0, readback, 0, n * 8);
    this.queryReadbacks.push({ buffer: readback, dispatches: this.pending });
    this.pending = [];
  }

  private async readTimestamps(): Promise<void> {
    const readbacks = this.queryReadbacks;
    this.queryReadbacks = [];
    for (const { buffer, dispatches } of readbacks) {
      await this.mapRead(buffer);
      const t = new BigUint64Array(buffer.getMappedRange(0, dispatches.length * 16));
      dispatches.forEach((d, i) => this.profiler.record(d.kernel, d.label, Number(t[2 * i]!), Number(t[2 * i + 1]!), d.work));
      buffer.unmap();
      this.pool.release(buffer);
    }
  }

  private async mapRead(buffer: GPUBuffer): Promise<void> {
    await Promise.race([buffer.mapAsync(0x1), this.device.lost.then(() => this.check())]);
  }

  private async done(): Promise<void> {
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    this.check();
  }

  /** Throws if the device is lost or an error escaped every scope, naming the last kernel. */
  private check(): void {
    if (this.lost) {
      throw new DeviceLostError(
        `GPU device lost (${this.lost.reason}): ${this.lost.message}. Last kernel dispatched: ${this.lastKernel}. ` +
          'No more GPU work can run on this device; open a new one with Gpu.open().',
      );
    }
    if (this.uncaptured) {
      const e = this.uncaptured;
      this.uncaptured = null;
      throw new GpuError(`Uncaptured GPU error after kernel ${this.lastKernel}: ${e.message}`);
    }
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} (upload it with gpu.upload() first)`;
  return typeof x === 'object' ? `a ${(x as object).constructor?.name ?? 'object'}` : `${typeof x} ${String(x)}`;
}

/** Opens a device, runs `fn`, and always destroys the device so the process can exit. */
export async function withGpu<T>(options: OpenOptions, fn: (gpu: Gpu) => Promise<T>): Promise<T> {
  const gpu = await Gpu.open(options);
  try {
    return await fn(gpu);
  } finally {
    gpu.destroy();
  }
}
