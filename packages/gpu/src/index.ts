export {
  Gpu,
  withGpu,
  OPTIONAL_FEATURES,
  DEFAULT_KERNELS_DIR,
  STORAGE,
  type OpenOptions,
  type AdapterReport,
  type Kernel,
  type DispatchArgs,
  type BufferRange,
} from './gpu.js';
export { GpuError, NoAdapterError, KernelCompileError, BindingError, DeviceLostError } from './errors.js';
export { BufferPool, sizeClass, type PoolStats } from './pool.js';
export { rooflineSvg, attainable, type RooflinePoint } from './roofline.js';
export { Profiler, formatTable, type ProfileClock, type Work, type DispatchRecord, type KernelSummary, type Roof } from './profiler.js';
export { reflectKernel, workgroupSizeOf, type KernelInfo, type BindingInfo, type UniformField } from './reflect.js';
